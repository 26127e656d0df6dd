/*
 * Connection life cycle. Invariant: a connection owns at most one socket,
 * held by <fd> until a bufferevent takes it; wsb_conn_drop() is the only
 * way back to IDLE or on to DONE and releases both, so a connection never
 * leaks a descriptor across reconnections.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "frame.h"
#include "rng.h"
#include "traffic.h"

/* After a failure, a connection waits this long before trying again, so a
 * dead server costs a few errors per second rather than a busy loop. */
#define RECONNECT_DELAY_MS 100
/* how long the server gets to end TCP after the close frames (§7.1.1) */
#define CLOSE_WAIT_NS      1000000000ULL
/* libevent reads and writes 16 KiB per call by default; large messages
 * would cost several callbacks each */
#define IO_CHUNK           (128 * 1024)

static void on_timer(evutil_socket_t fd, short events, void *arg);

static void
set_state(struct wsb_conn *c, enum wsb_conn_state s, uint64_t now)
{
    bool was = wsb_conn_is_connecting(c->state);
    bool is = wsb_conn_is_connecting(s);

    c->state = s;
    c->state_ns = now;
    if (!was && is) {
        c->w->connecting++;
    } else if (was && !is) {
        c->w->connecting--;
        wsb_worker_settled(c->w);
    }
}

int
wsb_conn_init(struct wsb_conn *c, struct wsb_worker *w, unsigned id)
{
    const struct wsb_config *cf = w->cf;

    memset(c, 0, sizeof(*c));
    c->w = w;
    c->id = id;
    c->fd = -1;
    c->state = WSB_CONN_IDLE;
    evtimer_assign(&c->timer, w->base, on_timer, c);
    if (cf->mode == WSB_MODE_ECHO || cf->mode == WSB_MODE_CONNECT_RATE) {
        /* closed loop: never more than the pipeline in flight; open loop:
         * a start that wsb_traffic_send_echo() doubles as needed */
        c->ring_cap = cf->rate > 0 ? 64 : cf->pipeline;
        c->ring = calloc(c->ring_cap, sizeof(*c->ring));
        if (c->ring == NULL) {
            return -1;
        }
    }
    return 0;
}

void
wsb_conn_fini(struct wsb_conn *c)
{
    if (event_initialized(&c->io_ev)) {
        event_del(&c->io_ev);
    }
    event_del(&c->timer);
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }
    free(c->ring);
    c->ring = NULL;
    free(c->text);
    c->text = NULL;
}

static void
send_upgrade(struct wsb_conn *c, uint64_t now)
{
    const struct wsb_config *cf = c->w->cf;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t nonce[16];
    char key[WSB_KEY_LEN + 1];

    for (int i = 0; i < 16; i += 8) {
        uint64_t r = wsb_rng_next(&c->w->rng);
        memcpy(nonce + i, &r, 8);
    }
    wsb_handshake_key(nonce, key);
    wsb_handshake_accept(key, c->accept);
    evbuffer_add_printf(out,
                        "GET %s HTTP/1.1\r\nHost: %s\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n",
                        cf->path, cf->host_header, key);
    for (size_t i = 0; i < cf->nheaders; i++) {
        evbuffer_add_printf(out, "%s\r\n", cf->headers[i]);
    }
    evbuffer_add(out, "\r\n", 2);
    set_state(c, WSB_CONN_UPGRADING, now);
}

/* The 101 arrived and checked out at <now>. */
static void
opened(struct wsb_conn *c, uint64_t now)
{
    struct wsb_worker *w = c->w;

    w->st.handshakes++;
    w->st.hs_last_ns = now;
    if (wsb_worker_in_window(w, now)) {
        w->st.handshakes_win++;
        if (w->cf->mode == WSB_MODE_CONNECT_RATE) {
            wsb_hist_record(&w->st.lat, now - c->start_ns);
        }
    }
    if (!c->ever_open) {
        c->ever_open = true;
        w->st.established++;
    }
    wsb_traffic_reset(c);
    set_state(c, WSB_CONN_OPEN, now);
    /* set_state() may have started other connections, never this one */
    wsb_traffic_open(c, now);
}

/* Reads the response head. Returns 0 once upgraded; -1 while it is
 * incomplete or after dropping <c>. */
static int
read_upgrade(struct wsb_conn *c, struct evbuffer *in, uint64_t now)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos == -1) {
        if (evbuffer_get_length(in) > WSB_HEAD_MAX) {
            wsb_conn_drop(c, WSB_ERR_HANDSHAKE, "response head too long");
        }
        return -1;
    }
    size_t len = (size_t) end.pos + 4;
    if (len > WSB_HEAD_MAX) {
        wsb_conn_drop(c, WSB_ERR_HANDSHAKE, "response head too long");
        return -1;
    }
    const char *head = (const char *) evbuffer_pullup(in, (ev_ssize_t) len);
    const char *why;
    if (wsb_handshake_check(head, len, c->accept, &why) != 0) {
        char msg[160];
        int line = (int) strcspn(head, "\r\n");
        snprintf(msg, sizeof(msg), "%s (%.*s)", why, line < 60 ? line : 60,
                 head);
        wsb_conn_drop(c, WSB_ERR_HANDSHAKE, msg);
        return -1;
    }
    evbuffer_drain(in, len);
    opened(c, now);
    return 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct wsb_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    uint64_t now = wsb_now_ns();

    if (c->state == WSB_CONN_UPGRADING && read_upgrade(c, in, now) != 0) {
        return;
    }
    if (c->state == WSB_CONN_OPEN || c->state == WSB_CONN_CLOSING) {
        wsb_traffic_read(c, in, now);
    } else if (c->state == WSB_CONN_CLOSED) {
        /* nothing may follow the server's close frame (§5.5.1) */
        evbuffer_drain(in, evbuffer_get_length(in));
    }
}

/* A reason for an error event on <bev>: OpenSSL's queue or errno. */
static void
event_reason(struct bufferevent *bev, short events, char *buf, size_t size)
{
    unsigned long ssl_err = bufferevent_get_openssl_error(bev);
    int err = EVUTIL_SOCKET_ERROR();

    if (ssl_err != 0) {
        ERR_error_string_n(ssl_err, buf, size);
        /* the rest of the queue says the same thing at lower levels */
        while (bufferevent_get_openssl_error(bev) != 0) {
        }
    } else if ((events & BEV_EVENT_ERROR) && err != 0) {
        snprintf(buf, size, "%s", evutil_socket_error_to_string(err));
    } else {
        snprintf(buf, size, "the server closed the connection");
    }
}

static void
on_event(struct bufferevent *bev, short events, void *arg)
{
    struct wsb_conn *c = arg;
    char why[160];

    if (events & BEV_EVENT_CONNECTED) {
        send_upgrade(c, wsb_now_ns());
        return;
    }
    if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
        return;
    }
    event_reason(bev, events, why, sizeof(why));
    switch (c->state) {
    case WSB_CONN_TLS:
    case WSB_CONN_UPGRADING:
        wsb_conn_drop(c, WSB_ERR_HANDSHAKE, why);
        break;
    case WSB_CONN_OPEN:
        wsb_conn_drop(c, WSB_ERR_CLOSED, why);
        break;
    default:
        /* the closing handshake is done or under way: a clean end */
        wsb_conn_drop(c, -1, NULL);
        break;
    }
}

static SSL *
new_ssl(const struct wsb_config *cf)
{
    SSL *ssl = SSL_new(cf->ssl_ctx);
    if (ssl == NULL) {
        return NULL;
    }
    const char *name = cf->sni != NULL ? cf->sni : cf->host;
    struct in6_addr ip;
    bool is_ip = inet_pton(AF_INET, cf->host, &ip) == 1 ||
                 inet_pton(AF_INET6, cf->host, &ip) == 1;
    int ok = 1;
    if (cf->sni != NULL || !is_ip) {
        ok &= SSL_set_tlsext_host_name(ssl, name);
    }
    if (!cf->insecure) {
        if (cf->sni != NULL || !is_ip) {
            ok &= SSL_set1_host(ssl, name);
        } else {
            ok &= X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
        }
    }
    if (ok != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/* TCP is up: hands the socket to a bufferevent and starts TLS or the
 * upgrade. */
static void
connected(struct wsb_conn *c, uint64_t now)
{
    const struct wsb_config *cf = c->w->cf;
    struct event_base *base = c->w->base;

    if (cf->tls) {
        SSL *ssl = new_ssl(cf);
        if (ssl != NULL) {
            /* on failure libevent frees neither the SSL nor the fd */
            c->bev = bufferevent_openssl_socket_new(base, c->fd, ssl,
                                                    BUFFEREVENT_SSL_CONNECTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
            if (c->bev == NULL) {
                SSL_free(ssl);
            }
        }
    } else {
        c->bev = bufferevent_socket_new(base, c->fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        ERR_clear_error();
        wsb_conn_drop(c, WSB_ERR_CONNECT, "cannot create a bufferevent");
        return;
    }
    c->fd = -1;
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_set_max_single_read(c->bev, IO_CHUNK);
    bufferevent_set_max_single_write(c->bev, IO_CHUNK);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (cf->tls) {
        /* many servers end TLS without close_notify once the WebSocket
         * closing handshake is over */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        set_state(c, WSB_CONN_TLS, now);
    } else {
        send_upgrade(c, now);
    }
}

static void
on_connect(evutil_socket_t fd, short events, void *arg)
{
    struct wsb_conn *c = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    (void) events;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        err = errno;
    }
    if (err != 0) {
        wsb_conn_drop(c, WSB_ERR_CONNECT, strerror(err));
        return;
    }
    connected(c, wsb_now_ns());
}

/* Binds <fd> to the next source address, leaving the port to connect():
 * IP_BIND_ADDRESS_NO_PORT lets ports repeat across destinations. */
static int
bind_source(const struct wsb_conn *c, int fd)
{
    const struct wsb_config *cf = c->w->cf;
    const struct sockaddr_storage *ss = &cf->sources[c->id % cf->nsources];
    int one = 1;

    (void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                      sizeof(one));
    socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                             : sizeof(struct sockaddr_in6);
    return bind(fd, (const struct sockaddr *) ss, len);
}

void
wsb_conn_start(struct wsb_conn *c)
{
    const struct wsb_config *cf = c->w->cf;
    uint64_t now = wsb_now_ns();
    int one = 1;
    char why[160];

    c->start_ns = now;
    set_state(c, WSB_CONN_CONNECTING, now);
    c->fd = socket(cf->addr.ss_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd == -1) {
        snprintf(why, sizeof(why), "socket() failed: %s", strerror(errno));
        wsb_conn_drop(c, WSB_ERR_CONNECT, why);
        return;
    }
    /* small messages must leave at once: latency is what is measured */
    (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cf->nsources > 0 && bind_source(c, c->fd) == -1) {
        snprintf(why, sizeof(why), "bind() failed: %s", strerror(errno));
        wsb_conn_drop(c, WSB_ERR_CONNECT, why);
        return;
    }
    if (connect(c->fd, (const struct sockaddr *) &cf->addr, cf->addr_len) ==
        0) {
        connected(c, now);
        return;
    }
    if (errno != EINPROGRESS) {
        snprintf(why, sizeof(why), "connect() failed: %s", strerror(errno));
        wsb_conn_drop(c, WSB_ERR_CONNECT, why);
        return;
    }
    event_assign(&c->io_ev, c->w->base, c->fd, EV_WRITE, on_connect, c);
    event_add(&c->io_ev, NULL);
}

/* What a dropped connection does next. */
static void
after_drop(struct wsb_conn *c, bool failed)
{
    struct wsb_worker *w = c->w;
    uint64_t now = wsb_now_ns();

    if (w->stopping || w->cf->mode == WSB_MODE_IDLE) {
        set_state(c, WSB_CONN_DONE, now);
        wsb_worker_conn_done(w);
        return;
    }
    set_state(c, WSB_CONN_IDLE, now);
    if (w->cf->mode == WSB_MODE_CONNECT_RATE && !failed) {
        wsb_conn_start(c);
        return;
    }
    struct timeval delay = {0, RECONNECT_DELAY_MS * 1000};
    evtimer_add(&c->timer, &delay);
}

void
wsb_conn_drop(struct wsb_conn *c, int kind, const char *why)
{
    if (c->state == WSB_CONN_DONE) {
        return;
    }
    if (kind >= 0) {
        wsb_worker_error(c->w, (enum wsb_err) kind, why);
    }
    if (event_initialized(&c->io_ev)) {
        event_del(&c->io_ev);
    }
    event_del(&c->timer);
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }
    wsb_traffic_reset(c);
    after_drop(c, kind >= 0);
}

void
wsb_conn_close(struct wsb_conn *c, uint16_t code, uint64_t now)
{
    uint8_t payload[2] = {(uint8_t) (code >> 8), (uint8_t) code};

    wsb_traffic_send_frame(c, WSB_OP_CLOSE, payload, sizeof(payload));
    event_del(&c->timer);
    set_state(c, WSB_CONN_CLOSING, now);
}

void
wsb_conn_closed(struct wsb_conn *c, uint64_t now)
{
    event_del(&c->timer);
    set_state(c, WSB_CONN_CLOSED, now);
}

void
wsb_conn_stop(struct wsb_conn *c, uint64_t now)
{
    switch (c->state) {
    case WSB_CONN_OPEN:
        wsb_conn_close(c, 1000, now);
        break;
    case WSB_CONN_CLOSING:
    case WSB_CONN_CLOSED:
    case WSB_CONN_DONE:
        break;
    default:
        wsb_conn_drop(c, -1, NULL);
        break;
    }
}

void
wsb_conn_check(struct wsb_conn *c, uint64_t now)
{
    uint64_t limit = (uint64_t) (c->w->cf->timeout_s * 1e9);
    uint64_t age = now - c->state_ns;

    switch (c->state) {
    case WSB_CONN_CONNECTING:
        if (age > limit) {
            wsb_conn_drop(c, WSB_ERR_TIMEOUT, "connect timed out");
        }
        break;
    case WSB_CONN_TLS:
    case WSB_CONN_UPGRADING:
        if (age > limit) {
            wsb_conn_drop(c, WSB_ERR_TIMEOUT, "handshake timed out");
        }
        break;
    case WSB_CONN_OPEN:
        if (c->ring_count > 0 &&
            now - c->ring[c->ring_head].intended_ns > limit) {
            wsb_conn_drop(c, WSB_ERR_TIMEOUT, "no echo within the timeout");
        }
        break;
    case WSB_CONN_CLOSING:
    case WSB_CONN_CLOSED:
        if (age > CLOSE_WAIT_NS) {
            wsb_conn_drop(c, -1, NULL);
        }
        break;
    default:
        break;
    }
}

static void
on_timer(evutil_socket_t fd, short events, void *arg)
{
    struct wsb_conn *c = arg;

    (void) fd;
    (void) events;
    if (c->state == WSB_CONN_IDLE) {
        wsb_conn_start(c);
    } else if (c->state == WSB_CONN_OPEN && c->w->cf->mode == WSB_MODE_ROOM) {
        wsb_traffic_room_send(c, wsb_now_ns());
    }
}
