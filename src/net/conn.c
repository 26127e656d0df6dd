/*
 * Client connections: accept, the log context, close after flush, and the
 * free that writes the access log line. The protocol phases live in
 * http/http_request.c and ws/session.c.
 */
#include "config.h"

#include "net/conn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/core.h"
#include "core/cycle.h"
#include "http/access_log.h"
#include "http/http_conf.h"
#include "http/http_request.h"
#include "net/proxy_protocol.h"
#include "core/stats.h"
#include "net/tls.h"
#include "ws/ws_frame.h"
#include "process/process.h"
#include "process/worker.h"
#include "ws/session.h"

/* How long a response or a close frame may take to leave. */
#define FLUSH_TIMEOUT_S 10

static size_t
log_context(const struct wsg_log *log, char *buf, size_t len)
{
    const struct wsg_conn *c = log->data;
    int n = snprintf(buf, len, ", client: %s, server: %s", c->peer,
                     c->addr->opt.text);

    return n < 0 ? 0 : ((size_t) n >= len ? len - 1 : (size_t) n);
}

/* Gives <fd> to a bufferevent (TLS or plain) and starts the request. */
static int
start_bev(struct wsg_conn *c, int fd)
{
    if (c->addr->ssl) {
        c->bev = wsg_tls_bev_new(c->w->base, fd, c->addr, &c->log);
    } else {
        c->bev = bufferevent_socket_new(c->w->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL) {
            wsg_log(WSG_LOG_ALERT, &c->log, 0,
                    "bufferevent_socket_new() failed");
        } else {
            wsg_io_attach(&c->io, c->bev);
        }
    }
    if (c->bev == NULL) {
        close(fd);
        return WSG_ERROR;
    }
    wsg_http_request_start(c);
    return 0;
}

/*
 * The PROXY header is peeked at and then read to its exact length, so the
 * bytes after it (a TLS ClientHello) stay in the socket for the
 * bufferevent made next. Edge-triggered: a partial header does not spin.
 */
static void
on_proxy_readable(evutil_socket_t fd, short what, void *arg)
{
    struct wsg_conn *c = arg;
    uint8_t buf[WSG_PROXY_READ_MAX];
    struct sockaddr_storage src;
    const char *why = "connection closed";

    if (what & EV_TIMEOUT) {
        wsg_log(WSG_LOG_INFO, &c->log, 0, "client timed out");
        wsg_conn_free(c);
        return;
    }
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    int rc = n > 0 ? wsg_proxy_protocol_read(buf, (size_t) n, &src, &why)
                   : WSG_ERROR;
    if (rc == WSG_AGAIN && (size_t) n < sizeof(buf)) {
        return;
    }
    if (rc < 0 || recv(fd, buf, (size_t) rc, 0) != rc) {
        wsg_log(WSG_LOG_INFO, &c->log, n == -1 ? errno : 0,
                "invalid PROXY protocol header: %s",
                rc == WSG_AGAIN ? "too long" : why);
        wsg_conn_free(c);
        return;
    }
    c->bytes_in += (size_t) rc;
    if (src.ss_family != AF_UNSPEC) {
        wsg_conn_set_peer(c, (struct sockaddr *) &src);
    }
    event_free(c->proxy_ev);
    c->proxy_ev = NULL;
    c->proxy_fd = -1;
    if (start_bev(c, (int) fd) != 0) {
        wsg_conn_free(c);
    }
}

static void
read_proxy_header(struct wsg_conn *c, int fd)
{
    const struct wsg_http_srv_conf *scf = c->addr->default_server;
    uint64_t ms = scf->header_timeout_ms;
    struct timeval tv = {(time_t) (ms / 1000),
                         (suseconds_t) ((ms % 1000) * 1000)};

    c->log.action = "reading PROXY protocol header";
    c->proxy_fd = fd;
    c->proxy_ev = event_new(c->w->base, fd, EV_READ | EV_PERSIST | EV_ET,
                            on_proxy_readable, c);
    event_add(c->proxy_ev, &tv);
}

void
wsg_conn_set_peer(struct wsg_conn *c, const struct sockaddr *peer)
{
    wsg_listen_addr_text(peer, c->peer, sizeof(c->peer));
    memcpy(&c->peer_addr, peer,
           peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
    /* the host part alone: "[::1]:80" gives "::1" */
    const char *h = c->peer[0] == '[' ? c->peer + 1 : c->peer;
    size_t hl = strcspn(h, c->peer[0] == '[' ? "]" : ":");
    memcpy(c->peer_host, h, hl);
    c->peer_host[hl] = '\0';
}

void
wsg_conn_accept(struct wsg_worker *w, int fd, const struct sockaddr *peer,
                const struct wsg_http_addr *addr)
{
    struct wsg_conn *c = wsg_calloc(1, sizeof(*c));
    int one = 1;

    c->w = w;
    c->id = ++w->next_conn_id;
    c->addr = addr;
    wsg_conn_set_peer(c, peer);
    c->log = w->cycle->log;
    c->log.conn_id = c->id;
    c->log.handler = log_context;
    c->log.data = c;
    gettimeofday(&c->start, NULL);
    c->start_ms = wsg_process_now_ms();

    if (peer->sa_family != AF_UNIX &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1) {
        wsg_log(WSG_LOG_INFO, &c->log, errno, "setsockopt(TCP_NODELAY) failed");
    }
    socklen_t llen = sizeof(c->local_addr);
    if (getsockname(fd, (struct sockaddr *) &c->local_addr, &llen) == -1) {
        memset(&c->local_addr, 0, sizeof(c->local_addr));
    }
    if (addr->proxy_protocol &&
        !wsg_http_cidr_match(addr->default_server->real_ip_from,
                             addr->default_server->nreal_ip_from, peer)) {
        /* only the balancer in front may speak here */
        wsg_log(WSG_LOG_INFO, &c->log, 0,
                "connection not from set_real_ip_from refused");
        close(fd);
        free(c);
        return;
    }
    TAILQ_INSERT_TAIL(&w->conns, c, link);
    w->nconns++;
    atomic_fetch_add_explicit(&wsg_stats->accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wsg_stats->connections, 1, memory_order_relaxed);
    wsg_log(WSG_LOG_DEBUG, &c->log, 0, "accepted");
    if (addr->proxy_protocol) {
        read_proxy_header(c, fd);
    } else if (start_bev(c, fd) != 0) {
        wsg_conn_free(c);
    }
}

void
wsg_conn_free(struct wsg_conn *c)
{
    struct wsg_worker *w = c->w;

    wsg_access_log_write(c);
    if (event_initialized(&c->timer)) {
        evtimer_del(&c->timer);
    }
    if (c->proxy_ev != NULL) {
        event_free(c->proxy_ev);
        close(c->proxy_fd);
    }
    if (c->pending_free != NULL) {
        c->pending_free(c->pending);
        c->pending_free = NULL;
        c->pending = NULL;
    }
    wsg_session_free(c->ws);
    c->ws = NULL;
    TAILQ_REMOVE(&w->conns, c, link);
    w->nconns--;
    atomic_fetch_sub_explicit(&wsg_stats->connections, 1, memory_order_relaxed);
    if (c->status == 101) {
        wsg_stats_close_code(c->close_code ? c->close_code : WSG_WS_ABNORMAL);
    }
    if (c->bev != NULL) {
        wsg_io_detach(&c->io);
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    free(c->method); /* path is in the same block */
    free(c);
    wsg_worker_conn_gone(w);
}

static void
on_flushed(struct bufferevent *bev, void *arg)
{
    struct wsg_conn *c = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        wsg_conn_free(c);
    }
}

static void
on_flush_event(struct bufferevent *bev, short what, void *arg)
{
    struct wsg_conn *c = arg;

    (void) bev;
    if (what & BEV_EVENT_TIMEOUT) {
        wsg_log(WSG_LOG_INFO, &c->log, 0, "client timed out");
    }
    wsg_conn_free(c);
}

void
wsg_conn_close_after_flush(struct wsg_conn *c, const char *action)
{
    struct timeval wt = {FLUSH_TIMEOUT_S, 0};

    c->closing = true;
    c->log.action = action;
    if (event_initialized(&c->timer)) {
        evtimer_del(&c->timer);
    }
    /* libevent writes the rest and calls on_flushed when it is out */
    wsg_io_detach(&c->io);
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_set_timeouts(c->bev, NULL, &wt);
    bufferevent_setcb(c->bev, NULL, on_flushed, on_flush_event, c);
    bufferevent_enable(c->bev, EV_WRITE);
    /* the output may be empty already; libevent will not call back then */
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        bufferevent_trigger(c->bev, EV_WRITE,
                            BEV_TRIG_IGNORE_WATERMARKS |
                                BEV_TRIG_DEFER_CALLBACKS);
    }
}

void
wsg_conn_shutdown(struct wsg_conn *c)
{
    if (c->closing) {
        return;
    }
    if (c->ws != NULL && wsg_session_opened(c->ws)) {
        wsg_session_close(c->ws, WSG_SESSION_GOING_AWAY, "going away");
        return;
    }
    wsg_conn_free(c);
}
