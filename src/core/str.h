/*
 * Length-carrying strings and the unit parsers of the directives file.
 * A wsg_str is a slice: never assumed NUL-terminated, always compared with
 * its length.
 */
#ifndef WSG_STR_H
#define WSG_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wsgate_module.h" /* struct wsg_str */

#define WSG_STR(lit) ((struct wsg_str){(lit), sizeof(lit) - 1})

static inline bool
wsg_str_eq(struct wsg_str a, const char *lit)
{
    size_t n = strlen(lit);

    return a.len == n && memcmp(a.p, lit, n) == 0;
}

/* Case-insensitive ASCII comparison of <a> with the NUL-terminated <lit>. */
bool wsg_str_caseeq(struct wsg_str a, const char *lit);

/*
 * Parses a decimal unsigned integer from <s>/<len> into <out>.
 * Refuses empty input, signs, spaces, and values above <max>.
 * Returns 0 or WSG_ERROR.
 */
int wsg_str_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/*
 * Parses a size: digits with an optional suffix k, m or g (either case,
 * powers of 1024). "512", "64k", "1m", "1g". Refuses overflow past
 * SIZE_MAX and anything else. Returns 0 or WSG_ERROR.
 */
int wsg_str_parse_size(const char *s, size_t len, uint64_t *out);

/*
 * Parses a time into milliseconds: digits with an optional unit ms, s, m, h
 * or d; a bare number means seconds (nginx). Several parts may be joined
 * ("1m30s"), largest unit first. Refuses overflow and anything else.
 * Returns 0 or WSG_ERROR.
 */
int wsg_str_parse_msec(const char *s, size_t len, uint64_t *out);

#endif
