/*
 * Frames on an open connection. Echo messages are verified as they stream
 * in, chain by chain, against the pattern bytes they were sent from, so a
 * 64 MiB echo needs no 64 MiB buffer. Sends write header and masked
 * payload straight into the output evbuffer's free space: nothing is
 * allocated per message beyond the evbuffer's own chains.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "traffic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "rng.h"

/* open loop: in-flight echoes a connection may hold before due messages
 * count as unsent */
#define RING_MAX (1u << 16)

/* A write position across the (at most two) extents that
 * evbuffer_reserve_space() hands out. */
struct out_cursor {
    struct evbuffer_iovec *v;
    int i;
    size_t off;
};

static void
put(struct out_cursor *oc, const uint8_t *src, size_t len, const uint8_t *mask,
    size_t *mpos)
{
    while (len > 0) {
        struct evbuffer_iovec *v = &oc->v[oc->i];
        size_t room = v->iov_len - oc->off;
        if (room == 0) {
            oc->i++;
            oc->off = 0;
            continue;
        }
        size_t n = len < room ? len : room;
        uint8_t *dst = (uint8_t *) v->iov_base + oc->off;
        if (mask != NULL) {
            *mpos = wsb_frame_mask(dst, src, n, mask, *mpos);
        } else {
            memcpy(dst, src, n);
        }
        oc->off += n;
        src += n;
        len -= n;
    }
}

void
wsb_traffic_send_frame(struct wsb_conn *c, uint8_t opcode,
                       const uint8_t *payload, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint64_t r = wsb_rng_next(&c->w->rng);
    uint8_t mask[4];
    uint8_t hdr[WSB_FRAME_HEADER_MAX];
    struct evbuffer_iovec v[2];

    memcpy(mask, &r, 4);
    size_t hlen = wsb_frame_header(hdr, opcode, len, mask);
    int n = evbuffer_reserve_space(out, (ev_ssize_t) (hlen + len), v, 2);
    if (n < 1) {
        fprintf(stderr, "wsbench: out of memory for a %zu-byte frame\n", len);
        abort();
    }
    struct out_cursor oc = {v, 0, 0};
    size_t mpos = 0;
    put(&oc, hdr, hlen, NULL, NULL);
    put(&oc, payload, len, mask, &mpos);
    /* commit exactly what was written: the reservation may be larger */
    v[oc.i].iov_len = oc.off;
    evbuffer_commit_space(out, v, oc.i + 1);
}

/* Makes room for one more in-flight echo in the open loop. */
static int
ring_grow(struct wsb_conn *c)
{
    uint32_t cap = c->ring_cap * 2;

    if (c->ring_cap >= RING_MAX) {
        return -1;
    }
    struct wsb_inflight *r = realloc(c->ring, cap * sizeof(*r));
    if (r == NULL) {
        return -1;
    }
    /* unwrap: entries before the head move past the old end */
    uint32_t wrapped = c->ring_head + c->ring_count > c->ring_cap
                           ? c->ring_head + c->ring_count - c->ring_cap
                           : 0;
    memcpy(r + c->ring_cap, r, wrapped * sizeof(*r));
    c->ring = r;
    c->ring_cap = cap;
    return 0;
}

void
wsb_traffic_send_echo(struct wsb_conn *c, uint64_t intended_ns, uint64_t now)
{
    struct wsb_worker *w = c->w;
    size_t size = w->cf->msg_size;

    if (c->ring_count == c->ring_cap && ring_grow(c) != 0) {
        if (wsb_worker_in_window(w, now)) {
            w->st.unsent++;
        }
        return;
    }
    /* 61 and the prime span make consecutive messages differ */
    uint32_t offset = (uint32_t) ((uint64_t) c->seq++ * 61 % WSB_PATTERN_SPAN);
    uint32_t tail = (c->ring_head + c->ring_count) % c->ring_cap;
    c->ring[tail].intended_ns = intended_ns;
    c->ring[tail].offset = offset;
    c->ring_count++;
    wsb_traffic_send_frame(c, w->cf->binary ? WSB_OP_BINARY : WSB_OP_TEXT,
                           w->pattern + offset, size);
    if (wsb_worker_in_window(w, now)) {
        w->st.sent++;
        w->st.sent_bytes += size;
    }
}

static uint64_t
real_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/*
 * Room mode. The sender's message is the JSON text
 *   {"type":"say","room":"<R>","text":"<timestamp_ns>"}
 * where the timestamp is the wall clock in ns at sending (19 digits). A
 * broadcasting server may wrap or reformat it as it likes: any received
 * message that contains a run of exactly 19 digits whose value lies between
 * the run's start and now is a delivery, timed from that value. Every
 * member counts, the sender included if the server sends to it too.
 */
/* Sends at most this many messages in one tick when behind schedule. */
#define ROOM_CATCH_UP 256

void
wsb_traffic_room_send(struct wsb_conn *c, uint64_t now)
{
    static uint64_t due_ns; /* the sender's schedule (one sender) */
    struct wsb_worker *w = c->w;
    double iv = w->cf->interval_s;
    struct timeval tv = {(time_t) iv, (suseconds_t) ((iv - (time_t) iv) * 1e6)};
    uint64_t step = (uint64_t) (iv * 1e9), real = real_now_ns();
    char body[160];

    evtimer_add(&c->timer, &tv);
    if (due_ns == 0 || step == 0) {
        due_ns = real;
    }
    /* a timer fires late under load: catch up to the schedule, so the
     * interval sets the rate however coarse the timer is */
    for (int k = 0; k < ROOM_CATCH_UP && due_ns <= real; k++) {
        int n = snprintf(body, sizeof(body),
                         "{\"type\":\"say\",\"room\":\"%s\",\"text\":\"%llu\"}",
                         w->cf->room, (unsigned long long) real_now_ns());
        wsb_traffic_send_frame(c, WSB_OP_TEXT, (const uint8_t *) body,
                               (size_t) n);
        if (wsb_worker_in_window(w, now)) {
            w->st.sent++;
            w->st.sent_bytes += (uint64_t) n;
        }
        due_ns += step ? step : 1;
    }
    if (due_ns + step * ROOM_CATCH_UP < real) {
        /* hopelessly behind: drop the backlog rather than burst forever */
        due_ns = real;
    }
}

/* The chat protocol's greeting and join, for a member of the room. */
static void
room_join(struct wsb_conn *c)
{
    char body[200];
    int n =
        snprintf(body, sizeof(body), "{\"type\":\"hello\",\"user\":\"m%u-%u\"}",
                 (unsigned) c->w->index, (unsigned) c->id);

    wsb_traffic_send_frame(c, WSB_OP_TEXT, (const uint8_t *) body, (size_t) n);
    n = snprintf(body, sizeof(body), "{\"type\":\"join\",\"room\":\"%s\"}",
                 c->w->cf->room);
    wsb_traffic_send_frame(c, WSB_OP_TEXT, (const uint8_t *) body, (size_t) n);
}

static void
room_received(struct wsb_conn *c, uint64_t now)
{
    struct wsb_worker *w = c->w;
    const char *p = c->text;
    const char *end = c->text + c->text_len;

    while (p < end) {
        const char *d = p;
        while (d < end && (*d < '0' || *d > '9')) {
            d++;
        }
        const char *e = d;
        uint64_t v = 0;
        while (e < end && *e >= '0' && *e <= '9') {
            v = v * 10 + (uint64_t) (*e - '0');
            e++;
        }
        p = e;
        if (e - d != 19) {
            continue;
        }
        uint64_t real = real_now_ns();
        if (v >= w->t0_real_ns && v <= real) {
            if (wsb_worker_in_window(w, now)) {
                w->st.messages++;
                w->st.bytes += c->msg_len;
                wsb_hist_record(&w->st.lat, real - v);
            }
            return;
        }
    }
}

/* Room: keeps the message's first WSB_TEXT_MAX bytes. */
static void
keep_text(struct wsb_conn *c, const uint8_t *p, size_t len)
{
    if (c->text_len + len > WSB_TEXT_MAX) {
        len = WSB_TEXT_MAX - c->text_len;
    }
    if (c->text_len + len > c->text_cap) {
        size_t cap = c->text_cap == 0 ? 256 : c->text_cap;
        while (cap < c->text_len + len) {
            cap *= 2;
        }
        char *t = realloc(c->text, cap);
        if (t == NULL) {
            return;
        }
        c->text = t;
        c->text_cap = cap;
    }
    memcpy(c->text + c->text_len, p, len);
    c->text_len += len;
}

/* Takes <len> bytes of the current message's payload. */
static void
take(struct wsb_conn *c, const uint8_t *p, size_t len)
{
    const struct wsb_config *cf = c->w->cf;

    if (cf->mode == WSB_MODE_ROOM) {
        keep_text(c, p, len);
    } else if (cf->mode != WSB_MODE_IDLE && !c->msg_bad) {
        if (c->ring_count == 0 || c->msg_len + len > cf->msg_size) {
            c->msg_bad = true;
        } else {
            const uint8_t *want =
                c->w->pattern + c->ring[c->ring_head].offset + c->msg_len;
            c->msg_bad = memcmp(p, want, len) != 0;
        }
    }
    c->msg_len += len;
}

/* Feeds the current data frame's payload from <in>, chain by chain. */
static void
consume(struct wsb_conn *c, struct evbuffer *in)
{
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        size_t want = c->frame_left < avail ? (size_t) c->frame_left : avail;
        if (want == 0) {
            return;
        }
        struct evbuffer_iovec v[8];
        int k = evbuffer_peek(in, (ev_ssize_t) want, NULL, v, 8);
        size_t done = 0;
        for (int i = 0; i < k && i < 8 && done < want; i++) {
            size_t n = v[i].iov_len < want - done ? v[i].iov_len : want - done;
            take(c, v[i].iov_base, n);
            done += n;
        }
        evbuffer_drain(in, done);
        c->frame_left -= done;
    }
}

static void
echo_received(struct wsb_conn *c, uint64_t now)
{
    struct wsb_worker *w = c->w;
    const struct wsb_config *cf = w->cf;
    uint8_t opcode = cf->binary ? WSB_OP_BINARY : WSB_OP_TEXT;

    if (c->ring_count == 0) {
        wsb_worker_error(w, WSB_ERR_MISMATCH, "a message nobody sent");
        return;
    }
    struct wsb_inflight m = c->ring[c->ring_head];
    c->ring_head = (c->ring_head + 1) % c->ring_cap;
    c->ring_count--;
    if (c->msg_bad || c->msg_len != cf->msg_size || c->msg_opcode != opcode) {
        wsb_worker_error(w, WSB_ERR_MISMATCH,
                         "an echo differs from the message sent");
    } else if (wsb_worker_in_window(w, now)) {
        w->st.messages++;
        w->st.bytes += c->msg_len;
        wsb_hist_record(&w->st.lat, now - m.intended_ns);
    }
    if (c->state != WSB_CONN_OPEN || w->stopping) {
        return;
    }
    if (cf->mode == WSB_MODE_CONNECT_RATE) {
        wsb_conn_close(c, 1000, now);
    } else if (cf->rate == 0) {
        wsb_traffic_send_echo(c, now, now);
    }
}

static void
message_end(struct wsb_conn *c, uint64_t now)
{
    c->in_msg = false;
    switch (c->w->cf->mode) {
    case WSB_MODE_ECHO:
    case WSB_MODE_CONNECT_RATE:
        echo_received(c, now);
        break;
    case WSB_MODE_ROOM:
        room_received(c, now);
        break;
    default:
        break;
    }
}

static void
control(struct wsb_conn *c, uint8_t opcode, const uint8_t *p, size_t len,
        uint64_t now)
{
    if (opcode == WSB_OP_PING && c->state == WSB_CONN_OPEN) {
        wsb_traffic_send_frame(c, WSB_OP_PONG, p, len);
    } else if (opcode == WSB_OP_CLOSE) {
        uint16_t code = len >= 2 ? (uint16_t) (p[0] << 8 | p[1]) : 1005;
        if (c->state == WSB_CONN_OPEN) {
            char why[64];
            snprintf(why, sizeof(why), "the server closed with %u", code);
            wsb_worker_error(c->w, WSB_ERR_CLOSED, why);
            /* echo its code back, as §5.5.1 suggests */
            wsb_traffic_send_frame(c, WSB_OP_CLOSE, p, len >= 2 ? 2 : 0);
        }
        wsb_conn_closed(c, now);
    }
}

/* A data frame begins: checks it fits the message sequence (§5.4). */
static int
data_start(struct wsb_conn *c, const struct wsb_frame *f)
{
    if (f->opcode == WSB_OP_CONT) {
        if (!c->in_msg) {
            wsb_conn_drop(c, WSB_ERR_PROTOCOL, "continuation of nothing");
            return -1;
        }
    } else {
        if (c->in_msg) {
            wsb_conn_drop(c, WSB_ERR_PROTOCOL,
                          "a message inside a fragmented one");
            return -1;
        }
        c->in_msg = true;
        c->msg_opcode = f->opcode;
        c->msg_len = 0;
        c->msg_bad = false;
        c->text_len = 0;
    }
    c->in_frame = true;
    c->frame_left = f->len;
    c->frame_fin = f->fin;
    return 0;
}

/* Reads one frame header, or a whole control frame. Returns 1 when one was
 * taken, 0 when more bytes are needed, -1 when <c> was dropped. */
static int
read_header(struct wsb_conn *c, struct evbuffer *in, uint64_t now)
{
    uint8_t buf[WSB_FRAME_HEADER_MAX + WSB_CONTROL_MAX];
    size_t avail = evbuffer_get_length(in);
    struct wsb_frame f;
    const char *why = NULL;

    ev_ssize_t n = evbuffer_copyout(
        in, buf, avail < WSB_FRAME_HEADER_MAX ? avail : WSB_FRAME_HEADER_MAX);
    int hlen = wsb_frame_parse(buf, n > 0 ? (size_t) n : 0, &f, &why);
    if (hlen == WSB_AGAIN) {
        return 0;
    }
    if (hlen == WSB_ERROR) {
        wsb_conn_drop(c, WSB_ERR_PROTOCOL, why);
        return -1;
    }
    if (f.opcode & 0x08) {
        if (avail < (size_t) hlen + f.len) {
            return 0;
        }
        evbuffer_drain(in, (size_t) hlen);
        evbuffer_remove(in, buf, (size_t) f.len);
        control(c, f.opcode, buf, (size_t) f.len, now);
        return 1;
    }
    if (data_start(c, &f) != 0) {
        return -1;
    }
    evbuffer_drain(in, (size_t) hlen);
    return 1;
}

int
wsb_traffic_read(struct wsb_conn *c, struct evbuffer *in, uint64_t now)
{
    for (;;) {
        if (c->state == WSB_CONN_CLOSED) {
            evbuffer_drain(in, evbuffer_get_length(in));
            return 0;
        }
        if (c->in_frame) {
            consume(c, in);
            if (c->frame_left > 0) {
                return 0;
            }
            c->in_frame = false;
            if (c->frame_fin) {
                message_end(c, now);
            }
            continue;
        }
        int rc = read_header(c, in, now);
        if (rc <= 0) {
            return rc;
        }
    }
}

void
wsb_traffic_reset(struct wsb_conn *c)
{
    c->in_frame = false;
    c->in_msg = false;
    c->frame_left = 0;
    c->msg_len = 0;
    c->ring_head = 0;
    c->ring_count = 0;
    c->text_len = 0;
}

void
wsb_traffic_open(struct wsb_conn *c, uint64_t now)
{
    const struct wsb_config *cf = c->w->cf;

    switch (cf->mode) {
    case WSB_MODE_ECHO:
        if (cf->rate == 0) {
            for (unsigned i = 0; i < cf->pipeline; i++) {
                wsb_traffic_send_echo(c, now, now);
            }
        }
        break;
    case WSB_MODE_CONNECT_RATE:
        wsb_traffic_send_echo(c, now, now);
        break;
    case WSB_MODE_ROOM:
        if (cf->join) {
            room_join(c);
        }
        if (c->id == 0 && cf->join) {
            /* one interval for the members to join before the first say */
            double iv = cf->interval_s;
            struct timeval tv = {(time_t) iv,
                                 (suseconds_t) ((iv - (time_t) iv) * 1e6)};
            evtimer_add(&c->timer, &tv);
        } else if (c->id == 0) {
            wsb_traffic_room_send(c, now);
        }
        break;
    default:
        break;
    }
}
