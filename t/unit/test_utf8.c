/*
 * Tests of src/ws/utf8.h, the incremental UTF-8 validator. Every vector is
 * validated whole, split at every byte boundary, byte by byte and prefix
 * by prefix, from a copy that ends exactly at a PROT_NONE page, so the
 * word-at-a-time ASCII skip faults if it reads one byte past <len>. An
 * invalid vector names the offset of its first bad byte, and the validator
 * must fail at that byte and not before or after it.
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
#include "ws/utf8.h"

/* Expands a string literal to its bytes and length, NULs included. */
#define LIT(s) (const uint8_t *) (s), sizeof(s) - 1

/* The longest vector the guard buffer holds. */
#define GUARD_MAX 4096

enum verdict {
    VALID,      /* a complete text */
    INCOMPLETE, /* every byte valid, but it ends inside a sequence */
    INVALID,    /* fails at byte <bad_at> */
};

static const char *const verdict_names[] = {"valid", "incomplete", "invalid"};

#include "guard.h"

/* The verdict of one wsg_utf8_validate() run over <len> bytes. */
static enum verdict
one_go(const uint8_t *p, size_t len)
{
    uint32_t st = WSG_UTF8_ACCEPT;

    if (wsg_utf8_validate(&st, p, len) != 0) {
        return INVALID;
    }
    return st == WSG_UTF8_ACCEPT ? VALID : INCOMPLETE;
}

/* The verdict of validating <p> in two pieces, split after <k> bytes. */
static enum verdict
two_pieces(const uint8_t *p, size_t len, size_t k)
{
    uint32_t st = WSG_UTF8_ACCEPT;

    if (wsg_utf8_validate(&st, p, k) != 0) {
        return INVALID;
    }
    if (wsg_utf8_validate(&st, p + k, len - k) != 0) {
        return INVALID;
    }
    return st == WSG_UTF8_ACCEPT ? VALID : INCOMPLETE;
}

/*
 * Feeds <p> one byte a call; returns the index of the byte whose call
 * returned WSG_ERROR, or <len> when none did, with the final state in
 * *<state>.
 */
static size_t
byte_by_byte(const uint8_t *p, size_t len, uint32_t *state)
{
    *state = WSG_UTF8_ACCEPT;
    for (size_t i = 0; i < len; i++) {
        if (wsg_utf8_validate(state, p + i, 1) != 0) {
            return i;
        }
    }
    return len;
}

/*
 * Checks one vector every way: whole, in two pieces split at every
 * boundary, byte by byte, and each prefix on its own (a prefix that stops
 * before <bad_at> is fine, one that takes in <bad_at> fails).
 */
static void
vector(const char *name, const uint8_t *s, size_t len, enum verdict expected,
       size_t bad_at)
{
    const uint8_t *p = guarded(s, len);

    is_int(wsg_utf8_valid(p, len), expected == VALID, "%s: wsg_utf8_valid",
           name);
    is_str(verdict_names[one_go(p, len)], verdict_names[expected],
           "%s: in one call", name);

    size_t bad = 0;
    for (size_t k = 0; k <= len; k++) {
        if (two_pieces(p, len, k) != expected) {
            if (bad++ == 0) {
                note("%s: split after %zu bytes gives %s", name, k,
                     verdict_names[two_pieces(p, len, k)]);
            }
        }
    }
    is_int(bad, 0, "%s: same verdict split at each of %zu boundaries", name,
           len + 1);

    uint32_t st;
    size_t at = byte_by_byte(p, len, &st);
    if (expected == INVALID) {
        is_int(at, bad_at, "%s: byte by byte, fails at byte %zu", name, bad_at);
    } else {
        is_int(at, len, "%s: byte by byte, no byte fails", name);
        is_int(st == WSG_UTF8_ACCEPT, expected == VALID,
               "%s: byte by byte, final state %s ACCEPT", name,
               expected == VALID ? "is" : "is not");
    }

    bad = 0;
    for (size_t k = 0; k <= len; k++) {
        const uint8_t *q = guarded(s, k);
        uint32_t ps = WSG_UTF8_ACCEPT;
        int want = expected == INVALID && k > bad_at ? WSG_ERROR : 0;
        if (wsg_utf8_validate(&ps, q, k) != want) {
            if (bad++ == 0) {
                note("%s: prefix of %zu bytes does not return %d", name, k,
                     want);
            }
        }
    }
    is_int(bad, 0, "%s: each prefix fails exactly when it holds byte %zu", name,
           expected == INVALID ? bad_at : len);
}

static void
valid(const char *name, const uint8_t *s, size_t len)
{
    vector(name, s, len, VALID, 0);
}

static void
incomplete(const char *name, const uint8_t *s, size_t len)
{
    vector(name, s, len, INCOMPLETE, 0);
}

static void
invalid(const char *name, const uint8_t *s, size_t len, size_t bad_at)
{
    vector(name, s, len, INVALID, bad_at);
}

static void
test_valid(void)
{
    note("valid texts");
    valid("empty", LIT(""));
    valid("ASCII", LIT("Hello, world"));
    valid("NUL", LIT("\x00"));
    valid("U+007F", LIT("\x7f"));
    valid("U+0080", LIT("\xc2\x80"));
    valid("U+00E9", LIT("\xc3\xa9"));
    valid("U+07FF", LIT("\xdf\xbf"));
    valid("U+0800", LIT("\xe0\xa0\x80"));
    valid("U+20AC", LIT("\xe2\x82\xac"));
    valid("U+D7FF", LIT("\xed\x9f\xbf"));
    valid("U+E000", LIT("\xee\x80\x80"));
    valid("U+FFFD", LIT("\xef\xbf\xbd"));
    valid("U+FFFF", LIT("\xef\xbf\xbf"));
    valid("U+10000", LIT("\xf0\x90\x80\x80"));
    valid("U+1F600", LIT("\xf0\x9f\x98\x80"));
    valid("U+40000", LIT("\xf1\x80\x80\x80"));
    valid("U+FFFFF", LIT("\xf3\xbf\xbf\xbf"));
    valid("U+100000", LIT("\xf4\x80\x80\x80"));
    valid("U+10FFFF", LIT("\xf4\x8f\xbf\xbf"));
    valid("kosme", LIT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));
    valid("Hello-micro-world",
          LIT("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0"
              "\xc3\xa1-UTF-8!!"));
    valid("mixed widths", LIT("a\xc3\xa9"
                              "b\xe2\x82\xac"
                              "c\xf0\x9f\x98\x80"
                              "d"));
    valid("ASCII then 4-byte after a word", LIT("01234567\xf0\x9f\x98\x80"
                                                "89abcdef"));
}

static void
test_invalid(void)
{
    note("invalid texts");
    invalid("stray 80", LIT("\x80"), 0);
    invalid("stray BF", LIT("\xbf"), 0);
    invalid("stray continuation after ASCII", LIT("ab\x80"), 2);
    invalid("extra continuation after 2-byte", LIT("\xc2\x80\x80"), 2);
    invalid("extra continuation after 4-byte", LIT("\xf0\x90\x80\x80\x80"), 4);
    invalid("overlong C0 80", LIT("\xc0\x80"), 0);
    invalid("overlong C1 BF", LIT("\xc1\xbf"), 0);
    invalid("overlong E0 80 80", LIT("\xe0\x80\x80"), 1);
    invalid("overlong E0 9F BF", LIT("\xe0\x9f\xbf"), 1);
    invalid("overlong F0 80 80 80", LIT("\xf0\x80\x80\x80"), 1);
    invalid("overlong F0 8F BF BF", LIT("\xf0\x8f\xbf\xbf"), 1);
    invalid("surrogate ED A0 80 (U+D800)", LIT("\xed\xa0\x80"), 1);
    invalid("surrogate ED AD BF (U+DB7F)", LIT("\xed\xad\xbf"), 1);
    invalid("surrogate ED B0 80 (U+DC00)", LIT("\xed\xb0\x80"), 1);
    invalid("surrogate ED BF BF (U+DFFF)", LIT("\xed\xbf\xbf"), 1);
    invalid("surrogate pair", LIT("\xed\xa0\x80\xed\xb0\x80"), 1);
    invalid("F4 90 80 80 (U+110000)", LIT("\xf4\x90\x80\x80"), 1);
    invalid("F4 BF BF BF", LIT("\xf4\xbf\xbf\xbf"), 1);
    invalid("5-byte form F8 88 80 80 80", LIT("\xf8\x88\x80\x80\x80"), 0);
    invalid("6-byte form FC 84 80 80 80 80", LIT("\xfc\x84\x80\x80\x80\x80"),
            0);
    invalid("FE", LIT("\xfe"), 0);
    invalid("FF", LIT("\xff"), 0);
    invalid("lead after lead", LIT("\xc2\xc2\x80"), 1);
    invalid("truncated 2-byte then ASCII",
            LIT("\xc2"
                "A"),
            1);
    invalid("truncated 3-byte then ASCII",
            LIT("\xe2\x82"
                "A"),
            2);
    invalid("truncated 4-byte then ASCII",
            LIT("\xf0\x9f\x98"
                "A"),
            3);
    invalid("truncated 3-byte then a lead", LIT("\xe2\x82\xe2\x82\xac"), 2);
    invalid("16 ASCII then 80", LIT("0123456789abcdef\x80"), 16);
    invalid("17 ASCII then FF then ASCII",
            LIT("0123456789abcdefg\xff"
                "0123456789"),
            17);

    note("incomplete texts: valid so far, state not ACCEPT");
    incomplete("C2", LIT("\xc2"));
    incomplete("E2 82", LIT("\xe2\x82"));
    incomplete("E0 A0", LIT("\xe0\xa0"));
    incomplete("ED 9F", LIT("\xed\x9f"));
    incomplete("F0 9F 98", LIT("\xf0\x9f\x98"));
    incomplete("F4 8F BF", LIT("\xf4\x8f\xbf"));
    incomplete("F4", LIT("\xf4"));
    incomplete("ASCII word then E2", LIT("abcdefgh\xe2"));
}

/* Every lead byte F5..FF, and every byte pair of the surrogate range. */
static void
test_byte_ranges(void)
{
    char name[64];

    note("lead bytes F5..FF");
    for (unsigned b = 0xF5; b <= 0xFF; b++) {
        uint8_t s[4] = {(uint8_t) b, 0x80, 0x80, 0x80};
        snprintf(name, sizeof(name), "lead %02X 80 80 80", b);
        invalid(name, s, sizeof(s), 0);
    }

    size_t bad = 0;
    for (unsigned b1 = 0xA0; b1 <= 0xBF; b1++) {
        for (unsigned b2 = 0x80; b2 <= 0xBF; b2++) {
            uint8_t s[3] = {0xED, (uint8_t) b1, (uint8_t) b2};
            uint32_t st;
            if (wsg_utf8_valid(s, 3) || byte_by_byte(s, 3, &st) != 1) {
                bad++;
            }
        }
    }
    is_int(bad, 0, "all 2048 surrogates ED A0 80 .. ED BF BF fail at byte 1");

    bad = 0;
    for (unsigned b = 0x80; b <= 0xBF; b++) {
        uint8_t s[2] = {'a', (uint8_t) b};
        uint32_t st;
        if (byte_by_byte(s, 2, &st) != 1) {
            bad++;
        }
    }
    is_int(bad, 0, "every continuation byte 80..BF alone fails");
}

/* The encoding of <cp> into <out>; returns its length. */
static size_t
encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t) (0xC0 | cp >> 6);
        out[1] = (uint8_t) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t) (0xE0 | cp >> 12);
        out[1] = (uint8_t) (0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t) (0xF0 | cp >> 18);
    out[1] = (uint8_t) (0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t) (0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t) (0x80 | (cp & 0x3F));
    return 4;
}

/* Each code point's shortest encoding: scalar values pass, surrogates not. */
static void
test_every_code_point(void)
{
    size_t bad_scalar = 0, bad_surrogate = 0;
    uint32_t first_scalar = 0, first_surrogate = 0;

    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        uint8_t s[4];
        size_t n = encode(cp, s);
        bool is_surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        if (wsg_utf8_valid(s, n) == is_surrogate) {
            if (is_surrogate && bad_surrogate++ == 0) {
                first_surrogate = cp;
            } else if (!is_surrogate && bad_scalar++ == 0) {
                first_scalar = cp;
            }
        }
    }
    if (!is_int(bad_scalar, 0, "every scalar value U+0000..U+10FFFF valid")) {
        note("first refused: U+%04X", (unsigned) first_scalar);
    }
    if (!is_int(bad_surrogate, 0, "every surrogate U+D800..U+DFFF invalid")) {
        note("first accepted: U+%04X", (unsigned) first_surrogate);
    }
}

/* ASCII runs of every length 0..40 cross the eight-byte skip every way. */
static void
test_ascii_runs(void)
{
    uint8_t s[64];
    char name[64];

    note("ASCII runs");
    for (size_t n = 0; n <= 40; n++) {
        memset(s, 'a' + (int) (n % 26), n);
        snprintf(name, sizeof(name), "%zu ASCII bytes", n);
        valid(name, s, n);
    }
    for (size_t n = 0; n <= 40; n++) {
        memset(s, 'x', n);
        s[n] = 0x80;
        memset(s + n + 1, 'y', 8);
        snprintf(name, sizeof(name), "%zu ASCII, 80, 8 ASCII", n);
        invalid(name, s, n + 9, n);
    }
    for (size_t n = 0; n <= 40; n++) {
        memset(s, 'x', n);
        s[n] = 0xE2;
        s[n + 1] = 0x82;
        snprintf(name, sizeof(name), "%zu ASCII, E2 82 at the end", n);
        incomplete(name, s, n + 2);
    }
}

/* A character, a bad byte or a cut sequence at every offset of two words. */
static void
test_every_offset(void)
{
    static const struct {
        const char *what;
        const uint8_t *p;
        size_t len;
    } chars[] = {
        {"C3 A9", LIT("\xc3\xa9")},
        {"E2 82 AC", LIT("\xe2\x82\xac")},
        {"F0 9F 98 80", LIT("\xf0\x9f\x98\x80")},
    };
    uint8_t s[32];
    char name[80];

    note("non-ASCII at every offset within a word");
    for (size_t c = 0; c < WSG_NELEMS(chars); c++) {
        for (size_t off = 0; off < 16; off++) {
            memset(s, 'w', 24);
            memcpy(s + off, chars[c].p, chars[c].len);
            snprintf(name, sizeof(name), "%s at offset %zu of 24",
                     chars[c].what, off);
            valid(name, s, 24);
        }
    }
    for (size_t off = 0; off < 16; off++) {
        memset(s, 'w', 24);
        s[off] = 0xC0;
        s[off + 1] = 0x80;
        snprintf(name, sizeof(name), "overlong C0 80 at offset %zu of 24", off);
        invalid(name, s, 24, off);

        memset(s, 'w', 24);
        s[off] = 0xED;
        s[off + 1] = 0xA0;
        s[off + 2] = 0x80;
        snprintf(name, sizeof(name), "surrogate at offset %zu of 24", off);
        invalid(name, s, 24, off + 1);

        memset(s, 'w', 24);
        s[off] = 0xF0;
        s[off + 1] = 0x9F;
        snprintf(name, sizeof(name), "cut F0 9F at offset %zu of 24", off);
        invalid(name, s, 24, off + 2);
    }
}

/*
 * The Autobahn TestSuite's UTF-8 payloads (case 6.3.1 is kosme, then the
 * surrogate ED A0 80, then "edited"), whole and split every way.
 */
static void
test_autobahn(void)
{
    note("Autobahn UTF-8 payloads");
    valid("kosme", LIT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));
    /* byte 11 is ED, which may still start U+D000..U+D7FF; A0 cannot */
    invalid("6.3.1 kosme, ED A0 80, edited",
            LIT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
                "edited"),
            12);
    invalid("ED A0 80 alone", LIT("\xed\xa0\x80"), 1);
    invalid("lone continuation then kosme",
            LIT("\x80\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), 0);
    invalid("kosme then a lone continuation",
            LIT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\x80"), 11);
    invalid("overlong '/' C0 AF", LIT("\xc0\xaf"), 0);
    invalid("overlong '/' E0 80 AF", LIT("\xe0\x80\xaf"), 1);
    invalid("overlong '/' F0 80 80 AF", LIT("\xf0\x80\x80\xaf"), 1);
    valid("U+FFFE noncharacter is well-formed", LIT("\xef\xbf\xbe"));
}

int
main(void)
{
    guard_init();
    test_valid();
    test_invalid();
    test_byte_ranges();
    test_every_code_point();
    test_ascii_runs();
    test_every_offset();
    test_autobahn();
    return done_testing();
}
