/*
 * Pooled backend links (mux, json). A link is one TCP connection to one
 * server; a binding is one client session on one link. The worker's id map
 * finds a binding by connection id for envelopes from backends. A link
 * never waits for one client: a client that does not read is closed by
 * its own send cap (1008), and a link whose output backs up holds all its
 * clients' reading until it drains. Links reconnect with back-off; a link
 * that says nothing for three heartbeat intervals is dead.
 */
#include "config.h"

#include "upstream/pool.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "core/alloc.h"
#include "core/core.h"
#include "core/cycle.h"
#include "http/http_parse.h"
#include "http/http_request.h"
#include "http/http_var.h"
#include "net/conn.h"
#include "net/io.h"
#include "process/process.h"
#include "process/worker.h"
#include "upstream/peer_state.h"
#include "upstream/proto_json.h"
#include "upstream/proto_mux.h"
#include "upstream/upstream.h"
#include "upstream/upstream_conf.h"
#include "ws/session.h"
#include "ws/ws_conf.h"
#include "ws/ws_handshake.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   10000
#define HEARTBEAT_MS     5000 /* without health_check interval= */
#define HEARTBEAT_MISSES 3
#define LINK_CONNECT_MS  5000
/* A link's output past this holds its clients (a slow backend). */
#define LINK_OUTPUT_MAX  (8u * 1024 * 1024)
/* Headers an open envelope can carry. */
#define OPEN_HEADERS_MAX 16
/* Servers one session reaches by wsg_msg_to_upstream(), all upstreams. */
#define LANES_MAX        32

struct binding;
TAILQ_HEAD(binding_list, binding);

enum link_state { L_DOWN, L_CONNECTING, L_UP };

struct link {
    struct wsg_pool *pool;
    size_t server; /* index in the upstream's servers */
    enum link_state state;
    struct bufferevent *be; /* owned while not L_DOWN */
    struct wsg_io io;       /* <be>'s while L_UP */
    struct event timer;     /* reconnect, then heartbeat */
    uint64_t backoff_ms;
    uint64_t last_rx_ms;
    bool congested;            /* output over LINK_OUTPUT_MAX/2 */
    struct binding_list bound; /* sessions on this link */
    size_t nbound;
};

struct wsg_pool {
    struct wsg_upstream *u;
    struct event_base *base;
    const struct wsg_log *log;
    struct link *links; /* nservers * pool_size, server-major */
    size_t nlinks;
};

struct binding {
    TAILQ_ENTRY(binding) entry; /* in its link's list */
    struct binding *next_id;    /* in the id map's bucket */
    struct link *l;             /* NULL while not bound */
    struct wsg_pool *pool;
    uint64_t id;
    struct wsg_conn *c;
    struct wsg_session *s;
    const struct wsg_ws_loc_conf *wcf;
    bool paused;           /* the backend said pause */
    bool held_congested;   /* held because its link is congested */
    size_t server_counted; /* server whose conns count us, or SIZE_MAX */
    uint8_t *open;         /* the open envelope's payload (mux) or line */
    size_t open_len;
    char *key; /* hash key, to pick its server again; owned */
    size_t keylen;
    bool lane; /* made by wsg_msg_to_upstream(), not by proxy_pass */
};

/* A session's bindings made by wsg_msg_to_upstream(): its "lanes". */
struct lanes {
    size_t n;
    struct binding *b[LANES_MAX];
};

/* ---- the worker's id map ---- */

static struct binding **buckets;
static size_t nbuckets, nbindings;

static size_t
slot_of(uint64_t id, size_t n)
{
    /* ids are sequential: a multiplicative hash spreads them */
    return (size_t) ((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (n - 1);
}

static void
map_grow(void)
{
    size_t n = nbuckets ? nbuckets * 2 : 1024;
    struct binding **nb = wsg_calloc(n, sizeof(*nb));

    for (size_t i = 0; i < nbuckets; i++) {
        struct binding *b = buckets[i];
        while (b != NULL) {
            struct binding *next = b->next_id;
            size_t k = slot_of(b->id, n);
            b->next_id = nb[k];
            nb[k] = b;
            b = next;
        }
    }
    free(buckets);
    buckets = nb;
    nbuckets = n;
}

static void
map_put(struct binding *b)
{
    if (nbindings >= nbuckets) {
        map_grow();
    }
    size_t k = slot_of(b->id, nbuckets);
    b->next_id = buckets[k];
    buckets[k] = b;
    nbindings++;
}

static struct binding *
map_get(uint64_t id)
{
    if (nbuckets == 0) {
        return NULL;
    }
    struct binding *b = buckets[slot_of(id, nbuckets)];
    while (b != NULL && b->id != id) {
        b = b->next_id;
    }
    return b;
}

static void
map_del(struct binding *b)
{
    struct binding **pp = &buckets[slot_of(b->id, nbuckets)];

    while (*pp != NULL && *pp != b) {
        pp = &(*pp)->next_id;
    }
    if (*pp == b) {
        *pp = b->next_id;
        nbindings--;
    }
}

/* ---- sending envelopes ---- */

static bool
is_json(const struct link *l)
{
    return l->pool->u->protocol == WSG_PROTO_JSON;
}

static void
free_ref(const void *data, size_t len, void *arg)
{
    (void) len;
    (void) arg;
    free((void *) data);
}

static void check_congestion(struct link *l);

/* Queues an envelope on <l>; the payload is copied (mux) or encoded. */
static void
send_env(struct link *l, const struct wsg_envelope *env)
{
    struct evbuffer *out = bufferevent_get_output(l->be);

    if (is_json(l)) {
        size_t n;
        char *line = wsg_json_encode(env, NULL, &n);
        evbuffer_add_reference(out, line, n, free_ref, NULL);
    } else {
        uint8_t hdr[WSG_MUX_HEADER];
        wsg_mux_header(hdr, env->kind, env->binary ? WSG_MUX_FLAG_BINARY : 0,
                       env->id, (uint32_t) env->len);
        evbuffer_add(out, hdr, sizeof(hdr));
        evbuffer_add(out, env->data, env->len);
    }
    check_congestion(l);
}

static void
send_open(struct link *l, const struct binding *b)
{
    struct evbuffer *out = bufferevent_get_output(l->be);

    if (is_json(l)) {
        /* the whole line was made when the client came */
        evbuffer_add(out, b->open, b->open_len);
    } else {
        uint8_t hdr[WSG_MUX_HEADER];
        wsg_mux_header(hdr, WSG_ENV_OPEN, 0, b->id, (uint32_t) b->open_len);
        evbuffer_add(out, hdr, sizeof(hdr));
        evbuffer_add(out, b->open, b->open_len);
    }
    check_congestion(l);
}

static void
send_close(struct link *l, uint64_t id, uint16_t code)
{
    uint8_t p[2] = {(uint8_t) (code >> 8), (uint8_t) code};
    struct wsg_envelope env = {0};

    env.kind = WSG_ENV_CLOSE;
    env.id = id;
    env.code = code;
    env.reason = (struct wsg_str){"", 0};
    /* mux carries the code in the payload; json in its own member */
    env.data = p;
    env.len = code == WSG_WS_NO_STATUS ? 0 : 2;
    send_env(l, &env);
}

/* ---- bindings ---- */

static void
count(struct binding *b, size_t server)
{
    struct wsg_upstream_server *servers = b->pool->u->servers;

    if (b->server_counted != SIZE_MAX) {
        atomic_fetch_sub(&servers[b->server_counted].state->conns, 1);
    }
    b->server_counted = server;
    /* SIZE_MAX: counted nowhere (the index must not even be formed) */
    if (server != SIZE_MAX && servers[server].state != NULL) {
        atomic_fetch_add(&servers[server].state->conns, 1);
    }
}

static void
unbind(struct binding *b)
{
    if (b->l == NULL) {
        return;
    }
    if (b->held_congested) {
        b->held_congested = false;
        wsg_session_release(b->s);
    }
    TAILQ_REMOVE(&b->l->bound, b, entry);
    b->l->nbound--;
    b->l = NULL;
}

static void
bind_to(struct binding *b, struct link *l)
{
    b->l = l;
    TAILQ_INSERT_TAIL(&l->bound, b, entry);
    l->nbound++;
    count(b, l->server);
    if (l->congested) {
        b->held_congested = true;
        wsg_session_hold(b->s);
    }
}

/* The least-loaded live link of server <server>, or NULL. */
static struct link *
best_link(struct wsg_pool *p, size_t server)
{
    size_t per = (size_t) p->u->pool_size;
    struct link *best = NULL;

    for (size_t i = server * per; i < (server + 1) * per; i++) {
        struct link *l = &p->links[i];
        if (l->state == L_UP && (best == NULL || l->nbound < best->nbound)) {
            best = l;
        }
    }
    return best;
}

/* Servers with no live link, as an exclusion mask for picking. */
static uint64_t
unreachable(const struct wsg_pool *p)
{
    size_t per = (size_t) p->u->pool_size;
    uint64_t mask = 0;

    for (size_t s = 0; s < p->u->nservers && s < 64; s++) {
        bool up = false;
        for (size_t i = s * per; i < (s + 1) * per && !up; i++) {
            up = p->links[i].state == L_UP;
        }
        if (!up) {
            mask |= 1ull << s;
        }
    }
    return mask;
}

/* The server for <b> (a proxy_pass client, or a lane) now, or -1. */
static int
choose_server(struct wsg_pool *p, const struct binding *b, uint64_t excluded)
{
    const char *key = b->key ? b->key : "";
    size_t len = b->key ? b->keylen : 0;

    excluded |= unreachable(p);
    /* a lane with a key keeps to the ring, as its messages do */
    return b->lane && b->key != NULL
               ? wsg_upstream_pick_key(p->u, key, len, excluded)
               : wsg_upstream_pick(p->u, key, len, excluded);
}

static struct link *
choose_link(struct wsg_pool *p, const struct binding *b, uint64_t excluded)
{
    int s = choose_server(p, b, excluded);

    return s < 0 ? NULL : best_link(p, (size_t) s);
}

/* Counts a message that could not be delivered; logs at most once a
 * second per worker, with the count since the last line. */
static void
dropped(struct wsg_pool *p, size_t server, const char *why)
{
    static uint64_t last_ms, pending;
    uint64_t now = wsg_process_now_ms();

    atomic_fetch_add(&p->u->servers[server].state->dropped, 1);
    pending++;
    if (now - last_ms >= 1000) {
        wsg_log(WSG_LOG_WARN, p->log, 0,
                "upstream \"%s\" server %s: %llu messages dropped (%s)",
                p->u->name, p->u->servers[server].text,
                (unsigned long long) pending, why);
        last_ms = now;
        pending = 0;
    }
}

/* ---- session handler ---- */

/* Sends a client's message on the link of <b> (bound). */
static void
send_message(struct binding *b, bool binary, const void *data, size_t len)
{
    struct wsg_envelope env = {0};

    env.kind = WSG_ENV_MESSAGE;
    env.binary = binary;
    env.id = b->id;
    env.data = data;
    env.len = len;
    send_env(b->l, &env);
}

/* A binding of connection <c> to <p>, with a fresh id and hash key
 * <key>/<klen> (none when NULL); not bound, not in the id map yet. */
static struct binding *
binding_new(struct wsg_pool *p, struct wsg_conn *c, const char *key,
            size_t klen)
{
    struct binding *b = wsg_calloc(1, sizeof(*b));

    b->pool = p;
    b->c = c;
    b->id = wsg_peer_state_next_id();
    b->server_counted = SIZE_MAX;
    if (key != NULL) {
        b->key = wsg_strndup(key, klen);
        b->keylen = klen;
    }
    return b;
}

static void
on_message(struct wsg_session *s, void *data, uint8_t opcode, uint8_t *msg,
           size_t len)
{
    struct binding *b = data;

    (void) s;
    if (b->l == NULL) {
        /* between links during failover: nowhere to go, counted */
        dropped(b->pool, b->server_counted == SIZE_MAX ? 0 : b->server_counted,
                "client between backend connections");
        free(msg);
        return;
    }
    send_message(b, opcode == WSG_WS_BINARY, msg, len);
    free(msg);
}

/* The client of <b> is gone with <code>: its backend hears so. */
static void
binding_free(struct binding *b, uint16_t code)
{
    if (b->l != NULL && b->l->state == L_UP) {
        send_close(b->l, b->id, code);
    }
    unbind(b);
    count(b, SIZE_MAX);
    map_del(b);
    free(b->open);
    free(b->key);
    free(b);
}

static void
on_close(struct wsg_session *s, void *data, uint16_t code)
{
    (void) s;
    binding_free(data, code);
}

static const struct wsg_session_handler pool_handler = {
    .on_message = on_message,
    .on_drain = NULL,
    .on_close = on_close,
};

/* ---- links ---- */

static void link_connect(struct link *l);
static void on_link_timer(evutil_socket_t fd, short what, void *arg);

static void
arm(struct link *l, uint64_t ms)
{
    struct timeval tv = {(time_t) (ms / 1000),
                         (suseconds_t) ((ms % 1000) * 1000)};

    evtimer_add(&l->timer, &tv);
}

static uint64_t
heartbeat_ms(const struct link *l)
{
    uint64_t ms = l->pool->u->check_interval_ms;

    return ms ? ms : HEARTBEAT_MS;
}

static void
check_congestion(struct link *l)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(l->be));
    struct binding *b;

    if (!l->congested && n > LINK_OUTPUT_MAX) {
        l->congested = true;
        wsg_log(WSG_LOG_WARN, l->pool->log, 0,
                "upstream \"%s\" server %s is slow, holding its %zu clients",
                l->pool->u->name, l->pool->u->servers[l->server].text,
                l->nbound);
        TAILQ_FOREACH(b, &l->bound, entry)
        {
            b->held_congested = true;
            wsg_session_hold(b->s);
        }
        bufferevent_setwatermark(l->be, EV_WRITE, LINK_OUTPUT_MAX / 2, 0);
    }
}

static void
on_link_written(struct bufferevent *be, void *arg)
{
    struct link *l = arg;
    struct binding *b;

    if (!l->congested) {
        return;
    }
    l->congested = false;
    bufferevent_setwatermark(be, EV_WRITE, 0, 0);
    TAILQ_FOREACH(b, &l->bound, entry)
    {
        if (b->held_congested) {
            b->held_congested = false;
            wsg_session_release(b->s);
        }
    }
}

static void lane_forget(struct binding *b);

/* Moves the clients of the dead link <l> elsewhere, or closes them. */
static void
fail_over(struct link *l)
{
    struct wsg_upstream *u = l->pool->u;
    struct binding *b;

    while ((b = TAILQ_FIRST(&l->bound)) != NULL) {
        unbind(b);
        struct link *to = u->failover == WSG_FAILOVER_REOPEN
                              ? choose_link(l->pool, b, 1ull << l->server)
                              : NULL;
        if (to != NULL) {
            bind_to(b, to);
            send_open(to, b);
            continue;
        }
        if (b->lane) {
            /* one route of the session: the next message opens anew */
            lane_forget(b);
            continue;
        }
        bool other = choose_link(l->pool, b, 1ull << l->server) != NULL;
        wsg_session_close(b->s, other ? WSG_WS_RESTART : WSG_WS_INTERNAL,
                          "backend connection lost");
    }
}

static void
link_down(struct link *l, const char *why, int err)
{
    const struct wsg_upstream_server *srv = &l->pool->u->servers[l->server];

    wsg_log(l->state == L_UP ? WSG_LOG_ERR : WSG_LOG_WARN, l->pool->log, err,
            "upstream \"%s\" server %s: %s", l->pool->u->name, srv->text, why);
    if (l->state == L_CONNECTING) {
        wsg_peer_failed(srv, wsg_process_now_ms());
    }
    l->state = L_DOWN;
    l->congested = false;
    if (l->be != NULL) {
        wsg_io_detach(&l->io);
        bufferevent_free(l->be);
        l->be = NULL;
    }
    fail_over(l);
    evtimer_del(&l->timer);
    arm(l, l->backoff_ms);
    l->backoff_ms =
        l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void
deliver(struct link *l, struct binding *b, const struct wsg_envelope *env)
{
    switch (env->kind) {
    case WSG_ENV_MESSAGE:
        if (!env->binary && !wsg_mux_check_text(env)) {
            dropped(l->pool, l->server, "text that is not UTF-8");
            return;
        }
        wsg_session_queue(b->s, env->binary ? WSG_WS_BINARY : WSG_WS_TEXT,
                          (uint8_t *) env->data, env->len, 0);
        break;
    case WSG_ENV_CLOSE: {
        char reason[124];
        size_t n = env->reason.len < sizeof(reason) - 1 ? env->reason.len
                                                        : sizeof(reason) - 1;
        memcpy(reason, env->reason.p, n);
        reason[n] = '\0';
        wsg_session_close(
            b->s,
            /* "no code" and an echoed "dropped" (1006) mean a plain close */
            env->code == WSG_WS_NO_STATUS || env->code == WSG_WS_ABNORMAL
                ? WSG_WS_NORMAL
                : env->code,
            reason);
        break;
    }
    case WSG_ENV_PAUSE:
        if (!b->paused) {
            b->paused = true;
            wsg_session_hold(b->s);
        }
        break;
    case WSG_ENV_RESUME:
        if (b->paused) {
            b->paused = false;
            wsg_session_release(b->s);
        }
        break;
    default:
        break;
    }
}

/* Handles one envelope from link <l>. */
static void
handle(struct link *l, const struct wsg_envelope *env)
{
    if (env->kind == WSG_ENV_PING) {
        struct wsg_envelope pong = *env;
        pong.kind = WSG_ENV_PONG;
        send_env(l, &pong);
        return;
    }
    if (env->kind == WSG_ENV_PONG || env->kind == WSG_ENV_OPEN) {
        /* a pong is life; an open is an echo backend's copy of ours */
        return;
    }
    struct binding *b = map_get(env->id);
    if (b == NULL || b->l != l) {
        /* a client gone, or one that is now on another link */
        if (env->kind == WSG_ENV_MESSAGE) {
            dropped(l->pool, l->server, "unknown connection id");
        }
        return;
    }
    deliver(l, b, env);
}

/* Decodes what <l> has buffered; false when the link must go. */
static bool
read_mux(struct link *l, struct evbuffer *in)
{
    /* messages to clients are bounded by each client's send cap; here
     * only the envelope limit of the protocol applies */
    size_t max = WSG_ENV_CONTROL_MAX;

    for (;;) {
        size_t avail = evbuffer_get_length(in);
        const uint8_t *p =
            evbuffer_pullup(in, avail < WSG_MUX_HEADER ? -1 : WSG_MUX_HEADER);
        struct wsg_envelope env;
        const char *why;
        if (avail < WSG_MUX_HEADER) {
            return true;
        }
        size_t need =
            WSG_MUX_HEADER + ((size_t) p[10] << 24 | (size_t) p[11] << 16 |
                              (size_t) p[12] << 8 | p[13]);
        if (need > WSG_MUX_HEADER + max) {
            wsg_log(WSG_LOG_ERR, l->pool->log, 0,
                    "upstream \"%s\" sent an envelope of %zu bytes",
                    l->pool->u->name, need);
            return false;
        }
        if (avail < need) {
            return true;
        }
        p = evbuffer_pullup(in, (ssize_t) need);
        int rc = wsg_mux_decode(p, need, max, &env, &why);
        if (rc < 0) {
            wsg_log(WSG_LOG_ERR, l->pool->log, 0,
                    "upstream \"%s\" sent an invalid envelope: %s",
                    l->pool->u->name, why);
            return false;
        }
        handle(l, &env);
        if (l->state != L_UP) {
            return false;
        }
        evbuffer_drain(in, need);
    }
}

static bool
read_json(struct link *l, struct evbuffer *in)
{
    size_t max_line = WSG_ENV_CONTROL_MAX / 3 * 4 + 1024;

    for (;;) {
        struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, NULL);
        if (nl.pos < 0) {
            if (evbuffer_get_length(in) > max_line) {
                wsg_log(WSG_LOG_ERR, l->pool->log, 0,
                        "upstream \"%s\" sent a line over %zu bytes",
                        l->pool->u->name, max_line);
                return false;
            }
            return true;
        }
        size_t n = (size_t) nl.pos + 1;
        const uint8_t *line = evbuffer_pullup(in, (ssize_t) n);
        struct wsg_envelope env;
        uint8_t *owned = NULL;
        const char *why;
        if (wsg_json_decode(line, n, &env, &owned, &why) == 0) {
            handle(l, &env);
        } else {
            wsg_log(WSG_LOG_ERR, l->pool->log, 0,
                    "upstream \"%s\" sent an invalid envelope: %s",
                    l->pool->u->name, why);
        }
        free(owned);
        if (l->state != L_UP) {
            return false;
        }
        evbuffer_drain(in, n);
    }
}

static void
on_link_read(struct bufferevent *be, void *arg)
{
    struct link *l = arg;
    struct evbuffer *in = bufferevent_get_input(be);

    l->last_rx_ms = wsg_process_now_ms();
    bool ok = is_json(l) ? read_json(l, in) : read_mux(l, in);
    if (!ok && l->state == L_UP) {
        link_down(l, "protocol error, connection closed", 0);
    }
}

static void
on_link_event(struct bufferevent *be, short what, void *arg)
{
    struct link *l = arg;

    (void) be;
    if (what & BEV_EVENT_CONNECTED) {
        /* the server answers again: no passive down-time for it */
        wsg_peer_recovered(&l->pool->u->servers[l->server]);
        l->state = L_UP;
        l->backoff_ms = BACKOFF_FIRST_MS;
        l->last_rx_ms = wsg_process_now_ms();
        bufferevent_set_timeouts(l->be, NULL, NULL);
        bufferevent_enable(l->be, EV_READ);
        wsg_io_attach(&l->io, l->be);
        wsg_log(WSG_LOG_INFO, l->pool->log, 0,
                "upstream \"%s\" server %s connected", l->pool->u->name,
                l->pool->u->servers[l->server].text);
        evtimer_del(&l->timer);
        arm(l, heartbeat_ms(l));
        return;
    }
    if (what & BEV_EVENT_EOF) {
        link_down(l, "closed the connection", 0);
    } else if (what & BEV_EVENT_TIMEOUT) {
        link_down(l, "connect() timed out", 0);
    } else {
        link_down(l,
                  l->state == L_CONNECTING ? "connect() failed"
                                           : "connection failed",
                  EVUTIL_SOCKET_ERROR());
    }
}

static void
link_connect(struct link *l)
{
    const struct wsg_upstream_server *srv = &l->pool->u->servers[l->server];
    struct timeval ct = {LINK_CONNECT_MS / 1000, 0};

    if (srv->down) {
        return;
    }
    l->be = bufferevent_socket_new(l->pool->base, -1, BEV_OPT_CLOSE_ON_FREE);
    l->state = L_CONNECTING;
    bufferevent_setcb(l->be, on_link_read, on_link_written, on_link_event, l);
    bufferevent_set_timeouts(l->be, NULL, &ct);
    bufferevent_socket_connect(l->be, (const struct sockaddr *) &srv->addr,
                               (int) srv->addrlen);
}

static void
on_link_timer(evutil_socket_t fd, short what, void *arg)
{
    struct link *l = arg;
    uint64_t hb = heartbeat_ms(l), now = wsg_process_now_ms();

    (void) fd;
    (void) what;
    if (l->state == L_DOWN) {
        link_connect(l);
        return;
    }
    if (l->state != L_UP) {
        return;
    }
    if (now - l->last_rx_ms >= hb * HEARTBEAT_MISSES) {
        link_down(l, "silent for three heartbeats, connection closed", 0);
        return;
    }
    struct wsg_envelope ping = {0};
    ping.kind = WSG_ENV_PING;
    send_env(l, &ping);
    arm(l, hb);
}

static struct wsg_pool *
pool_new(struct wsg_upstream *u, struct event_base *base,
         const struct wsg_log *log)
{
    struct wsg_pool *p = wsg_calloc(1, sizeof(*p));
    size_t per = (size_t) u->pool_size;

    p->u = u;
    p->base = base;
    p->log = log;
    p->nlinks = u->nservers * per;
    p->links = wsg_calloc(p->nlinks, sizeof(*p->links));
    for (size_t i = 0; i < p->nlinks; i++) {
        struct link *l = &p->links[i];
        l->pool = p;
        l->server = i / per;
        l->backoff_ms = BACKOFF_FIRST_MS;
        TAILQ_INIT(&l->bound);
        evtimer_assign(&l->timer, base, on_link_timer, l);
        link_connect(l);
    }
    return p;
}

void
wsg_pool_init(struct wsg_cycle *cycle, struct event_base *base)
{
    const struct wsg_upstream_main_conf *umcf =
        wsg_upstream_main_conf(cycle->main_conf);

    for (size_t i = 0; i < umcf->nupstreams; i++) {
        struct wsg_upstream *u = umcf->upstreams[i];
        if (wsg_upstream_pooled(u->protocol) && u->pool == NULL) {
            u->pool = pool_new(u, base, &cycle->log);
        }
    }
}

/* Encodes <o> as <b>'s open envelope: the payload (mux) or line (json). */
static void
encode_open(struct binding *b, const struct wsg_env_open *o)
{
    if (b->pool->u->protocol == WSG_PROTO_JSON) {
        struct wsg_envelope env = {0};
        env.kind = WSG_ENV_OPEN;
        env.id = b->id;
        b->open = (uint8_t *) wsg_json_encode(&env, o, &b->open_len);
    } else {
        b->open = (uint8_t *) wsg_mux_open_payload(o, &b->open_len);
    }
}

/* The session's user for an open envelope: none is absent, not "". */
static struct wsg_str
open_user(const struct wsg_conn *c)
{
    struct wsg_str u =
        c->ws != NULL ? wsg_session_user(c->ws) : (struct wsg_str){NULL, 0};

    return u.len ? u : (struct wsg_str){NULL, 0};
}

/* The open envelope of a proxy_pass client, from its request. */
static void
make_open(struct binding *b, const struct wsg_upstream_loc_conf *ulcf,
          const struct wsg_ws_handshake *h, const struct wsg_http_request *r)
{
    struct wsg_str headers[2 * OPEN_HEADERS_MAX];
    struct wsg_env_open o = {0};
    size_t n = 0;

    for (size_t i = 0; i < ulcf->npass_headers && n < OPEN_HEADERS_MAX; i++) {
        size_t from = 0;
        const struct wsg_http_header *hd =
            wsg_http_find_header(r, ulcf->pass_headers[i].p, &from);
        if (hd != NULL) {
            headers[2 * n] = ulcf->pass_headers[i];
            headers[2 * n + 1] = hd->value;
            n++;
        }
    }
    o.path = r->path;
    o.query = r->query;
    o.remote = (struct wsg_str){b->c->peer, strlen(b->c->peer)};
    o.subprotocol =
        h->subprotocol.len ? h->subprotocol : (struct wsg_str){NULL, 0};
    o.user = open_user(b->c);
    o.headers = headers;
    o.nheaders = n;
    encode_open(b, &o);
}

void
wsg_pool_start(struct wsg_conn *c, const struct wsg_ws_loc_conf *wcf,
               const struct wsg_upstream_loc_conf *ulcf,
               const struct wsg_ws_handshake *h,
               const struct wsg_http_request *r)
{
    struct wsg_upstream *u = ulcf->upstream;
    char resp[1024];

    if (u->pool == NULL) {
        u->pool = pool_new(u, c->w->base, &c->w->cycle->log);
    }
    char key[256];
    size_t keylen = 0;
    if (u->balance == WSG_BALANCE_HASH) {
        keylen =
            wsg_http_var_expand(u->hash_key, r, c->peer_host, key, sizeof(key));
    }
    struct binding probe = {0};
    probe.key = key;
    probe.keylen = keylen;
    struct link *l = choose_link(u->pool, &probe, 0);
    if (l == NULL) {
        wsg_log(WSG_LOG_ERR, &c->log, 0,
                "no server of upstream \"%s\" has a live connection", u->name);
        wsg_http_respond_error(c, 502, "");
        return;
    }
    struct binding *b =
        binding_new(u->pool, c, keylen > 0 ? key : NULL, keylen);
    b->wcf = wcf;
    make_open(b, ulcf, h, r);
    map_put(b);

    size_t n = wsg_ws_handshake_response(h, resp, sizeof(resp));
    evbuffer_add(bufferevent_get_output(c->bev), resp, n);
    c->bytes_out += n;
    c->status = 101;
    b->s = wsg_session_start(c, wcf, h->deflate ? &h->deflate_params : NULL,
                             &pool_handler, b);
    bind_to(b, l);
    send_open(l, b);
}

/* ---- messages routed by modules (wsg_msg_to_upstream) ---- */

/* The open envelope of a lane: what the session still knows of its
 * request. Its headers are gone; its user is known by now. */
static void
make_lane_open(struct binding *b)
{
    struct wsg_env_open o = {0};
    struct wsg_str target = wsg_session_path(b->s);
    const char *q = memchr(target.p, '?', target.len);

    o.path =
        (struct wsg_str){target.p, q ? (size_t) (q - target.p) : target.len};
    o.query = q ? (struct wsg_str){q + 1, target.len - o.path.len - 1}
                : (struct wsg_str){NULL, 0};
    o.remote = (struct wsg_str){b->c->peer, strlen(b->c->peer)};
    o.subprotocol = (struct wsg_str){NULL, 0};
    o.user = open_user(b->c);
    encode_open(b, &o);
}

static void
lane_forget(struct binding *b)
{
    struct lanes *ls = *wsg_session_routes(b->s);

    for (size_t i = 0; i < ls->n; i++) {
        if (ls->b[i] == b) {
            ls->b[i] = ls->b[--ls->n];
            break;
        }
    }
    binding_free(b, WSG_WS_GOING_AWAY);
}

/* The session's lane on server <server> of <p>, or on any server of <p>
 * when <server> is SIZE_MAX; NULL when there is none. */
static struct binding *
lane_find(const struct lanes *ls, const struct wsg_pool *p, size_t server)
{
    for (size_t i = 0; i < ls->n; i++) {
        const struct binding *b = ls->b[i];
        if (b->pool == p && b->l != NULL &&
            (server == SIZE_MAX || b->l->server == server)) {
            return ls->b[i];
        }
    }
    return NULL;
}

/* A new lane of session <s> to server <server> of <p>, opened there. */
static struct binding *
lane_open(struct wsg_session *s, struct lanes *ls, struct wsg_pool *p,
          size_t server, const char *key, size_t klen)
{
    struct link *l = best_link(p, server);
    struct binding *b = binding_new(p, wsg_session_conn(s), key, klen);

    b->s = s;
    b->lane = true;
    make_lane_open(b);
    map_put(b);
    bind_to(b, l);
    send_open(l, b);
    ls->b[ls->n++] = b;
    return b;
}

int
wsg_msg_to_upstream(struct wsg_session *s, struct wsg_msg *m, const char *name,
                    size_t nlen, const char *key, size_t klen)
{
    const struct wsg_upstream_main_conf *umcf =
        wsg_upstream_main_conf(wsg_session_cycle(s)->main_conf);
    struct wsg_upstream *u = wsg_upstream_find(umcf, name, nlen);
    struct wsg_conn *c = wsg_session_conn(s);

    if (u == NULL || !wsg_upstream_pooled(u->protocol)) {
        return -1;
    }
    if (u->pool == NULL) {
        u->pool = pool_new(u, c->w->base, &c->w->cycle->log);
    }
    struct wsg_pool *p = u->pool;
    void **slot = wsg_session_routes(s);
    if (*slot == NULL) {
        *slot = wsg_calloc(1, sizeof(struct lanes));
    }
    struct lanes *ls = *slot;
    struct binding *b = NULL;
    if (key == NULL && u->balance != WSG_BALANCE_HASH) {
        /* without a key the session keeps to the server it has */
        b = lane_find(ls, p, SIZE_MAX);
    } else if (key == NULL) {
        key = c->peer_host;
        klen = strlen(key);
    }
    if (b == NULL) {
        struct binding probe = {0};
        probe.lane = key != NULL;
        probe.key = (char *) key;
        probe.keylen = klen;
        int server = choose_server(p, &probe, 0);
        if (server < 0) {
            dropped(p, 0, "no server has a live connection");
            return -1;
        }
        b = lane_find(ls, p, (size_t) server);
        if (b == NULL && ls->n == LANES_MAX) {
            dropped(p, (size_t) server, "a session routed to too many servers");
            return -1;
        }
        if (b == NULL) {
            b = lane_open(s, ls, p, (size_t) server, key, klen);
        }
    }
    size_t len;
    const void *data = wsg_msg_data(m, &len);
    send_message(b, !wsg_msg_is_text(m), data, len);
    return 0;
}

void
wsg_pool_routes_gone(struct wsg_session *s, uint16_t code)
{
    struct lanes *ls = *wsg_session_routes(s);

    if (ls == NULL) {
        return;
    }
    for (size_t i = 0; i < ls->n; i++) {
        binding_free(ls->b[i], code);
    }
    free(ls);
    *wsg_session_routes(s) = NULL;
}
