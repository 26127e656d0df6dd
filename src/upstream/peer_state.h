/*
 * Node-wide state of upstream servers, in memory shared by the master and
 * every worker: live connection counts for least_conn, passive and active
 * health, counters, and the connection-id sequence. The zone is made once,
 * before the first worker forks, and outlives reloads: a server keeps its
 * slot (found by "upstream/address") across configurations, so a reload
 * resets neither the load picture nor health.
 */
#ifndef WSG_PEER_STATE_H
#define WSG_PEER_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wsg_cycle;
struct wsg_upstream_server;

/* Servers (across all upstreams and live configurations) tracked. */
#define WSG_PEER_STATES  1024
#define WSG_PEER_KEY_MAX 192

struct wsg_peer_state {
    atomic_uint used;                   /* 0 free; set after key is written */
    char key[WSG_PEER_KEY_MAX];         /* "upstream/127.0.0.1:9001" */
    atomic_uint_fast64_t conns;         /* client sessions on it now */
    atomic_uint fails;                  /* passive failures in the window */
    atomic_uint_fast64_t window_ms;     /* when that window started */
    atomic_uint_fast64_t down_until_ms; /* passive: down until then */
    atomic_uint check_down;             /* active: failing its checks */
    atomic_uint check_fails;            /* consecutive failed checks */
    atomic_uint check_passes;           /* consecutive passed checks */
    atomic_uint_fast64_t dropped;       /* messages that could not go */
    atomic_uint_fast64_t connect_fails;
};

/*
 * Maps the shared zone; called once by the master before forking.
 * Returns 0, or WSG_ERROR with errno set.
 */
int wsg_peer_state_init(void);

/*
 * Gives every server of <cycle>'s upstreams its slot (existing by key, or
 * a free one), and frees slots no server names any more once nothing is
 * connected through them. Without a zone (wsgate -t) it does nothing.
 * Returns 0, or WSG_ERROR with a message in <err> when the zone is full.
 */
int wsg_peer_state_bind(struct wsg_cycle *cycle, char *err, size_t errlen);

/* A connection id unique on the node for as long as the zone lives. */
uint64_t wsg_peer_state_next_id(void);

/* Whether <s> may be given new clients now (config, passive, active). */
bool wsg_peer_up(const struct wsg_upstream_server *s, uint64_t now_ms);

/* A connect or I/O failure: counts towards max_fails in fail_timeout. */
void wsg_peer_failed(const struct wsg_upstream_server *s, uint64_t now_ms);

/* A connect to <s> succeeded: passive failures are forgotten. */
void wsg_peer_recovered(const struct wsg_upstream_server *s);

/* An active check's result; returns true when it changed up/down. */
bool wsg_peer_checked(const struct wsg_upstream_server *s, bool ok,
                      unsigned fails, unsigned passes);

#endif
