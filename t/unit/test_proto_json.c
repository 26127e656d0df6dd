/*
 * Tests of src/upstream/proto_json.h: line framing (every prefix waits,
 * the bound at and over), exact lines for every kind, round trips of
 * every kind through encode and decode, base64 padding, and each reason a
 * line is refused for. Lines are decoded from a copy that ends at a
 * PROT_NONE page, with and without their '\n'.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"
#include "tap.h"
#include "upstream/proto_json.h"
#include "ws/ws_frame.h"

/* The longest line the guard buffer holds. */
#define GUARD_MAX 4096

#include "guard.h"

/* One decode: its result and a copy of what it decoded. */
struct outcome {
    int rc;
    const char *why;
    struct wsg_envelope env;
    uint8_t data[GUARD_MAX];
    uint8_t reason[GUARD_MAX];
    bool owned_ok; /* *owned was NULL on failure, or held env->data */
};

/* Decodes <line>/<len> at the guard page into <o>, copying the bytes. */
static void
outcome_of(const uint8_t *line, size_t len, struct outcome *o)
{
    static uint8_t unset; /* *owned must be overwritten */
    uint8_t *owned = &unset;
    const uint8_t *p = guarded(line, len);

    o->why = NULL;
    o->rc = wsg_json_decode(p, len, &o->env, &owned, &o->why);
    if (o->rc != 0) {
        o->owned_ok = owned == NULL;
        free(owned == &unset ? NULL : owned);
        memset(&o->env, 0, sizeof(o->env));
        return;
    }
    o->why = NULL;
    o->owned_ok = owned == NULL || owned == o->env.data;
    if (o->env.len > 0) {
        memcpy(o->data, o->env.data, o->env.len);
    }
    if (o->env.reason.len > 0) {
        memcpy(o->reason, o->env.reason.p, o->env.reason.len);
    }
    free(owned);
}

static bool
same(const struct outcome *a, const struct outcome *b)
{
    const struct wsg_envelope *x = &a->env, *y = &b->env;

    return a->rc == b->rc && a->why == b->why && x->kind == y->kind &&
           x->binary == y->binary && x->id == y->id && x->len == y->len &&
           x->code == y->code && x->reason.len == y->reason.len &&
           memcmp(a->data, b->data, x->len) == 0 &&
           memcmp(a->reason, b->reason, x->reason.len) == 0;
}

/* The decode of the last line, with '\n'. */
static struct outcome got;

/*
 * Checks <line>/<len> (without its '\n') as it arrives: every shorter
 * prefix of the line with its '\n' makes wsg_json_line_end wait, and the
 * whole finds its end. Lines holding a '\n' are framed elsewhere.
 */
static bool
framing_agrees(const uint8_t *line, size_t len)
{
    static uint8_t buf[GUARD_MAX];

    if (memchr(line, '\n', len) != NULL) {
        return true;
    }
    memcpy(buf, line, len);
    buf[len] = '\n';
    for (size_t k = 0; k <= len; k++) {
        if (wsg_json_line_end(guarded(buf, k), k, len) != WSG_AGAIN) {
            note("framing: prefix of %zu bytes did not wait", k);
            return false;
        }
    }
    return wsg_json_line_end(guarded(buf, len + 1), len + 1, len) ==
           (int) len + 1;
}

/*
 * Decodes <line>/<len> (without its '\n') with and without a '\n', which
 * must agree, and every shorter prefix, which must either decode or be
 * refused, never crash or read past its end. Leaves the decode in <got>.
 */
static int
decode_line(const char *name, const void *line, size_t len)
{
    static uint8_t buf[GUARD_MAX];
    static struct outcome bare, part;

    memcpy(buf, line, len);
    buf[len] = '\n';
    ok(framing_agrees(buf, len), "%s: framing", name);
    outcome_of(buf, len + 1, &got);
    outcome_of(buf, len, &bare);
    ok(same(&got, &bare), "%s: the same with and without its '\\n'", name);
    ok(got.owned_ok && bare.owned_ok, "%s: *owned as documented", name);
    size_t odd = 0;
    for (size_t k = 0; k < len; k++) {
        outcome_of(buf, k, &part);
        if ((part.rc != 0 && part.rc != WSG_ERROR) || !part.owned_ok) {
            odd++;
        }
    }
    is_int(odd, 0, "%s: prefixes decode or are refused", name);
    if (got.rc == WSG_ERROR) {
        ok(got.why != NULL && got.why[0] != '\0', "%s: the error says why",
           name);
    }
    return got.rc;
}

static int
decode(const char *name, const char *line)
{
    return decode_line(name, line, strlen(line));
}

static void
refused(const char *name, const char *line, const char *why)
{
    if (is_int(decode(name, line), WSG_ERROR, "%s: refused", name)) {
        is_str(got.why, why, "%s: \"%s\"", name, why);
    }
}

static void
test_line_end(void)
{
    note("wsg_json_line_end");
#define LINE_END(s, max)                                                       \
    wsg_json_line_end(guarded(s, strlen(s)), strlen(s), max)
    is_int(LINE_END("", 10), WSG_AGAIN, "nothing yet: waits");
    is_int(LINE_END("abc", 10), WSG_AGAIN, "no newline yet: waits");
    is_int(LINE_END("abc\n", 10), 4, "a line with its newline");
    is_int(LINE_END("\n", 10), 1, "an empty line");
    is_int(LINE_END("a\nb\n", 10), 2, "only the first line");
    is_int(LINE_END("a\r\n", 10), 3, "the CR stays in the line");
    is_int(LINE_END("abc", 3), WSG_AGAIN, "max_line bytes, no newline: waits");
    is_int(LINE_END("abc\n", 3), 4, "max_line bytes, then the newline");
    is_int(LINE_END("abcd", 3), WSG_ERROR, "max_line + 1 bytes: refused");
    is_int(LINE_END("abcd\n", 3), WSG_ERROR,
           "a newline after max_line + 1 bytes: refused");
    is_int(LINE_END("ab\ncdefgh", 3), 3,
           "a short line before a long one is fine");
    is_int(LINE_END("\n", 0), 1, "max_line 0: an empty line");
    is_int(LINE_END("x", 0), WSG_ERROR, "max_line 0: any byte refused");
    is_int(LINE_END("abc\n", SIZE_MAX), 4, "max_line SIZE_MAX");
    is_int(LINE_END("abc", SIZE_MAX), WSG_AGAIN, "max_line SIZE_MAX: waits");
#undef LINE_END
}

/* Checks <env> encodes to exactly <want>, a line ending in '\n'. */
static void
line_is(const char *name, const struct wsg_envelope *env,
        const struct wsg_env_open *o, const char *want)
{
    size_t len = 0;
    char *s = wsg_json_encode(env, o, &len);

    is_mem(s, len, want, strlen(want), "%s: the line", name);
    ok(s[len] == '\0', "%s: NUL-terminated", name);
    free(s);
}

static void
test_encode_open(void)
{
    note("exact open lines");
    static const struct wsg_str headers[] = {
        WSG_STR("origin"),
        WSG_STR("https://chat.example.com"),
    };
    struct wsg_env_open o = {
        .path = WSG_STR("/chat"),
        .query = WSG_STR("room=1"),
        .remote = WSG_STR("203.0.113.7:51812"),
        .subprotocol = {NULL, 0},
        .user = {NULL, 0},
    };
    struct wsg_envelope e = {.kind = WSG_ENV_OPEN, .id = 42};
    line_is("open", &e, &o,
            "{\"kind\":\"open\",\"id\":42,\"path\":\"/chat\",\"query\":"
            "\"room=1\",\"remote\":\"203.0.113.7:51812\",\"subprotocol\":"
            "null,\"user\":null,\"headers\":{}}\n");
    o.headers = headers;
    o.nheaders = 1;
    o.user = WSG_STR("bob");
    line_is("open with a header and a user", &e, &o,
            "{\"kind\":\"open\",\"id\":42,\"path\":\"/chat\",\"query\":"
            "\"room=1\",\"remote\":\"203.0.113.7:51812\",\"subprotocol\":"
            "null,\"user\":\"bob\",\"headers\":{\"origin\":"
            "\"https://chat.example.com\"}}\n");
    line_is("open without fields", &e, NULL,
            "{\"kind\":\"open\",\"id\":42,\"path\":\"\",\"query\":\"\","
            "\"remote\":\"\",\"subprotocol\":null,\"user\":null,"
            "\"headers\":{}}\n");
}

static void
test_encode(void)
{
    struct wsg_envelope e;

    note("exact lines");
    e = (struct wsg_envelope){.kind = WSG_ENV_MESSAGE,
                              .id = 42,
                              .data = (const uint8_t *) "hello",
                              .len = 5};
    line_is("text", &e, NULL,
            "{\"kind\":\"message\",\"id\":42,\"text\":"
            "\"hello\"}\n");
    e.data = (const uint8_t *) "\x89PNG\r\n\x1a\n";
    e.len = 8;
    e.binary = true;
    line_is("binary", &e, NULL,
            "{\"kind\":\"message\",\"id\":42,\"binary\":\"iVBORw0KGgo=\"}\n");
    e.len = 0;
    line_is("empty binary", &e, NULL,
            "{\"kind\":\"message\",\"id\":42,\"binary\":\"\"}\n");
    e = (struct wsg_envelope){.kind = WSG_ENV_MESSAGE,
                              .id = 1,
                              .data = (const uint8_t *) "a\0\n\"\\\x1f\xc3\xa9",
                              .len = 8};
    line_is("text escaped", &e, NULL,
            "{\"kind\":\"message\",\"id\":1,\"text\":"
            "\"a\\u0000\\n\\\"\\\\\\u001F\xc3\xa9\"}\n");
    e.data = (const uint8_t *) "\xe9t\xe9";
    e.len = 3;
    line_is("text not UTF-8 is read as Latin-1", &e, NULL,
            "{\"kind\":\"message\",\"id\":1,\"text\":\"\xc3\xa9t\xc3\xa9\"}\n");

    e = (struct wsg_envelope){.kind = WSG_ENV_CLOSE,
                              .id = 42,
                              .code = 1000,
                              .reason = WSG_STR("bye")};
    line_is(
        "close", &e, NULL,
        "{\"kind\":\"close\",\"id\":42,\"code\":1000,\"reason\":\"bye\"}\n");
    e.code = WSG_WS_NO_STATUS;
    line_is("close without a code", &e, NULL,
            "{\"kind\":\"close\",\"id\":42}\n");
    e = (struct wsg_envelope){
        .kind = WSG_ENV_PING, .id = 5, .data = (const uint8_t *) "x", .len = 1};
    line_is("ping, its id left out", &e, NULL,
            "{\"kind\":\"ping\",\"data\":\"x\"}\n");
    e.kind = WSG_ENV_PONG;
    line_is("pong", &e, NULL, "{\"kind\":\"pong\",\"data\":\"x\"}\n");
    e = (struct wsg_envelope){.kind = WSG_ENV_PAUSE, .id = 42};
    line_is("pause", &e, NULL, "{\"kind\":\"pause\",\"id\":42}\n");
    e.kind = WSG_ENV_RESUME;
    e.id = (UINT64_C(1) << 53) - 1;
    line_is("resume, the largest id", &e, NULL,
            "{\"kind\":\"resume\",\"id\":9007199254740991}\n");
}

/*
 * Encodes <e>, frames and decodes the line, and checks the envelope comes
 * back: kind, id, binary, bytes, code and reason.
 */
static void
round_trip(const char *name, const struct wsg_envelope *e,
           const struct wsg_env_open *o)
{
    size_t len = 0;
    char *s = wsg_json_encode(e, o, &len);
    bool ping = e->kind == WSG_ENV_PING || e->kind == WSG_ENV_PONG;

    ok(len > 0 && s[len - 1] == '\n' && memchr(s, '\n', len - 1) == NULL,
       "%s: one line", name);
    if (!is_int(decode_line(name, s, len - 1), 0, "%s: decoded", name)) {
        note("line: %s", s);
        free(s);
        return;
    }
    is_int(got.env.kind, e->kind, "%s: kind", name);
    is_uint(got.env.id, ping ? 0 : e->id, "%s: id", name);
    is_int(got.env.binary, e->binary, "%s: binary", name);
    if (e->kind == WSG_ENV_CLOSE) {
        is_int(got.env.code, e->code, "%s: code", name);
        is_mem(got.reason, got.env.reason.len, e->reason.p, e->reason.len,
               "%s: reason", name);
    } else if (e->kind == WSG_ENV_OPEN) {
        is_mem(got.data, got.env.len, s, len - 1, "%s: data is the line", name);
    } else if (e->kind == WSG_ENV_PAUSE || e->kind == WSG_ENV_RESUME) {
        ok(got.env.data == NULL && got.env.len == 0, "%s: no data", name);
    } else {
        is_mem(got.data, got.env.len, e->data, e->len, "%s: bytes", name);
    }
    free(s);
}

static void
test_round_trips(void)
{
    static uint8_t all[256], reason[123];
    struct wsg_envelope e;

    note("round trips");
    for (size_t i = 0; i < 256; i++) {
        all[i] = (uint8_t) i;
    }
    e = (struct wsg_envelope){
        .kind = WSG_ENV_MESSAGE, .id = 7, .binary = true, .data = all};
    /* 0..4 and 254..256 bytes: every padding case, and every byte value */
    static const size_t lens[] = {0, 1, 2, 3, 4, 254, 255, 256};
    for (size_t i = 0; i < WSG_NELEMS(lens); i++) {
        char name[64];
        snprintf(name, sizeof(name), "binary of %zu bytes", lens[i]);
        e.len = lens[i];
        round_trip(name, &e, NULL);
    }
    for (size_t i = 0; i < 256; i++) {
        all[i] = (uint8_t) (255 - i);
    }
    e.len = 256;
    round_trip("binary, all bytes descending", &e, NULL);

    static const char text[] = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e "
                               "\0nul \"q\" \\ \n\r\t\x01\x7f \xef\xbf\xbf";
    e = (struct wsg_envelope){.kind = WSG_ENV_MESSAGE,
                              .id = 9007199254740991,
                              .data = (const uint8_t *) text,
                              .len = sizeof(text) - 1};
    round_trip("text: non-ASCII, NUL, escapes, the largest id", &e, NULL);
    e.len = 0;
    round_trip("empty text", &e, NULL);

    memset(reason, 'r', sizeof(reason));
    e = (struct wsg_envelope){.kind = WSG_ENV_CLOSE,
                              .id = 3,
                              .code = 4999,
                              .reason = {(const char *) reason, 123}};
    round_trip("close 4999, a 123-byte reason", &e, NULL);
    e.code = 1000;
    e.reason = WSG_STR("b\xc3\xbf"
                       "e\0!");
    round_trip("close 1000, reason with NUL", &e, NULL);
    e.reason = WSG_STR("");
    round_trip("close 1000, no reason", &e, NULL);
    e.code = WSG_WS_NO_STATUS;
    round_trip("close without a code", &e, NULL);
    e.code = WSG_WS_ABNORMAL;
    round_trip("close 1006, the gateway's for a dropped client", &e, NULL);

    e = (struct wsg_envelope){
        .kind = WSG_ENV_PING, .data = (const uint8_t *) "beat 17", .len = 7};
    round_trip("ping", &e, NULL);
    e.kind = WSG_ENV_PONG;
    round_trip("pong", &e, NULL);
    e.len = 0;
    round_trip("pong, empty", &e, NULL);
    e = (struct wsg_envelope){.kind = WSG_ENV_PAUSE, .id = 11};
    round_trip("pause", &e, NULL);
    e.kind = WSG_ENV_RESUME;
    round_trip("resume", &e, NULL);

    static const struct wsg_str headers[] = {
        WSG_STR("x-a"), WSG_STR("1"), WSG_STR("x-b"), WSG_STR("caf\xe9")};
    struct wsg_env_open o = {.path = WSG_STR("/p"),
                             .remote = WSG_STR("[::1]:1"),
                             .subprotocol = WSG_STR("chat"),
                             .headers = headers,
                             .nheaders = 2};
    e = (struct wsg_envelope){.kind = WSG_ENV_OPEN, .id = 12};
    round_trip("open", &e, &o);
}

static void
test_decode(void)
{
    note("lines a backend may send");
    if (is_int(decode("text", "{\"kind\":\"message\",\"id\":42,\"text\":"
                              "\"hello\"}"),
               0, "text: decoded")) {
        is_int(got.env.kind, WSG_ENV_MESSAGE, "text: kind");
        is_uint(got.env.id, 42, "text: id");
        ok(!got.env.binary, "text: not binary");
        is_mem(got.data, got.env.len, "hello", 5, "text: bytes");
    }
    if (is_int(decode("escapes", "{\"kind\":\"message\",\"id\":1,\"text\":"
                                 "\"\\u00e9\\ud834\\udd1e\\u0000\\/\"}"),
               0, "escapes: decoded")) {
        is_mem(got.data, got.env.len, "\xc3\xa9\xf0\x9d\x84\x9e\0/", 8,
               "escapes: UTF-8 bytes, NUL kept");
    }
    if (is_int(decode("spaces, CR, members in any order",
                      " { \"id\" : 7 ,\t\"kind\":\"resume\" } \r"),
               0, "spaces: decoded")) {
        is_int(got.env.kind, WSG_ENV_RESUME, "spaces: kind resume");
        is_uint(got.env.id, 7, "spaces: id 7");
    }
    is_int(decode("unknown members are ignored",
                  "{\"kind\":\"pause\",\"id\":1,\"x\":[1,{\"y\":null}],"
                  "\"text\":5}"),
           0, "unknown members: decoded");
    if (is_int(decode("a null member is absent",
                      "{\"kind\":\"message\",\"id\":1,\"text\":null,"
                      "\"binary\":\"YQ==\"}"),
               0, "null text, binary: decoded")) {
        ok(got.env.binary, "null text: binary");
    }
    is_int(decode("id 0", "{\"kind\":\"pause\",\"id\":0}"), 0, "id 0");
    is_int(decode("id -0", "{\"kind\":\"pause\",\"id\":-0}"), 0, "id -0");
    if (is_int(decode("id 2^53 - 1",
                      "{\"kind\":\"pause\",\"id\":9007199254740991}"),
               0, "id 2^53 - 1: decoded")) {
        is_uint(got.env.id, UINT64_C(9007199254740991), "id 2^53 - 1");
    }
    if (is_int(decode("ping with an id",
                      "{\"kind\":\"ping\",\"id\":\"x\",\"data\":\"hb\"}"),
               0, "ping: decoded")) {
        is_uint(got.env.id, 0, "ping: id 0, whatever was sent");
        is_mem(got.data, got.env.len, "hb", 2, "ping: data");
    }
    if (is_int(decode("ping without data", "{\"kind\":\"ping\"}"), 0,
               "ping without data: decoded")) {
        is_int(got.env.len, 0, "ping without data: empty");
    }
    if (is_int(decode("open", "{\"kind\":\"open\",\"id\":3,\"path\":5}"), 0,
               "open: decoded, fields unchecked")) {
        is_mem(got.data, got.env.len, "{\"kind\":\"open\",\"id\":3,\"path\":5}",
               31, "open: data is the line");
    }
    if (is_int(decode("close without a code, empty reason",
                      "{\"kind\":\"close\",\"id\":4,\"reason\":\"\"}"),
               0, "close without a code: decoded")) {
        is_int(got.env.code, WSG_WS_NO_STATUS, "no code: 1005");
        is_int(got.env.len, 0, "no code: no data");
    }
    if (is_int(
            decode("close 1001", "{\"kind\":\"close\",\"id\":4,\"code\":1001}"),
            0, "close 1001: decoded")) {
        is_int(got.env.code, 1001, "close 1001: code");
        is_mem(got.data, got.env.len, "\x03\xe9", 2,
               "close 1001: data is the mux close payload");
        is_int(got.env.reason.len, 0, "close 1001: no reason");
    }
}

/* What "binary" decodes to, for base64 that is accepted. */
static void
base64_is(const char *b64, const void *want, size_t n)
{
    char line[256];

    snprintf(line, sizeof(line),
             "{\"kind\":\"message\",\"id\":1,\"binary\":\"%s\"}", b64);
    if (is_int(decode(b64, line), 0, "base64 \"%s\": accepted", b64)) {
        ok(got.env.binary, "base64 \"%s\": binary", b64);
        is_mem(got.data, got.env.len, want, n, "base64 \"%s\": bytes", b64);
    }
}

static void
base64_refused(const char *b64)
{
    char line[256], name[128];

    snprintf(line, sizeof(line),
             "{\"kind\":\"message\",\"id\":1,\"binary\":\"%s\"}", b64);
    snprintf(name, sizeof(name), "base64 \"%s\"", b64);
    refused(name, line, "binary not base64");
}

static void
test_base64(void)
{
    note("base64");
    base64_is("", "", 0);
    base64_is("AA==", "\0", 1);
    base64_is("AAA=", "\0\0", 2);
    base64_is("AAAA", "\0\0\0", 3);
    base64_is("YQ==", "a", 1);
    base64_is("YWI=", "ab", 2);
    base64_is("YWJj", "abc", 3);
    base64_is("YWJjZA==", "abcd", 4);
    base64_is("YWJjZGU=", "abcde", 5);
    base64_is("+/+/", "\xfb\xff\xbf", 3);
    base64_is("////", "\xff\xff\xff", 3);
    base64_is("/w==", "\xff", 1);
    base64_is("//8=", "\xff\xff", 2);

    base64_refused("YQ=");
    base64_refused("YQ");
    base64_refused("Y");
    base64_refused("=");
    base64_refused("==");
    base64_refused("Y===");
    base64_refused("====");
    base64_refused("YQ==YQ==");
    base64_refused("Y=Q=");
    base64_refused("YWJjZ===");
    base64_refused("YR==");  /* bits after the byte set */
    base64_refused("YWJ=");  /* bits after the two bytes set */
    base64_refused(" YWJj"); /* EVP_DecodeBlock would skip these */
    base64_refused("YWJj ");
    base64_refused("YW Jj");
    base64_refused("YWJj\\n");
    base64_refused("YWJj\\r\\n");
    base64_refused("YW-j"); /* base64url */
    base64_refused("YW_j");
    base64_refused("YWJ\\u0000");
    base64_refused("YWJ\xc3\xa9");
}

/* Lines refused, each with its reason. */
static const struct {
    const char *name;
    const char *line;
    const char *why;
} refusals[] = {
    {"empty", "", "not JSON"},
    {"spaces", "   ", "not JSON"},
    {"cut", "{\"kind\":\"pause\",\"id\":1", "not JSON"},
    {"two objects", "{\"kind\":\"pause\",\"id\":1}{}", "not JSON"},
    {"trailing garbage", "{\"kind\":\"pause\",\"id\":1} x", "not JSON"},
    {"duplicate member", "{\"kind\":\"pause\",\"id\":1,\"id\":2}", "not JSON"},
    {"bad UTF-8", "{\"kind\":\"message\",\"id\":1,\"text\":\"\xff\"}",
     "not JSON"},
    {"overlong UTF-8", "{\"kind\":\"message\",\"id\":1,\"text\":\"\xc0\xaf\"}",
     "not JSON"},
    {"UTF-8 surrogate",
     "{\"kind\":\"message\",\"id\":1,\"text\":\"\xed\xa0\x80\"}", "not JSON"},
    {"lone surrogate escape",
     "{\"kind\":\"message\",\"id\":1,\"text\":\"\\ud800\"}", "not JSON"},
    {"raw control character",
     "{\"kind\":\"message\",\"id\":1,\"text\":\"a\tb\"}", "not JSON"},
    {"single quotes", "{'kind':'pause','id':1}", "not JSON"},
    {"id too big for jansson",
     "{\"kind\":\"pause\",\"id\":99999999999999999999}", "not JSON"},
    {"array", "[{\"kind\":\"pause\",\"id\":1}]", "not a JSON object"},
    {"number", "42", "not a JSON object"},
    {"string", "\"pause\"", "not a JSON object"},
    {"null", "null", "not a JSON object"},
    {"no kind", "{\"id\":1}", "kind missing or not a string"},
    {"kind null", "{\"kind\":null,\"id\":1}", "kind missing or not a string"},
    {"kind a number", "{\"kind\":2,\"id\":1}", "kind missing or not a string"},
    {"kind unknown", "{\"kind\":\"msg\",\"id\":1}", "unknown kind"},
    {"kind in capitals", "{\"kind\":\"Message\",\"id\":1}", "unknown kind"},
    {"kind with a NUL", "{\"kind\":\"pause\\u0000\",\"id\":1}", "unknown kind"},
    {"kind empty", "{\"kind\":\"\",\"id\":1}", "unknown kind"},
    {"no id", "{\"kind\":\"pause\"}", "id missing or not an integer"},
    {"id null", "{\"kind\":\"pause\",\"id\":null}",
     "id missing or not an integer"},
    {"id a string", "{\"kind\":\"pause\",\"id\":\"1\"}",
     "id missing or not an integer"},
    {"id a real", "{\"kind\":\"pause\",\"id\":1.0}",
     "id missing or not an integer"},
    {"id in e-notation", "{\"kind\":\"pause\",\"id\":1e3}",
     "id missing or not an integer"},
    {"id negative", "{\"kind\":\"pause\",\"id\":-1}", "id out of range"},
    {"id 2^53", "{\"kind\":\"pause\",\"id\":9007199254740992}",
     "id out of range"},
    {"id 2^63 - 1", "{\"kind\":\"pause\",\"id\":9223372036854775807}",
     "id out of range"},
    {"open without id", "{\"kind\":\"open\",\"path\":\"/\"}",
     "id missing or not an integer"},
    {"close without id", "{\"kind\":\"close\",\"code\":1000}",
     "id missing or not an integer"},
    {"message without text or binary", "{\"kind\":\"message\",\"id\":1}",
     "a message needs exactly one of text and binary"},
    {"message with both",
     "{\"kind\":\"message\",\"id\":1,\"text\":\"a\",\"binary\":\"YQ==\"}",
     "a message needs exactly one of text and binary"},
    {"text a number", "{\"kind\":\"message\",\"id\":1,\"text\":5}",
     "text not a string"},
    {"text an array", "{\"kind\":\"message\",\"id\":1,\"text\":[\"a\"]}",
     "text not a string"},
    {"binary a number", "{\"kind\":\"message\",\"id\":1,\"binary\":5}",
     "binary not a string"},
    {"code a string", "{\"kind\":\"close\",\"id\":1,\"code\":\"1000\"}",
     "code not an integer"},
    {"code a real", "{\"kind\":\"close\",\"id\":1,\"code\":1000.0}",
     "code not an integer"},
    {"code 1005", "{\"kind\":\"close\",\"id\":1,\"code\":1005}",
     "close code that may not be sent"},
    {"code 1004", "{\"kind\":\"close\",\"id\":1,\"code\":1004}",
     "close code that may not be sent"},
    {"code 1015", "{\"kind\":\"close\",\"id\":1,\"code\":1015}",
     "close code that may not be sent"},
    {"code 999", "{\"kind\":\"close\",\"id\":1,\"code\":999}",
     "close code that may not be sent"},
    {"code 2999", "{\"kind\":\"close\",\"id\":1,\"code\":2999}",
     "close code that may not be sent"},
    {"code 5000", "{\"kind\":\"close\",\"id\":1,\"code\":5000}",
     "close code that may not be sent"},
    {"code 66536 (1000 + 2^16)", "{\"kind\":\"close\",\"id\":1,\"code\":66536}",
     "close code that may not be sent"},
    {"code -1", "{\"kind\":\"close\",\"id\":1,\"code\":-1}",
     "close code that may not be sent"},
    {"reason a number",
     "{\"kind\":\"close\",\"id\":1,\"code\":1000,\"reason\":1}",
     "reason not a string"},
    {"reason without a code", "{\"kind\":\"close\",\"id\":1,\"reason\":\"x\"}",
     "close reason without a code"},
    {"data a number", "{\"kind\":\"pong\",\"data\":1}", "data not a string"},
    {"a newline inside", "{\"kind\":\"pause\",\n\"id\":1}",
     "a newline inside the line"},
    {"two lines", "{\"kind\":\"pause\",\"id\":1}\n{}",
     "a newline inside the line"},
};

static void
test_refused(void)
{
    static char line[512];

    note("lines refused");
    for (size_t i = 0; i < WSG_NELEMS(refusals); i++) {
        refused(refusals[i].name, refusals[i].line, refusals[i].why);
    }
    memcpy(line, "{\"kind\":\"pause\",\"id\":1}\0", 24);
    if (is_int(decode_line("a raw NUL byte", line, 24), WSG_ERROR,
               "a raw NUL byte: refused")) {
        is_str(got.why, "not JSON", "a raw NUL byte: \"not JSON\"");
    }
}

/* Reasons and ping data at and over their bounds. */
static void
test_refused_lengths(void)
{
    static char line[512];
    char big[200];

    note("reason and data lengths");
    memset(big, 'r', sizeof(big));
    snprintf(
        line, sizeof(line),
        "{\"kind\":\"close\",\"id\":1,\"code\":1000,\"reason\":\"%.123s\"}",
        big);
    is_int(decode("reason of 123 bytes", line), 0, "reason of 123: accepted");
    snprintf(
        line, sizeof(line),
        "{\"kind\":\"close\",\"id\":1,\"code\":1000,\"reason\":\"%.124s\"}",
        big);
    refused("reason of 124 bytes", line, "close reason over 123 bytes");
    snprintf(line, sizeof(line),
             "{\"kind\":\"close\",\"id\":1,\"code\":1000,\"reason\":\"%.122s"
             "\xc3\xa9\"}",
             big);
    refused("reason of 122 bytes + U+00E9 (two bytes)", line,
            "close reason over 123 bytes");
    snprintf(line, sizeof(line), "{\"kind\":\"ping\",\"data\":\"%.125s\"}",
             big);
    is_int(decode("ping data of 125 bytes", line), 0, "125: accepted");
    snprintf(line, sizeof(line), "{\"kind\":\"ping\",\"data\":\"%.126s\"}",
             big);
    refused("ping data of 126 bytes", line, "ping or pong data over 125 bytes");
}

int
main(void)
{
    guard_init();
    test_line_end();
    test_encode_open();
    test_encode();
    test_round_trips();
    test_decode();
    test_base64();
    test_refused();
    test_refused_lengths();
    return done_testing();
}
