/*
 * Fuzz target for src/upstream/proto_mux.h. The first input byte picks
 * max_message; the rest is what a backend sent, decoded envelope by
 * envelope as the pool does. Each verdict is compared with a plain
 * restatement of docs/backend-protocol.md, every envelope must make its
 * prefixes wait, and each accepted one must survive a trip through the
 * json codec unchanged. Any disagreement aborts.
 */
#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "upstream/proto_json.h"
#include "upstream/proto_mux.h"
#include "ws/utf8.h"
#include "ws/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
require(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_proto_mux: %s\n", what);
        abort();
    }
}

static uint64_t
be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* The payload bound of <kind> under <max>, from the spec's text. */
static uint64_t
bound(uint8_t kind, size_t max)
{
    if (kind == WSG_ENV_MESSAGE) {
        uint64_t cap = (uint64_t) INT_MAX - 14;
        return max < cap ? max : cap;
    }
    if (kind == WSG_ENV_OPEN) {
        return 16u * 1024 * 1024;
    }
    if (kind == WSG_ENV_PAUSE || kind == WSG_ENV_RESUME) {
        return 0;
    }
    return 125;
}

/* What decoding <p>/<len> must give: a length, WSG_AGAIN or WSG_ERROR. */
static int
expected(const uint8_t *p, size_t len, size_t max)
{
    if (len == 0) {
        return WSG_AGAIN;
    }
    if (p[0] == 0 || p[0] > 7) {
        return WSG_ERROR;
    }
    if (len < 2) {
        return WSG_AGAIN;
    }
    if (p[1] > 1) {
        return WSG_ERROR;
    }
    if (len < 14) {
        return WSG_AGAIN;
    }
    uint64_t n = be(p + 10, 4);
    if (n > bound(p[0], max)) {
        return WSG_ERROR;
    }
    if (len - 14 < n) {
        return WSG_AGAIN;
    }
    if (p[0] == WSG_ENV_CLOSE && n > 0) {
        uint16_t code = n >= 2 ? (uint16_t) be(p + 14, 2) : 0;
        /* 1006 too: the gateway's own, echoed by an echo backend */
        bool sendable = (code >= 1000 && code <= 1003) || code == 1006 ||
                        (code >= 1007 && code <= 1014) ||
                        (code >= 3000 && code <= 4999);
        if (n == 1 || !sendable || !wsg_utf8_valid(p + 16, n - 2)) {
            return WSG_ERROR;
        }
    }
    return (int) (14 + n);
}

/* Checks the fields of envelope <env>, decoded from <p> in <rc> bytes. */
static void
fields_checked(const uint8_t *p, int rc, const struct wsg_envelope *env)
{
    bool ping = p[0] == WSG_ENV_PING || p[0] == WSG_ENV_PONG;
    size_t n = (size_t) rc - 14;

    require(env->kind == p[0], "wrong kind");
    require(env->binary == (p[0] == WSG_ENV_MESSAGE && p[1] == 1),
            "wrong binary flag");
    require(env->id == (ping ? 0 : be(p + 2, 8)), "wrong id");
    require(env->data == p + 14 && env->len == n, "wrong payload");
    if (p[0] == WSG_ENV_CLOSE) {
        require(env->code == (n == 0 ? 1005 : be(p + 14, 2)), "wrong code");
        require(n == 0 ? env->reason.len == 0
                       : (env->reason.p == (const char *) p + 16 &&
                          env->reason.len == n - 2),
                "wrong reason");
    } else {
        require(env->code == 0 && env->reason.len == 0,
                "a code or reason outside a close");
    }
    bool text_ok = wsg_utf8_valid(env->data, env->len);
    require(wsg_mux_check_text(env) ==
                (p[0] != WSG_ENV_MESSAGE || env->binary || text_ok),
            "wsg_mux_check_text misjudged");

    uint8_t hdr[WSG_MUX_HEADER];
    wsg_mux_header(hdr, env->kind, env->binary ? WSG_MUX_FLAG_BINARY : 0,
                   env->id, (uint32_t) env->len);
    if (p[0] == WSG_ENV_MESSAGE ||
        (p[1] == 0 && (!ping || be(p + 2, 8) == 0))) {
        require(memcmp(hdr, p, WSG_MUX_HEADER) == 0,
                "the header written back differs (symmetry)");
    }
}

/*
 * Sends <env> through the json codec and back: everything the json
 * protocol can carry must come back as it was. Open is skipped (its json
 * line is built from other fields) and so is what json cannot carry: ids
 * of 2^53 or more (the gateway's own never get there; a backend's are
 * only looked up) and bytes that are not UTF-8 in a text or ping.
 */
static void
json_checked(const struct wsg_envelope *env)
{
    bool ping = env->kind == WSG_ENV_PING || env->kind == WSG_ENV_PONG;

    if (env->kind == WSG_ENV_OPEN || env->id >= (UINT64_C(1) << 53) ||
        ((ping || (env->kind == WSG_ENV_MESSAGE && !env->binary)) &&
         !wsg_utf8_valid(env->data, env->len))) {
        return;
    }
    size_t len = 0;
    char *line = wsg_json_encode(env, NULL, &len);
    require(len > 0 && line[len - 1] == '\n', "json line without its end");
    require(wsg_json_line_end((const uint8_t *) line, len, len) == (int) len,
            "json line with a newline inside");

    struct wsg_envelope back;
    uint8_t *owned = NULL;
    const char *why = NULL;
    int rc = wsg_json_decode((const uint8_t *) line, len, &back, &owned, &why);
    if (rc != 0) {
        fprintf(stderr, "line: %s(%s)\n", line, why ? why : "?");
    }
    require(rc == 0, "a mux envelope refused as json");
    require(back.kind == env->kind && back.id == env->id &&
                back.binary == env->binary && back.code == env->code,
            "json changed kind, id, binary or code");
    require(back.len == env->len &&
                (env->len == 0 || memcmp(back.data, env->data, env->len) == 0),
            "json changed the payload");
    require(back.reason.len == env->reason.len &&
                (env->reason.len == 0 ||
                 memcmp(back.reason.p, env->reason.p, env->reason.len) == 0),
            "json changed the reason");
    free(owned);
    free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t maxes[8] = {0,    1,           16,      125,
                                    1000, 1024 * 1024, INT_MAX, SIZE_MAX};

    if (size == 0) {
        return 0;
    }
    size_t max = maxes[data[0] & 7];
    /* an exact-size copy, so reading past the input is caught */
    size_t left = size - 1;
    uint8_t *in = malloc(left ? left : 1);
    require(in != NULL, "malloc failed");
    memcpy(in, data + 1, left);

    const uint8_t *p = in;
    for (;;) {
        struct wsg_envelope env;
        const char *why = NULL;
        int rc = wsg_mux_decode(p, left, max, &env, &why);
        require(rc == expected(p, left, max), "wrong verdict");
        if (rc == WSG_ERROR) {
            require(why != NULL && why[0] != '\0', "an error without why");
        }
        if (rc <= 0) {
            break;
        }
        fields_checked(p, rc, &env);
        for (size_t k = 0; k < (size_t) rc; k++) {
            struct wsg_envelope e;
            require(wsg_mux_decode(p, k, max, &e, &why) == WSG_AGAIN,
                    "a prefix of an envelope did not wait");
        }
        json_checked(&env);
        p += rc;
        left -= (size_t) rc;
    }
    free(in);
    return 0;
}
