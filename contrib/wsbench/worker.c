/*
 * A wsbench thread: its event base, the start of its connections (at most
 * connect_concurrency handshakes at a time, so a large -c does not
 * overflow the server's accept queue), its clocks: the timeout tick, the
 * open-loop schedule, the end of the run and the bound on closing.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "rng.h"
#include "traffic.h"

#define TICK_MS        100
/* how long the closing handshakes may take once the run is over */
#define GRACE_MS       2000
/* open loop: messages one timer callback may send before the loop gets a
 * turn, so reads keep up when the schedule runs behind */
#define RATE_BATCH_MAX 10000

static struct timeval
tv_of_ns(uint64_t ns)
{
    struct timeval tv = {(time_t) (ns / 1000000000u),
                         (suseconds_t) (ns % 1000000000u / 1000)};
    return tv;
}

void
wsb_worker_error(struct wsb_worker *w, enum wsb_err kind, const char *why)
{
    static const char *const names[WSB_ERR_COUNT] = {
        "connect", "handshake", "protocol", "closed", "mismatch", "timeout",
    };

    w->st.errors[kind]++;
    if (w->st.first_error[0] == '\0') {
        snprintf(w->st.first_error, sizeof(w->st.first_error), "%s: %s",
                 names[kind], why != NULL ? why : "?");
    }
}

static void
start_more(struct wsb_worker *w)
{
    /* a start that fails at once settles and calls back here: the outer
     * loop carries on instead */
    if (w->in_start) {
        return;
    }
    w->in_start = true;
    while (!w->stopping && w->next_start < w->nconns &&
           w->connecting < w->cf->connect_concurrency) {
        wsb_conn_start(&w->conns[w->next_start++]);
    }
    w->in_start = false;
}

void
wsb_worker_settled(struct wsb_worker *w)
{
    start_more(w);
    if (w->cf->mode != WSB_MODE_IDLE || w->holding || w->stopping ||
        w->next_start < w->nconns || w->connecting > 0) {
        return;
    }
    w->holding = true;
    struct timeval tv = tv_of_ns((uint64_t) (w->cf->hold_s * 1e9));
    evtimer_add(w->stop_ev, &tv);
}

void
wsb_worker_conn_done(struct wsb_worker *w)
{
    w->live--;
    if (w->stopping && w->live == 0) {
        event_base_loopexit(w->base, NULL);
    }
}

static void
on_tick(evutil_socket_t fd, short events, void *arg)
{
    struct wsb_worker *w = arg;
    uint64_t now = wsb_now_ns();

    (void) fd;
    (void) events;
    for (unsigned i = 0; i < w->nconns; i++) {
        wsb_conn_check(&w->conns[i], now);
    }
}

static struct wsb_conn *
next_open(struct wsb_worker *w)
{
    for (unsigned n = 0; n < w->nconns; n++) {
        struct wsb_conn *c = &w->conns[w->rate_rr];
        w->rate_rr = (w->rate_rr + 1) % w->nconns;
        if (c->state == WSB_CONN_OPEN) {
            return c;
        }
    }
    return NULL;
}

/* Open loop: sends every message whose time has come. Message k of this
 * thread is due at t0 + k * gap whether or not earlier ones were answered,
 * and its latency counts from then (no coordinated omission). */
static void
on_rate(evutil_socket_t fd, short events, void *arg)
{
    struct wsb_worker *w = arg;
    uint64_t now = wsb_now_ns();
    uint64_t due = 0;

    (void) fd;
    (void) events;
    if (w->stopping) {
        return;
    }
    for (int n = 0; n < RATE_BATCH_MAX; n++) {
        due = w->t0_ns + (uint64_t) ((double) w->rate_k * w->rate_gap_ns);
        if (due > now) {
            break;
        }
        struct wsb_conn *c = next_open(w);
        if (c != NULL) {
            wsb_traffic_send_echo(c, due, now);
        } else if (wsb_worker_in_window(w, now)) {
            w->st.unsent++;
        }
        w->rate_k++;
    }
    struct timeval tv = tv_of_ns(due > now ? due - now : 0);
    evtimer_add(w->rate_ev, &tv);
}

static void
on_grace(evutil_socket_t fd, short events, void *arg)
{
    struct wsb_worker *w = arg;

    (void) fd;
    (void) events;
    event_base_loopexit(w->base, NULL);
}

static void
on_stop(evutil_socket_t fd, short events, void *arg)
{
    struct wsb_worker *w = arg;
    uint64_t now = wsb_now_ns();

    (void) fd;
    (void) events;
    w->stopping = true;
    if (w->cf->mode == WSB_MODE_IDLE) {
        for (unsigned i = 0; i < w->nconns; i++) {
            w->st.held += w->conns[i].state == WSB_CONN_OPEN;
        }
    }
    for (unsigned i = 0; i < w->nconns; i++) {
        wsb_conn_stop(&w->conns[i], now);
    }
    if (w->live == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    struct timeval tv = {GRACE_MS / 1000, GRACE_MS % 1000 * 1000};
    evtimer_add(w->grace_ev, &tv);
}

/* Random payload bytes; printable ASCII for text, so that it is UTF-8. */
static int
make_pattern(struct wsb_worker *w)
{
    size_t len = w->cf->msg_size + WSB_PATTERN_SPAN;

    w->pattern = malloc(len);
    if (w->pattern == NULL) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        uint64_t r = wsb_rng_next(&w->rng);
        w->pattern[i] = w->cf->binary ? (uint8_t) r : (uint8_t) (' ' + r % 95);
    }
    return 0;
}

static int
make_events(struct wsb_worker *w)
{
    struct timeval tick = {0, TICK_MS * 1000};

    w->tick_ev = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    w->stop_ev = evtimer_new(w->base, on_stop, w);
    w->grace_ev = evtimer_new(w->base, on_grace, w);
    if (w->tick_ev == NULL || w->stop_ev == NULL || w->grace_ev == NULL ||
        event_add(w->tick_ev, &tick) != 0) {
        return -1;
    }
    if (w->cf->mode != WSB_MODE_IDLE) {
        uint64_t now = wsb_now_ns();
        uint64_t left = w->win_end_ns > now ? w->win_end_ns - now : 0;
        struct timeval tv = tv_of_ns(left);
        evtimer_add(w->stop_ev, &tv);
    }
    if (w->cf->rate > 0) {
        w->rate_ev = evtimer_new(w->base, on_rate, w);
        struct timeval zero = {0, 0};
        if (w->rate_ev == NULL || evtimer_add(w->rate_ev, &zero) != 0) {
            return -1;
        }
    }
    return 0;
}

static struct event_base *
make_base(const struct wsb_config *cf)
{
    struct event_config *ec = event_config_new();
    if (ec == NULL) {
        return NULL;
    }
    /* the open loop's schedule needs better than libevent's default
     * millisecond timer */
    if (cf->rate > 0) {
        event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    }
    struct event_base *base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

int
wsb_worker_init(struct wsb_worker *w, const struct wsb_config *cf,
                unsigned index, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    wsb_stats_init(&w->st);
    w->cf = cf;
    w->index = index;
    w->rng = seed;
    /* connections are dealt out evenly, the first threads taking the
     * remainder */
    unsigned share = cf->conns / cf->threads;
    unsigned extra = cf->conns % cf->threads;
    w->nconns = share + (index < extra);
    w->first_id = index * share + (index < extra ? index : extra);
    w->live = w->nconns;
    w->base = make_base(cf);
    w->conns = calloc(w->nconns, sizeof(*w->conns));
    if (w->base == NULL || w->conns == NULL || make_pattern(w) != 0) {
        fprintf(stderr, "wsbench: cannot set up thread %u\n", index);
        return -1;
    }
    for (unsigned i = 0; i < w->nconns; i++) {
        if (wsb_conn_init(&w->conns[i], w, w->first_id + i) != 0) {
            fprintf(stderr, "wsbench: out of memory for connections\n");
            return -1;
        }
    }
    return 0;
}

int
wsb_worker_arm(struct wsb_worker *w, uint64_t t0_ns, uint64_t t0_real_ns)
{
    const struct wsb_config *cf = w->cf;

    w->t0_ns = t0_ns;
    w->t0_real_ns = t0_real_ns;
    w->win_start_ns = t0_ns + (uint64_t) (cf->warmup_s * 1e9);
    w->win_end_ns = w->win_start_ns + (uint64_t) (cf->duration_s * 1e9);
    if (cf->rate > 0) {
        w->rate_gap_ns = 1e9 / (cf->rate * w->nconns / cf->conns);
    }
    if (make_events(w) != 0) {
        fprintf(stderr, "wsbench: cannot create timers\n");
        return -1;
    }
    return 0;
}

void *
wsb_worker_main(void *arg)
{
    struct wsb_worker *w = arg;

    start_more(w);
    event_base_dispatch(w->base);
    return NULL;
}

void
wsb_worker_fini(struct wsb_worker *w)
{
    if (w->conns != NULL) {
        for (unsigned i = 0; i < w->nconns; i++) {
            if (w->conns[i].w != NULL) {
                wsb_conn_fini(&w->conns[i]);
            }
        }
        free(w->conns);
        w->conns = NULL;
    }
    if (w->rate_ev != NULL) {
        event_free(w->rate_ev);
    }
    if (w->grace_ev != NULL) {
        event_free(w->grace_ev);
    }
    if (w->stop_ev != NULL) {
        event_free(w->stop_ev);
    }
    if (w->tick_ev != NULL) {
        event_free(w->tick_ev);
    }
    if (w->base != NULL) {
        event_base_free(w->base);
        w->base = NULL;
    }
    free(w->pattern);
    w->pattern = NULL;
}
