/*
 * A worker process: one libevent loop (epoll) accepting on the listeners it
 * was given, serving its connections, and stopping fast (TERM/INT) or
 * gracefully (QUIT: stop accepting, let connections finish, close the rest
 * when worker_shutdown_timeout expires).
 */
#ifndef WSG_WORKER_H
#define WSG_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

struct event;
struct event_base;
struct evconnlistener;
struct wsg_conn;
struct wsg_cycle;
struct wsg_listener;

TAILQ_HEAD(wsg_conn_list, wsg_conn);

struct wsg_worker {
    struct event_base *base;
    struct wsg_cycle *cycle; /* inherited from the master at fork */
    unsigned slot;
    struct evconnlistener **listeners;
    size_t nlisteners;
    struct event *signals[4];
    struct event *shutdown_timer;
    struct event *accept_timer; /* re-enables accept after EMFILE */
    bool exiting;               /* graceful shutdown under way */
    uint64_t next_conn_id;
    struct wsg_conn_list conns; /* owned: every open connection */
    size_t nconns;
    size_t max_conns;           /* worker_connections */
    uint64_t refused;           /* connections refused over the cap */
    uint64_t refused_logged_ms; /* throttles the "refused" log line */
};

/*
 * Runs the worker for <slot> of <cycle> on <listeners>, as a child of the
 * master <master>; never returns.
 */
void wsg_worker_run(struct wsg_cycle *cycle, struct wsg_listener *listeners,
                    unsigned slot, pid_t master) __attribute__((noreturn));

/* The event base of this worker process. */
struct event_base *wsg_worker_base(void);

/*
 * Called by a connection as it is freed: a worker that is shutting down
 * ends its loop when the last connection is gone.
 */
void wsg_worker_conn_gone(struct wsg_worker *w);

#endif
