/*
 * Tests of src/http/http_parse.h, the HTTP/1.1 request-head parser. Every
 * vector is parsed whole, split at every byte (each prefix, then the whole)
 * and byte by byte, from a copy that ends exactly at a PROT_NONE page, so
 * reading one byte past <len> faults even without a sanitizer.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"
#include "http/http_parse.h"
#include "tap.h"

/* Room for the longest input: 101 headers, or a head well over 8 KiB. */
#define GUARD_DATA_PAGES 8

/* Room to describe a parsed request: 100 short headers, escaped. */
#define DESC_MAX 16384

/* Expands a string literal to its bytes and length, NULs included. */
#define LIT(s) (s), sizeof(s) - 1

static char *guard_data; /* GUARD_DATA_PAGES pages, then a PROT_NONE page */
static size_t guard_size;

static const struct wsg_http_limits limits = {
    .max_head = 8192,
    .max_headers = WSG_HTTP_MAX_HEADERS,
};

/* The whole parse of the last vector; its slices point into guard_data. */
static struct wsg_http_request req;
static struct wsg_http_error req_err;
static const char *req_buf;

/* What one call returned, the request written out as text. */
struct outcome {
    int rc;
    int status;          /* with WSG_ERROR */
    const char *why;     /* with WSG_ERROR */
    char desc[DESC_MAX]; /* with a length: rc, then each field */
    size_t desc_len;
};

static void
guard_init(void)
{
    long page = sysconf(_SC_PAGESIZE);

    if (page <= 0) {
        abort();
    }
    guard_size = (size_t) page * GUARD_DATA_PAGES;
    char *m = mmap(NULL, guard_size + (size_t) page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    if (mprotect(m + guard_size, (size_t) page, PROT_NONE) == -1) {
        perror("mprotect");
        abort();
    }
    guard_data = m;
}

/* Copies <len> bytes of <s> so that they end at the guard page. */
static const char *
guarded(const char *s, size_t len)
{
    if (len > guard_size) {
        abort();
    }
    char *p = guard_data + guard_size - len;
    memcpy(p, s, len);
    return p;
}

/* Appends to <out> (NUL-terminated, <size> bytes), cutting at its end. */
static void appendf(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
appendf(char *out, size_t size, const char *fmt, ...)
{
    size_t n = strlen(out);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out + n, size - n, fmt, ap);
    va_end(ap);
}

/*
 * Appends <s> to <o>'s description between "<" and ">", bytes outside
 * printable ASCII as \xNN. Keeps its own length: a request of 100 headers
 * is described thousands of times per vector.
 */
static void
describe(struct outcome *o, struct wsg_str s)
{
    static const char hex[] = "0123456789abcdef";
    char *d = o->desc;
    size_t n = o->desc_len;

    if (n + 4 * s.len + 3 > DESC_MAX) {
        abort();
    }
    d[n++] = '<';
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) s.p[i];
        if (c < 0x20 || c >= 0x7f) {
            d[n++] = '\\';
            d[n++] = 'x';
            d[n++] = hex[c >> 4];
            d[n++] = hex[c & 0xf];
        } else {
            d[n++] = (char) c;
        }
    }
    d[n++] = '>';
    d[n] = '\0';
    o->desc_len = n;
}

/* Whether <s> lies within the <len> bytes at <buf>. */
static bool
inside(struct wsg_str s, const char *buf, size_t len)
{
    return s.p != NULL && s.p >= buf && s.len <= len &&
           (size_t) (s.p - buf) <= len - s.len;
}

/* Whether every slice of <r> lies in the head, as the header promises. */
static bool
slices_inside(const struct wsg_http_request *r, const char *buf, size_t len)
{
    bool in = inside(r->method, buf, len) && inside(r->target, buf, len) &&
              inside(r->authority, buf, len) && inside(r->query, buf, len) &&
              (inside(r->path, buf, len) || wsg_str_eq(r->path, "/"));

    for (size_t i = 0; i < r->nheaders; i++) {
        in = in && inside(r->headers[i].name, buf, len) &&
             inside(r->headers[i].value, buf, len);
    }
    return in;
}

/* Parses <len> bytes of <in>, placed at the guard page, into <o>. */
static void
outcome_of(const char *in, size_t len, const struct wsg_http_limits *lim,
           struct outcome *o)
{
    struct wsg_http_request r;
    struct wsg_http_error err = {0, NULL};

    o->rc = wsg_http_parse_request(guarded(in, len), len, lim, &r, &err);
    o->status = o->rc == WSG_ERROR ? err.status : 0;
    o->why = o->rc == WSG_ERROR ? err.why : NULL;
    o->desc[0] = '\0';
    o->desc_len = 0;
    if (o->rc < 0) {
        return;
    }
    o->desc_len =
        (size_t) snprintf(o->desc, DESC_MAX, "%d 1.%d ", o->rc, r.minor);
    describe(o, r.method);
    describe(o, r.target);
    describe(o, r.authority);
    describe(o, r.path);
    describe(o, r.query);
    for (size_t i = 0; i < r.nheaders; i++) {
        describe(o, r.headers[i].name);
        describe(o, r.headers[i].value);
    }
}

static bool
same(const struct outcome *a, const struct outcome *b)
{
    return a->rc == b->rc && a->status == b->status && a->why == b->why &&
           a->desc_len == b->desc_len &&
           memcmp(a->desc, b->desc, a->desc_len) == 0;
}

/*
 * Whether a first read of <k> bytes agrees with the whole input's <w>: it
 * must wait while the head is short, and may refuse early only with the
 * same error.
 */
static bool
prefix_agrees(const struct outcome *w, const struct outcome *o, size_t k)
{
    if (w->rc == WSG_AGAIN || (w->rc > 0 && k < (size_t) w->rc)) {
        return o->rc == WSG_AGAIN;
    }
    return same(o, w) || (w->rc == WSG_ERROR && o->rc == WSG_AGAIN);
}

/* Each prefix, then the whole input: the second call must parse as <w>. */
static bool
split_agrees(const char *in, size_t len, const struct wsg_http_limits *lim,
             const struct outcome *w)
{
    static struct outcome o;

    for (size_t k = 0; k < len; k++) {
        outcome_of(in, k, lim, &o);
        if (!prefix_agrees(w, &o, k)) {
            note("split at %zu: got %d", k, o.rc);
            return false;
        }
        outcome_of(in, len, lim, &o);
        if (!same(&o, w)) {
            note("whole after split at %zu: got %d", k, o.rc);
            return false;
        }
    }
    return true;
}

/*
 * Grows the input a byte per call: the first answer that is not WSG_AGAIN
 * must be <w>, and for a head exactly when its last byte arrives.
 */
static bool
bytewise_agrees(const char *in, size_t len, const struct wsg_http_limits *lim,
                const struct outcome *w)
{
    static struct outcome o;

    for (size_t k = 1; k <= len; k++) {
        outcome_of(in, k, lim, &o);
        if (o.rc == WSG_AGAIN) {
            continue;
        }
        if (!same(&o, w) || (w->rc > 0 && k != (size_t) w->rc)) {
            note("byte by byte: got %d at %zu", o.rc, k);
            return false;
        }
        return true;
    }
    return w->rc == WSG_AGAIN;
}

/*
 * Parses <in>/<len> whole, split and byte by byte, checks that all three
 * agree, and leaves the whole parse in req, req_err and req_buf. Returns
 * its result.
 */
static int
parse_lim(const char *name, const char *in, size_t len,
          const struct wsg_http_limits *lim)
{
    static struct outcome w;

    outcome_of(in, len, lim, &w);
    ok(split_agrees(in, len, lim, &w), "%s: split at every byte", name);
    ok(bytewise_agrees(in, len, lim, &w), "%s: byte by byte", name);
    req_buf = guarded(in, len);
    int rc = wsg_http_parse_request(req_buf, len, lim, &req, &req_err);
    if (rc > 0) {
        ok(slices_inside(&req, req_buf, (size_t) rc),
           "%s: every slice lies in the head", name);
    }
    if (rc == WSG_ERROR) {
        ok(req_err.why != NULL && req_err.why[0] != '\0',
           "%s: the error says why", name);
    }
    return rc;
}

static int
parse(const char *name, const char *in, size_t len)
{
    return parse_lim(name, in, len, &limits);
}

/* Checks <in> is a head of exactly <want> bytes under <lim>. */
static bool
head_lim(const char *name, const char *in, size_t len,
         const struct wsg_http_limits *lim, int want)
{
    return is_int(parse_lim(name, in, len, lim), want, "%s: head of %d bytes",
                  name, want);
}

static bool
head(const char *name, const char *in, size_t len, int want)
{
    return head_lim(name, in, len, &limits, want);
}

/* Checks <in> is refused with <status> under <lim>. */
static void
refused_lim(const char *name, const char *in, size_t len,
            const struct wsg_http_limits *lim, int status)
{
    int rc = parse_lim(name, in, len, lim);

    if (is_int(rc, WSG_ERROR, "%s: refused", name)) {
        is_int(req_err.status, status, "%s: status %d", name, status);
    }
}

static void
refused(const char *name, const char *in, size_t len, int status)
{
    refused_lim(name, in, len, &limits, status);
}

static void
is_slice(struct wsg_str s, const char *want, const char *name)
{
    is_mem(s.p, s.len, want, strlen(want), "%s", name);
}

static const char upgrade[] = "GET /chat HTTP/1.1\r\n"
                              "Host: server.example.com\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Origin: http://example.com\r\n"
                              "Sec-WebSocket-Protocol: chat, superchat\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n";

/* RFC 6455 §1.2, the opening handshake, byte for byte. */
static void
test_upgrade(void)
{
    static const char *const names[] = {
        "Host",
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Origin",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Version",
    };
    static const char *const values[] = {
        "server.example.com",
        "websocket",
        "Upgrade",
        "dGhlIHNhbXBsZSBub25jZQ==",
        "http://example.com",
        "chat, superchat",
        "13",
    };

    if (!head("rfc 6455 upgrade", LIT(upgrade), (int) sizeof(upgrade) - 1)) {
        return;
    }
    is_slice(req.method, "GET", "method");
    is_slice(req.target, "/chat", "target");
    is_slice(req.path, "/chat", "path");
    is_int(req.query.len, 0, "no query");
    is_int(req.authority.len, 0, "origin-form has no authority");
    is_int(req.minor, 1, "HTTP/1.1");
    if (!is_int(req.nheaders, WSG_NELEMS(names), "7 headers")) {
        return;
    }
    for (size_t i = 0; i < WSG_NELEMS(names); i++) {
        is_slice(req.headers[i].name, names[i], names[i]);
        is_slice(req.headers[i].value, values[i], values[i]);
    }
}

/* The client's first frames may follow the head in the same read. */
static void
test_pipelined(void)
{
    /* RFC 6455 §5.7: a masked "Hello" */
    static const char frame[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    char in[sizeof(upgrade) + sizeof(frame)];
    size_t hlen = sizeof(upgrade) - 1, flen = sizeof(frame) - 1;

    memcpy(in, upgrade, hlen);
    memcpy(in + hlen, frame, flen);
    if (head("head then a frame", in, hlen + flen, (int) hlen)) {
        is_mem(req_buf + hlen, flen, frame, flen,
               "the frame follows the head untouched");
    }
    head("two requests back to back",
         LIT("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"), 19);
    is_slice(req.path, "/a", "the first request is parsed");

    /* only the head counts against max_head, not what follows it */
    struct wsg_http_limits lim = {.max_head = 19, .max_headers = 10};
    head_lim("bytes past max_head after a complete head",
             LIT("GET /a HTTP/1.1\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
             &lim, 19);
}

static void
test_line_ends(void)
{
    static const char lf[] = "GET /chat HTTP/1.1\n"
                             "Host: server.example.com\n"
                             "Upgrade: websocket\n"
                             "\n";

    if (head("LF-only line ends", LIT(lf), (int) sizeof(lf) - 1)) {
        is_int(req.nheaders, 2, "LF-only: 2 headers");
        is_slice(req.headers[0].value, "server.example.com",
                 "LF-only: no CR in the value");
    }
    head("CRLF and LF mixed", LIT("GET / HTTP/1.1\nA: 1\r\nB: 2\n\r\n"), 28);
    is_slice(req.headers[1].value, "2", "mixed: the value is cut at CR");
    head("LF after CRLF headers ends the head",
         LIT("GET / HTTP/1.1\r\nA: 1\r\n\n"), 23);
    head("an empty line before the request line is skipped",
         LIT("\r\n\nGET / HTTP/1.1\r\n\r\n"), 21);
    is_slice(req.method, "GET", "after empty lines: the method");
    is_int(parse("an incomplete head waits", LIT("GET / HTTP/1.1\r\nA: 1\r\n")),
           WSG_AGAIN, "an incomplete head: WSG_AGAIN");
    is_int(parse("CR of the final CRLF only", LIT("GET / HTTP/1.1\r\n\r")),
           WSG_AGAIN, "the final CR alone: WSG_AGAIN");
    is_int(parse("nothing yet", "", 0), WSG_AGAIN, "no bytes: WSG_AGAIN");
}

/* Writes a request line and <n> headers "X-Hnnn: v" into <out>. */
static size_t
many_headers(char *out, size_t size, size_t n)
{
    out[0] = '\0';
    appendf(out, size, "GET / HTTP/1.1\r\n");
    for (size_t i = 0; i < n; i++) {
        appendf(out, size, "X-H%03zu: v\r\n", i);
    }
    appendf(out, size, "\r\n");
    return strlen(out);
}

static void
test_header_count(void)
{
    static char in[4096];
    size_t len = many_headers(in, sizeof(in), WSG_HTTP_MAX_HEADERS);

    if (head("WSG_HTTP_MAX_HEADERS headers", in, len, (int) len)) {
        is_int(req.nheaders, WSG_HTTP_MAX_HEADERS, "all headers kept");
        is_slice(req.headers[WSG_HTTP_MAX_HEADERS - 1].name, "X-H099",
                 "the last header");
    }
    len = many_headers(in, sizeof(in), WSG_HTTP_MAX_HEADERS + 1);
    refused("one header too many", in, len, 431);

    struct wsg_http_limits lim = {.max_head = 8192, .max_headers = 3};
    len = many_headers(in, sizeof(in), 3);
    head_lim("max_headers headers", in, len, &lim, (int) len);
    len = many_headers(in, sizeof(in), 4);
    refused_lim("max_headers + 1 headers", in, len, &lim, 431);
    lim.max_headers = 0;
    len = many_headers(in, sizeof(in), 0);
    head_lim("no headers allowed, none sent", in, len, &lim, (int) len);
    len = many_headers(in, sizeof(in), 1);
    refused_lim("no headers allowed, one sent", in, len, &lim, 431);

    /* the request's array has WSG_HTTP_MAX_HEADERS slots, whatever asked */
    lim.max_headers = 1000;
    len = many_headers(in, sizeof(in), WSG_HTTP_MAX_HEADERS + 1);
    refused_lim("max_headers above the array size", in, len, &lim, 431);
}

static void
test_head_size(void)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"; /* 27 */
    struct wsg_http_limits lim = {.max_head = 27, .max_headers = 10};
    static char big[8300];

    head_lim("a head of exactly max_head", LIT(in), &lim, 27);
    lim.max_head = 26;
    refused_lim("a head one byte over max_head", LIT(in), &lim, 431);
    lim.max_head = 20;
    refused_lim("headers cut by max_head", LIT(in), &lim, 431);
    lim.max_head = 16;
    refused_lim("only the request line fits", LIT(in), &lim, 431);
    lim.max_head = 15;
    refused_lim("the request line's LF past max_head", LIT(in), &lim, 414);
    lim.max_head = 0;
    refused_lim("max_head 0", LIT(in), &lim, 414);

    lim.max_head = 64;
    refused_lim(
        "a long request line",
        LIT("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n"),
        &lim, 414);
    refused_lim("empty lines alone past max_head",
                LIT("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
                    "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
                    "\r\n\r\n\r\n\r\n\r\n"),
                &lim, 414);
    refused_lim(
        "a long header value",
        LIT("GET / HTTP/1.1\r\nX: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n\r\n"),
        &lim, 431);

    /* the default 8 KiB, filled by one header that never ends */
    memset(big, 'c', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    refused("a head over 8 KiB", big, sizeof(big), 431);
    memset(big, 'c', sizeof(big));
    memcpy(big, "GET /", 5);
    refused("a request line over 8 KiB", big, sizeof(big), 414);
}

static void
test_method(void)
{
    static const char m32[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ-.!#$% / HTTP/1.1\r\n\r\n";
    static const char m33[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ-.!#$%X / HTTP/1.1\r\n\r\n";

    if (head("a 32-byte method", LIT(m32), (int) sizeof(m32) - 1)) {
        is_int(req.method.len, 32, "the whole method");
    }
    refused("a 33-byte method", LIT(m33), 501);
    refused("a long method with a bad byte",
            LIT("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ( / HTTP/1.1\r\n\r\n"),
            400);
    head("an extension method", LIT("M-SEARCH / HTTP/1.1\r\n\r\n"), 23);
    refused("M-SEARCH * is not OPTIONS", LIT("M-SEARCH * HTTP/1.1\r\n\r\n"),
            400);
    head("methods are case-sensitive tokens", LIT("get / HTTP/1.1\r\n\r\n"),
         18);
    is_slice(req.method, "get", "a lower-case method is kept as sent");
    refused("a separator in the method", LIT("G(ET / HTTP/1.1\r\n\r\n"), 400);
    refused("a control byte in the method", LIT("GE\x01T / HTTP/1.1\r\n\r\n"),
            400);
    refused("a NUL in the method", LIT("GE\0T / HTTP/1.1\r\n\r\n"), 400);
    refused("a high byte in the method", LIT("G\xc9T / HTTP/1.1\r\n\r\n"), 400);
    refused("an empty method", LIT(" / HTTP/1.1\r\n\r\n"), 400);
    refused("a tab after the method", LIT("GET\t/ HTTP/1.1\r\n\r\n"), 400);
    refused("no space after the method", LIT("GET/ HTTP/1.1\r\n\r\n"), 400);
    refused("a method alone", LIT("GET\r\n\r\n"), 400);
}

static void
test_version(void)
{
    head("HTTP/1.0", LIT("GET / HTTP/1.0\r\n\r\n"), 18);
    is_int(req.minor, 0, "HTTP/1.0: minor 0");
    head("HTTP/1.9", LIT("GET / HTTP/1.9\r\n\r\n"), 18);
    is_int(req.minor, 9, "HTTP/1.9: minor 9");
    refused("HTTP/2.0", LIT("GET / HTTP/2.0\r\n\r\n"), 505);
    refused("HTTP/0.9", LIT("GET / HTTP/0.9\r\n\r\n"), 505);
    refused("HTTP/3.0", LIT("GET / HTTP/3.0\r\n\r\n"), 505);
    refused("HTTP/1.10", LIT("GET / HTTP/1.10\r\n\r\n"), 400);
    refused("HTTP/1 and a space", LIT("GET / HTTP/1 \r\n\r\n"), 400);
    refused("HTTP/1", LIT("GET / HTTP/1\r\n\r\n"), 400);
    refused("HTTP/2", LIT("GET / HTTP/2\r\n\r\n"), 400);
    refused("HTTP/11", LIT("GET / HTTP/11\r\n\r\n"), 400);
    refused("HTTP/1.x", LIT("GET / HTTP/1.x\r\n\r\n"), 400);
    refused("a lower-case version", LIT("GET / http/1.1\r\n\r\n"), 400);
    refused("garbage for a version", LIT("GET / FOO\r\n\r\n"), 400);
    refused("a space after the version", LIT("GET / HTTP/1.1 \r\n\r\n"), 400);
    refused("two spaces before the version", LIT("GET /  HTTP/1.1\r\n\r\n"),
            400);
    refused("an empty version", LIT("GET / \r\n\r\n"), 400);
    refused("no version (HTTP/0.9 style)", LIT("GET /\r\n\r\n"), 400);
}

static void
test_target(void)
{
    head("origin-form /", LIT("GET / HTTP/1.1\r\n\r\n"), 18);
    is_slice(req.path, "/", "/: path");
    head("absolute-form",
         LIT("GET http://example.com/chat?x=1 HTTP/1.1\r\n\r\n"), 44);
    is_slice(req.target, "http://example.com/chat?x=1", "absolute: target");
    is_slice(req.authority, "example.com", "absolute: authority");
    is_slice(req.path, "/chat", "absolute: path");
    is_slice(req.query, "x=1", "absolute: query");
    head("absolute-form https, any case",
         LIT("GET HTTPS://Example.com:8443/a/b HTTP/1.1\r\n\r\n"), 45);
    is_slice(req.authority, "Example.com:8443", "https: authority and port");
    is_slice(req.path, "/a/b", "https: path");
    head("absolute-form without a path",
         LIT("GET http://example.com HTTP/1.1\r\n\r\n"), 35);
    is_slice(req.path, "/", "no path: \"/\"");
    head("absolute-form with a query and no path",
         LIT("GET http://example.com?q=1 HTTP/1.1\r\n\r\n"), 39);
    is_slice(req.path, "/", "query, no path: \"/\"");
    is_slice(req.query, "q=1", "query, no path: the query");
    head("asterisk-form", LIT("OPTIONS * HTTP/1.1\r\n\r\n"), 22);
    is_slice(req.path, "*", "asterisk: path");
    is_int(req.query.len + req.authority.len, 0, "asterisk: nothing else");

    refused("asterisk with GET", LIT("GET * HTTP/1.1\r\n\r\n"), 400);
    refused("an empty authority", LIT("GET http:///chat HTTP/1.1\r\n\r\n"),
            400);
    refused("userinfo", LIT("GET http://u@example.com/ HTTP/1.1\r\n\r\n"), 400);
    refused("another scheme", LIT("GET ftp://example.com/ HTTP/1.1\r\n\r\n"),
            400);
    refused("a ws scheme", LIT("GET ws://example.com/ HTTP/1.1\r\n\r\n"), 400);
    refused("a scheme without //", LIT("GET http:/chat HTTP/1.1\r\n\r\n"), 400);
    refused("authority-form", LIT("CONNECT example.com:443 HTTP/1.1\r\n\r\n"),
            400);
    refused("a relative target", LIT("GET chat HTTP/1.1\r\n\r\n"), 400);
    refused("a high byte in the target",
            LIT("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n"), 400);
    refused("a tab in the target", LIT("GET /a\tb HTTP/1.1\r\n\r\n"), 400);
    refused("DEL in the target", LIT("GET /a\x7f HTTP/1.1\r\n\r\n"), 400);
    refused("NUL in the target", LIT("GET /a\0 HTTP/1.1\r\n\r\n"), 400);
    refused("two spaces before the target", LIT("GET  / HTTP/1.1\r\n\r\n"),
            400);
}

static void
test_query(void)
{
    head("a query", LIT("GET /chat?x=1&y HTTP/1.1\r\n\r\n"), 28);
    is_slice(req.path, "/chat", "/chat?x=1&y: path");
    is_slice(req.query, "x=1&y", "/chat?x=1&y: query");
    is_slice(req.target, "/chat?x=1&y", "/chat?x=1&y: target");
    head("an empty query", LIT("GET /chat? HTTP/1.1\r\n\r\n"), 23);
    is_slice(req.path, "/chat", "/chat?: path");
    is_int(req.query.len, 0, "/chat?: empty query");
    head("a second ?", LIT("GET /a?b?c HTTP/1.1\r\n\r\n"), 23);
    is_slice(req.path, "/a", "/a?b?c: path");
    is_slice(req.query, "b?c", "/a?b?c: the query keeps the second ?");
    head("escapes are kept", LIT("GET /%7Eu/?q=%20 HTTP/1.1\r\n\r\n"), 29);
    is_slice(req.path, "/%7Eu/", "escapes: path as sent");
    is_slice(req.query, "q=%20", "escapes: query as sent");
}

static void
test_header_name(void)
{
    refused("a space before the colon",
            LIT("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
    refused("a tab before the colon",
            LIT("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400);
    refused("a space in the name", LIT("GET / HTTP/1.1\r\nHo st: a\r\n\r\n"),
            400);
    refused("no colon", LIT("GET / HTTP/1.1\r\nHost a\r\n\r\n"), 400);
    refused("an empty name", LIT("GET / HTTP/1.1\r\n: a\r\n\r\n"), 400);
    refused("a separator in the name",
            LIT("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"), 400);
    refused("a high byte in the name",
            LIT("GET / HTTP/1.1\r\nH\xc3\xb4st: a\r\n\r\n"), 400);
    refused("a NUL in the name", LIT("GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n"),
            400);
    head("a name of every tchar",
         LIT("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09AZaz: a\r\n\r\n"), 44);
    is_slice(req.headers[0].name, "!#$%&'*+-.^_`|~09AZaz", "tchars: the name");
}

static void
test_header_value(void)
{
    refused("a control byte in a value",
            LIT("GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n"), 400);
    refused("ESC in a value", LIT("GET / HTTP/1.1\r\nX: \x1b[0m\r\n\r\n"), 400);
    refused("DEL in a value", LIT("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), 400);
    refused("NUL in a value", LIT("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), 400);
    head("obs-text in a value",
         LIT("GET / HTTP/1.1\r\nX: caf\xc3\xa9 \x80\xff\r\n\r\n"), 31);
    is_slice(req.headers[0].value, "caf\xc3\xa9 \x80\xff",
             "obs-text: kept as sent");
    head("blanks are trimmed",
         LIT("GET / HTTP/1.1\r\nX: \t a\tb c \t \r\n\r\n"), 33);
    is_slice(req.headers[0].value, "a\tb c", "trimmed, inner blanks kept");
    head("no blank after the colon", LIT("GET / HTTP/1.1\r\nX:a\r\n\r\n"), 23);
    is_slice(req.headers[0].value, "a", "no blank: the value");
    head("an empty value", LIT("GET / HTTP/1.1\r\nX-Empty:\r\n\r\n"), 28);
    is_int(req.headers[0].value.len, 0, "empty value: length 0");
    head("a blank value", LIT("GET / HTTP/1.1\r\nX-Empty: \t \r\n\r\n"), 31);
    is_int(req.headers[0].value.len, 0, "blank value: length 0");
    is_slice(req.headers[0].name, "X-Empty", "blank value: the name");
}

static void
test_fold_and_cr(void)
{
    refused("obs-fold with a space",
            LIT("GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n"), 400);
    refused("obs-fold with a tab", LIT("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"),
            400);
    refused("whitespace before the first header",
            LIT("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
    refused("a bare CR in a value", LIT("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
            400);
    is_str(req_err.why, "bare CR", "a bare CR is named");
    refused("a bare CR ending a value", LIT("GET / HTTP/1.1\r\nX: a\r\r\n\r\n"),
            400);
    refused("a bare CR in a name", LIT("GET / HTTP/1.1\r\nX\r: a\r\n\r\n"),
            400);
    refused("a bare CR in the request line", LIT("GET /\r HTTP/1.1\r\n\r\n"),
            400);
    refused("a bare CR ending the request line",
            LIT("GET / HTTP/1.1\r\r\n\r\n"), 400);
    refused("a bare CR before the final CRLF",
            LIT("GET / HTTP/1.1\r\nX: a\r\n\r\r\n"), 400);
    refused("a bare CR as the final line",
            LIT("GET / HTTP/1.1\r\nX: a\r\n\rX\n"), 400);
    refused("a bare CR before the request line",
            LIT("\rGET / HTTP/1.1\r\n\r\n"), 400);
}

static void
test_find_header(void)
{
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "Sec-WebSocket-Protocol: chat\r\n"
                             "Host: a\r\n"
                             "sec-websocket-protocol: superchat\r\n"
                             "\r\n";
    const struct wsg_http_header *h;
    size_t from = 0;

    if (!head("duplicate headers", LIT(in), (int) sizeof(in) - 1)) {
        return;
    }
    h = wsg_http_find_header(&req, "SEC-WEBSOCKET-PROTOCOL", &from);
    ok(h == &req.headers[0], "the first duplicate, any case");
    is_int(from, 1, "from moves past it");
    h = wsg_http_find_header(&req, "Sec-WebSocket-Protocol", &from);
    ok(h == &req.headers[2], "the second duplicate");
    is_int(from, 3, "from moves past the second");
    h = wsg_http_find_header(&req, "Sec-WebSocket-Protocol", &from);
    ok(h == NULL, "no third");
    is_int(from, 3, "from stays at the end");
    from = 0;
    ok(wsg_http_find_header(&req, "Upgrade", &from) == NULL, "absent: NULL");
    is_int(from, 3, "absent: from at the end");
    ok(wsg_http_find_header(&req, "host", NULL) == &req.headers[1],
       "from NULL: the first match");
    ok(wsg_http_find_header(&req, "Hos", NULL) == NULL, "no prefix match");
    ok(wsg_http_find_header(&req, "Host2", NULL) == NULL, "no longer match");
}

static bool
list_has(const char *value, const char *token)
{
    return wsg_http_list_has((struct wsg_str){value, strlen(value)}, token);
}

static void
test_list_has(void)
{
    ok(list_has("Upgrade", "upgrade"), "one item, any case");
    ok(list_has("keep-alive, Upgrade", "upgrade"), "the second item");
    ok(list_has("Upgrade,keep-alive", "upgrade"), "the first item, no blank");
    ok(list_has(" \tUPGRADE\t ", "upgrade"), "blanks around the item");
    ok(list_has(", ,upgrade,,", "upgrade"), "empty items are skipped");
    ok(list_has("WebSocket", "websocket"), "Upgrade: WebSocket");
    ok(!list_has("upgrade2", "upgrade"), "no prefix match");
    ok(!list_has("x-upgrade", "upgrade"), "no suffix match");
    ok(!list_has("upgrade2, x-upgrade", "upgrade"), "neither item matches");
    ok(!list_has("up grade", "upgrade"), "an inner blank splits nothing");
    ok(!list_has("keep-alive", "upgrade"), "another token");
    ok(!list_has("", "upgrade"), "an empty value");
    ok(!list_has(" , ,", ""), "an empty item matches nothing");
    ok(!wsg_http_list_has((struct wsg_str){NULL, 0}, "upgrade"),
       "a NULL slice");
}

int
main(void)
{
    guard_init();
    test_upgrade();
    test_pipelined();
    test_line_ends();
    test_header_count();
    test_head_size();
    test_method();
    test_version();
    test_target();
    test_query();
    test_header_name();
    test_header_value();
    test_fold_and_cr();
    test_find_header();
    test_list_has();
    return done_testing();
}
