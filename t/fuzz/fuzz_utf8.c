/*
 * Fuzz target for src/ws/utf8.h. The first input byte picks a split point
 * and the rest is the text. The validator must agree with a reference
 * decoder written from code-point arithmetic (not tables): on the verdict,
 * on the byte where a bad text fails, and on whether a good prefix ends
 * inside a sequence, whole, in two pieces and byte by byte.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ws/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Byte by byte costs a call a byte; longer inputs skip that pass. */
#define BYTEWISE_MAX 4096

static void
require(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_utf8: %s\n", what);
        abort();
    }
}

/*
 * Whether some scalar value of an encoding of <min>.. lies in [lo, hi]:
 * not below the shortest form's <min>, not above U+10FFFF, and not all
 * surrogates.
 */
static bool
reachable(uint32_t lo, uint32_t hi, uint32_t min)
{
    if (lo < min) {
        lo = min;
    }
    if (hi > 0x10FFFF) {
        hi = 0x10FFFF;
    }
    if (lo > hi) {
        return false;
    }
    return !(lo >= 0xD800 && hi <= 0xDFFF);
}

/*
 * Returns the length of the longest prefix of <p>/<len> that some valid
 * text starts with, which is the index of the first bad byte when it is
 * below <len>. Sets *<complete> when that prefix ends between characters.
 * After each byte of a sequence, the code points its remaining bytes could
 * still make form a range; the byte is bad once no scalar value is left.
 */
static size_t
ref_scan(const uint8_t *p, size_t len, bool *complete)
{
    size_t i = 0;

    *complete = true;
    while (i < len) {
        uint8_t b = p[i];
        uint32_t cp, min;
        size_t n;

        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xE0) == 0xC0) {
            n = 2;
            cp = b & 0x1F;
            min = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            n = 3;
            cp = b & 0x0F;
            min = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            n = 4;
            cp = b & 0x07;
            min = 0x10000;
        } else {
            return i;
        }
        for (size_t k = 0; k < n; k++) {
            if (k > 0) {
                if (i + k == len) {
                    *complete = false;
                    return len;
                }
                uint8_t c = p[i + k];
                if ((c & 0xC0) != 0x80) {
                    return i + k;
                }
                cp = cp << 6 | (c & 0x3F);
            }
            unsigned rest = 6 * (unsigned) (n - 1 - k);
            uint32_t lo = cp << rest;
            uint32_t hi = lo | ((UINT32_C(1) << rest) - 1);
            if (!reachable(lo, hi, min)) {
                return i + k;
            }
        }
        i += n;
    }
    return len;
}

/* Validates <p> in two calls split after <k> bytes; returns the verdict. */
static int
split_verdict(const uint8_t *p, size_t len, size_t k, uint32_t *state)
{
    *state = WSG_UTF8_ACCEPT;
    if (wsg_utf8_validate(state, p, k) != 0) {
        return WSG_ERROR;
    }
    return wsg_utf8_validate(state, p + k, len - k);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t len = size - 1;
    /* an exact-size copy, so a read past <len> is caught */
    uint8_t *p = malloc(len ? len : 1);
    require(p != NULL, "malloc failed");
    memcpy(p, data + 1, len);

    bool complete;
    size_t bad = ref_scan(p, len, &complete);
    bool ref_valid = bad == len && complete;

    require(wsg_utf8_valid(p, len) == ref_valid,
            "wsg_utf8_valid disagrees with the reference");

    uint32_t st = WSG_UTF8_ACCEPT;
    int rc = wsg_utf8_validate(&st, p, len);
    require((rc == WSG_ERROR) == (bad < len), "one call: wrong verdict");
    require(rc == 0 || rc == WSG_ERROR, "one call: unknown result");
    if (rc == 0) {
        require((st == WSG_UTF8_ACCEPT) == complete, "one call: wrong state");
    }

    if (bad < len) {
        st = WSG_UTF8_ACCEPT;
        require(wsg_utf8_validate(&st, p, bad) == 0,
                "prefix before the bad byte refused");
        st = WSG_UTF8_ACCEPT;
        require(wsg_utf8_validate(&st, p, bad + 1) == WSG_ERROR,
                "prefix with the bad byte accepted");
    }

    size_t k = len ? data[0] % (len + 1) : 0;
    rc = split_verdict(p, len, k, &st);
    require((rc == WSG_ERROR) == (bad < len), "two pieces: wrong verdict");
    if (rc == 0) {
        require((st == WSG_UTF8_ACCEPT) == complete, "two pieces: wrong state");
    }

    if (len <= BYTEWISE_MAX) {
        st = WSG_UTF8_ACCEPT;
        size_t at = len;
        for (size_t i = 0; i < len; i++) {
            if (wsg_utf8_validate(&st, p + i, 1) != 0) {
                at = i;
                break;
            }
        }
        require(at == bad, "byte by byte: fails at the wrong byte");
        if (at == len) {
            require((st == WSG_UTF8_ACCEPT) == complete,
                    "byte by byte: wrong state");
        }
    }

    free(p);
    return 0;
}
