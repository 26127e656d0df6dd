/*
 * splitmix64: a fast, small PRNG for masks, keys and payload bytes. It is
 * not cryptographic and need not be: RFC 6455 §5.3 asks masks to be
 * unpredictable to the page's script, which a load generator does not run.
 * Each thread seeds its own from RAND_bytes().
 */
#ifndef WSB_RNG_H
#define WSB_RNG_H

#include <stdint.h>

static inline uint64_t
wsb_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
