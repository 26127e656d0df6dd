/*
 * A client connection in a worker. The worker's list owns it; it frees
 * itself through wsg_conn_close(), which defers the free to a safe point
 * when called from inside one of its own callbacks.
 */
#ifndef WSG_CONN_H
#define WSG_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "core/log.h"
#include "net/listen.h"

struct bufferevent;
struct wsg_http_addr;
struct wsg_worker;

struct wsg_conn {
    TAILQ_ENTRY(wsg_conn) link; /* in the worker's list */
    struct wsg_worker *w;
    uint64_t id;
    struct bufferevent *bev;          /* owns the fd */
    const struct wsg_http_addr *addr; /* the listen address, borrowed */
    char peer[WSG_ADDR_TEXT_MAX];
    struct wsg_log log;   /* "*id ... client: peer" */
    struct timeval start; /* wall clock, for the access log */
    uint64_t start_ms;    /* monotonic */
    uint64_t bytes_in;
    uint64_t bytes_out;
    int status;   /* HTTP status sent; 0 before */
    char *method; /* owned; NULL before a request */
    char *path;   /* owned */
    bool closing; /* flushing, then freed */
};

/*
 * Takes over the accepted socket <fd> from <peer> on address <addr>:
 * allocates the connection, links it into <w>'s list and starts reading.
 * On failure closes <fd> (logged).
 */
void wsg_conn_accept(struct wsg_worker *w, int fd, const struct sockaddr *peer,
                     const struct wsg_http_addr *addr);

/*
 * Closes <c> now: the socket is closed, the access log line written and
 * the memory freed. Must not be called from inside <c>'s own callbacks
 * with more of them still to run on the stack (they return right after).
 */
void wsg_conn_free(struct wsg_conn *c);

/*
 * Graceful shutdown has begun: a connection with nothing in progress is
 * closed now; the others go on until they finish or the worker's shutdown
 * timer closes them.
 */
void wsg_conn_shutdown(struct wsg_conn *c);

#endif
