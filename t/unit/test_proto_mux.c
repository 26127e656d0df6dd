/*
 * Tests of src/upstream/proto_mux.h: envelope headers, decoding (every
 * vector whole, at every split and from a copy that ends at a PROT_NONE
 * page), the bound of each kind at and over its limit, close payloads,
 * the symmetry an echo backend relies on, and the open payload's JSON.
 */
#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"
#include "tap.h"
#include "upstream/proto_mux.h"
#include "ws/ws_frame.h"

/* Expands a string literal to its bytes and length, NULs included. */
#define LIT(s) (const uint8_t *) (s), sizeof(s) - 1

/* The longest vector the guard buffer holds. */
#define GUARD_MAX 4096

/* A max_message for the vectors that do not test it. */
#define MAX_MESSAGE 1000

#include "guard.h"

/*
 * Writes an envelope header by hand from the spec's table (not with
 * wsg_mux_header, which is tested against this), then <n> bytes of
 * <payload> when it is not NULL. Returns the bytes written.
 */
static size_t
build(uint8_t *out, uint8_t kind, uint8_t flags, uint64_t id, uint32_t len,
      const void *payload, size_t n)
{
    out[0] = kind;
    out[1] = flags;
    for (size_t i = 0; i < 8; i++) {
        out[9 - i] = (uint8_t) (id >> (8 * i));
    }
    for (size_t i = 0; i < 4; i++) {
        out[13 - i] = (uint8_t) (len >> (8 * i));
    }
    if (payload != NULL) {
        memcpy(out + 14, payload, n);
        return 14 + n;
    }
    return 14;
}

/* One decode's result, with pointers kept as offsets into the input. */
struct outcome {
    int rc;
    const char *why;
    struct wsg_envelope env;
    size_t data_off;
    size_t reason_off;
};

static void
outcome_of(const uint8_t *in, size_t len, size_t max, struct outcome *o)
{
    const uint8_t *p = guarded(in, len);

    memset(o, 0, sizeof(*o));
    o->rc = wsg_mux_decode(p, len, max, &o->env, &o->why);
    if (o->rc > 0) {
        o->data_off = (size_t) (o->env.data - p);
        o->reason_off = o->env.reason.p != NULL
                            ? (size_t) ((const uint8_t *) o->env.reason.p - p)
                            : 0;
    } else {
        memset(&o->env, 0, sizeof(o->env));
    }
    if (o->rc != WSG_ERROR) {
        o->why = NULL;
    }
}

static bool
same(const struct outcome *a, const struct outcome *b)
{
    const struct wsg_envelope *x = &a->env, *y = &b->env;

    return a->rc == b->rc && a->why == b->why && x->kind == y->kind &&
           x->binary == y->binary && x->id == y->id && x->len == y->len &&
           x->code == y->code && x->reason.len == y->reason.len &&
           a->data_off == b->data_off && a->reason_off == b->reason_off;
}

/*
 * Whether the first <k> bytes gave what they should: WSG_AGAIN before a
 * whole envelope; the same error, or WSG_AGAIN, before a refusal; the
 * same envelope once it is all there.
 */
static bool
prefix_agrees(const struct outcome *w, const struct outcome *o, size_t k)
{
    if (w->rc == WSG_AGAIN || (w->rc > 0 && k < (size_t) w->rc)) {
        return o->rc == WSG_AGAIN;
    }
    if (w->rc == WSG_ERROR) {
        return o->rc == WSG_AGAIN || same(o, w);
    }
    return same(o, w);
}

/* The last whole decode: env's pointers are valid in the guard copy. */
static struct outcome got;
static const uint8_t *got_in;

/*
 * Decodes <in>/<len> under <max> whole, then each shorter prefix followed
 * by the whole (a split read), checking they agree. Leaves the whole
 * decode in <got>. Returns its result.
 */
static int
decode_max(const char *name, const uint8_t *in, size_t len, size_t max)
{
    struct outcome w, o;
    size_t bad = 0;

    outcome_of(in, len, max, &w);
    for (size_t k = 0; k < len; k++) {
        outcome_of(in, k, max, &o);
        bool agree = prefix_agrees(&w, &o, k);
        outcome_of(in, len, max, &o);
        if ((!agree || !same(&o, &w)) && bad++ == 0) {
            note("%s: split at %zu disagrees", name, k);
        }
    }
    ok(bad == 0, "%s: every split agrees", name);
    got_in = guarded(in, len);
    got = w;
    int rc = wsg_mux_decode(got_in, len, max, &got.env, &got.why);
    if (rc == WSG_ERROR) {
        ok(got.why != NULL && got.why[0] != '\0', "%s: the error says why",
           name);
    }
    if (rc > 0) {
        ok(got.env.data == got_in + WSG_MUX_HEADER &&
               got.env.len == (size_t) rc - WSG_MUX_HEADER,
           "%s: data is the payload in place", name);
    }
    return rc;
}

static int
decode(const char *name, const uint8_t *in, size_t len)
{
    return decode_max(name, in, len, MAX_MESSAGE);
}

/* Checks that <in> is refused with reason <why>. */
static void
refused_max(const char *name, const uint8_t *in, size_t len, size_t max,
            const char *why)
{
    if (is_int(decode_max(name, in, len, max), WSG_ERROR, "%s: refused",
               name)) {
        is_str(got.why, why, "%s: \"%s\"", name, why);
    }
}

static void
refused(const char *name, const uint8_t *in, size_t len, const char *why)
{
    refused_max(name, in, len, MAX_MESSAGE, why);
}

static void
test_header(void)
{
    uint8_t out[WSG_MUX_HEADER], want[WSG_MUX_HEADER];

    note("wsg_mux_header");
    is_int(wsg_mux_header(out, WSG_ENV_MESSAGE, WSG_MUX_FLAG_BINARY,
                          UINT64_C(0x0102030405060708), 0x0A0B0C0D),
           14, "returns 14");
    is_mem(out, 14, "\x02\x01\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d",
           14, "fields big-endian in their places");
    wsg_mux_header(out, WSG_ENV_CLOSE, 0, UINT64_MAX, UINT32_MAX);
    build(want, WSG_ENV_CLOSE, 0, UINT64_MAX, UINT32_MAX, NULL, 0);
    is_mem(out, 14, want, 14, "largest id and length");
    wsg_mux_header(out, WSG_ENV_PING, 0, 0, 0);
    is_mem(out, 14, "\x04\0\0\0\0\0\0\0\0\0\0\0\0\0", 14, "a ping, all zero");
}

static void
test_message(void)
{
    uint8_t in[600], all[256];

    note("messages");
    int rc = decode("text hello", LIT("\x02\x00\x00\x00\x00\x00\x00\x00\x00\x2a"
                                      "\x00\x00\x00\x05hello"));
    if (is_int(rc, 19, "text hello: 19 bytes")) {
        is_int(got.env.kind, WSG_ENV_MESSAGE, "kind message");
        ok(!got.env.binary, "text");
        is_uint(got.env.id, 42, "id 42");
        is_mem(got.env.data, got.env.len, "hello", 5, "payload");
        is_int(got.env.code, 0, "no code");
        is_int(got.env.reason.len, 0, "no reason");
        ok(wsg_mux_check_text(&got.env), "UTF-8 text passes the check");
    }

    for (size_t i = 0; i < 256; i++) {
        all[i] = (uint8_t) i;
    }
    size_t n =
        build(in, WSG_ENV_MESSAGE, WSG_MUX_FLAG_BINARY, 7, 256, all, 256);
    if (is_int(decode("binary, all 256 byte values", in, n), 270,
               "binary: 270 bytes")) {
        ok(got.env.binary, "binary");
        is_mem(got.env.data, got.env.len, all, 256, "all bytes as sent");
        ok(wsg_mux_check_text(&got.env), "binary is never checked as text");
    }
    n = build(in, WSG_ENV_MESSAGE, 0, 1, 0, "", 0);
    if (is_int(decode("empty text", in, n), 14, "empty: 14 bytes")) {
        is_int(got.env.len, 0, "empty payload");
        ok(wsg_mux_check_text(&got.env), "empty text is UTF-8");
    }

    n = build(in, WSG_ENV_MESSAGE, 0, 9, 3,
              "a\xff"
              "b",
              3);
    if (is_int(decode("text not UTF-8", in, n), 17,
               "text not UTF-8: decoded, the link is fine")) {
        ok(!wsg_mux_check_text(&got.env), "text not UTF-8: check fails");
    }
    n = build(in, WSG_ENV_MESSAGE, 0, 9, 4, "\xed\xa0\x80!", 4);
    if (is_int(decode("text with a surrogate", in, n), 18, "decoded")) {
        ok(!wsg_mux_check_text(&got.env), "a surrogate fails the check");
    }
    n = build(in, WSG_ENV_MESSAGE, 0, 9, 9, "h\xc3\xa9llo\0\xe2\x82", 9);
    if (is_int(decode("text cut inside a character", in, n), 23, "decoded")) {
        ok(!wsg_mux_check_text(&got.env), "a cut character fails the check");
    }
    n = build(in, WSG_ENV_MESSAGE, 0, 9, 11, "h\xc3\xa9llo\0\xe2\x82\xac!", 11);
    if (is_int(decode("text with NUL and non-ASCII", in, n), 25, "decoded")) {
        ok(wsg_mux_check_text(&got.env), "NUL and U+20AC are UTF-8");
    }
}

/* Whole envelopes followed by more bytes: only the first is consumed. */
static void
test_stream(void)
{
    uint8_t in[128];
    size_t n = 0;
    struct wsg_envelope env;
    const char *why = NULL;

    note("a stream of envelopes");
    n += build(in + n, WSG_ENV_OPEN, 0, 5, 2, "{}", 2);
    n += build(in + n, WSG_ENV_MESSAGE, 0, 5, 2, "hi", 2);
    n += build(in + n, WSG_ENV_PAUSE, 0, 5, 0, NULL, 0);
    n += build(in + n, WSG_ENV_CLOSE, 0, 5, 2, "\x03\xe8", 2);
    n += build(in + n, WSG_ENV_MESSAGE, 0, 6, 10, NULL, 0); /* cut */

    static const int sizes[] = {16, 16, 14, 16};
    static const uint8_t kinds[] = {WSG_ENV_OPEN, WSG_ENV_MESSAGE,
                                    WSG_ENV_PAUSE, WSG_ENV_CLOSE};
    const uint8_t *p = guarded(in, n);
    size_t left = n;
    for (size_t i = 0; i < WSG_NELEMS(sizes); i++) {
        int rc = wsg_mux_decode(p, left, MAX_MESSAGE, &env, &why);
        is_int(rc, sizes[i], "envelope %zu: %d bytes", i + 1, sizes[i]);
        is_int(env.kind, kinds[i], "envelope %zu: kind %d", i + 1, kinds[i]);
        is_uint(env.id, 5, "envelope %zu: id 5", i + 1);
        if (rc <= 0) {
            return;
        }
        p += rc;
        left -= (size_t) rc;
    }
    is_int(wsg_mux_decode(p, left, MAX_MESSAGE, &env, &why), WSG_AGAIN,
           "a cut last envelope waits");
    is_int(decode("payload bytes after the envelope are not read",
                  LIT("\x06\x00\x00\x00\x00\x00\x00\x00\x00\x01"
                      "\x00\x00\x00\x00\x02\x00")),
           14, "a pause then the start of another: 14");
}

static void
test_bounds(void)
{
    uint8_t in[256], pay[130];

    note("length bounds, at and over");
    memset(pay, 'x', sizeof(pay));
    size_t n = build(in, WSG_ENV_MESSAGE, 0, 1, 100, pay, 100);
    is_int(decode_max("message at max_message", in, n, 100), 114, "accepted");
    n = build(in, WSG_ENV_MESSAGE, 0, 1, 101, pay, 101);
    refused_max("message one over max_message", in, n, 100,
                "message over its size limit");
    n = build(in, WSG_ENV_MESSAGE, 1, 1, 101, NULL, 0);
    refused_max("an over-long message is refused on its header", in, n, 100,
                "message over its size limit");
    n = build(in, WSG_ENV_MESSAGE, 0, 1, 1, "x", 1);
    refused_max("max_message 0 refuses any byte", in, n, 0,
                "message over its size limit");
    n = build(in, WSG_ENV_MESSAGE, 0, 1, 0, NULL, 0);
    is_int(decode_max("max_message 0 takes an empty one", in, n, 0), 14,
           "accepted");

    /* the int result caps a message whatever max_message says */
    n = build(in, WSG_ENV_MESSAGE, 0, 1, INT32_MAX - 14, NULL, 0);
    is_int(decode_max("message of INT_MAX - 14 waits", in, n, SIZE_MAX),
           WSG_AGAIN, "INT_MAX - 14: waits for its payload");
    n = build(in, WSG_ENV_MESSAGE, 0, 1, INT32_MAX - 13, NULL, 0);
    refused_max("message of INT_MAX - 13", in, n, SIZE_MAX,
                "message over its size limit");
    n = build(in, WSG_ENV_MESSAGE, 0, 1, UINT32_MAX, NULL, 0);
    refused_max("message of 4 GiB - 1", in, n, SIZE_MAX,
                "message over its size limit");

    n = build(in, WSG_ENV_OPEN, 0, 1, WSG_ENV_CONTROL_MAX, NULL, 0);
    is_int(decode("open of 16 MiB waits", in, n), WSG_AGAIN,
           "open at 16 MiB: waits for its payload");
    n = build(in, WSG_ENV_OPEN, 0, 1, WSG_ENV_CONTROL_MAX + 1, NULL, 0);
    refused("open of 16 MiB + 1", in, n, "open payload over 16 MiB");

    static const uint8_t ctl[] = {WSG_ENV_PING, WSG_ENV_PONG};
    for (size_t i = 0; i < WSG_NELEMS(ctl); i++) {
        char name[64];
        snprintf(name, sizeof(name), "kind %d of 125 bytes", ctl[i]);
        n = build(in, ctl[i], 0, 0, 125, pay, 125);
        is_int(decode(name, in, n), 139, "%s: accepted", name);
        snprintf(name, sizeof(name), "kind %d of 126 bytes", ctl[i]);
        n = build(in, ctl[i], 0, 0, 126, NULL, 0);
        refused(name, in, n, "close, ping or pong payload over 125 bytes");
    }
    pay[0] = 0x03;
    pay[1] = 0xe8;
    n = build(in, WSG_ENV_CLOSE, 0, 1, 125, pay, 125);
    is_int(decode("close with a 123-byte reason", in, n), 139, "accepted");
    is_int(got.env.reason.len, 123, "reason of 123 bytes");
    n = build(in, WSG_ENV_CLOSE, 0, 1, 126, pay, 126);
    refused("close with a 124-byte reason", in, n,
            "close, ping or pong payload over 125 bytes");

    n = build(in, WSG_ENV_PAUSE, 0, 1, 1, "x", 1);
    refused("pause with a payload", in, n, "pause or resume with a payload");
    n = build(in, WSG_ENV_RESUME, 0, 1, UINT32_MAX, NULL, 0);
    refused("resume with a 4 GiB payload", in, n,
            "pause or resume with a payload");
}

static void
test_kinds_flags(void)
{
    uint8_t in[32];
    char name[64];

    note("unknown kinds and flags");
    static const uint8_t bad_kinds[] = {0x00, 0x08, 0x09, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < WSG_NELEMS(bad_kinds); i++) {
        snprintf(name, sizeof(name), "kind 0x%02x", bad_kinds[i]);
        size_t n = build(in, bad_kinds[i], 0, 1, 0, NULL, 0);
        refused(name, in, n, "unknown kind");
        struct wsg_envelope env;
        const char *why = NULL;
        is_int(wsg_mux_decode(guarded(in, 1), 1, MAX_MESSAGE, &env, &why),
               WSG_ERROR, "%s: refused on the first byte", name);
    }
    static const uint8_t bad_flags[] = {0x02, 0x03, 0x04, 0x10, 0x80, 0xff};
    for (size_t i = 0; i < WSG_NELEMS(bad_flags); i++) {
        snprintf(name, sizeof(name), "flags 0x%02x", bad_flags[i]);
        size_t n = build(in, WSG_ENV_MESSAGE, bad_flags[i], 1, 0, NULL, 0);
        refused(name, in, n, "unknown flags");
        struct wsg_envelope env;
        const char *why = NULL;
        is_int(wsg_mux_decode(guarded(in, 2), 2, MAX_MESSAGE, &env, &why),
               WSG_ERROR, "%s: refused on the second byte", name);
    }
    size_t n = build(in, WSG_ENV_CLOSE, WSG_MUX_FLAG_BINARY, 3, 0, NULL, 0);
    if (is_int(decode("the binary flag on a close", in, n), 14, "accepted")) {
        ok(!got.env.binary, "binary is only a message's");
    }

    /* every known kind, empty where it may be */
    static const uint8_t kinds[] = {
        WSG_ENV_OPEN, WSG_ENV_MESSAGE, WSG_ENV_CLOSE, WSG_ENV_PING,
        WSG_ENV_PONG, WSG_ENV_PAUSE,   WSG_ENV_RESUME};
    for (size_t i = 0; i < WSG_NELEMS(kinds); i++) {
        snprintf(name, sizeof(name), "empty kind %d", kinds[i]);
        n = build(in, kinds[i], 0, 77, 0, NULL, 0);
        if (is_int(decode(name, in, n), 14, "%s: 14 bytes", name)) {
            is_int(got.env.kind, kinds[i], "%s: kind", name);
            bool ping = kinds[i] == WSG_ENV_PING || kinds[i] == WSG_ENV_PONG;
            is_uint(got.env.id, ping ? 0 : 77, "%s: id", name);
        }
    }
}

static void
test_close(void)
{
    uint8_t in[64];

    note("close payloads");
    size_t n = build(in, WSG_ENV_CLOSE, 0, 8, 0, NULL, 0);
    if (is_int(decode("close, empty", in, n), 14, "accepted")) {
        is_int(got.env.code, WSG_WS_NO_STATUS, "no code: 1005");
        is_int(got.env.reason.len, 0, "no reason");
        is_uint(got.env.id, 8, "id 8");
    }
    n = build(in, WSG_ENV_CLOSE, 0, 8, 5,
              "\x03\xe8"
              "bye",
              5);
    if (is_int(decode("close 1000 bye", in, n), 19, "accepted")) {
        is_int(got.env.code, 1000, "code 1000");
        is_mem(got.env.reason.p, got.env.reason.len, "bye", 3, "reason");
        ok((const uint8_t *) got.env.reason.p == got_in + 16,
           "the reason points just past the code");
        is_mem(got.env.data, got.env.len,
               "\x03\xe8"
               "bye",
               5, "data is the payload as sent");
    }
    n = build(in, WSG_ENV_CLOSE, 0, 8, 1, "\x03", 1);
    refused("close, 1 byte", in, n, "close payload of 1 byte");
    n = build(in, WSG_ENV_CLOSE, 0, 8, 4, "\x03\xe8\xc3\x28", 4);
    refused("close, reason not UTF-8", in, n, "close reason not UTF-8");
    n = build(in, WSG_ENV_CLOSE, 0, 8, 6, "\x0f\xa0\xe2\x82\xac\0", 6);
    if (is_int(decode("close 4000, reason U+20AC NUL", in, n), 20,
               "accepted")) {
        is_int(got.env.code, 4000, "code 4000");
        is_int(got.env.reason.len, 4, "reason of 4 bytes");
    }
}

/* Every class of RFC 6455 §7.4, and the gateway's own 1006. */
static void
test_close_codes(void)
{
    uint8_t in[64];
    char name[64];

    note("close codes");
    static const struct {
        uint16_t code;
        bool valid;
    } codes[] = {
        {0, false},    {999, false},   {1000, true},  {1001, true},
        {1002, true},  {1003, true},   {1004, false}, {1005, false},
        {1006, true},  {1007, true},   {1011, true},  {1014, true},
        {1015, false}, {1016, false},  {2999, false}, {3000, true},
        {3999, true},  {4000, true},   {4999, true},  {5000, false},
        {9999, false}, {65535, false},
    };
    for (size_t i = 0; i < WSG_NELEMS(codes); i++) {
        uint8_t code[2] = {(uint8_t) (codes[i].code >> 8),
                           (uint8_t) codes[i].code};
        snprintf(name, sizeof(name), "close code %u", codes[i].code);
        size_t n = build(in, WSG_ENV_CLOSE, 0, 8, 2, code, 2);
        if (!codes[i].valid) {
            refused(name, in, n, "close code that may not be sent");
        } else if (is_int(decode(name, in, n), 16, "%s: accepted", name)) {
            is_int(got.env.code, codes[i].code, "%s: code", name);
        }
        is_int(wsg_mux_close_code_ok(codes[i].code), codes[i].valid,
               "wsg_mux_close_code_ok(%u)", codes[i].code);
    }

    /* what the gateway sends when a client drops, as an echo returns it */
    uint8_t gone[WSG_MUX_HEADER + 2];
    wsg_mux_header(gone, WSG_ENV_CLOSE, 0, 12, 2);
    gone[14] = 0x03;
    gone[15] = 0xee;
    if (is_int(decode("the gateway's 1006, echoed", gone, sizeof(gone)), 16,
               "1006 echoed: the link is fine")) {
        is_int(got.env.code, WSG_WS_ABNORMAL, "1006 echoed: code 1006");
    }
}

/*
 * What the gateway writes for a message from client X must decode, byte
 * for byte, as a message to client X: an echo backend works unchanged.
 */
static void
test_symmetry(void)
{
    uint8_t in[300];
    static const uint64_t ids[] = {1, 42, UINT64_C(1) << 53,
                                   UINT64_C(0xfedcba9876543210), UINT64_MAX};
    static const uint8_t payload[] = "\0\x01h\xc3\xa9\xff\n";

    note("symmetry");
    for (size_t i = 0; i < WSG_NELEMS(ids); i++) {
        for (int binary = 0; binary <= 1; binary++) {
            size_t plen = binary ? sizeof(payload) : 4;
            size_t h = wsg_mux_header(in, WSG_ENV_MESSAGE,
                                      binary ? WSG_MUX_FLAG_BINARY : 0, ids[i],
                                      (uint32_t) plen);
            memcpy(in + h, payload, plen);
            char name[80];
            snprintf(name, sizeof(name), "%s from %llu",
                     binary ? "binary" : "text", (unsigned long long) ids[i]);
            if (!is_int(decode(name, in, h + plen), (int) (h + plen),
                        "%s: whole", name)) {
                continue;
            }
            ok(got.env.kind == WSG_ENV_MESSAGE &&
                   got.env.binary == (binary != 0) && got.env.id == ids[i],
               "%s: a message to the same client", name);
            is_mem(got.env.data, got.env.len, payload, plen,
                   "%s: the same bytes", name);
        }
    }
    size_t h = wsg_mux_header(in, WSG_ENV_CLOSE, 0, 99, 4);
    memcpy(in + h, "\x0b\xb8ok", 4);
    if (is_int(decode("close the gateway forwards", in, h + 4), 18, "whole")) {
        ok(got.env.id == 99 && got.env.code == 3000,
           "echoed, it closes the same client with its own code");
    }
}

/* Checks that open payload <o> serializes to exactly <want>. */
static void
open_is(const char *name, const struct wsg_env_open *o, const char *want)
{
    size_t len = 0;
    char *s = wsg_mux_open_payload(o, &len);

    is_mem(s, len, want, strlen(want), "%s", name);
    ok(s[len] == '\0', "%s: NUL-terminated", name);
    json_error_t err;
    json_t *j =
        json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    ok(json_is_object(j), "%s: parses as an object", name);
    json_decref(j);
    free(s);
}

static void
test_open_payload(void)
{
    note("open payloads");
    static const struct wsg_str h1[] = {
        WSG_STR("origin"),
        WSG_STR("https://chat.example.com"),
        WSG_STR("user-agent"),
        WSG_STR("..."),
    };
    struct wsg_env_open o = {
        .path = WSG_STR("/chat"),
        .query = WSG_STR("room=1"),
        .remote = WSG_STR("203.0.113.7:51812"),
        .subprotocol = WSG_STR("chat"),
        .user = {NULL, 0},
        .headers = h1,
        .nheaders = 2,
    };
    open_is("the spec's example", &o,
            "{\"path\":\"/chat\",\"query\":\"room=1\","
            "\"remote\":\"203.0.113.7:51812\",\"subprotocol\":\"chat\","
            "\"user\":null,\"headers\":{\"origin\":"
            "\"https://chat.example.com\",\"user-agent\":\"...\"}}");

    struct wsg_env_open none = {.subprotocol = {NULL, 0}, .user = {NULL, 0}};
    open_is("nothing set", &none,
            "{\"path\":\"\",\"query\":\"\",\"remote\":\"\","
            "\"subprotocol\":null,\"user\":null,\"headers\":{}}");

    static const struct wsg_str h2[] = {
        WSG_STR("cookie"),  WSG_STR("a=1"),
        WSG_STR("x-latin"), WSG_STR("caf\xe9"),
        WSG_STR("cookie"),  WSG_STR("b=2"),
        WSG_STR("x-odd"),   WSG_STR("q\"b\\s\n\t\x01\x7f"),
        WSG_STR("x-nul"),   {"a\0b", 3},
        WSG_STR("x-utf8"),  WSG_STR("\xe2\x82\xac"),
    };
    struct wsg_env_open odd = {
        .path = WSG_STR("/a/\xc3\xa9"),
        .query = {"", 0},
        .remote = WSG_STR("[2001:db8::1]:443"),
        .subprotocol = {"", 0},
        .user = WSG_STR("alice"),
        .headers = h2,
        .nheaders = 6,
    };
    open_is("repeats joined, Latin-1, escapes, NUL", &odd,
            "{\"path\":\"/a/\xc3\xa9\",\"query\":\"\","
            "\"remote\":\"[2001:db8::1]:443\",\"subprotocol\":\"\","
            "\"user\":\"alice\",\"headers\":{\"cookie\":\"a=1, b=2\","
            "\"x-latin\":\"caf\xc3\xa9\","
            "\"x-odd\":\"q\\\"b\\\\s\\n\\t\\u0001\x7f\","
            "\"x-nul\":\"a\\u0000b\",\"x-utf8\":\"\xe2\x82\xac\"}}");
}

int
main(void)
{
    guard_init();
    test_header();
    test_message();
    test_stream();
    test_bounds();
    test_kinds_flags();
    test_close();
    test_close_codes();
    test_symmetry();
    test_open_payload();
    return done_testing();
}
