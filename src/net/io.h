/*
 * Reading and writing plain TCP sockets ourselves, under their
 * bufferevents. libevent's own socket I/O asks the kernel how much is
 * readable (ioctl FIONREAD) before every read and then reads at most 4 KiB;
 * it adds its write event when output arrives and removes it once the
 * output is written: two epoll_ctl calls and one more wakeup for every
 * batch sent.
 *
 * An attached bufferevent reads with one recv() per readiness, of up to
 * its max single read (at most WSG_IO_READ_MAX), and keeps its write event off
 * while its output goes out at once: whatever callbacks add during a loop pass
 * is written with one send() (or sendmsg() for several chains) when the pass's
 * callbacks are done, and the write event is enabled only for what the socket
 * did not take, until it drains. Callbacks, watermarks, timeouts and
 * bufferevent_enable()/disable() keep their meaning.
 */
#ifndef WSG_IO_H
#define WSG_IO_H

#include <stdbool.h>
#include <sys/queue.h>

/* the most one read takes, and what sessions set as their max single read */
#define WSG_IO_READ_MAX 65536

struct bufferevent;
struct evbuffer_cb_entry;

struct wsg_io {
    TAILQ_ENTRY(wsg_io) entry; /* in the pass's flush queue */
    struct bufferevent *bev;   /* NULL: not attached */
    struct evbuffer_cb_entry *cb;
    bool queued;
};

/*
 * Attaches the connected plain-socket bufferevent <bev> (not TLS, not
 * connecting) to <io>. Its read callback runs after each read that leaves
 * the input at or above the low watermark; a read takes at most the max
 * single read, and the read high watermark is not looked at (bound the
 * input with the max single read and by disabling EV_READ). Its write
 * callback runs as libevent would run it: after a write that leaves the
 * output at or below the low watermark.
 */
void wsg_io_attach(struct wsg_io *io, struct bufferevent *bev);

/*
 * Gives the bufferevent back to libevent's own reading and writing, with
 * its write event enabled while output is left: before it is freed, or
 * before a caller relies on libevent to flush it (close after flush). Does
 * nothing when <io> is not attached.
 */
void wsg_io_detach(struct wsg_io *io);

#endif
