/*
 * One backend connection per client (raw, line, length). The bridge owns
 * the backend bufferevent; the client's session owns the bridge once the
 * 101 is out (its on_close frees it), and before that the connection does
 * (pending_free). Each direction has a cap: over it, the side that writes
 * is paused until the other drains, so a pair uses bounded memory whatever
 * the speeds.
 */
#include "config.h"

#include "upstream/upstream.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/core.h"
#include "http/http_parse.h"
#include "http/http_request.h"
#include "http/http_var.h"
#include "net/conn.h"
#include "net/io.h"
#include "net/proxy_protocol.h"
#include "process/process.h"
#include "process/worker.h"
#include "upstream/balance.h"
#include "upstream/peer_state.h"
#include "upstream/pool.h"
#include "upstream/upstream_conf.h"
#include "ws/session.h"
#include "ws/utf8.h"
#include "ws/ws_conf.h"
#include "ws/ws_handshake.h"

/* How long a backend may take to accept what is left when a client goes. */
#define LINGER_S 10

struct bridge {
    struct wsg_conn *c;
    struct wsg_session *s; /* NULL until the 101 */
    const struct wsg_ws_loc_conf *wcf;
    const struct wsg_upstream_loc_conf *ulcf;
    struct wsg_upstream *u;
    int server;     /* index in u->servers */
    uint64_t tried; /* servers tried, a bit each */
    unsigned tries;
    struct bufferevent *be; /* owned */
    struct wsg_io io;       /* <be>'s, once connected */
    char *resp;             /* the 101, sent once connected; owned */
    bool deflate;
    struct wsg_deflate_params dp;
    char *key; /* hash key (owned), when the upstream hashes */
    size_t keylen;
    bool client_held; /* we hold the client: backend output full */
    bool counted;     /* counted in the server's conns */
};

static void connect_next(struct bridge *b);

/* The balancer's view of <u>'s first 64 servers; returns how many. */
static size_t
peers_of(struct wsg_upstream *u, struct wsg_balance_peer *peers,
         uint64_t excluded)
{
    size_t n = u->nservers < 64 ? u->nservers : 64;
    uint64_t now = wsg_process_now_ms();

    if (u->rr_weights == NULL) {
        /* per worker: the config is private memory after fork */
        u->rr_weights = wsg_calloc(u->nservers, sizeof(int64_t));
    }
    for (size_t i = 0; i < n; i++) {
        const struct wsg_upstream_server *s = &u->servers[i];
        peers[i].weight = s->weight;
        peers[i].up = wsg_peer_up(s, now) && !(excluded & (1ull << i));
        peers[i].backup = s->backup;
        peers[i].current_weight = u->rr_weights[i];
        peers[i].conns = s->state ? atomic_load(&s->state->conns) : 0;
        peers[i].id = s->ring_id;
    }
    return n;
}

static int
pick_on_ring(struct wsg_upstream *u, struct wsg_balance_peer *peers, size_t n,
             const char *key, size_t len)
{
    if (u->ring == NULL) {
        u->ring = wsg_balance_ring_new(peers, n);
    }
    return wsg_balance_hash(u->ring, peers, n, key, len);
}

int
wsg_upstream_pick(struct wsg_upstream *u, const char *key, size_t len,
                  uint64_t excluded)
{
    struct wsg_balance_peer peers[64];
    size_t n = peers_of(u, peers, excluded);
    int i;

    switch (u->balance) {
    case WSG_BALANCE_LEAST_CONN:
        i = wsg_balance_least_conn(peers, n);
        break;
    case WSG_BALANCE_HASH:
        i = pick_on_ring(u, peers, n, key, len);
        break;
    default:
        i = wsg_balance_round_robin(peers, n);
        break;
    }
    for (size_t k = 0; k < n; k++) {
        u->rr_weights[k] = peers[k].current_weight;
    }
    return i;
}

int
wsg_upstream_pick_key(struct wsg_upstream *u, const char *key, size_t len,
                      uint64_t excluded)
{
    struct wsg_balance_peer peers[64];
    size_t n = peers_of(u, peers, excluded);

    return pick_on_ring(u, peers, n, key, len);
}

static void
linger_written(struct bufferevent *be, void *arg)
{
    (void) arg;
    if (evbuffer_get_length(bufferevent_get_output(be)) == 0) {
        bufferevent_free(be);
    }
}

static void
linger_event(struct bufferevent *be, short what, void *arg)
{
    (void) what;
    (void) arg;
    bufferevent_free(be);
}

/* Frees <be> once what it still has to send is sent (or it fails). */
static void
linger_free(struct bufferevent *be)
{
    struct timeval tv = {LINGER_S, 0};

    if (evbuffer_get_length(bufferevent_get_output(be)) == 0) {
        bufferevent_free(be);
        return;
    }
    bufferevent_disable(be, EV_READ);
    bufferevent_setwatermark(be, EV_WRITE, 0, 0);
    bufferevent_set_timeouts(be, NULL, &tv);
    bufferevent_setcb(be, NULL, linger_written, linger_event, NULL);
    bufferevent_enable(be, EV_WRITE);
}

static void
bridge_free(struct bridge *b)
{
    if (b->be != NULL) {
        wsg_io_detach(&b->io);
        linger_free(b->be);
        b->be = NULL;
    }
    if (b->counted) {
        atomic_fetch_sub(&b->u->servers[b->server].state->conns, 1);
    }
    free(b->resp);
    free(b->key);
    free(b);
}

static void
pending_free(void *data)
{
    bridge_free(data);
}

/* ---- client -> backend ---- */

static uint64_t
cap(const struct bridge *b)
{
    return b->wcf->send_buffer_max;
}

static void
on_message(struct wsg_session *s, void *data, uint8_t opcode, uint8_t *msg,
           size_t len)
{
    struct bridge *b = data;
    struct evbuffer *out = bufferevent_get_output(b->be);

    (void) opcode;
    switch (b->u->protocol) {
    case WSG_PROTO_LINE:
        if (len > 0 && memchr(msg, '\n', len) != NULL) {
            free(msg);
            wsg_session_close(s, WSG_WS_UNSUPPORTED,
                              "a line message cannot hold a newline");
            return;
        }
        evbuffer_add(out, msg, len);
        evbuffer_add(out, "\n", 1);
        break;
    case WSG_PROTO_LENGTH: {
        uint8_t hdr[4] = {(uint8_t) (len >> 24), (uint8_t) (len >> 16),
                          (uint8_t) (len >> 8), (uint8_t) len};
        evbuffer_add(out, hdr, 4);
        evbuffer_add(out, msg, len);
        break;
    }
    default:
        evbuffer_add(out, msg, len);
        break;
    }
    free(msg);
    if (!b->client_held && evbuffer_get_length(out) > cap(b) / 2) {
        /* a slow backend: stop reading its client until it catches up */
        b->client_held = true;
        wsg_session_hold(s);
        bufferevent_setwatermark(b->be, EV_WRITE, (size_t) cap(b) / 4, 0);
    }
}

static void
on_backend_written(struct bufferevent *be, void *arg)
{
    struct bridge *b = arg;

    if (b->client_held) {
        b->client_held = false;
        bufferevent_setwatermark(be, EV_WRITE, 0, 0);
        wsg_session_release(b->s);
    }
}

/* ---- backend -> client ---- */

static void
to_client(struct bridge *b, uint8_t *data, size_t len)
{
    uint8_t opcode = WSG_WS_BINARY;

    if (b->ulcf->message_text || b->u->protocol == WSG_PROTO_LINE) {
        if (wsg_utf8_valid(data, len)) {
            opcode = WSG_WS_TEXT;
        }
    }
    wsg_session_queue(b->s, opcode, data, len, 1);
}

/* Takes the complete messages out of the backend's input. */
static int
take_messages(struct bridge *b, struct evbuffer *in, bool eof)
{
    size_t max = (size_t) b->ulcf->buffer_size;

    for (;;) {
        size_t avail = evbuffer_get_length(in), n;
        if (avail == 0) {
            return 0;
        }
        if (b->u->protocol == WSG_PROTO_RAW) {
            n = avail < max ? avail : max;
        } else if (b->u->protocol == WSG_PROTO_LINE) {
            struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, NULL);
            if (nl.pos > (ssize_t) max) {
                return WSG_ERROR;
            }
            if (nl.pos < 0) {
                if (avail > max) {
                    return WSG_ERROR;
                }
                if (!eof) {
                    return 0;
                }
                n = avail; /* the last line may lack its newline */
            } else {
                uint8_t *line = wsg_malloc((size_t) nl.pos + 1);
                evbuffer_remove(in, line, (size_t) nl.pos);
                evbuffer_drain(in, 1);
                to_client(b, line, (size_t) nl.pos);
                continue;
            }
        } else {
            uint8_t hdr[4];
            if (avail < 4) {
                return eof ? WSG_ERROR : 0;
            }
            evbuffer_copyout(in, hdr, 4);
            n = (size_t) hdr[0] << 24 | (size_t) hdr[1] << 16 |
                (size_t) hdr[2] << 8 | hdr[3];
            if (n > b->wcf->max_message) {
                return WSG_ERROR;
            }
            if (avail < n + 4) {
                return eof ? WSG_ERROR : 0;
            }
            evbuffer_drain(in, 4);
        }
        uint8_t *msg = wsg_malloc(n ? n : 1);
        evbuffer_remove(in, msg, n);
        to_client(b, msg, n);
    }
}

static void
on_backend_read(struct bufferevent *be, void *arg)
{
    struct bridge *b = arg;

    if (take_messages(b, bufferevent_get_input(be), false) != 0) {
        wsg_log(WSG_LOG_ERR, &b->c->log, 0,
                "upstream \"%s\" server %s sent an invalid %s message",
                b->u->name, b->u->servers[b->server].text,
                wsg_upstream_proto_name(b->u->protocol));
        wsg_session_close(b->s, WSG_WS_INTERNAL, "bad message from backend");
        bufferevent_disable(be, EV_READ);
        return;
    }
    if (wsg_session_draining(b->s)) {
        /* a slow client: stop reading its backend until it catches up */
        bufferevent_disable(be, EV_READ);
    }
}

static void
on_drain(struct wsg_session *s, void *data)
{
    struct bridge *b = data;

    (void) s;
    bufferevent_enable(b->be, EV_READ);
}

static void
on_backend_event(struct bufferevent *be, short what, void *arg)
{
    struct bridge *b = arg;
    uint16_t code = WSG_WS_NORMAL;

    if (what & BEV_EVENT_EOF) {
        if (take_messages(b, bufferevent_get_input(be), true) != 0) {
            code = WSG_WS_INTERNAL;
        }
        wsg_log(WSG_LOG_INFO, &b->c->log, 0,
                "upstream \"%s\" server %s closed the connection", b->u->name,
                b->u->servers[b->server].text);
    } else {
        code = WSG_WS_INTERNAL;
        wsg_log(WSG_LOG_ERR, &b->c->log,
                (what & BEV_EVENT_TIMEOUT) ? 0 : EVUTIL_SOCKET_ERROR(),
                "upstream \"%s\" server %s %s", b->u->name,
                b->u->servers[b->server].text,
                (what & BEV_EVENT_TIMEOUT) ? "timed out (proxy_read_timeout)"
                                           : "connection failed");
    }
    bufferevent_disable(be, EV_READ | EV_WRITE);
    wsg_session_close(b->s, code, code == WSG_WS_NORMAL ? "" : "backend error");
}

static void
on_close(struct wsg_session *s, void *data, uint16_t code)
{
    (void) s;
    (void) code;
    bridge_free(data);
}

static const struct wsg_session_handler bridge_handler = {
    .on_message = on_message,
    .on_drain = on_drain,
    .on_close = on_close,
};

/* ---- connecting ---- */

static void
connected(struct bridge *b)
{
    struct wsg_conn *c = b->c;
    struct wsg_upstream_server *srv = &b->u->servers[b->server];
    struct timeval rt = {
        (time_t) (b->ulcf->read_timeout_ms / 1000),
        (suseconds_t) ((b->ulcf->read_timeout_ms % 1000) * 1000)};

    atomic_fetch_add(&srv->state->conns, 1);
    b->counted = true;
    if (b->u->proxy_protocol != 0) {
        uint8_t hdr[WSG_PROXY_HEADER_MAX];
        size_t n = wsg_proxy_protocol_write(hdr, b->u->proxy_protocol,
                                            (struct sockaddr *) &c->peer_addr,
                                            (struct sockaddr *) &c->local_addr);
        evbuffer_add(bufferevent_get_output(b->be), hdr, n);
    }
    bufferevent_set_timeouts(b->be, b->ulcf->read_timeout_ms ? &rt : NULL,
                             NULL);
    bufferevent_setcb(b->be, on_backend_read, on_backend_written,
                      on_backend_event, b);
    bufferevent_enable(b->be, EV_READ);
    wsg_io_attach(&b->io, b->be);

    evbuffer_add(bufferevent_get_output(c->bev), b->resp, strlen(b->resp));
    c->bytes_out += strlen(b->resp);
    free(b->resp); /* an idle client holds no more than it needs */
    b->resp = NULL;
    c->status = 101;
    c->pending_free = NULL;
    c->pending = NULL;
    bufferevent_enable(c->bev, EV_READ);
    b->s = wsg_session_start(c, b->wcf, b->deflate ? &b->dp : NULL,
                             &bridge_handler, b);
}

static void
on_connect_event(struct bufferevent *be, short what, void *arg)
{
    struct bridge *b = arg;
    struct wsg_upstream_server *srv = &b->u->servers[b->server];

    (void) be;
    if (what & BEV_EVENT_CONNECTED) {
        wsg_peer_recovered(srv);
        connected(b);
        return;
    }
    wsg_log(WSG_LOG_ERR, &b->c->log,
            (what & BEV_EVENT_TIMEOUT) ? 0 : EVUTIL_SOCKET_ERROR(),
            "connect() to %s of upstream \"%s\" %s", srv->text, b->u->name,
            (what & BEV_EVENT_TIMEOUT) ? "timed out" : "failed");
    wsg_peer_failed(srv, wsg_process_now_ms());
    bufferevent_free(b->be);
    b->be = NULL;
    connect_next(b);
}

static void
connect_next(struct bridge *b)
{
    size_t limit =
        b->ulcf->next_tries > 0 ? (size_t) b->ulcf->next_tries : b->u->nservers;
    int i = b->tries < limit
                ? wsg_upstream_pick(b->u, b->key, b->keylen, b->tried)
                : -1;

    if (i < 0) {
        struct wsg_conn *c = b->c;
        wsg_log(WSG_LOG_ERR, &c->log, 0,
                "no server of upstream \"%s\" could be reached", b->u->name);
        c->pending_free = NULL;
        c->pending = NULL;
        bridge_free(b);
        bufferevent_enable(c->bev, EV_READ);
        wsg_http_respond_error(c, 502, "");
        return;
    }
    struct wsg_upstream_server *srv = &b->u->servers[i];
    struct timeval ct = {
        (time_t) (b->ulcf->connect_timeout_ms / 1000),
        (suseconds_t) ((b->ulcf->connect_timeout_ms % 1000) * 1000)};
    b->server = i;
    b->tried |= 1ull << i;
    b->tries++;
    b->be = bufferevent_socket_new(b->c->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(b->be, NULL, NULL, on_connect_event, b);
    /* a pending connect waits for writability: the write timeout bounds it */
    bufferevent_set_timeouts(b->be, NULL, &ct);
    if (bufferevent_socket_connect(b->be, (struct sockaddr *) &srv->addr,
                                   (int) srv->addrlen) != 0) {
        /* immediate failures (no route, no fd) come as an event too */
        return;
    }
}

void
wsg_upstream_start(struct wsg_conn *c, const struct wsg_ws_loc_conf *wcf,
                   const struct wsg_upstream_loc_conf *ulcf,
                   const struct wsg_ws_handshake *h,
                   const struct wsg_http_request *r)
{
    struct wsg_upstream *u = ulcf->upstream;
    char resp[1024];

    if (wsg_upstream_pooled(u->protocol)) {
        wsg_pool_start(c, wcf, ulcf, h, r);
        return;
    }
    struct bridge *b = wsg_calloc(1, sizeof(*b));
    b->c = c;
    b->wcf = wcf;
    b->ulcf = ulcf;
    b->u = u;
    b->deflate = h->deflate;
    b->dp = h->deflate_params;
    size_t n = wsg_ws_handshake_response(h, resp, sizeof(resp));
    b->resp = wsg_strndup(resp, n);
    if (u->balance == WSG_BALANCE_HASH) {
        char key[256];
        b->keylen =
            wsg_http_var_expand(u->hash_key, r, c->peer_host, key, sizeof(key));
        b->key = wsg_strndup(key, b->keylen);
    }
    c->pending_free = pending_free;
    c->pending = b;
    /* the client waits (unread) while the backend answers */
    bufferevent_disable(c->bev, EV_READ);
    c->log.action = "connecting to upstream";
    connect_next(b);
}
