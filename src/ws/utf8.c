/*
 * UTF-8 validator: a byte-class table and a nine-state transition table
 * built from Unicode Table 3-7 (well-formed byte sequences), with a
 * word-at-a-time skip over ASCII runs, which are most chat text.
 */
#include "config.h"

#include "ws/utf8.h"

#include <string.h>

#include "core/core.h"

/*
 * Byte classes: the ranges Table 3-7 distinguishes.
 *  0 00..7F   1 80..8F   2 90..9F   3 A0..BF   4 C0..C1, F5..FF
 *  5 C2..DF   6 E0       7 E1..EC, EE..EF      8 ED
 *  9 F0      10 F1..F3  11 F4
 */
enum { NCLASS = 12 };

static uint8_t
byte_class(uint8_t b)
{
    static const uint8_t lead[64] = {
        /* C0..CF */ 4,
        4,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        /* D0..DF */ 5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        5,
        /* E0..EF */ 6,
        7,
        7,
        7,
        7,
        7,
        7,
        7,
        7,
        7,
        7,
        7,
        7,
        8,
        7,
        7,
        /* F0..FF */ 9,
        10,
        10,
        10,
        11,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
        4,
    };

    if (b < 0x80) {
        return 0;
    }
    if (b < 0xC0) {
        return b < 0x90 ? 1 : (b < 0xA0 ? 2 : 3);
    }
    return lead[b - 0xC0];
}

/*
 * States: 0 accept; 1..3 need that many continuation bytes (80..BF);
 * 4 after E0 (next A0..BF); 5 after ED (next 80..9F, no surrogates);
 * 6 after F0 (next 90..BF, no overlongs); 7 after F4 (next 80..8F, nothing
 * above U+10FFFF); 8 reject.
 */
enum { S_REJECT = 8 };

static const uint8_t transitions[9][NCLASS] = {
    /*        0  1  2  3  4  5  6  7  8  9 10 11 */
    /* 0 */ {0, 8, 8, 8, 8, 1, 4, 2, 5, 6, 3, 7},
    /* 1 */ {8, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 2 */ {8, 1, 1, 1, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 3 */ {8, 2, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 4 */ {8, 8, 8, 1, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 5 */ {8, 1, 1, 8, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 6 */ {8, 8, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 7 */ {8, 2, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8},
    /* 8 */ {8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8},
};

/* The class table, filled once: the hot loop does two lookups a byte. */
static uint8_t classes[256];
static bool classes_ready;

static void
init_classes(void)
{
    for (unsigned b = 0; b < 256; b++) {
        classes[b] = byte_class((uint8_t) b);
    }
    classes_ready = true;
}

int
wsg_utf8_validate(uint32_t *state, const uint8_t *p, size_t len)
{
    uint32_t s = *state;
    size_t i = 0;

    if (!classes_ready) {
        init_classes();
    }
    if (s == S_REJECT) {
        /* an invalid text stays invalid, whatever follows */
        return WSG_ERROR;
    }
    while (i < len) {
        /* between sequences, skip ASCII eight bytes at a time */
        if (s == WSG_UTF8_ACCEPT) {
            while (len - i >= 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & UINT64_C(0x8080808080808080)) {
                    break;
                }
                i += 8;
            }
            if (i == len) {
                break;
            }
        }
        s = transitions[s][classes[p[i]]];
        if (s == S_REJECT) {
            *state = s;
            return WSG_ERROR;
        }
        i++;
    }
    *state = s;
    return 0;
}

bool
wsg_utf8_valid(const uint8_t *p, size_t len)
{
    uint32_t s = WSG_UTF8_ACCEPT;

    return wsg_utf8_validate(&s, p, len) == 0 && s == WSG_UTF8_ACCEPT;
}
