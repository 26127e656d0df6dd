/*
 * A client connection in a worker. The worker's list owns it. It goes
 * through an HTTP phase (one request head) and, after a 101, a WebSocket
 * session. It is freed by wsg_conn_free(), always as the last thing a
 * callback does: nothing of it may be touched afterwards.
 */
#ifndef WSG_CONN_H
#define WSG_CONN_H

#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "core/log.h"
#include "net/listen.h"
#include "net/io.h"

struct bufferevent;
struct wsg_http_addr;
struct wsg_session;
struct wsg_worker;

/* An IPv4 or IPv6 address with its port: what a TCP client has, in 28
 * bytes rather than a sockaddr_storage's 128 (per connection). */
union wsg_ip_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct wsg_conn {
    TAILQ_ENTRY(wsg_conn) link; /* in the worker's list */
    struct wsg_worker *w;
    uint64_t id;
    struct bufferevent *bev;          /* owns the fd */
    struct wsg_io io;                 /* plain sockets: our reads, writes */
    const struct wsg_http_addr *addr; /* the listen address, borrowed */
    void **loc_conf;                  /* chosen location, borrowed */
    struct wsg_session *ws;           /* owned; NULL before a 101 */
    void (*pending_free)(void *data); /* frees work started for this
                                         connection before its session
                                         exists (a backend connect) */
    void *pending;
    struct event timer;                /* header deadline, then the
                                          session's heartbeat and close */
    char peer[WSG_ADDR_TEXT_MAX];      /* "1.2.3.4:5678" */
    char peer_host[WSG_ADDR_TEXT_MAX]; /* "1.2.3.4", for $remote_addr */
    union wsg_ip_addr peer_addr;
    union wsg_ip_addr local_addr; /* for the PROXY protocol */
    struct wsg_log log;           /* "*id ... client: peer" */
    struct timeval start;         /* wall clock, for the access log */
    uint64_t start_ms;            /* monotonic */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t msgs_in;
    uint64_t msgs_out;
    int status;             /* HTTP status sent; 0 before */
    uint16_t close_code;    /* WebSocket close code, 0 none */
    char *method;           /* owned; NULL before a request */
    char *path;             /* owned */
    bool closing;           /* flushing, then freed */
    struct event *proxy_ev; /* reading a PROXY header off the socket;
                               owns <proxy_fd> until the bufferevent */
    int proxy_fd;
};

/*
 * Takes over the accepted socket <fd> from <peer> on address <addr>:
 * allocates the connection, links it into <w>'s list and starts reading
 * the request. On failure closes <fd> (logged).
 */
void wsg_conn_accept(struct wsg_worker *w, int fd, const struct sockaddr *peer,
                     const struct wsg_http_addr *addr);

/*
 * Sets the client address of <c> (its text forms too): the socket's peer,
 * or the one a trusted PROXY protocol header names.
 */
void wsg_conn_set_peer(struct wsg_conn *c, const struct sockaddr *peer);

/*
 * Closes <c> now: the socket is closed (unsent output is dropped), the
 * access log line written and the memory freed.
 */
void wsg_conn_free(struct wsg_conn *c);

/*
 * Stops reading from <c> and frees it once its output is sent, within the
 * send timeout. <action> names what it is doing, for the log.
 */
void wsg_conn_close_after_flush(struct wsg_conn *c, const char *action);

/*
 * Graceful shutdown of the worker: a WebSocket session is closed with 1001
 * (going away) through the close handshake; a connection still in its
 * HTTP phase is freed at once.
 */
void wsg_conn_shutdown(struct wsg_conn *c);

#endif
