/*
 * HDR-style histogram. A value's bucket is its highest set bit above the
 * sub-bucket bits; inside a bucket the next WSB_HIST_SUB_BITS bits pick a
 * slot, so each slot spans at most 1/128 of its values.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hist.h"

#include <math.h>
#include <string.h>

#define HALF (1u << (WSB_HIST_SUB_BITS - 1))

static unsigned
slot_of(uint64_t v)
{
    /* v | 255 keeps small values in bucket 0, which is linear */
    unsigned top = 63u - (unsigned) __builtin_clzll(v | 0xff);
    unsigned bucket = top - (WSB_HIST_SUB_BITS - 1);
    return bucket * HALF + (unsigned) (v >> bucket);
}

static uint64_t
highest_of(unsigned slot)
{
    unsigned bucket = slot < 2 * HALF ? 0 : slot / HALF - 1;
    uint64_t sub = slot - bucket * HALF;
    return ((sub + 1) << bucket) - 1;
}

void
wsb_hist_init(struct wsb_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min_ns = UINT64_MAX;
}

void
wsb_hist_record(struct wsb_hist *h, uint64_t ns)
{
    if (ns > WSB_HIST_MAX_NS) {
        ns = WSB_HIST_MAX_NS;
    }
    h->counts[slot_of(ns)]++;
    h->total++;
    h->sum_ns += ns;
    if (ns < h->min_ns) {
        h->min_ns = ns;
    }
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
}

void
wsb_hist_merge(struct wsb_hist *to, const struct wsb_hist *from)
{
    for (unsigned i = 0; i < WSB_HIST_SLOTS; i++) {
        to->counts[i] += from->counts[i];
    }
    to->total += from->total;
    to->sum_ns += from->sum_ns;
    if (from->min_ns < to->min_ns) {
        to->min_ns = from->min_ns;
    }
    if (from->max_ns > to->max_ns) {
        to->max_ns = from->max_ns;
    }
}

uint64_t
wsb_hist_percentile(const struct wsb_hist *h, double p)
{
    if (h->total == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t) ceil(p / 100.0 * (double) h->total);
    if (rank < 1) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < WSB_HIST_SLOTS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = highest_of(i);
            return v < h->max_ns ? v : h->max_ns;
        }
    }
    return h->max_ns;
}
