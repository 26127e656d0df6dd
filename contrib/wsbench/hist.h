/*
 * A latency histogram in the HDR style: log-linear buckets of nanoseconds
 * that keep two significant digits (under 0.8% error) from 1 ns to 60 s in
 * a fixed 30 KiB array, so recording is an index computation and an add.
 */
#ifndef WSB_HIST_H
#define WSB_HIST_H

#include <stdint.h>

/* 256 sub-buckets (2^8) give 2 significant decimal digits: 2 * 10^2 <= 256 */
#define WSB_HIST_SUB_BITS 8
/* 60 s is below 2^36 ns: the top bucket is 36 - 8 = 28, so
 * (28 + 2) * 128 slots cover every index */
#define WSB_HIST_MAX_NS   60000000000ULL
#define WSB_HIST_SLOTS    (30 * 128)

struct wsb_hist {
    uint64_t counts[WSB_HIST_SLOTS];
    uint64_t total;  /* samples recorded */
    uint64_t sum_ns; /* for the mean */
    uint64_t min_ns;
    uint64_t max_ns; /* exact, clamped to WSB_HIST_MAX_NS */
};

/* Empties <h>. */
void wsb_hist_init(struct wsb_hist *h);

/* Adds one sample of <ns>; values past 60 s count as 60 s. */
void wsb_hist_record(struct wsb_hist *h, uint64_t ns);

/* Adds every sample of <from> to <to>. */
void wsb_hist_merge(struct wsb_hist *to, const struct wsb_hist *from);

/*
 * The value at percentile <p> (0 < p <= 100) in ns: the highest value of
 * the bucket holding that sample, never above the largest sample. Returns
 * 0 when <h> is empty.
 */
uint64_t wsb_hist_percentile(const struct wsb_hist *h, double p);

#endif
