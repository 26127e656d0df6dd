/*
 * Unit parsers for sizes and times. They take slices straight from the
 * lexer, so they never read past <len> and never call strtol (which wants a
 * NUL and accepts signs and spaces).
 */
#include "config.h"

#include "core/str.h"

#include <ctype.h>

#include "core/core.h"

bool
wsg_str_caseeq(struct wsg_str a, const char *lit)
{
    size_t n = strlen(lit);

    if (a.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (tolower((unsigned char) a.p[i]) !=
            tolower((unsigned char) lit[i])) {
            return false;
        }
    }
    return true;
}

/* Reads leading digits; returns how many, 0 on none, -1 on overflow. */
static int
digits(const char *s, size_t len, uint64_t *out, size_t *used)
{
    uint64_t v = 0;
    size_t i = 0;

    while (i < len && s[i] >= '0' && s[i] <= '9') {
        unsigned d = (unsigned) (s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
        i++;
    }
    *out = v;
    *used = i;
    return i > 0 ? 1 : 0;
}

int
wsg_str_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v;
    size_t used;

    if (digits(s, len, &v, &used) != 1 || used != len || v > max) {
        return WSG_ERROR;
    }
    *out = v;
    return 0;
}

int
wsg_str_parse_size(const char *s, size_t len, uint64_t *out)
{
    uint64_t v, scale = 1;
    size_t used;

    if (digits(s, len, &v, &used) != 1) {
        return WSG_ERROR;
    }
    if (used + 1 == len) {
        switch (s[used]) {
        case 'k':
        case 'K':
            scale = 1024;
            break;
        case 'm':
        case 'M':
            scale = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            scale = 1024 * 1024 * 1024;
            break;
        default:
            return WSG_ERROR;
        }
    } else if (used != len) {
        return WSG_ERROR;
    }
    if (v > SIZE_MAX / scale) {
        return WSG_ERROR;
    }
    *out = v * scale;
    return 0;
}

/* Milliseconds per unit, matched longest first so "ms" is not "m" + "s". */
static uint64_t
unit_ms(const char *s, size_t len, size_t *used)
{
    if (len >= 2 && s[0] == 'm' && s[1] == 's') {
        *used = 2;
        return 1;
    }
    *used = 1;
    switch (len ? s[0] : '\0') {
    case 's':
        return 1000;
    case 'm':
        return 60 * 1000;
    case 'h':
        return 60 * 60 * 1000;
    case 'd':
        return 24 * 60 * 60 * 1000;
    default:
        *used = 0;
        return 0;
    }
}

int
wsg_str_parse_msec(const char *s, size_t len, uint64_t *out)
{
    uint64_t total = 0, last_unit = UINT64_MAX;
    size_t i = 0;

    if (len == 0) {
        return WSG_ERROR;
    }
    while (i < len) {
        uint64_t v, unit;
        size_t used;

        if (digits(s + i, len - i, &v, &used) != 1) {
            return WSG_ERROR;
        }
        i += used;
        unit = unit_ms(s + i, len - i, &used);
        if (unit == 0) {
            /* a bare number is seconds, and only as the whole value */
            if (i != len || total != 0 || last_unit != UINT64_MAX) {
                return WSG_ERROR;
            }
            unit = 1000;
        }
        i += used;
        /* "1m30s" yes, "30s1m" and "1s1s" no: units strictly decrease */
        if (unit >= last_unit) {
            return WSG_ERROR;
        }
        last_unit = unit;
        if (v > (UINT64_MAX - total) / unit) {
            return WSG_ERROR;
        }
        total += v * unit;
    }
    *out = total;
    return 0;
}
