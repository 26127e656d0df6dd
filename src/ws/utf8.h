/*
 * Incremental UTF-8 validation (RFC 3629, Unicode Table 3-7): a text
 * message is checked as its fragments arrive, and fails at the first byte
 * that cannot start or continue a well-formed sequence, so a bad message
 * is refused before the rest of it is read.
 */
#ifndef WSG_UTF8_H
#define WSG_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The state between two calls; start (and end a valid text) at this. */
#define WSG_UTF8_ACCEPT 0

/*
 * Validates <len> bytes at <p>, continuing from *<state>.
 * Returns 0 when every byte so far is valid (the text may end inside a
 * sequence: check *<state> == WSG_UTF8_ACCEPT at its end), or WSG_ERROR at
 * the first invalid byte: overlongs, surrogates (U+D800..U+DFFF), code
 * points above U+10FFFF, stray continuation bytes, truncated sequences
 * followed by a non-continuation byte.
 */
int wsg_utf8_validate(uint32_t *state, const uint8_t *p, size_t len);

/* Validates a complete text: true when all of <p>/<len> is UTF-8. */
bool wsg_utf8_valid(const uint8_t *p, size_t len);

#endif
