/*
 * Writing plain TCP sockets at the end of each loop pass instead of when
 * epoll says they are writable. A bufferevent left to itself adds its
 * write event when output arrives and removes it once the output is
 * written: two epoll_ctl calls and one more wakeup for every batch sent.
 * An attached bufferevent keeps its write event off while its output goes
 * out at once: whatever callbacks add during a loop pass is written with
 * one writev when the pass's callbacks are done, and the write event is
 * enabled only for what the socket did not take, until it drains.
 */
#ifndef WSG_OUT_H
#define WSG_OUT_H

#include <stdbool.h>
#include <sys/queue.h>

struct bufferevent;
struct evbuffer_cb_entry;

struct wsg_out {
    TAILQ_ENTRY(wsg_out) entry; /* in the pass's flush queue */
    struct bufferevent *bev;    /* NULL: not attached */
    struct evbuffer_cb_entry *cb;
    bool queued;
};

/*
 * Attaches the connected plain-socket bufferevent <bev> (not TLS, not
 * connecting) to <o>. Its write callback still runs as libevent would run
 * it: after a write that leaves the output at or below the low watermark.
 */
void wsg_out_attach(struct wsg_out *o, struct bufferevent *bev);

/*
 * Gives the bufferevent back to libevent's own writing, with its write
 * event enabled while output is left: before it is freed, or before a
 * caller relies on libevent to flush it (close after flush). Does nothing
 * when <o> is not attached.
 */
void wsg_out_detach(struct wsg_out *o);

#endif
