/*
 * A small, fast WebSocket (RFC 6455) echo server for benchmarks: it answers
 * the opening handshake (§4.2), sends every text or binary message back as
 * one unfragmented frame, answers pings and completes the closing handshake
 * (§5.5.1), then ends TCP itself (§7.1.1). Text is echoed as received,
 * without UTF-8 validation: it is a load target, not a conformance test.
 * Invariant: payload bytes are unmasked from the input's chains straight
 * into the output's free space, so nothing is allocated per message except
 * when a fragmented message must be gathered before its length is known.
 *
 *   ws-echo-server -l HOST:PORT [-t THREADS]
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID         "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define REQUEST_MAX     8192
/* a fragmented message is gathered before it is echoed: this bounds it */
#define MESSAGE_MAX     (64 * 1024 * 1024)
/* Unsent bytes past which a connection is no longer read, and the level
 * its output must fall to before reading resumes (as in echo-server.c). */
#define PENDING_MAX     (1024 * 1024)
#define RESUME_BELOW    (256 * 1024)
/* bytes unmasked per reservation: large frames go through in slices */
#define SLICE_MAX       (256 * 1024)
/* libevent reads and writes 16 KiB per call by default; large messages
 * would cost four callbacks each */
#define IO_CHUNK        (128 * 1024)
#define BACKLOG         4096
#define ACCEPT_RETRY_MS 100
#define THREADS_MAX     64

struct worker {
    struct event_base *base;         /* owned */
    struct evconnlistener *listener; /* owned */
    struct event *retry;             /* owned: re-enables the listener */
    struct event *quit;              /* owned: the quit pipe is readable */
    struct conn *conns;              /* every open connection */
    pthread_t thread;
};

struct conn {
    struct bufferevent *bev; /* owned; closes the socket when freed */
    struct worker *w;
    struct conn *prev; /* in w->conns */
    struct conn *next;
    bool upgraded;
    bool closing;         /* flush the output, then close */
    bool in_frame;        /* inside a data frame's payload */
    bool direct;          /* that payload goes straight to the output */
    bool fin;             /* that frame ends its message */
    bool in_msg;          /* a fragmented message is being gathered */
    uint8_t msg_opcode;   /* its opcode */
    uint8_t mask[4];      /* the current frame's */
    size_t mpos;          /* position in the mask cycle */
    uint64_t left;        /* payload bytes of the frame still to come */
    struct evbuffer *msg; /* owned: the fragmented message so far */
};

/* a header of an unmasked server frame */
struct frame_head {
    bool fin;
    uint8_t opcode;
    uint64_t len;
    uint8_t mask[4];
};

static void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
log_msg(const char *fmt, ...)
{
    va_list ap;

    fputs("ws-echo-server: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
conn_free(struct conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    bufferevent_free(c->bev);
    if (c->msg != NULL) {
        evbuffer_free(c->msg);
    }
    free(c);
}

/* Closes <c> once its output has been sent. */
static void
conn_finish(struct conn *c)
{
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_free(c);
    }
}

static size_t
frame_header(uint8_t *out, uint8_t opcode, uint64_t len)
{
    out[0] = 0x80 | opcode;
    if (len < 126) {
        out[1] = (uint8_t) len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t) (len >> (56 - 8 * i));
    }
    return 10;
}

static void
send_frame(struct conn *c, uint8_t opcode, const uint8_t *p, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t hdr[10];

    evbuffer_add(out, hdr, frame_header(hdr, opcode, len));
    evbuffer_add(out, p, len);
}

/* Fails the connection with close <code> (§7.1.7); <c> may be freed. */
static void
fail(struct conn *c, uint16_t code)
{
    uint8_t p[2] = {(uint8_t) (code >> 8), (uint8_t) code};

    send_frame(c, 0x8, p, sizeof(p));
    conn_finish(c);
}

/* ---- the opening handshake (§4.2) ---- */

/* The value of header <name> in the request head <h> (<len> bytes), trimmed,
 * with its length in <vlen>; NULL when absent. */
static const char *
find_header(const char *h, size_t len, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *end = h + len;
    const char *p = memchr(h, '\n', len);

    while (p != NULL && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            break;
        }
        if ((size_t) (eol - p) > nlen && p[nlen] == ':' &&
            strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            const char *e = eol;
            while (v < e && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) {
                e--;
            }
            *vlen = (size_t) (e - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

static void
reject(struct conn *c)
{
    static const char resp[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Connection: close\r\n"
                               "Content-Length: 0\r\n\r\n";

    evbuffer_add(bufferevent_get_output(c->bev), resp, sizeof(resp) - 1);
    conn_finish(c);
}

static void
accept_upgrade(struct conn *c, const char *key, size_t klen)
{
    char buf[128];
    uint8_t md[SHA_DIGEST_LENGTH];
    char accept[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];

    memcpy(buf, key, klen);
    memcpy(buf + klen, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1((const unsigned char *) buf, klen + sizeof(WS_GUID) - 1, md);
    EVP_EncodeBlock((unsigned char *) accept, md, SHA_DIGEST_LENGTH);
    evbuffer_add_printf(bufferevent_get_output(c->bev),
                        "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: %s\r\n\r\n",
                        accept);
    c->upgraded = true;
}

/* Reads the request head. Returns 0 once upgraded, -1 while incomplete or
 * when <c> is done. */
static int
handshake(struct conn *c, struct evbuffer *in)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos == -1 || end.pos + 4 > REQUEST_MAX) {
        if (evbuffer_get_length(in) > REQUEST_MAX) {
            reject(c);
        }
        return -1;
    }
    size_t len = (size_t) end.pos + 4;
    const char *h = (const char *) evbuffer_pullup(in, (ev_ssize_t) len);
    size_t klen = 0;
    size_t ulen = 0;
    const char *key = find_header(h, len, "sec-websocket-key", &klen);
    const char *up = find_header(h, len, "upgrade", &ulen);
    if (len < 4 || memcmp(h, "GET ", 4) != 0 || key == NULL || klen == 0 ||
        klen > 64 || up == NULL || ulen != 9 ||
        strncasecmp(up, "websocket", 9) != 0) {
        reject(c);
        return -1;
    }
    accept_upgrade(c, key, klen);
    evbuffer_drain(in, len);
    return 0;
}

/* ---- frames (§5) ---- */

/* Parses a client frame header at <p> (<len> bytes). Returns its length,
 * 0 when incomplete, or -1 with the close code in <code>. */
static int
parse_head(const uint8_t *p, size_t len, struct frame_head *f, uint16_t *code)
{
    if (len < 2) {
        return 0;
    }
    f->fin = (p[0] & 0x80) != 0;
    f->opcode = p[0] & 0x0f;
    *code = 1002;
    if ((p[0] & 0x70) != 0 || !(p[1] & 0x80) || f->opcode > 0xa ||
        (f->opcode > 0x2 && f->opcode < 0x8)) {
        return -1; /* RSV bits, an unmasked frame, a reserved opcode */
    }
    size_t hlen = 6;
    uint64_t n = p[1] & 0x7f;
    if (n == 126) {
        hlen = 8;
    } else if (n == 127) {
        hlen = 14;
    }
    if (len < hlen) {
        return 0;
    }
    if (n == 126) {
        n = (uint64_t) p[2] << 8 | p[3];
    } else if (n == 127) {
        n = 0;
        for (int i = 2; i < 10; i++) {
            n = n << 8 | p[i];
        }
        if (n >> 63) {
            return -1;
        }
    }
    if ((f->opcode & 0x8) && (!f->fin || n > 125)) {
        return -1;
    }
    memcpy(f->mask, p + hlen - 4, 4);
    f->len = n;
    return (int) hlen;
}

static size_t
unmask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
       size_t pos)
{
    size_t i = 0;

    /* 8 bytes at a time: the rotated mask repeats every 4 */
    if (len >= 8) {
        uint8_t m8[8];
        for (int k = 0; k < 8; k++) {
            m8[k] = mask[(pos + (size_t) k) & 3];
        }
        uint64_t m;
        memcpy(&m, m8, 8);
        for (; i + 8 <= len; i += 8) {
            uint64_t v;
            memcpy(&v, src + i, 8);
            v ^= m;
            memcpy(dst + i, &v, 8);
        }
    }
    for (; i < len; i++) {
        dst[i] = src[i] ^ mask[(pos + i) & 3];
    }
    return (pos + len) & 3;
}

/* Moves up to <n> payload bytes from <in> to <dst>, unmasking them on the
 * way: one copy from the input's chains into the output's free space. */
static void
move_unmasked(struct conn *c, struct evbuffer *in, struct evbuffer *dst,
              size_t n)
{
    struct evbuffer_iovec src[16];
    struct evbuffer_iovec out[2];

    int ns = evbuffer_peek(in, (ev_ssize_t) n, NULL, src, 16);
    int no = evbuffer_reserve_space(dst, (ev_ssize_t) n, out, 2);
    if (no < 1) {
        log_msg("out of memory");
        abort();
    }
    size_t done = 0;
    int o = 0;
    size_t ooff = 0;
    for (int i = 0; i < ns && i < 16 && done < n; i++) {
        const uint8_t *p = src[i].iov_base;
        size_t plen = src[i].iov_len < n - done ? src[i].iov_len : n - done;
        while (plen > 0) {
            size_t room = out[o].iov_len - ooff;
            if (room == 0) {
                o++;
                ooff = 0;
                continue;
            }
            size_t k = plen < room ? plen : room;
            c->mpos = unmask((uint8_t *) out[o].iov_base + ooff, p, k, c->mask,
                             c->mpos);
            ooff += k;
            p += k;
            plen -= k;
            done += k;
        }
    }
    out[o].iov_len = ooff;
    evbuffer_commit_space(dst, out, o + 1);
    evbuffer_drain(in, done);
    c->left -= done;
}

/* Answers a control frame. Returns 0, or -1 when <c> is closing and may
 * already be freed. */
static int
control(struct conn *c, uint8_t opcode, uint8_t *p, size_t len)
{
    if (opcode == 0x9) {
        send_frame(c, 0xa, p, len);
    } else if (opcode == 0x8) {
        /* echo the status code back; a lone byte is no valid payload */
        if (len == 1) {
            fail(c, 1002);
            return -1;
        }
        send_frame(c, 0x8, p, len >= 2 ? 2 : 0);
        conn_finish(c);
        return -1;
    }
    return 0;
}

/* A data frame begins. Returns 0, or -1 when <c> was failed. */
static int
data_start(struct conn *c, const struct frame_head *f)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if ((f->opcode == 0 && !c->in_msg) || (f->opcode != 0 && c->in_msg)) {
        fail(c, 1002);
        return -1;
    }
    c->direct = f->opcode != 0 && f->fin;
    if (c->direct) {
        uint8_t hdr[10];
        evbuffer_add(out, hdr, frame_header(hdr, f->opcode, f->len));
    } else {
        if (f->opcode != 0) {
            c->in_msg = true;
            c->msg_opcode = f->opcode;
        }
        if (c->msg == NULL && (c->msg = evbuffer_new()) == NULL) {
            log_msg("out of memory");
            abort();
        }
        if (evbuffer_get_length(c->msg) + f->len > MESSAGE_MAX) {
            fail(c, 1009);
            return -1;
        }
    }
    c->in_frame = true;
    c->fin = f->fin;
    c->left = f->len;
    c->mpos = 0;
    memcpy(c->mask, f->mask, 4);
    return 0;
}

/* Reads one frame header, or a whole control frame. Returns 1 when one was
 * taken, 0 when more bytes are needed, -1 when <c> is done. */
static int
read_head(struct conn *c, struct evbuffer *in)
{
    uint8_t buf[14 + 125];
    size_t avail = evbuffer_get_length(in);
    struct frame_head f;
    uint16_t code;

    ev_ssize_t n = evbuffer_copyout(in, buf, avail < 14 ? avail : 14);
    int hlen = parse_head(buf, n > 0 ? (size_t) n : 0, &f, &code);
    if (hlen <= 0) {
        if (hlen < 0) {
            fail(c, code);
        }
        return hlen;
    }
    if (f.opcode & 0x8) {
        if (avail < (size_t) hlen + f.len) {
            return 0;
        }
        evbuffer_drain(in, (size_t) hlen);
        evbuffer_remove(in, buf, (size_t) f.len);
        unmask(buf, buf, (size_t) f.len, f.mask, 0);
        return control(c, f.opcode, buf, (size_t) f.len) == 0 ? 1 : -1;
    }
    if (data_start(c, &f) != 0) {
        return -1;
    }
    evbuffer_drain(in, (size_t) hlen);
    return 1;
}

/* The last fragment arrived: the gathered message goes out as one frame. */
static void
flush_message(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t hdr[10];

    evbuffer_add(out, hdr,
                 frame_header(hdr, c->msg_opcode, evbuffer_get_length(c->msg)));
    evbuffer_add_buffer(out, c->msg);
    c->in_msg = false;
}

/* Echoes every frame in <in>. Returns 0, or -1 when <c> is done. */
static int
frames(struct conn *c, struct evbuffer *in)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    for (;;) {
        if (c->in_frame) {
            size_t avail = evbuffer_get_length(in);
            while (c->left > 0 && avail > 0) {
                size_t n = c->left < avail ? (size_t) c->left : avail;
                n = n < SLICE_MAX ? n : SLICE_MAX;
                move_unmasked(c, in, c->direct ? out : c->msg, n);
                avail = evbuffer_get_length(in);
            }
            if (c->left > 0) {
                return 0;
            }
            c->in_frame = false;
            if (!c->direct && c->fin) {
                flush_message(c);
            }
            continue;
        }
        int rc = read_head(c, in);
        if (rc <= 0) {
            return rc;
        }
    }
}

/* ---- libevent glue ---- */

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (!c->upgraded && handshake(c, in) != 0) {
        return;
    }
    if (frames(c, in) != 0) {
        return;
    }
    if (evbuffer_get_length(bufferevent_get_output(bev)) > PENDING_MAX) {
        bufferevent_disable(bev, EV_READ);
    }
}

/* Runs when the output has drained to the write low watermark:
 * RESUME_BELOW while open, 0 once closing. */
static void
on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            conn_free(c);
        }
        return;
    }
    /* on_read() left no whole frame behind when it paused, so resuming
     * needs no extra pass over the input */
    if (!(bufferevent_get_enabled(bev) & EV_READ)) {
        bufferevent_enable(bev, EV_READ);
    }
}

static void
on_event(struct bufferevent *bev, short events, void *arg)
{
    (void) bev;
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        conn_free(arg);
    }
}

static void
on_accept(struct evconnlistener *listener, evutil_socket_t fd,
          struct sockaddr *addr, int socklen, void *arg)
{
    struct worker *w = arg;
    int one = 1;

    (void) listener;
    (void) addr;
    (void) socklen;
    /* small messages go out at once: this server is timed by benchmarks */
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct bufferevent *bev =
        bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    struct conn *c = calloc(1, sizeof(*c));
    if (bev == NULL || c == NULL) {
        log_msg("out of memory for a connection");
        if (bev != NULL) {
            bufferevent_free(bev);
        } else {
            evutil_closesocket(fd);
        }
        free(c);
        return;
    }
    c->bev = bev;
    c->w = w;
    c->next = w->conns;
    if (c->next != NULL) {
        c->next->prev = c;
    }
    w->conns = c;
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(bev, EV_WRITE, RESUME_BELOW, 0);
    bufferevent_set_max_single_read(bev, IO_CHUNK);
    bufferevent_set_max_single_write(bev, IO_CHUNK);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
on_retry(evutil_socket_t fd, short events, void *arg)
{
    struct worker *w = arg;

    (void) fd;
    (void) events;
    evconnlistener_enable(w->listener);
}

static void
on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct worker *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval delay = {0, ACCEPT_RETRY_MS * 1000};

    /* EMFILE leaves the listener readable: retrying at once would spin */
    log_msg("accept() failed (%d: %s), retrying in %d ms", err,
            evutil_socket_error_to_string(err), ACCEPT_RETRY_MS);
    evconnlistener_disable(listener);
    evtimer_add(w->retry, &delay);
}

static void
on_quit(evutil_socket_t fd, short events, void *arg)
{
    struct worker *w = arg;

    (void) fd;
    (void) events;
    event_base_loopexit(w->base, NULL);
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

static void
worker_fini(struct worker *w)
{
    while (w->conns != NULL) {
        conn_free(w->conns);
    }
    if (w->listener != NULL) {
        evconnlistener_free(w->listener);
    }
    if (w->retry != NULL) {
        event_free(w->retry);
    }
    if (w->quit != NULL) {
        event_free(w->quit);
    }
    if (w->base != NULL) {
        event_base_free(w->base);
    }
}

/* Sets up a worker listening on <ss>; with several threads each has its
 * own listener on the same port and the kernel spreads connections. */
static int
worker_init(struct worker *w, struct sockaddr_storage *ss, int sslen,
            bool reuseport, int quit_fd)
{
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                     LEV_OPT_CLOSE_ON_EXEC |
                     (reuseport ? LEV_OPT_REUSEABLE_PORT : 0);

    w->base = event_base_new();
    if (w->base == NULL) {
        log_msg("event_base_new() failed");
        return -1;
    }
    w->listener = evconnlistener_new_bind(w->base, on_accept, w, flags, BACKLOG,
                                          (struct sockaddr *) ss, sslen);
    if (w->listener == NULL) {
        int err = EVUTIL_SOCKET_ERROR();
        log_msg("cannot listen (%d: %s)", err,
                evutil_socket_error_to_string(err));
        return -1;
    }
    evconnlistener_set_error_cb(w->listener, on_accept_error);
    w->retry = evtimer_new(w->base, on_retry, w);
    w->quit = event_new(w->base, quit_fd, EV_READ, on_quit, w);
    if (w->retry == NULL || w->quit == NULL || event_add(w->quit, NULL) != 0) {
        log_msg("cannot create events");
        return -1;
    }
    /* port 0: the first listener's port is the one the others share */
    socklen_t len = sizeof(*ss);
    getsockname(evconnlistener_get_fd(w->listener), (struct sockaddr *) ss,
                &len);
    return 0;
}

static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            log_msg("setrlimit(RLIMIT_NOFILE) failed (%d: %s)", errno,
                    strerror(errno));
        }
    }
}

static void
log_listening(const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;
        evutil_inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ss;
        evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        port = ntohs(sin6->sin6_port);
    }
    log_msg("listening on %s%s%s:%d", ss->ss_family == AF_INET6 ? "[" : "",
            host, ss->ss_family == AF_INET6 ? "]" : "", port);
}

static int
usage(const char *prog)
{
    fprintf(stderr, "usage: %s -l HOST:PORT [-t THREADS]\n", prog);
    return 2;
}

/* Starts <n> workers, waits for SIGINT or SIGTERM, stops them. */
static int
serve(struct worker *workers, int n, struct sockaddr_storage *ss, int sslen)
{
    int quit[2];
    int started = 0;
    int status = 1;
    sigset_t set;
    int sig;

    if (pipe(quit) == -1) {
        log_msg("pipe() failed (%d: %s)", errno, strerror(errno));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        if (worker_init(&workers[i], ss, sslen, n > 1, quit[0]) != 0) {
            goto done;
        }
    }
    log_listening(ss);
    for (; started < n; started++) {
        if (pthread_create(&workers[started].thread, NULL, worker_main,
                           &workers[started]) != 0) {
            log_msg("pthread_create() failed");
            goto done;
        }
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    status = 0;

done:
    /* closing the write end makes the read end readable in every thread */
    close(quit[1]);
    for (int i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
    }
    for (int i = 0; i < n; i++) {
        worker_fini(&workers[i]);
    }
    close(quit[0]);
    return status;
}

int
main(int argc, char **argv)
{
    const char *listen_on = NULL;
    int threads = 1;
    int opt;

    while ((opt = getopt(argc, argv, "l:t:h")) != -1) {
        if (opt == 'l') {
            listen_on = optarg;
        } else if (opt == 't') {
            threads = atoi(optarg);
        } else {
            return usage(argv[0]);
        }
    }
    if (listen_on == NULL || optind != argc || threads < 1 ||
        threads > THREADS_MAX) {
        return usage(argv[0]);
    }
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(listen_on, (struct sockaddr *) &ss,
                                   &sslen) != 0) {
        log_msg("invalid address \"%s\", expected HOST:PORT", listen_on);
        return 2;
    }

    /* a peer that resets while we write must not kill the process; the
     * threads inherit the blocked signals, which only main() waits for */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    raise_nofile();

    struct worker workers[THREADS_MAX];
    memset(workers, 0, sizeof(workers));
    return serve(workers, threads, &ss, sslen);
}
