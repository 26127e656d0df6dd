/*
 * Tests of src/ws/ws_handshake.h: the RFC 6455 §1.3 accept key, key
 * syntax, every refusal wsg_ws_handshake_check() documents with its exact
 * status, subprotocol choice, and the exact 101 response. Requests are
 * built by hand as the parser would leave them: slices, no NUL relied on.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/str.h"
#include "http/http_parse.h"
#include "tap.h"
#include "ws/ws_conf.h"
#include "ws/ws_handshake.h"

#define RFC_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Names and values live here so no slice ends in a NUL. */
#define ARENA_MAX 8192

static struct wsg_http_request req;
static struct wsg_ws_loc_conf wcf;
static char arena[ARENA_MAX];
static size_t arena_used;

/* A copy of <s> without its NUL, as a slice. */
static struct wsg_str
slice(const char *s)
{
    size_t n = strlen(s);

    if (arena_used + n + 1 > ARENA_MAX) {
        abort();
    }
    char *p = arena + arena_used;
    memcpy(p, s, n);
    /* a byte that is no header character ends the slice in memory */
    p[n] = '\x7f';
    arena_used += n + 1;
    return (struct wsg_str){p, n};
}

static void
add(const char *name, const char *value)
{
    if (req.nheaders == WSG_HTTP_MAX_HEADERS) {
        abort();
    }
    req.headers[req.nheaders].name = slice(name);
    req.headers[req.nheaders].value = slice(value);
    req.nheaders++;
}

/* Removes every header called <name> (exact spelling). */
static void
drop(const char *name)
{
    size_t j = 0;

    for (size_t i = 0; i < req.nheaders; i++) {
        if (!wsg_str_eq(req.headers[i].name, name)) {
            req.headers[j++] = req.headers[i];
        }
    }
    req.nheaders = j;
}

/* Replaces the headers called <name> with one of <value>. */
static void
set(const char *name, const char *value)
{
    drop(name);
    add(name, value);
}

/* The RFC 6455 §1.2 request, without its Sec-WebSocket-Protocol. */
static void
base(void)
{
    memset(&req, 0, sizeof(req));
    arena_used = 0;
    req.method = slice("GET");
    req.target = slice("/chat");
    req.path = req.target;
    req.minor = 1;
    add("Host", "server.example.com");
    add("Upgrade", "websocket");
    add("Connection", "Upgrade");
    add("Sec-WebSocket-Key", RFC_KEY);
    add("Origin", "http://example.com");
    add("Sec-WebSocket-Version", "13");
}

/* A location with no origin list, no subprotocols and no deflate. */
static void
conf_reset(void)
{
    memset(&wcf, 0, sizeof(wcf));
    wcf.endpoint = 1;
    wcf.deflate_conf.enabled = false;
}

/* Runs the check on the current request and wants <status>. */
static bool
expect(int status, const char *name)
{
    struct wsg_ws_handshake h;
    const char *why = NULL;

    memset(&h, 0, sizeof(h));
    int rc = wsg_ws_handshake_check(&req, &wcf, &h, &why);
    bool pass = is_int(rc, status, "%s: %d", name, status);
    if (status != 0) {
        ok(why != NULL && why[0] != '\0', "%s: a reason is given", name);
    }
    return pass;
}

static void
test_accept(void)
{
    char out[WSG_WS_ACCEPT_LEN];

    note("wsg_ws_accept");
    memset(out, 'x', sizeof(out));
    wsg_ws_accept(slice(RFC_KEY), out);
    is_mem(out, sizeof(out), RFC_ACCEPT, sizeof(RFC_ACCEPT),
           "RFC 6455 1.3 accept value, NUL-terminated");
    wsg_ws_accept(slice("AAAAAAAAAAAAAAAAAAAAAA=="), out);
    is_str(out,
           "ICX+Yqv66kxgM0FcWaLWlFLwTAI=", "accept value for 16 zero bytes");
    wsg_ws_accept(slice("x3JJHMbDL1EzLkh9GBhXDw=="), out);
    is_str(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=",
           "accept value for x3JJHMbDL1EzLkh9GBhXDw==");
}

static void
key(const char *s, bool want, const char *name)
{
    is_int(wsg_ws_key_valid(slice(s)), want, "key %s: %s", name,
           want ? "valid" : "refused");
}

static void
test_key_valid(void)
{
    note("wsg_ws_key_valid");
    key(RFC_KEY, true, "RFC 6455 sample");
    key("AAAAAAAAAAAAAAAAAAAAAA==", true, "16 zero bytes");
    key("/////////////////////w==", true, "16 0xFF bytes");
    key("+/+/+/+/+/+/+/+/+/+/+w==", true, "with '+' and '/'");
    key("", false, "empty");
    key("dGhlIHNhbXBsZSBub25jZQ=", false, "23 characters");
    key("dGhlIHNhbXBsZSBub25jZQ===", false, "25 characters");
    key("dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==", false,
        "48 characters");
    key("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", false, "20 bytes (28 characters)");
    key("AAAAAAAAAAAAAAAAAAAAAAA=", false, "17 bytes (one '=')");
    key("AAAAAAAAAAAAAAAAAAAAAAAA", false, "18 bytes (no '=')");
    key("AAAAAAAAAAAAAAAAAAAAA===", false, "15 bytes and '==='");
    key("dGhlIHNhbXBsZSBub25jZQ=A", false, "'=' not at the end");
    key("dGhlIHNhbXBs-SBub25jZQ==", false, "base64url '-'");
    key("dGhlIHNhbXBs_SBub25jZQ==", false, "base64url '_'");
    key("dGhlIHNhbXBs SBub25jZQ==", false, "a space");
    key("dGhlIHNhbXBs.SBub25jZQ==", false, "a '.'");
    key("dGhlIHNhbXBs=SBub25jZQ==", false, "'=' inside");
    key("dGhlIHNhbXBs\xc3\xa9"
        "Bub25jZQ==",
        false, "a non-ASCII byte");

    /* a NUL inside the slice, which strlen-based code would stop at */
    static const char nul[] = "dGhlIHNhbXBs\0SBub25jZQ==";
    is_int(wsg_ws_key_valid((struct wsg_str){nul, sizeof(nul) - 1}), false,
           "key with a NUL: refused");
}

static void
test_check_status(void)
{
    note("wsg_ws_handshake_check: the RFC request passes");
    conf_reset();
    base();
    expect(0, "RFC 6455 1.2 request");

    note("405");
    base();
    req.method = slice("POST");
    expect(405, "POST");
    base();
    req.method = slice("HEAD");
    expect(405, "HEAD");
    base();
    req.method = slice("get");
    expect(405, "lower-case get (methods are case-sensitive)");
    base();
    req.method = slice("POST");
    drop("Upgrade");
    expect(405, "POST without Upgrade: the method is judged first");

    note("426");
    base();
    drop("Upgrade");
    expect(426, "no Upgrade");
    base();
    set("Upgrade", "h2c");
    expect(426, "Upgrade: h2c");
    base();
    set("Upgrade", "websockets");
    expect(426, "Upgrade: websockets");
    base();
    set("Upgrade", "");
    expect(426, "empty Upgrade");
    base();
    set("Sec-WebSocket-Version", "8");
    expect(426, "version 8");
    base();
    set("Sec-WebSocket-Version", "12");
    expect(426, "version 12");
    base();
    set("Sec-WebSocket-Version", "130");
    expect(426, "version 130");
    base();
    set("Sec-WebSocket-Version", "8, 13");
    expect(426, "version list 8, 13");

    note("Upgrade tokens");
    base();
    set("Upgrade", "WebSocket");
    expect(0, "Upgrade: WebSocket");
    base();
    set("Upgrade", "WEBSOCKET");
    expect(0, "Upgrade: WEBSOCKET");
    base();
    set("Upgrade", "h2c, websocket");
    expect(0, "Upgrade: h2c, websocket");
    base();
    drop("Upgrade");
    add("upgrade", "websocket");
    expect(0, "header name upgrade in lower case");
    base();
    set("Upgrade", "h2c");
    add("Upgrade", "websocket");
    expect(0, "Upgrade split over two headers");
    base();
    add("Upgrade", "h2c");
    expect(0, "Upgrade: websocket first of two headers");

    note("400");
    base();
    req.minor = 0;
    expect(400, "HTTP/1.0");
    base();
    drop("Host");
    expect(400, "no Host");
    base();
    add("Host", "other.example.com");
    expect(400, "two Host headers");
    base();
    drop("Connection");
    expect(400, "no Connection");
    base();
    set("Connection", "keep-alive");
    expect(400, "Connection: keep-alive");
    base();
    set("Connection", "upgrade2, x-upgrade");
    expect(400, "Connection: upgrade2, x-upgrade");
    base();
    set("Connection", "keep-alive, Upgrade");
    expect(0, "Connection: keep-alive, Upgrade");
    base();
    set("Connection", "UPGRADE");
    expect(0, "Connection: UPGRADE");
    base();
    set("Connection", "keep-alive");
    add("Connection", "Upgrade");
    expect(0, "Connection split over two headers");
    base();
    add("Connection", "keep-alive");
    expect(0, "Connection: upgrade first of two headers");
    base();
    set("Connection", "close,upgrade");
    expect(0, "Connection: close,upgrade");

    base();
    drop("Sec-WebSocket-Key");
    expect(400, "no key");
    base();
    add("Sec-WebSocket-Key", RFC_KEY);
    expect(400, "two keys");
    base();
    set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=");
    expect(400, "short key");
    base();
    set("Sec-WebSocket-Key", "dGhlIHNhbXBs-SBub25jZQ==");
    expect(400, "key with '-'");
    base();
    set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA=");
    expect(400, "key of 17 bytes");

    base();
    drop("Sec-WebSocket-Version");
    expect(400, "no version");
    base();
    add("Sec-WebSocket-Version", "13");
    expect(400, "two versions");
}

static void
test_check_origin(void)
{
    static struct wsg_str origins[2];

    note("403 and origins");
    conf_reset();
    base();
    drop("Origin");
    expect(0, "no origin list, no Origin");
    base();
    set("Origin", "http://evil.example");
    expect(0, "no origin list, any Origin");

    origins[0] = WSG_STR("https://app.example.com");
    origins[1] = WSG_STR("http://example.com");
    wcf.origins = (struct wsg_ws_list){origins, 2};
    base();
    expect(0, "Origin in the list");
    base();
    set("Origin", "HTTP://EXAMPLE.COM");
    expect(0, "Origin in the list, other case");
    base();
    set("Origin", "https://app.example.com");
    expect(0, "Origin first in the list");
    base();
    set("Origin", "http://evil.example");
    expect(403, "Origin not in the list");
    base();
    set("Origin", "http://example.com.evil.example");
    expect(403, "Origin with an allowed prefix");
    base();
    set("Origin", "http://example.co");
    expect(403, "Origin a prefix of an allowed one");
    base();
    set("Origin", "null");
    expect(403, "Origin null");
    base();
    drop("Origin");
    expect(403, "no Origin with a list");
    base();
    add("Origin", "http://example.com");
    expect(403, "two Origin headers");
    conf_reset();
}

/* Checks the request and wants subprotocol <want> ("" for none). */
static void
proto(const char *want, const char *name)
{
    struct wsg_ws_handshake h;
    const char *why = NULL;

    memset(&h, 0, sizeof(h));
    if (is_int(wsg_ws_handshake_check(&req, &wcf, &h, &why), 0, "%s: accepted",
               name)) {
        if (want[0] == '\0') {
            is_int(h.subprotocol.len, 0, "%s: no subprotocol", name);
        } else {
            is_mem(h.subprotocol.p, h.subprotocol.len, want, strlen(want),
                   "%s: subprotocol \"%s\"", name, want);
        }
    }
}

static void
test_subprotocol(void)
{
    static struct wsg_str protos[2];
    struct wsg_ws_handshake h;
    const char *why;

    note("subprotocols");
    conf_reset();
    base();
    add("Sec-WebSocket-Protocol", "chat, json");
    memset(&h, 0, sizeof(h));
    is_int(wsg_ws_handshake_check(&req, &wcf, &h, &why), 0,
           "offer with none configured: accepted");
    is_int(h.subprotocol.len, 0, "offer with none configured: none chosen");

    protos[0] = WSG_STR("chat");
    protos[1] = WSG_STR("json");
    wcf.subprotocols = (struct wsg_ws_list){protos, 2};
    base();
    memset(&h, 0, sizeof(h));
    is_int(wsg_ws_handshake_check(&req, &wcf, &h, &why), 0,
           "no offer: accepted");
    is_int(h.subprotocol.len, 0, "no offer: none chosen");

    base();
    add("Sec-WebSocket-Protocol", "json, chat");
    proto("json", "offer json, chat");
    base();
    add("Sec-WebSocket-Protocol", "chat, json");
    proto("chat", "offer chat, json");
    base();
    add("Sec-WebSocket-Protocol", "superchat, chat");
    proto("chat", "offer superchat, chat");
    base();
    add("Sec-WebSocket-Protocol", "xmpp, mqtt");
    proto("", "offer xmpp, mqtt");
    base();
    add("Sec-WebSocket-Protocol", "JSON, Chat");
    proto("", "offer JSON, Chat (names are case-sensitive)");
    base();
    add("Sec-WebSocket-Protocol", "jso, json2, chatty");
    proto("", "offer jso, json2, chatty (whole names only)");
    base();
    add("Sec-WebSocket-Protocol", " \tjson\t ,chat");
    proto("json", "offer with blanks around items");
    base();
    add("Sec-WebSocket-Protocol", ", ,json");
    proto("json", "offer with empty items first");
    base();
    add("Sec-WebSocket-Protocol", "json");
    proto("json", "offer json alone");
    base();
    add("Sec-WebSocket-Protocol", "xmpp");
    add("Sec-WebSocket-Protocol", "json, chat");
    proto("json", "offer split over two headers");
    base();
    add("Sec-WebSocket-Protocol", "chat");
    add("Sec-WebSocket-Protocol", "json");
    proto("chat", "two headers, first one wins");
    base();
    add("Sec-WebSocket-Protocol", "xmpp");
    add("sec-websocket-protocol", "mqtt, json");
    proto("json", "second header in lower case");
    conf_reset();
}

static void
test_extensions_off(void)
{
    struct wsg_ws_handshake h;
    const char *why;

    note("extensions with deflate off");
    conf_reset();
    base();
    add("Sec-WebSocket-Extensions", "permessage-deflate; "
                                    "client_max_window_bits");
    memset(&h, 0xA5, sizeof(h));
    is_int(wsg_ws_handshake_check(&req, &wcf, &h, &why), 0,
           "deflate offer with deflate off: accepted");
    is_int(h.deflate, false, "deflate offer with deflate off: not agreed");
    is_str(h.extensions, "", "deflate offer with deflate off: no header");
    is_mem(h.key.p, h.key.len, RFC_KEY, strlen(RFC_KEY), "key slice kept");
}

/* Runs the check on the current request, then writes the response. */
static size_t
respond(char *buf, size_t len, struct wsg_ws_handshake *h)
{
    const char *why;

    memset(h, 0, sizeof(*h));
    if (wsg_ws_handshake_check(&req, &wcf, h, &why) != 0) {
        return 0;
    }
    return wsg_ws_handshake_response(h, buf, len);
}

static void
test_response(void)
{
    static const char plain[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                                "Server: wsgate\r\n"
                                "\r\n";
    static const char with_proto[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                     "Upgrade: websocket\r\n"
                                     "Connection: Upgrade\r\n"
                                     "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                                     "Sec-WebSocket-Protocol: json\r\n"
                                     "Server: wsgate\r\n"
                                     "\r\n";
    static const char with_ext[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
        "Sec-WebSocket-Protocol: chat\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        "Server: wsgate\r\n"
        "\r\n";
    static struct wsg_str protos[2];
    struct wsg_ws_handshake h;
    char buf[1024];
    size_t n;

    note("wsg_ws_handshake_response");
    conf_reset();
    base();
    n = respond(buf, sizeof(buf), &h);
    is_mem(buf, n, plain, sizeof(plain) - 1, "101 without a subprotocol");
    is_int(buf[n], '\0', "101 is NUL-terminated");

    protos[0] = WSG_STR("chat");
    protos[1] = WSG_STR("json");
    wcf.subprotocols = (struct wsg_ws_list){protos, 2};
    base();
    add("Sec-WebSocket-Protocol", "json");
    n = respond(buf, sizeof(buf), &h);
    is_mem(buf, n, with_proto, sizeof(with_proto) - 1,
           "101 with the chosen subprotocol");

    base();
    add("Sec-WebSocket-Protocol", "mqtt");
    n = respond(buf, sizeof(buf), &h);
    is_mem(buf, n, plain, sizeof(plain) - 1,
           "101 without Sec-WebSocket-Protocol when none matched");

    /* the extension header as the negotiation would have left it */
    base();
    add("Sec-WebSocket-Protocol", "chat");
    respond(buf, sizeof(buf), &h);
    h.deflate = true;
    snprintf(h.extensions, sizeof(h.extensions), "permessage-deflate");
    n = wsg_ws_handshake_response(&h, buf, sizeof(buf));
    is_mem(buf, n, with_ext, sizeof(with_ext) - 1,
           "101 with subprotocol and extension");

    base();
    respond(buf, sizeof(buf), &h);
    size_t full = sizeof(plain) - 1;
    is_int(wsg_ws_handshake_response(&h, buf, full + 1), full,
           "a buffer of exactly the length plus NUL fits");
    is_int(wsg_ws_handshake_response(&h, buf, full), 0,
           "a buffer one byte short: 0");
    is_int(wsg_ws_handshake_response(&h, buf, 16), 0, "a tiny buffer: 0");
    conf_reset();
}

int
main(void)
{
    test_accept();
    test_key_valid();
    test_check_status();
    test_check_origin();
    test_subprotocol();
    test_extensions_off();
    test_response();
    return done_testing();
}
