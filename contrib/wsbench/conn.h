/*
 * One client connection's life: TCP connect (bound to a source address if
 * asked), TLS, the HTTP upgrade, the closing handshake, timeouts and
 * reconnection. A struct wsb_conn lives in its worker's array for the
 * whole run and is reused across reconnections; only its socket, its
 * bufferevent and their buffers come and go.
 */
#ifndef WSB_CONN_H
#define WSB_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "handshake.h"
#include "worker.h"

enum wsb_conn_state {
    WSB_CONN_IDLE,       /* not started, or waiting to reconnect */
    WSB_CONN_CONNECTING, /* TCP connect under way */
    WSB_CONN_TLS,        /* TLS handshake under way */
    WSB_CONN_UPGRADING,  /* upgrade request sent, waiting for the 101 */
    WSB_CONN_OPEN,
    WSB_CONN_CLOSING, /* our close frame sent, waiting for the server's */
    WSB_CONN_CLOSED, /* close frames exchanged: the server ends TCP (§7.1.1) */
    WSB_CONN_DONE,   /* finished for the run */
};

struct wsb_inflight {
    uint64_t intended_ns; /* when the message was due to be sent */
    uint32_t offset;      /* of its payload in the worker's pattern */
};

struct wsb_conn {
    struct wsb_worker *w; /* borrowed */
    unsigned id;          /* run-wide: 0 is the room's sender */
    enum wsb_conn_state state;
    uint64_t state_ns;       /* when the state began, for timeouts */
    uint64_t start_ns;       /* when connect() was called */
    int fd;                  /* owned until the bufferevent takes it */
    struct bufferevent *bev; /* owned, closes the socket when freed */
    struct event io_ev;      /* the TCP connect's completion */
    struct event timer;      /* reconnect delay; the room sender's clock */
    bool ever_open;
    char accept[WSB_ACCEPT_LEN + 1]; /* the Sec-WebSocket-Accept due */
    /* frame reader */
    bool in_frame;       /* inside a data frame's payload */
    bool frame_fin;      /* that frame ends its message */
    bool in_msg;         /* a data message has begun */
    bool msg_bad;        /* the message differs from what was sent */
    uint8_t msg_opcode;  /* text or binary */
    uint64_t frame_left; /* payload bytes of the frame still to come */
    uint64_t msg_len;    /* bytes of the message so far */
    /* messages sent and not yet echoed, oldest first */
    struct wsb_inflight *ring; /* owned */
    uint32_t ring_cap;
    uint32_t ring_head;
    uint32_t ring_count;
    uint32_t seq;
    /* room: the message being received, up to WSB_TEXT_MAX bytes */
    char *text; /* owned */
    size_t text_len;
    size_t text_cap;
};

/* Sets up <c> as connection <id> of <w>; it starts IDLE. Returns 0, or -1
 * when memory ran out. */
int wsb_conn_init(struct wsb_conn *c, struct wsb_worker *w, unsigned id);

/* Frees what <c> holds at the end of the run. */
void wsb_conn_fini(struct wsb_conn *c);

/* Opens <c>: connect, then TLS and the upgrade. */
void wsb_conn_start(struct wsb_conn *c);

/*
 * Ends <c>'s connection, counting an error of <kind> with reason <why>
 * unless <kind> is negative, then reconnects it, restarts it or marks it
 * DONE as the mode and the run's state say. Safe inside <c>'s callbacks;
 * the caller must not touch the connection's buffers afterwards.
 */
void wsb_conn_drop(struct wsb_conn *c, int kind, const char *why);

/* Sends a close frame with <code> and waits for the server's (§7.1.2). */
void wsb_conn_close(struct wsb_conn *c, uint16_t code, uint64_t now);

/* The server's close frame arrived at <now> (answered if it was first):
 * waits for the server to end TCP. */
void wsb_conn_closed(struct wsb_conn *c, uint64_t now);

/* The run is over: closes <c> cleanly if it is open, drops it otherwise. */
void wsb_conn_stop(struct wsb_conn *c, uint64_t now);

/* Drops <c> if its connect, upgrade, oldest echo or close has taken too
 * long at <now>. */
void wsb_conn_check(struct wsb_conn *c, uint64_t now);

static inline bool
wsb_conn_is_connecting(enum wsb_conn_state s)
{
    return s == WSB_CONN_CONNECTING || s == WSB_CONN_TLS ||
           s == WSB_CONN_UPGRADING;
}

#endif
