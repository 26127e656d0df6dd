/*
 * The flush queue of the worker: attached outputs that got data during
 * this loop pass. An event made active when the queue stops being empty
 * runs after the callbacks already due in the pass (libevent runs active
 * events in order), so one pass's messages to a socket leave in one
 * writev.
 */
#include "config.h"

#include "net/out.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

TAILQ_HEAD(out_queue, wsg_out);

static struct out_queue queue = TAILQ_HEAD_INITIALIZER(queue);
static struct event flush_ev;
static struct event_base *flush_base;

/* Writes what <o> holds; hands the rest, if any, to libevent. */
static void
flush_one(struct wsg_out *o)
{
    struct bufferevent *bev = o->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    int wrote = 0;

    if (evbuffer_get_length(out) > 0) {
        /* as libevent's own write does: a socket bufferevent keeps the
         * front of its output frozen against anyone else's draining. An
         * error other than EAGAIN is left for libevent's write to meet
         * and report through the event callback. */
        evbuffer_unfreeze(out, 1);
        wrote = evbuffer_write(out, bufferevent_getfd(bev)) > 0;
        evbuffer_freeze(out, 1);
    }
    bool left = evbuffer_get_length(out) > 0;
    bool on = (bufferevent_get_enabled(bev) & EV_WRITE) != 0;
    if (left && !on) {
        bufferevent_enable(bev, EV_WRITE);
    } else if (!left && on) {
        bufferevent_disable(bev, EV_WRITE);
    }
    if (wrote) {
        /* last: the callback may free the bufferevent, and <o> with it */
        bufferevent_trigger(bev, EV_WRITE, 0);
    }
}

static void
flush_all(evutil_socket_t fd, short what, void *arg)
{
    struct wsg_out *o;

    (void) fd;
    (void) what;
    (void) arg;
    while ((o = TAILQ_FIRST(&queue)) != NULL) {
        TAILQ_REMOVE(&queue, o, entry);
        o->queued = false;
        flush_one(o);
    }
}

/* Puts <o> in the flush queue of this pass, once. */
static void
queue_out(struct wsg_out *o)
{
    if (o->queued) {
        return;
    }
    o->queued = true;
    if (TAILQ_EMPTY(&queue)) {
        event_active(&flush_ev, EV_WRITE, 1);
    }
    TAILQ_INSERT_TAIL(&queue, o, entry);
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
wsg_out_attach(struct wsg_out *o, struct bufferevent *bev)
{
    struct event_base *base = bufferevent_get_base(bev);

    if (flush_base != base) {
        /* one loop per worker process; made on first use */
        event_assign(&flush_ev, base, -1, 0, flush_all, NULL);
        flush_base = base;
    }
    o->bev = bev;
    o->queued = false;
    o->cb = evbuffer_add_cb(bufferevent_get_output(bev), on_output, o);
    /* data already there goes out with this pass */
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        queue_out(o);
    }
}

void
wsg_out_detach(struct wsg_out *o)
{
    if (o->bev == NULL) {
        return;
    }
    if (o->queued) {
        TAILQ_REMOVE(&queue, o, entry);
        o->queued = false;
    }
    evbuffer_remove_cb_entry(bufferevent_get_output(o->bev), o->cb);
    if (evbuffer_get_length(bufferevent_get_output(o->bev)) > 0) {
        bufferevent_enable(o->bev, EV_WRITE);
    }
    o->bev = NULL;
    o->cb = NULL;
}
