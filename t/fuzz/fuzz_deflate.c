/*
 * Fuzz target for src/ws/deflate.h. The input is read as one
 * Sec-WebSocket-Extensions value (RFC 7692 §7.1) under two configurations,
 * then inflated as a client's message against a 64 KiB limit (§7.2.2):
 * whole, then again in two pieces into the window the first one left.
 * Whatever inflates must compress and inflate back to the same bytes.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ws/deflate.h"

/* The inflate limit: small, so that bombs are found quickly. */
#define MAX_OUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
bits_ok(int bits, int lo)
{
    return bits >= lo && bits <= 15;
}

static void
check_negotiate(const uint8_t *data, size_t size,
                const struct wsg_deflate_conf *conf)
{
    struct wsg_str v = {(const char *) data, size};
    struct wsg_deflate_params p;
    char resp[WSG_DEFLATE_RESP_MAX];

    int rc = wsg_deflate_negotiate(conf, &v, 1, &p, resp, sizeof(resp));
    if (rc != 1 && rc != 0 && rc != WSG_ERROR) {
        abort();
    }
    if (rc != 1) {
        return;
    }
    if (strncmp(resp, "permessage-deflate", 18) != 0 ||
        strlen(resp) >= sizeof(resp) || !bits_ok(p.server_max_window_bits, 9) ||
        !bits_ok(p.client_max_window_bits, 8) ||
        p.server_max_window_bits > (conf->server_max_window_bits > 9
                                        ? conf->server_max_window_bits
                                        : 9) ||
        (conf->server_no_context_takeover && !p.server_no_context_takeover)) {
        abort();
    }
    struct wsg_deflate *d = wsg_deflate_new(&p, conf);
    if (d == NULL) {
        abort();
    }
    wsg_deflate_free(d);
}

/* Checks the contract of one inflate result. */
static void
check_result(int rc, const uint8_t *out, size_t outlen)
{
    if (rc == 0) {
        if (out == NULL || outlen > MAX_OUT) {
            abort();
        }
    } else if (rc == WSG_ERROR || rc == WSG_DEFLATE_TOO_BIG) {
        if (out != NULL || outlen != 0) {
            abort();
        }
    } else {
        abort();
    }
}

/* What inflated must survive our own compressor and inflater. */
static void
check_round_trip(const struct wsg_deflate_conf *conf, const uint8_t *msg,
                 size_t len)
{
    struct wsg_deflate_params p = {false, false, 9, 9};
    struct wsg_deflate *tx = wsg_deflate_new(&p, conf);
    struct wsg_deflate *rx = wsg_deflate_new(&p, conf);
    uint8_t *z, *out = NULL;
    size_t zlen, outlen = 0;

    if (tx == NULL || rx == NULL ||
        wsg_deflate_compress(tx, msg, len, &z, &zlen) != 0) {
        abort();
    }
    if (wsg_deflate_inflate(rx, z, zlen, true, len, &out, &outlen) != 0 ||
        outlen != len || memcmp(out, msg, len) != 0) {
        abort();
    }
    free(out);
    free(z);
    wsg_deflate_free(tx);
    wsg_deflate_free(rx);
}

static void
check_inflate(const uint8_t *data, size_t size,
              const struct wsg_deflate_conf *conf)
{
    struct wsg_deflate_params p = {false, false, 15, 15};
    struct wsg_deflate *d = wsg_deflate_new(&p, conf);
    uint8_t *out = NULL;
    size_t outlen = 0;

    if (d == NULL) {
        abort();
    }
    int rc = wsg_deflate_inflate(d, data, size, true, MAX_OUT, &out, &outlen);
    check_result(rc, out, outlen);
    if (rc == 0) {
        check_round_trip(conf, out, outlen);
    }
    free(out);

    out = NULL;
    outlen = 0;
    size_t half = size / 2;
    rc = wsg_deflate_inflate(d, data, half, false, MAX_OUT, &out, &outlen);
    if (rc == 0) {
        /* data may be NULL when size is 0 */
        const uint8_t *rest = size > 0 ? data + half : data;
        rc = wsg_deflate_inflate(d, rest, size - half, true, MAX_OUT, &out,
                                 &outlen);
    }
    check_result(rc, out, outlen);
    free(out);
    wsg_deflate_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wsg_deflate_conf conf = {
        .enabled = true,
        .server_max_window_bits = 15,
        .client_max_window_bits = 15,
        .level = 6,
        .mem_level = 8,
    };
    struct wsg_deflate_conf narrow = {
        .enabled = true,
        .server_no_context_takeover = true,
        .client_no_context_takeover = true,
        .server_max_window_bits = 8,
        .client_max_window_bits = 9,
        .level = 1,
        .mem_level = 1,
    };

    check_negotiate(data, size, &conf);
    check_negotiate(data, size, &narrow);
    check_inflate(data, size, &narrow);
    return 0;
}
