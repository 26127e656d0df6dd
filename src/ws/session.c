/*
 * WebSocket sessions. The read loop takes frames from the input buffer as
 * they come, never assuming a whole frame is there: headers are parsed
 * from at most 14 contiguous bytes, control frames wait until whole (125
 * bytes at most), data frames stream into the message buffer, which grows
 * only as bytes arrive (a declared length allocates nothing). Text is
 * checked for UTF-8 as it arrives, so a bad message fails at its first bad
 * byte. One timer per connection serves the heartbeat and the close wait.
 */
#include "config.h"

#include "ws/session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/core.h"
#include "core/cycle.h"
#include "bus/bus_worker.h"
#include "core/stats.h"
#include "http/http_parse.h"
#include "http/http_request.h"
#include "net/conn.h"
#include "process/worker.h"
#include "process/process.h"
#include "upstream/pool.h"
#include "ws/deflate.h"
#include "ws/utf8.h"
#include "ws/ws_conf.h"

/* Payloads up to this are copied into the output (one chain for many
 * small messages, one writev); larger ones are added by reference. */
#define COPY_MAX  4096
/* Attributes one session can hold. */
#define ATTRS_MAX 16

enum state {
    S_NEW,     /* made at the handshake; no 101 sent yet */
    S_OPEN,    /* messages flow both ways */
    S_CLOSING, /* we sent a close frame; waiting for the client's */
    S_DONE,    /* the connection is being closed; read nothing more */
};

struct wsg_session {
    struct wsg_conn *c;
    const struct wsg_ws_loc_conf *wcf;
    enum state state;
    struct wsg_ws_msg_state st;
    struct wsg_ws_frame f; /* the data frame being read */
    bool in_frame;
    uint64_t f_left; /* payload bytes of <f> still to come */
    uint64_t f_off;  /* payload bytes of <f> read: the mask phase */
    uint32_t utf8;   /* validator state of the open text message */
    uint8_t *msg;    /* the message being assembled; owned */
    size_t msg_len;
    size_t msg_cap;
    struct wsg_deflate *deflate; /* owned; NULL without the extension */
    uint64_t last_rx_ms;         /* last frame from the client */
    uint64_t read_ms;            /* when the read being handled came */
    bool ping_sent;              /* a ping is out and unanswered */
    unsigned holds;              /* reasons to stop reading the client */
    bool draining;               /* output over half the cap: the handler
                                    hears on_drain once it falls to 1/4 */
    const struct wsg_session_handler *h;
    void *hdata;    /* the handler's, freed by its on_close */
    bool self_held; /* held by the core: its own output is backed up */
    bool hooked;    /* modules saw its handshake: they get on_close */
    const struct wsg_http_request *req; /* during on_handshake only */
    int reject; /* HTTP status a module refused the handshake with */
    char *user; /* owned; NULL: none */
    size_t user_len;
    void **module_data; /* a slot per module of the cycle; owned */
    void *bus;          /* the bus's per-session state (rooms) */
    void *routes;       /* upstreams routed to (upstream/pool.c) */
    char **attrs;       /* 2 * ATTRS_MAX: name, value pairs; owned; NULL until
                           the first is set (most sessions have none) */
    struct wsg_timer *timers; /* pending module timers; owned */
    size_t hook;              /* index of the module whose message hook
                                 runs: its own lookups need no scan */
};

struct wsg_timer {
    struct event ev;
    struct wsg_timer *next; /* in its session's list */
    struct wsg_timer **prev;
    struct wsg_session *s; /* NULL: the worker's */
    void (*fn)(struct wsg_session *s, void *data);
    void *data;
    bool firing; /* its callback runs: the core frees it after */
};

/* One message as modules see it (wsgate_module.h). */
struct wsg_msg {
    uint8_t opcode;
    uint8_t *data; /* owned by the delivery; NULL once taken */
    size_t len;
    json_t *json; /* parsed on first wsg_msg_json(); owned */
    bool json_tried;
    bool taken; /* <data> was handed to an output: not freed here */
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void check_output(struct wsg_session *s);

static void
arm(struct wsg_session *s, uint64_t ms)
{
    struct timeval tv = {(time_t) (ms / 1000),
                         (suseconds_t) ((ms % 1000) * 1000)};

    evtimer_add(&s->c->timer, &tv);
}

/* Arms the heartbeat for the earlier of the next ping and the idle cut. */
static void
arm_heartbeat(struct wsg_session *s)
{
    const struct wsg_ws_loc_conf *wcf = s->wcf;
    uint64_t ms = wcf->ping_interval_ms;

    if (ms == 0 || (wcf->idle_timeout_ms != 0 && wcf->idle_timeout_ms < ms)) {
        ms = wcf->idle_timeout_ms;
    }
    if (ms != 0) {
        arm(s, ms);
    }
}

static void
free_message(struct wsg_session *s)
{
    free(s->msg);
    s->msg = NULL;
    s->msg_len = 0;
    s->msg_cap = 0;
}

/* Queues a frame whose payload is copied into the output. */
static void
put_frame(struct wsg_session *s, uint8_t opcode, uint8_t rsv,
          const uint8_t *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(s->c->bev);
    uint8_t hdr[WSG_WS_MAX_HEADER];
    size_t n = wsg_ws_frame_header(hdr, true, opcode, rsv, len);

    evbuffer_add(out, hdr, n);
    evbuffer_add(out, data, len);
    s->c->bytes_out += n + len;
}

static void
free_ref(const void *data, size_t len, void *arg)
{
    (void) len;
    (void) arg;
    free((void *) data);
}

static void
put_owned(struct wsg_session *s, uint8_t opcode, uint8_t rsv, uint8_t *data,
          size_t len)
{
    struct evbuffer *out = bufferevent_get_output(s->c->bev);
    uint8_t hdr[WSG_WS_MAX_HEADER];
    size_t n = wsg_ws_frame_header(hdr, true, opcode, rsv, len);

    evbuffer_add(out, hdr, n);
    if (len > COPY_MAX) {
        /* handed over: libevent frees it once it is written */
        evbuffer_add_reference(out, data, len, free_ref, NULL);
    } else {
        evbuffer_add(out, data, len);
        free(data);
    }
    s->c->bytes_out += n + len;
}

static void
send_control(struct wsg_session *s, uint8_t opcode, const uint8_t *p,
             size_t len)
{
    put_frame(s, opcode, 0, p,
              len > WSG_WS_MAX_CONTROL ? WSG_WS_MAX_CONTROL : len);
}

static void
send_close(struct wsg_session *s, uint16_t code, const char *reason)
{
    uint8_t p[WSG_WS_MAX_CONTROL];
    size_t n = 0;

    /* 1005 means "no code": answer such a close with an empty payload */
    if (code != WSG_WS_NO_STATUS) {
        p[0] = (uint8_t) (code >> 8);
        p[1] = (uint8_t) code;
        n = strlen(reason);
        n = n > WSG_WS_MAX_CONTROL - 2 ? WSG_WS_MAX_CONTROL - 2 : n;
        memcpy(p + 2, reason, n);
        n += 2;
    }
    send_control(s, WSG_WS_CLOSE, p, n);
    s->c->close_code = code;
}

/*
 * Fails the connection (§7.1.7): a close frame with <code>, then the TCP
 * connection closes once it is sent. Nothing more is read.
 */
static void
fail(struct wsg_session *s, uint16_t code, const char *why)
{
    wsg_log(WSG_LOG_INFO, &s->c->log, 0, "%s, closing with %u", why,
            (unsigned) code);
    if (s->state == S_OPEN) {
        send_close(s, code, "");
    }
    s->state = S_DONE;
    free_message(s);
    wsg_conn_close_after_flush(s->c, "closing WebSocket connection");
}

void
wsg_session_close(struct wsg_session *s, uint16_t code, const char *reason)
{
    if (s->state != S_OPEN) {
        return;
    }
    send_close(s, code, reason);
    s->state = S_CLOSING;
    s->c->log.action = "waiting for the client's close frame";
    evtimer_del(&s->c->timer);
    arm(s, s->wcf->close_timeout_ms);
}

int
wsg_session_queue(struct wsg_session *s, uint8_t opcode, uint8_t *data,
                  size_t len, int owned)
{
    struct evbuffer *out = bufferevent_get_output(s->c->bev);

    if (s->state != S_OPEN) {
        if (owned) {
            free(data);
        }
        return WSG_ERROR;
    }
    if (evbuffer_get_length(out) > s->wcf->send_buffer_max) {
        if (owned) {
            free(data);
        }
        wsg_log(WSG_LOG_INFO, &s->c->log, 0,
                "client send buffer over %llu bytes",
                (unsigned long long) s->wcf->send_buffer_max);
        fail(s, WSG_WS_POLICY, "client does not read");
        return WSG_ERROR;
    }
    uint8_t rsv = 0;
    if (s->deflate != NULL && len >= s->wcf->deflate_conf.threshold) {
        uint8_t *z = NULL;
        size_t zlen = 0;
        if (wsg_deflate_compress(s->deflate, data, len, &z, &zlen) == 0) {
            if (owned) {
                free(data);
            }
            data = z;
            len = zlen;
            owned = 1;
            rsv = WSG_WS_RSV1;
        }
    }
    if (owned) {
        put_owned(s, opcode, rsv, data, len);
    } else {
        put_frame(s, opcode, rsv, data, len);
    }
    s->c->msgs_out++;
    atomic_fetch_add_explicit(&wsg_stats->messages_out, 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&wsg_stats->bytes_out, len, memory_order_relaxed);
    check_output(s);
    return 0;
}

/* Arms the drain notice once the output passes half the cap. */
static void
check_output(struct wsg_session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->c->bev);

    if (!s->draining &&
        evbuffer_get_length(out) > s->wcf->send_buffer_max / 2) {
        s->draining = true;
        /* on_write runs when the output drains below a quarter */
        bufferevent_setwatermark(s->c->bev, EV_WRITE,
                                 (size_t) s->wcf->send_buffer_max / 4, 0);
    }
}

bool
wsg_session_draining(const struct wsg_session *s)
{
    return s->draining;
}

void
wsg_session_hold(struct wsg_session *s)
{
    if (s->holds++ == 0 && s->state != S_DONE) {
        bufferevent_disable(s->c->bev, EV_READ);
    }
}

void
wsg_session_release(struct wsg_session *s)
{
    if (s->holds == 0 || --s->holds > 0 || s->state == S_DONE) {
        return;
    }
    bufferevent_enable(s->c->bev, EV_READ);
    /* frames may wait in the input already: no read event comes for them */
    if (evbuffer_get_length(bufferevent_get_input(s->c->bev)) > 0) {
        bufferevent_trigger(s->c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
    }
}

/* A location whose messages no module takes: they are dropped. */
static void
drop_message(struct wsg_session *s, void *data, uint8_t opcode, uint8_t *msg,
             size_t len)
{
    (void) s;
    (void) data;
    (void) opcode;
    (void) len;
    free(msg);
}

static void
drop_close(struct wsg_session *s, void *data, uint16_t code)
{
    (void) s;
    (void) data;
    (void) code;
}

static const struct wsg_session_handler drop_handler = {
    .on_message = drop_message,
    .on_drain = NULL,
    .on_close = drop_close,
};

/* Runs the modules' message hooks; true when one of them took it. */
static bool
run_hooks(struct wsg_session *s, struct wsg_msg *m)
{
    const struct wsg_cycle *cycle = s->c->w->cycle;

    for (size_t i = 0; i < cycle->nmodules && s->state == S_OPEN; i++) {
        const struct wsg_module *mod = cycle->modules[i];
        if (mod->on_message == NULL) {
            continue;
        }
        s->hook = i;
        int rc = mod->on_message(s, m);
        if (rc == WSG_STOP) {
            return true;
        }
        if (rc != WSG_NEXT) {
            wsg_log(WSG_LOG_ERR, &s->c->log, 0,
                    "module \"%s\" failed on a message", mod->name);
            wsg_session_close(s, WSG_WS_INTERNAL, "module error");
            return true;
        }
    }
    return s->state != S_OPEN;
}

/* A complete message arrived: modules first, then the handler owns it. */
static void
deliver(struct wsg_session *s, uint8_t opcode, uint8_t *data, size_t len)
{
    struct wsg_msg m = {opcode, data, len, NULL, false, false};

    s->c->msgs_in++;
    atomic_fetch_add_explicit(&wsg_stats->messages_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wsg_stats->bytes_in, len, memory_order_relaxed);
    if (m.data == NULL) {
        /* an empty message has no buffer; handlers always get one */
        m.data = wsg_malloc(1);
    }
    bool taken = run_hooks(s, &m);
    json_decref(m.json);
    if (m.taken) {
        /* an output owns the buffer now */
    } else if (taken || s->state != S_OPEN) {
        free(m.data);
    } else {
        s->h->on_message(s, s->hdata, opcode, m.data, m.len);
    }
    /* a client whose own output backs up is not read until it drains, so
     * one that sends but does not read cannot grow its queue */
    if (s->draining && !s->self_held && s->state == S_OPEN) {
        s->self_held = true;
        wsg_session_hold(s);
    }
}

static void
message_done(struct wsg_session *s)
{
    uint8_t opcode = s->st.opcode;
    uint8_t *data = s->msg;
    size_t len = s->msg_len;

    s->msg = NULL;
    s->msg_len = 0;
    s->msg_cap = 0;
    s->st.opcode = 0;
    if (s->st.compressed) {
        uint8_t *plain = NULL;
        size_t plen = 0;
        int rc =
            wsg_deflate_inflate(s->deflate, data, len, true,
                                (size_t) s->wcf->max_message, &plain, &plen);
        free(data);
        if (rc == WSG_DEFLATE_TOO_BIG) {
            fail(s, WSG_WS_TOO_BIG,
                 "client sent a message over "
                 "websocket_max_message once inflated");
            return;
        }
        if (rc != 0) {
            fail(s, WSG_WS_INVALID_DATA, "client sent corrupt deflate data");
            return;
        }
        data = plain;
        len = plen;
        if (opcode == WSG_WS_TEXT && !wsg_utf8_valid(data, len)) {
            free(data);
            fail(s, WSG_WS_INVALID_DATA, "client sent invalid UTF-8");
            return;
        }
    } else if (opcode == WSG_WS_TEXT && s->utf8 != WSG_UTF8_ACCEPT) {
        free(data);
        fail(s, WSG_WS_INVALID_DATA, "client sent truncated UTF-8");
        return;
    }
    s->utf8 = WSG_UTF8_ACCEPT;
    deliver(s, opcode, data, len);
}

static void
handle_close(struct wsg_session *s, const uint8_t *p, size_t len)
{
    uint16_t code;
    uint16_t bad = wsg_ws_close_parse(p, len, &code);

    if (bad != 0) {
        fail(s, bad, "client sent an invalid close frame");
        return;
    }
    if (s->state == S_OPEN) {
        /* echo the code (§5.5.1); the server closes TCP first (§7.1.1) */
        send_close(s, code, "");
    }
    s->c->close_code = code;
    s->state = S_DONE;
    free_message(s);
    wsg_conn_close_after_flush(s->c, "closing WebSocket connection");
}

/* Handles a whole control frame whose payload is <p> (unmasked). */
static void
handle_control(struct wsg_session *s, uint8_t opcode, const uint8_t *p,
               size_t len)
{
    switch (opcode) {
    case WSG_WS_PING:
        if (s->state == S_OPEN) {
            send_control(s, WSG_WS_PONG, p, len);
        }
        break;
    case WSG_WS_PONG:
        /* any pong answers our ping; unsolicited ones are ignored */
        s->ping_sent = false;
        break;
    case WSG_WS_CLOSE:
        handle_close(s, p, len);
        break;
    default:
        break;
    }
}

/* Reads one control frame if all of it is buffered; false to wait. */
static bool
read_control(struct wsg_session *s, struct evbuffer *in,
             const struct wsg_ws_frame *f)
{
    size_t total = f->header_len + (size_t) f->len;
    uint8_t payload[WSG_WS_MAX_CONTROL];

    if (evbuffer_get_length(in) < total) {
        return false;
    }
    evbuffer_drain(in, f->header_len);
    evbuffer_remove(in, payload, (size_t) f->len);
    s->c->bytes_in += total;
    if (f->masked) {
        wsg_ws_unmask(payload, (size_t) f->len, f->mask, 0);
    }
    handle_control(s, f->opcode, payload, (size_t) f->len);
    return true;
}

/* Reads the next frame header; false when more bytes are needed. */
static bool
read_header(struct wsg_session *s, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in);
    size_t n = len < WSG_WS_MAX_HEADER ? len : WSG_WS_MAX_HEADER;
    const uint8_t *p = evbuffer_pullup(in, (ssize_t) n);
    struct wsg_ws_frame f;
    uint16_t code;

    if (n < 2) {
        return false;
    }
    int rc = wsg_ws_frame_parse(p, n, &f, &code);
    if (rc == WSG_AGAIN) {
        return false;
    }
    if (rc < 0) {
        fail(s, code, "client sent an invalid frame length");
        return false;
    }
    code = wsg_ws_frame_check(&s->st, &f);
    if (code != 0) {
        fail(s, code,
             code == WSG_WS_TOO_BIG ? "client sent a frame or "
                                      "message over the limit"
                                    : "client sent an invalid frame");
        return false;
    }
    s->last_rx_ms = s->read_ms;
    if (f.opcode & 0x8) {
        return read_control(s, in, &f);
    }
    evbuffer_drain(in, f.header_len);
    s->c->bytes_in += f.header_len;
    s->f = f;
    s->f_left = f.len;
    s->f_off = 0;
    s->in_frame = true;
    return true;
}

/* Moves up to the rest of the current frame's payload into the message. */
static void
read_payload(struct wsg_session *s, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    size_t n = s->f_left < avail ? (size_t) s->f_left : avail;

    if (s->state == S_CLOSING) {
        /* after our close, data is read and dropped (§5.5.1) */
        evbuffer_drain(in, n);
    } else if (n > 0) {
        if (s->msg_len + n > s->msg_cap) {
            size_t cap = s->msg_cap ? s->msg_cap : 256;
            while (cap < s->msg_len + n) {
                cap *= 2;
            }
            s->msg = wsg_realloc(s->msg, cap);
            s->msg_cap = cap;
        }
        uint8_t *p = s->msg + s->msg_len;
        evbuffer_remove(in, p, n);
        wsg_ws_unmask(p, n, s->f.mask, s->f_off);
        s->msg_len += n;
        if (s->st.opcode == WSG_WS_TEXT && !s->st.compressed &&
            wsg_utf8_validate(&s->utf8, p, n) != 0) {
            fail(s, WSG_WS_INVALID_DATA, "client sent invalid UTF-8");
            return;
        }
    }
    s->c->bytes_in += n;
    s->f_off += n;
    s->f_left -= n;
    if (s->f_left == 0) {
        s->in_frame = false;
        if (s->f.fin && s->state == S_OPEN) {
            message_done(s);
        } else if (s->f.fin) {
            s->st.opcode = 0;
            free_message(s);
        }
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct wsg_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    s->read_ms = wsg_process_now_ms();
    while (s->state != S_DONE && s->holds == 0) {
        if (!s->in_frame) {
            if (!read_header(s, in)) {
                return;
            }
            continue;
        }
        if (s->f_left > 0 && evbuffer_get_length(in) == 0) {
            return;
        }
        read_payload(s, in);
    }
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    struct wsg_session *s = arg;

    if (!s->draining) {
        return;
    }
    s->draining = false;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (s->state != S_DONE && s->h->on_drain != NULL) {
        s->h->on_drain(s, s->hdata);
    }
    if (s->self_held) {
        s->self_held = false;
        wsg_session_release(s);
    }
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct wsg_session *s = arg;

    (void) bev;
    if (what & BEV_EVENT_TIMEOUT) {
        wsg_log(WSG_LOG_INFO, &s->c->log, 0,
                "client timed out reading what was sent to it");
    } else if (what & BEV_EVENT_EOF) {
        if (s->state == S_OPEN) {
            wsg_log(WSG_LOG_INFO, &s->c->log, 0,
                    "client closed connection without a close frame");
            s->c->close_code = WSG_WS_ABNORMAL;
        }
    } else if (what & BEV_EVENT_ERROR) {
        wsg_log(WSG_LOG_INFO, &s->c->log, EVUTIL_SOCKET_ERROR(),
                "connection error");
        s->c->close_code = WSG_WS_ABNORMAL;
    }
    wsg_conn_free(s->c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct wsg_session *s = arg;
    const struct wsg_ws_loc_conf *wcf = s->wcf;
    uint64_t now = wsg_process_now_ms(), idle = now - s->last_rx_ms;

    (void) fd;
    (void) what;
    if (s->state == S_CLOSING) {
        wsg_log(WSG_LOG_INFO, &s->c->log, 0,
                "client did not answer the close frame in time");
        wsg_conn_free(s->c);
        return;
    }
    if (wcf->idle_timeout_ms != 0 && idle >= wcf->idle_timeout_ms) {
        wsg_log(WSG_LOG_INFO, &s->c->log, 0, "client idle for %llu ms%s",
                (unsigned long long) idle,
                s->ping_sent ? ", ping unanswered" : "");
        wsg_session_close(s, WSG_WS_GOING_AWAY, "idle timeout");
        return;
    }
    if (wcf->ping_interval_ms != 0 && idle >= wcf->ping_interval_ms &&
        !s->ping_sent) {
        send_control(s, WSG_WS_PING, (const uint8_t *) "", 0);
        s->ping_sent = true;
    }
    /* next: the next ping, or the idle cut, whichever is first */
    uint64_t next = UINT64_MAX;
    if (wcf->ping_interval_ms != 0) {
        next = idle >= wcf->ping_interval_ms ? wcf->ping_interval_ms
                                             : wcf->ping_interval_ms - idle;
    }
    if (wcf->idle_timeout_ms != 0 && wcf->idle_timeout_ms - idle < next) {
        next = wcf->idle_timeout_ms - idle;
    }
    if (next != UINT64_MAX) {
        arm(s, next);
    }
}

struct wsg_session *
wsg_session_start(struct wsg_conn *c, const struct wsg_ws_loc_conf *wcf,
                  const struct wsg_deflate_params *dp,
                  const struct wsg_session_handler *h, void *hdata)
{
    struct wsg_session *s = c->ws != NULL ? c->ws : wsg_session_new(c, wcf);

    if (h == NULL) {
        h = &drop_handler;
    }
    s->h = h;
    s->hdata = hdata;
    struct timeval wt = {(time_t) (wcf->send_timeout_ms / 1000),
                         (suseconds_t) ((wcf->send_timeout_ms % 1000) * 1000)};

    s->c = c;
    s->wcf = wcf;
    s->state = S_OPEN;
    atomic_fetch_add_explicit(&wsg_stats->handshakes, 1, memory_order_relaxed);
    s->st.require_mask = true;
    s->st.max_frame = wcf->max_frame;
    s->st.max_message = wcf->max_message;
    s->utf8 = WSG_UTF8_ACCEPT;
    s->last_rx_ms = wsg_process_now_ms();
    if (dp != NULL) {
        s->deflate = wsg_deflate_new(dp, &wcf->deflate_conf);
        s->st.allowed_rsv = s->deflate != NULL ? WSG_WS_RSV1 : 0;
    }
    c->ws = s;
    c->log.action = "proxying WebSocket messages";
    /* a session has no read deadline: the heartbeat decides liveness */
    bufferevent_set_timeouts(c->bev, NULL, wcf->send_timeout_ms ? &wt : NULL);
    /* the head's bound is lifted: a read may take many frames */
    bufferevent_set_max_single_read(c->bev, WSG_IO_READ_MAX);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, s);
    evtimer_assign(&c->timer, c->w->base, on_timer, s);
    arm_heartbeat(s);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        /* deferred: the caller gets the session before any callback */
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
    }
    return s;
}

void
wsg_session_free(struct wsg_session *s)
{
    if (s == NULL) {
        return;
    }
    uint16_t code = s->c->close_code ? s->c->close_code : WSG_WS_ABNORMAL;
    if (s->hooked) {
        const struct wsg_cycle *cycle = s->c->w->cycle;
        for (size_t i = 0; i < cycle->nmodules; i++) {
            if (cycle->modules[i]->on_close != NULL) {
                cycle->modules[i]->on_close(s, code);
            }
        }
    }
    /* the handler lets go of its backend side before the session dies */
    if (s->h != NULL) {
        s->h->on_close(s, s->hdata, code);
    }
    wsg_pool_routes_gone(s, code);
    wsg_bus_session_gone(s);
    while (s->timers != NULL) {
        wsg_timer_cancel(s->timers);
    }
    for (size_t i = 0; s->attrs != NULL && i < 2 * ATTRS_MAX; i++) {
        free(s->attrs[i]);
    }
    free(s->attrs);
    free(s->user);
    free(s->module_data);
    free(s->msg);
    wsg_deflate_free(s->deflate);
    free(s);
}

struct wsg_session *
wsg_session_new(struct wsg_conn *c, const struct wsg_ws_loc_conf *wcf)
{
    struct wsg_session *s = wsg_calloc(1, sizeof(*s));

    s->c = c;
    s->wcf = wcf;
    s->state = S_NEW;
    c->ws = s;
    return s;
}

int
wsg_session_handshake(struct wsg_session *s, const struct wsg_http_request *r)
{
    const struct wsg_cycle *cycle = s->c->w->cycle;
    int status = 0;

    s->hooked = true;
    s->req = r;
    for (size_t i = 0; i < cycle->nmodules && status == 0; i++) {
        const struct wsg_module *mod = cycle->modules[i];
        if (mod->on_handshake == NULL) {
            continue;
        }
        int rc = mod->on_handshake(s);
        if (rc == WSG_STOP) {
            /* a module that stops without a status refuses with 403 */
            status = s->reject ? s->reject : 403;
        } else if (rc != WSG_NEXT) {
            wsg_log(WSG_LOG_ERR, &s->c->log, 0,
                    "module \"%s\" failed on a handshake", mod->name);
            status = 500;
        }
    }
    s->req = NULL;
    return status;
}

bool
wsg_session_http(struct wsg_session *s, const struct wsg_http_request *r)
{
    const struct wsg_cycle *cycle = s->c->w->cycle;
    bool answered = false;

    s->req = r;
    for (size_t i = 0; i < cycle->nmodules && !answered; i++) {
        const struct wsg_module *mod = cycle->modules[i];
        if (mod->on_http == NULL) {
            continue;
        }
        int rc = mod->on_http(s);
        if (rc == WSG_STOP || s->c->closing) {
            answered = true;
        } else if (rc != WSG_NEXT) {
            wsg_log(WSG_LOG_ERR, &s->c->log, 0,
                    "module \"%s\" failed on a request", mod->name);
            wsg_http_respond_error(s->c, 500, "");
            answered = true;
        }
    }
    s->req = NULL;
    if (answered && !s->c->closing) {
        /* a module that stops must answer; one that did not gets a 500 */
        wsg_http_respond_error(s->c, 500, "");
    }
    return answered;
}

void
wsg_session_respond(struct wsg_session *s, int status, const char *ctype,
                    const void *body, size_t len)
{
    struct wsg_str b = {body, len};

    if (s->state == S_NEW && !s->c->closing) {
        wsg_http_respond(s->c, status, ctype, "", b);
    }
}

const struct wsg_cycle *
wsg_session_cycle(const struct wsg_session *s)
{
    return s->c->w->cycle;
}

bool
wsg_session_opened(const struct wsg_session *s)
{
    return s->state != S_NEW;
}

/* ---- the module API (wsgate_module.h) ---- */

int
wsg_session_send(struct wsg_session *s, int type, const void *data, size_t len)
{
    uint8_t opcode = type == WSG_MSG_BINARY ? WSG_WS_BINARY : WSG_WS_TEXT;

    return wsg_session_queue(s, opcode, (uint8_t *) data, len, 0) == 0 ? 0 : -1;
}

int
wsg_session_send_msg(struct wsg_session *s, struct wsg_msg *m)
{
    if (m->taken || m->len <= COPY_MAX) {
        /* small: a copy joins the output's chain (and one writev) */
        return wsg_session_queue(s, m->opcode, m->data, m->len, 0) == 0 ? 0
                                                                        : -1;
    }
    m->taken = true;
    return wsg_session_queue(s, m->opcode, m->data, m->len, 1) == 0 ? 0 : -1;
}

void
wsg_session_end(struct wsg_session *s, uint16_t code, const char *reason)
{
    wsg_session_close(s, code, reason != NULL ? reason : "");
}

void
wsg_session_reject(struct wsg_session *s, int status)
{
    if (status >= 400 && status <= 599) {
        s->reject = status;
    }
}

struct wsg_str
wsg_session_user(const struct wsg_session *s)
{
    struct wsg_str u = {s->user ? s->user : "", s->user ? s->user_len : 0};

    return u;
}

void
wsg_session_set_user(struct wsg_session *s, const char *user, size_t len)
{
    char *old = s->user;
    size_t oldlen = s->user_len;

    s->user = wsg_strndup(user, len);
    s->user_len = len;
    /* presence moves from the old name to the new one */
    wsg_bus_user_changed(s, old ? old : "", old ? oldlen : 0);
    free(old);
}

void **
wsg_session_bus(struct wsg_session *s)
{
    return &s->bus;
}

void **
wsg_session_routes(struct wsg_session *s)
{
    return &s->routes;
}

struct wsg_conn *
wsg_session_conn(const struct wsg_session *s)
{
    return s->c;
}

const char *
wsg_session_remote(const struct wsg_session *s)
{
    return s->c->peer_host;
}

struct wsg_str
wsg_session_path(const struct wsg_session *s)
{
    struct wsg_str p = {s->c->path ? s->c->path : "",
                        s->c->path ? strlen(s->c->path) : 0};

    return p;
}

struct wsg_str
wsg_session_header(const struct wsg_session *s, const char *name)
{
    struct wsg_str none = {NULL, 0};
    size_t from = 0;

    if (s->req == NULL) {
        return none;
    }
    const struct wsg_http_header *h = wsg_http_find_header(s->req, name, &from);
    return h != NULL ? h->value : none;
}

/* <module>'s index in the session's cycle, or SIZE_MAX. */
static size_t
module_index(const struct wsg_session *s, const struct wsg_module *module)
{
    const struct wsg_cycle *cycle = s->c->w->cycle;

    /* per message a module asks for itself, from its own hook */
    if (s->hook < cycle->nmodules && cycle->modules[s->hook] == module) {
        return s->hook;
    }
    return wsg_module_index(cycle, module);
}

void *
wsg_session_loc_conf(const struct wsg_session *s,
                     const struct wsg_module *module)
{
    size_t i = module_index(s, module);

    return i == SIZE_MAX ? NULL : s->c->loc_conf[i];
}

void **
wsg_session_data(struct wsg_session *s, const struct wsg_module *module)
{
    const struct wsg_cycle *cycle = s->c->w->cycle;
    size_t i = module_index(s, module);

    WSG_ASSERT(i != SIZE_MAX);
    if (s->module_data == NULL) {
        s->module_data = wsg_calloc(cycle->nmodules, sizeof(void *));
    }
    return &s->module_data[i];
}

void
wsg_session_log(const struct wsg_session *s, const struct wsg_module *module,
                int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (s->c->log.level < (unsigned) level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    wsg_log_write((unsigned) level, &s->c->log, 0, "module %s: %s",
                  module->name, msg);
}

const void *
wsg_msg_data(const struct wsg_msg *m, size_t *len)
{
    *len = m->len;
    return m->data;
}

bool
wsg_msg_is_text(const struct wsg_msg *m)
{
    return m->opcode == WSG_WS_TEXT;
}

json_t *
wsg_msg_json(struct wsg_msg *m)
{
    if (!m->json_tried && m->opcode == WSG_WS_TEXT) {
        m->json_tried = true;
        m->json = json_loadb((const char *) m->data, m->len,
                             JSON_REJECT_DUPLICATES, NULL);
    }
    return m->json;
}

int
wsg_session_set_attr(struct wsg_session *s, const char *name, const char *value)
{
    size_t free_at = ATTRS_MAX;

    if (s->attrs == NULL) {
        if (value == NULL) {
            return 0;
        }
        s->attrs = wsg_calloc(2 * ATTRS_MAX, sizeof(char *));
    }
    for (size_t i = 0; i < ATTRS_MAX; i++) {
        if (s->attrs[2 * i] == NULL) {
            free_at = free_at == ATTRS_MAX ? i : free_at;
            continue;
        }
        if (strcmp(s->attrs[2 * i], name) == 0) {
            free(s->attrs[2 * i + 1]);
            if (value == NULL) {
                free(s->attrs[2 * i]);
                s->attrs[2 * i] = NULL;
                s->attrs[2 * i + 1] = NULL;
            } else {
                s->attrs[2 * i + 1] = wsg_strdup(value);
            }
            return 0;
        }
    }
    if (value == NULL) {
        return 0;
    }
    if (free_at == ATTRS_MAX) {
        return -1;
    }
    s->attrs[2 * free_at] = wsg_strdup(name);
    s->attrs[2 * free_at + 1] = wsg_strdup(value);
    return 0;
}

struct wsg_str
wsg_session_attr(const struct wsg_session *s, const char *name)
{
    struct wsg_str v = {NULL, 0};

    for (size_t i = 0; s->attrs != NULL && i < ATTRS_MAX; i++) {
        if (s->attrs[2 * i] != NULL && strcmp(s->attrs[2 * i], name) == 0) {
            v.p = s->attrs[2 * i + 1];
            v.len = strlen(v.p);
            break;
        }
    }
    return v;
}

static void
unlink_timer(struct wsg_timer *t)
{
    if (t->prev != NULL) {
        *t->prev = t->next;
        if (t->next != NULL) {
            t->next->prev = t->prev;
        }
        t->prev = NULL;
    }
}

static void
on_module_timer(evutil_socket_t fd, short what, void *arg)
{
    struct wsg_timer *t = arg;

    (void) fd;
    (void) what;
    /* unlinked first: the callback may close the session, which cancels
     * the timers it still lists */
    unlink_timer(t);
    t->firing = true;
    t->fn(t->s, t->data);
    free(t);
}

struct wsg_timer *
wsg_timer_add(struct wsg_session *s, uint64_t ms,
              void (*fn)(struct wsg_session *s, void *data), void *data)
{
    struct wsg_timer *t = wsg_calloc(1, sizeof(*t));
    struct timeval tv = {(time_t) (ms / 1000),
                         (suseconds_t) ((ms % 1000) * 1000)};

    t->s = s;
    t->fn = fn;
    t->data = data;
    if (s != NULL) {
        t->next = s->timers;
        if (t->next != NULL) {
            t->next->prev = &t->next;
        }
        s->timers = t;
        t->prev = &s->timers;
    }
    evtimer_assign(&t->ev, wsg_worker_base(), on_module_timer, t);
    evtimer_add(&t->ev, &tv);
    return t;
}

void
wsg_timer_cancel(struct wsg_timer *t)
{
    if (t == NULL) {
        return;
    }
    evtimer_del(&t->ev);
    unlink_timer(t);
    if (!t->firing) {
        /* cancelled from its own callback: freed when that returns */
        free(t);
    }
}
