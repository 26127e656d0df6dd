/*
 * Fuzz target for src/upstream/proto_json.h. The first input byte picks
 * the line limit; the rest is what a backend sent, framed into lines and
 * decoded as the pool does. Framing is compared with a plain memchr
 * restatement; each decoded envelope must obey the spec's rules, encode
 * to a line that decodes to the same envelope and encodes to the same
 * line again, and accepted base64 must be exactly what a plain encoder
 * writes for the bytes it gave (so only canonical base64 gets through).
 */
#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "upstream/proto_json.h"
#include "ws/utf8.h"
#include "ws/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
require(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_proto_json: %s\n", what);
        abort();
    }
}

/* What wsg_json_line_end must say for <p>/<len> under <max>. */
static int
expected_end(const uint8_t *p, size_t len, size_t max)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n') {
            return i <= max ? (int) i + 1 : WSG_ERROR;
        }
        if (i >= max) {
            return WSG_ERROR;
        }
    }
    return WSG_AGAIN;
}

/* RFC 4648 base64 with padding, written plainly; a malloc'd string. */
static char *
base64(const uint8_t *p, size_t len)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc((len + 2) / 3 * 4 + 1);
    size_t n = 0;

    require(s != NULL, "malloc failed");
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t) p[i] << 16;
        v |= i + 1 < len ? (uint32_t) p[i + 1] << 8 : 0;
        v |= i + 2 < len ? p[i + 2] : 0;
        s[n++] = abc[v >> 18];
        s[n++] = abc[(v >> 12) & 63];
        s[n++] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
        s[n++] = i + 2 < len ? abc[v & 63] : '=';
    }
    s[n] = '\0';
    return s;
}

/* The "binary" member of <line> must be the plain encoding of <env>'s. */
static void
base64_checked(const uint8_t *line, size_t len, const struct wsg_envelope *env)
{
    json_error_t err;
    json_t *j = json_loadb((const char *) line, len,
                           JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    require(j != NULL, "an accepted line jansson does not parse");
    const json_t *b = json_object_get(j, "binary");
    require(json_is_string(b), "binary without a binary string");
    char *want = base64(env->data, env->len);
    require(strlen(want) == json_string_length(b) &&
                memcmp(want, json_string_value(b), strlen(want)) == 0,
            "base64 accepted that is not the canonical form of its bytes");
    free(want);
    json_decref(j);
}

/* Checks what the spec promises of a decoded envelope. */
static void
rules_checked(const struct wsg_envelope *env)
{
    bool ping = env->kind == WSG_ENV_PING || env->kind == WSG_ENV_PONG;

    require(env->kind >= WSG_ENV_OPEN && env->kind <= WSG_ENV_RESUME,
            "an unknown kind accepted");
    require(env->id < (UINT64_C(1) << 53), "an id of 2^53 or more");
    require(!ping || env->id == 0, "a ping or pong with an id");
    require(env->binary == (env->binary && env->kind == WSG_ENV_MESSAGE),
            "binary outside a message");
    if (env->kind == WSG_ENV_MESSAGE && !env->binary) {
        require(wsg_utf8_valid(env->data, env->len), "text not UTF-8");
    }
    if (ping) {
        require(env->len <= 125 && wsg_utf8_valid(env->data, env->len),
                "ping data over 125 bytes or not UTF-8");
    }
    if (env->kind == WSG_ENV_CLOSE) {
        bool none = env->code == WSG_WS_NO_STATUS;
        require(none || env->code == WSG_WS_ABNORMAL ||
                    wsg_ws_close_code_valid(env->code),
                "a close code that may not be sent");
        require(env->reason.len <= 123 &&
                    wsg_utf8_valid((const uint8_t *) env->reason.p,
                                   env->reason.len),
                "a reason over 123 bytes or not UTF-8");
        require(none ? env->len == 0 && env->reason.len == 0
                     : env->len == 2 + env->reason.len &&
                           (env->data[0] << 8 | env->data[1]) == env->code &&
                           (const uint8_t *) env->reason.p == env->data + 2,
                "close data is not the mux close payload");
    }
}

static bool
same_env(const struct wsg_envelope *a, const struct wsg_envelope *b)
{
    return a->kind == b->kind && a->id == b->id && a->binary == b->binary &&
           a->code == b->code && a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0) &&
           a->reason.len == b->reason.len &&
           (a->reason.len == 0 ||
            memcmp(a->reason.p, b->reason.p, a->reason.len) == 0);
}

/* Encodes <env>, decodes the line, and encodes that again. */
static void
round_trip(const struct wsg_envelope *env)
{
    size_t n1 = 0, n2 = 0;
    char *l1 = wsg_json_encode(env, NULL, &n1);
    require(wsg_json_line_end((const uint8_t *) l1, n1, n1) == (int) n1,
            "an encoded line is not one line");

    struct wsg_envelope back;
    uint8_t *owned = NULL;
    const char *why = NULL;
    require(wsg_json_decode((const uint8_t *) l1, n1, &back, &owned, &why) == 0,
            "an encoded line is refused");
    if (env->kind != WSG_ENV_OPEN) {
        require(same_env(env, &back), "a round trip changed the envelope");
    }
    char *l2 = wsg_json_encode(&back, NULL, &n2);
    require(env->kind == WSG_ENV_OPEN || (n1 == n2 && memcmp(l1, l2, n1) == 0),
            "encoding is not stable");
    free(l2);
    free(owned);
    free(l1);
}

/* Decodes one line <p>/<len> (with its '\n', or the unframed rest). */
static void
line_checked(const uint8_t *p, size_t len)
{
    struct wsg_envelope env, bare;
    uint8_t *owned = NULL, *owned2 = NULL;
    const char *why = NULL, *why2 = NULL;

    int rc = wsg_json_decode(p, len, &env, &owned, &why);
    require(rc == 0 || rc == WSG_ERROR, "an odd result");
    if (rc != 0) {
        require(owned == NULL && why != NULL && why[0] != '\0',
                "an error leaves memory or no reason");
        return;
    }
    rules_checked(&env);
    if (env.binary) {
        base64_checked(p, len, &env);
    }
    if (len > 0 && p[len - 1] == '\n') {
        int rc2 = wsg_json_decode(p, len - 1, &bare, &owned2, &why2);
        require(rc2 == 0 && same_env(&env, &bare),
                "a line decodes otherwise without its newline");
        free(owned2);
    }
    round_trip(&env);
    free(owned);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t maxes[4] = {0, 64, 4096, SIZE_MAX};

    if (size == 0) {
        return 0;
    }
    size_t max = maxes[data[0] & 3];
    size_t left = size - 1;
    /* an exact-size copy, so reading past the input is caught */
    uint8_t *in = malloc(left ? left : 1);
    require(in != NULL, "malloc failed");
    memcpy(in, data + 1, left);

    const uint8_t *p = in;
    for (;;) {
        int rc = wsg_json_line_end(p, left, max);
        require(rc == expected_end(p, left, max), "wrong line end");
        if (rc <= 0) {
            /* what is left is decoded too, as a line without a '\n' */
            line_checked(p, left);
            break;
        }
        line_checked(p, (size_t) rc);
        p += rc;
        left -= (size_t) rc;
    }
    free(in);
    return 0;
}
