/*
 * One thread of wsbench: an event base, its share of the connections, its
 * timers and its own statistics. Nothing is shared between threads while
 * they run but the read-only configuration; main() merges the statistics
 * after joining them.
 */
#ifndef WSB_WORKER_H
#define WSB_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "options.h"
#include "report.h"

/* Payload bytes are taken from a random pattern at an offset that changes
 * with each message, so an echo of the wrong message is a mismatch too. */
#define WSB_PATTERN_SPAN 4093

struct wsb_conn;

struct wsb_worker {
    const struct wsb_config *cf; /* borrowed */
    unsigned index;
    pthread_t thread;
    struct event_base *base; /* owned */
    struct wsb_conn *conns;  /* owned array of nconns */
    unsigned nconns;
    unsigned first_id;   /* run-wide number of conns[0] */
    unsigned next_start; /* conns from here on have not been started */
    unsigned connecting; /* connections between connect() and the 101 */
    unsigned live;       /* connections not finished for the run */
    bool in_start;       /* start_more() is on the stack */
    bool stopping;       /* the run is over: no new traffic */
    bool holding;        /* idle: every connection settled, hold running */
    uint64_t t0_ns;      /* monotonic start of the run */
    uint64_t t0_real_ns; /* the same instant on the wall clock */
    uint64_t win_start_ns;
    uint64_t win_end_ns;
    struct event *tick_ev;  /* owned: timeouts */
    struct event *stop_ev;  /* owned: end of the run or of the hold */
    struct event *grace_ev; /* owned: bound on the closing handshakes */
    struct event *rate_ev;  /* owned: open-loop schedule, or NULL */
    uint8_t *pattern; /* owned: msg_size + WSB_PATTERN_SPAN payload bytes */
    uint64_t rng;
    double rate_gap_ns; /* open loop: between two messages of this thread */
    uint64_t rate_k;    /* open loop: number of the next message */
    unsigned rate_rr;   /* open loop: next connection to try */
    struct wsb_stats st;
};

static inline uint64_t
wsb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static inline bool
wsb_worker_in_window(const struct wsb_worker *w, uint64_t now)
{
    return now >= w->win_start_ns && now < w->win_end_ns;
}

/*
 * Prepares thread <index> of the run <cf>, seeding its PRNG with <seed>.
 * Returns 0, or -1 after printing why; wsb_worker_fini() cleans up either
 * way.
 */
int wsb_worker_init(struct wsb_worker *w, const struct wsb_config *cf,
                    unsigned index, uint64_t seed);

/* Sets <w>'s clocks for a run that starts at <t0_ns> (monotonic) and
 * <t0_real_ns> (wall clock). Returns 0, or -1 after printing why. */
int wsb_worker_arm(struct wsb_worker *w, uint64_t t0_ns, uint64_t t0_real_ns);

/* The thread body: runs <arg> (a struct wsb_worker) until its run ends. */
void *wsb_worker_main(void *arg);

/* Frees everything <w> holds; its statistics stay readable. */
void wsb_worker_fini(struct wsb_worker *w);

/* Counts an error of <kind>; <why> is kept if it is the thread's first. */
void wsb_worker_error(struct wsb_worker *w, enum wsb_err kind, const char *why);

/* A connection of <w> left the connecting states (upgraded or failed):
 * starts more and, when idle, begins the hold once all have settled. */
void wsb_worker_settled(struct wsb_worker *w);

/* A connection of <w> finished for the run. */
void wsb_worker_conn_done(struct wsb_worker *w);

#endif
