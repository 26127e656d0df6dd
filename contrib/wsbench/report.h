/*
 * What a run counted, and its two printed forms: a table for people and,
 * with --json, one JSON object on stdout for scripts. Each thread fills its
 * own struct wsb_stats; main() merges them after the threads have ended.
 */
#ifndef WSB_REPORT_H
#define WSB_REPORT_H

#include <stdint.h>

#include "hist.h"
#include "options.h"

enum wsb_err {
    WSB_ERR_CONNECT,   /* TCP connect failed */
    WSB_ERR_HANDSHAKE, /* TLS or HTTP upgrade failed */
    WSB_ERR_PROTOCOL,  /* a frame broke RFC 6455 */
    WSB_ERR_CLOSED,    /* the server closed or reset an open connection */
    WSB_ERR_MISMATCH,  /* an echo differed from what was sent */
    WSB_ERR_TIMEOUT,   /* connect, upgrade or echo took over --timeout */
    WSB_ERR_COUNT,
};

struct wsb_stats {
    uint64_t handshakes;     /* upgrades that succeeded, whole run */
    uint64_t handshakes_win; /* of which in the measured window */
    uint64_t hs_last_ns;     /* monotonic time of the last one */
    uint64_t sent;           /* messages sent in the window */
    uint64_t sent_bytes;     /* their payload bytes */
    uint64_t messages;       /* verified echoes (room: deliveries) received
                                in the window */
    uint64_t bytes;          /* their payload bytes */
    uint64_t unsent;      /* open loop: due messages no connection could take */
    uint64_t established; /* idle: connections that were upgraded */
    uint64_t held;        /* idle: connections open when the hold ended */
    uint64_t errors[WSB_ERR_COUNT]; /* whole run, warm-up included */
    char first_error[160];          /* what went wrong first, or "" */
    struct wsb_hist lat; /* ns: echo from intended send, room delivery,
                            or (connect-rate) the whole handshake */
};

/* Empties <st>. */
void wsb_stats_init(struct wsb_stats *st);

/* Adds <from> to <to>. */
void wsb_stats_merge(struct wsb_stats *to, const struct wsb_stats *from);

/* Prints the summary of a run of <cf> that began at monotonic <t0_ns>:
 * a table on stdout, or one JSON object with --json. */
void wsb_report_print(const struct wsb_config *cf, const struct wsb_stats *st,
                      uint64_t t0_ns);

#endif
