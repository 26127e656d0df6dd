/*
 * The read side replaces the callback of the bufferevent's read event
 * (libevent lets the event be assigned again while it is not pending) and
 * gives it back on detach. Reads go through one buffer of the worker: a
 * read that finds nothing, or the end, leaves no empty chain behind in an
 * idle connection's input.
 *
 * The write side is the flush queue of the worker: attached outputs that
 * got data during this loop pass. An event made active when the queue
 * stops being empty runs after the callbacks already due in the pass
 * (libevent runs active events in order), so one pass's messages to a
 * socket leave in one send.
 */
#include "config.h"

#include "net/io.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define WRITE_IOV 64

TAILQ_HEAD(io_queue, wsg_io);

static struct io_queue queue = TAILQ_HEAD_INITIALIZER(queue);
static struct event flush_ev;
static struct event_base *flush_base;
static event_callback_fn libevent_readcb;
static unsigned char read_buf[WSG_IO_READ_MAX];

/* What libevent's read does on a timeout, the end or an error. */
static void
read_failed(struct bufferevent *bev, short what)
{
    bufferevent_event_cb cb;
    void *arg;

    bufferevent_disable(bev, EV_READ);
    bufferevent_getcb(bev, NULL, NULL, &cb, &arg);
    if (cb != NULL) {
        cb(bev, what | BEV_EVENT_READING, arg);
    }
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct bufferevent *bev = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t want = (size_t) bufferevent_get_max_single_read(bev);

    if (what & EV_TIMEOUT) {
        read_failed(bev, BEV_EVENT_TIMEOUT);
        return;
    }
    if (want > WSG_IO_READ_MAX) {
        want = WSG_IO_READ_MAX;
    }
    ssize_t n = recv(fd, read_buf, want, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            read_failed(bev, BEV_EVENT_ERROR);
        }
        return;
    }
    if (n == 0) {
        read_failed(bev, BEV_EVENT_EOF);
        return;
    }
    /* as libevent's own read does: a socket bufferevent keeps the end of
     * its input frozen against anyone else's adding */
    evbuffer_unfreeze(in, 0);
    int rc = evbuffer_add(in, read_buf, (size_t) n);
    evbuffer_freeze(in, 0);
    if (rc != 0) {
        read_failed(bev, BEV_EVENT_ERROR);
        return;
    }
    /* last: the callback may free the bufferevent */
    bufferevent_trigger(bev, EV_READ, 0);
}

/*
 * Points the read event of <bev> at <cb>; an enabled read stays enabled,
 * with its timeout.
 */
static void
set_readcb(struct bufferevent *bev, event_callback_fn cb)
{
    struct event *ev = &bev->ev_read;
    bool on = (bufferevent_get_enabled(bev) & EV_READ) != 0;

    if (event_get_callback(ev) == cb) {
        return;
    }
    if (on) {
        bufferevent_disable(bev, EV_READ);
    }
    event_assign(ev, event_get_base(ev), event_get_fd(ev), event_get_events(ev),
                 cb, bev);
    if (on) {
        bufferevent_enable(bev, EV_READ);
    }
}

/* Sends what <out> holds, up to what the socket takes; -1 on an error. */
static ssize_t
send_out(evutil_socket_t fd, struct evbuffer *out)
{
    struct evbuffer_iovec v[WRITE_IOV];
    int n = evbuffer_peek(out, -1, NULL, v, WRITE_IOV);

    if (n > WRITE_IOV) {
        n = WRITE_IOV;
    }
    if (n == 1) {
        return send(fd, v[0].iov_base, v[0].iov_len, MSG_NOSIGNAL);
    }
    struct iovec iov[WRITE_IOV];
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
    }
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t) n};
    return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

/* Writes what <io> holds; hands the rest, if any, to libevent. */
static void
flush_one(struct wsg_io *io)
{
    struct bufferevent *bev = io->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    bool wrote = false;

    if (evbuffer_get_length(out) > 0) {
        /* An error other than EAGAIN is left for libevent's write to
         * meet and report through the event callback. */
        ssize_t n = send_out(bufferevent_getfd(bev), out);
        if (n > 0) {
            /* as libevent's own write does: a socket bufferevent keeps
             * the front of its output frozen against anyone else's
             * draining */
            evbuffer_unfreeze(out, 1);
            evbuffer_drain(out, (size_t) n);
            evbuffer_freeze(out, 1);
            wrote = true;
        }
    }
    bool left = evbuffer_get_length(out) > 0;
    bool on = (bufferevent_get_enabled(bev) & EV_WRITE) != 0;
    if (left && !on) {
        bufferevent_enable(bev, EV_WRITE);
    } else if (!left && on) {
        bufferevent_disable(bev, EV_WRITE);
    }
    if (wrote) {
        /* last: the callback may free the bufferevent, and <io> with it */
        bufferevent_trigger(bev, EV_WRITE, 0);
    }
}

static void
flush_all(evutil_socket_t fd, short what, void *arg)
{
    struct wsg_io *io;

    (void) fd;
    (void) what;
    (void) arg;
    while ((io = TAILQ_FIRST(&queue)) != NULL) {
        TAILQ_REMOVE(&queue, io, entry);
        io->queued = false;
        flush_one(io);
    }
}

/* Puts <io> in the flush queue of this pass, once. */
static void
queue_out(struct wsg_io *io)
{
    if (io->queued) {
        return;
    }
    io->queued = true;
    if (TAILQ_EMPTY(&queue)) {
        event_active(&flush_ev, EV_WRITE, 1);
    }
    TAILQ_INSERT_TAIL(&queue, io, entry);
}

static void
on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void) buf;
    if (info->n_added > 0) {
        queue_out(arg);
    }
}

void
wsg_io_attach(struct wsg_io *io, struct bufferevent *bev)
{
    struct event_base *base = bufferevent_get_base(bev);

    if (flush_base != base) {
        /* one loop per worker process; made on first use */
        event_assign(&flush_ev, base, -1, 0, flush_all, NULL);
        flush_base = base;
    }
    if (libevent_readcb == NULL) {
        libevent_readcb = event_get_callback(&bev->ev_read);
    }
    set_readcb(bev, on_readable);
    io->bev = bev;
    io->queued = false;
    io->cb = evbuffer_add_cb(bufferevent_get_output(bev), on_output, io);
    /* data already there goes out with this pass */
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        queue_out(io);
    }
}

void
wsg_io_detach(struct wsg_io *io)
{
    struct bufferevent *bev = io->bev;

    if (bev == NULL) {
        return;
    }
    if (io->queued) {
        TAILQ_REMOVE(&queue, io, entry);
        io->queued = false;
    }
    set_readcb(bev, libevent_readcb);
    evbuffer_remove_cb_entry(bufferevent_get_output(bev), io->cb);
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        bufferevent_enable(bev, EV_WRITE);
    }
    io->bev = NULL;
    io->cb = NULL;
}
