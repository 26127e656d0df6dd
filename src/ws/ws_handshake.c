/*
 * Opening handshake (RFC 6455 §4.2.1 reading the request, §4.2.2 the
 * response, §1.3 the accept key; RFC 7692 §5 for the extension). SHA-1 and
 * base64 come from OpenSSL.
 */
#include "config.h"

#include "ws/ws_handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "http/http_parse.h"
#include "ws/ws_conf.h"

#define WS_GUID               "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Sec-WebSocket-Extensions headers considered; more is an attack. */
#define MAX_EXTENSION_HEADERS 8

bool
wsg_ws_key_valid(struct wsg_str key)
{
    unsigned char raw[24];

    /* 16 bytes encode to 22 characters plus "==" */
    if (key.len != 24 || key.p[22] != '=' || key.p[23] != '=') {
        return false;
    }
    for (size_t i = 0; i < 22; i++) {
        char c = key.p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/')) {
            return false;
        }
    }
    return EVP_DecodeBlock(raw, (const unsigned char *) key.p, 24) == 18;
}

void
wsg_ws_accept(struct wsg_str key, char out[WSG_WS_ACCEPT_LEN])
{
    unsigned char buf[64 + sizeof(WS_GUID)];
    unsigned char digest[SHA_DIGEST_LENGTH];
    size_t n = key.len < 64 ? key.len : 64;

    memcpy(buf, key.p, n);
    memcpy(buf + n, WS_GUID, sizeof(WS_GUID) - 1);
    EVP_Digest(buf, n + sizeof(WS_GUID) - 1, digest, NULL, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *) out, digest, SHA_DIGEST_LENGTH);
}

/* Exactly one header <name>; NULL when absent, <*dup> when repeated. */
static const struct wsg_http_header *
single(const struct wsg_http_request *r, const char *name, bool *dup)
{
    size_t from = 0;
    const struct wsg_http_header *h = wsg_http_find_header(r, name, &from);

    *dup = h != NULL && wsg_http_find_header(r, name, &from) != NULL;
    return h;
}

static bool
origin_allowed(const struct wsg_http_request *r,
               const struct wsg_ws_loc_conf *wcf)
{
    bool dup;
    const struct wsg_http_header *o = single(r, "Origin", &dup);

    if (wcf->origins.items == NULL) {
        return true;
    }
    if (o == NULL || dup) {
        return false;
    }
    for (size_t i = 0; i < wcf->origins.n; i++) {
        if (wsg_str_caseeq(o->value, wcf->origins.items[i].p)) {
            return true;
        }
    }
    return false;
}

/* The first subprotocol the client offered that is configured. */
static struct wsg_str
choose_subprotocol(const struct wsg_http_request *r,
                   const struct wsg_ws_loc_conf *wcf)
{
    struct wsg_str none = {NULL, 0};
    size_t from = 0;
    const struct wsg_http_header *h;

    while ((h = wsg_http_find_header(r, "Sec-WebSocket-Protocol", &from))) {
        const char *p = h->value.p, *end = p + h->value.len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t) (end - p));
            const char *e = comma ? comma : end;
            struct wsg_str item = {p, (size_t) (e - p)};
            while (item.len && (*item.p == ' ' || *item.p == '\t')) {
                item.p++;
                item.len--;
            }
            while (item.len && (item.p[item.len - 1] == ' ' ||
                                item.p[item.len - 1] == '\t')) {
                item.len--;
            }
            for (size_t i = 0; i < wcf->subprotocols.n && item.len; i++) {
                /* subprotocol names are case-sensitive (§4.1) */
                struct wsg_str want = wcf->subprotocols.items[i];
                if (item.len == want.len &&
                    memcmp(item.p, want.p, item.len) == 0) {
                    return item;
                }
            }
            p = comma ? comma + 1 : end;
        }
    }
    return none;
}

static int
check_extensions(const struct wsg_http_request *r,
                 const struct wsg_ws_loc_conf *wcf, struct wsg_ws_handshake *h)
{
    struct wsg_str values[MAX_EXTENSION_HEADERS];
    size_t n = 0, from = 0;
    const struct wsg_http_header *e;

    while ((e = wsg_http_find_header(r, "Sec-WebSocket-Extensions", &from))) {
        if (n == MAX_EXTENSION_HEADERS) {
            return WSG_ERROR;
        }
        values[n++] = e->value;
    }
    h->extensions[0] = '\0';
    h->deflate = false;
    if (n == 0 || !wcf->deflate_conf.enabled) {
        return 0;
    }
    int rc =
        wsg_deflate_negotiate(&wcf->deflate_conf, values, n, &h->deflate_params,
                              h->extensions, sizeof(h->extensions));
    if (rc < 0) {
        return WSG_ERROR;
    }
    h->deflate = rc == 1;
    return 0;
}

/* The checks that make a request an upgrade at all (405, 426, 400). */
static int
check_upgrade(const struct wsg_http_request *r, const char **why)
{
    bool dup;
    size_t from = 0;
    const struct wsg_http_header *u;
    bool upgrade = false;

    /* a list field may be split over several lines (RFC 9110 §5.3) */
    while ((u = wsg_http_find_header(r, "Upgrade", &from)) != NULL) {
        upgrade = upgrade || wsg_http_list_has(u->value, "websocket");
    }

    if (!wsg_str_eq(r->method, "GET")) {
        *why = "method not allowed for a WebSocket endpoint";
        return 405;
    }
    if (!upgrade) {
        *why = "request is not a WebSocket upgrade";
        return 426;
    }
    if (r->minor < 1) {
        *why = "WebSocket upgrade needs HTTP/1.1";
        return 400;
    }
    from = 0;
    const struct wsg_http_header *c;
    bool conn_upgrade = false;
    while ((c = wsg_http_find_header(r, "Connection", &from)) != NULL) {
        conn_upgrade = conn_upgrade || wsg_http_list_has(c->value, "upgrade");
    }
    if (!conn_upgrade) {
        *why = "no \"upgrade\" in the Connection header";
        return 400;
    }
    if (single(r, "Host", &dup) == NULL || dup) {
        *why = "missing or repeated Host header";
        return 400;
    }
    return 0;
}

int
wsg_ws_handshake_check(const struct wsg_http_request *r,
                       const struct wsg_ws_loc_conf *wcf,
                       struct wsg_ws_handshake *h, const char **why)
{
    bool dup;
    int status = check_upgrade(r, why);

    if (status != 0) {
        return status;
    }
    const struct wsg_http_header *v = single(r, "Sec-WebSocket-Version", &dup);
    if (v == NULL || dup) {
        *why = "missing or repeated Sec-WebSocket-Version";
        return 400;
    }
    if (!wsg_str_eq(v->value, "13")) {
        *why = "unsupported Sec-WebSocket-Version";
        return 426;
    }
    const struct wsg_http_header *k = single(r, "Sec-WebSocket-Key", &dup);
    if (k == NULL || dup || !wsg_ws_key_valid(k->value)) {
        *why = "missing, repeated or malformed Sec-WebSocket-Key";
        return 400;
    }
    if (!origin_allowed(r, wcf)) {
        *why = "origin not allowed";
        return 403;
    }
    if (check_extensions(r, wcf, h) != 0) {
        *why = "malformed Sec-WebSocket-Extensions";
        return 400;
    }
    h->key = k->value;
    h->subprotocol = choose_subprotocol(r, wcf);
    return 0;
}

size_t
wsg_ws_handshake_response(const struct wsg_ws_handshake *h, char *buf,
                          size_t len)
{
    char accept[WSG_WS_ACCEPT_LEN];
    char proto[300] = "", ext[300] = "";

    wsg_ws_accept(h->key, accept);
    if (h->subprotocol.len > 0 && h->subprotocol.len < 256) {
        snprintf(proto, sizeof(proto), "Sec-WebSocket-Protocol: %.*s\r\n",
                 (int) h->subprotocol.len, h->subprotocol.p);
    }
    if (h->deflate) {
        snprintf(ext, sizeof(ext), "Sec-WebSocket-Extensions: %s\r\n",
                 h->extensions);
    }
    int n = snprintf(buf, len,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "%s%s"
                     "Server: wsgate\r\n\r\n",
                     accept, proto, ext);
    return n > 0 && (size_t) n < len ? (size_t) n : 0;
}
