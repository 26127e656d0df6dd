/*
 * A WebSocket session on a client connection (RFC 6455 §5-§7): reads
 * frames, assembles and checks messages, answers control frames, keeps the
 * heartbeat, runs the close handshake and writes messages back. The
 * connection owns the session; the session frees the connection when it
 * is done, through wsg_conn_free().
 */
#ifndef WSG_SESSION_H
#define WSG_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ws/ws_frame.h"

struct wsg_conn;
struct wsg_deflate_params;
struct wsg_session;
struct wsg_ws_loc_conf;

#define WSG_SESSION_GOING_AWAY WSG_WS_GOING_AWAY

/*
 * What a session does with its messages: the echo, a bridge to a backend.
 * <data> is the handler's own state. on_message owns <msg> (malloc'd).
 * on_drain (may be NULL) runs when output that passed half of
 * websocket_send_buffer_max has drained to a quarter. on_close runs once,
 * as the session is freed, with the close code sent or received (1006 for
 * a dropped connection); it frees <data>. No callback runs after it.
 */
struct wsg_session_handler {
    void (*on_message)(struct wsg_session *s, void *data, uint8_t opcode,
                       uint8_t *msg, size_t len);
    void (*on_drain)(struct wsg_session *s, void *data);
    void (*on_close)(struct wsg_session *s, void *data, uint16_t code);
};

struct wsg_http_request;

/*
 * Makes the session of connection <c> at its handshake, before any 101:
 * modules' on_handshake hooks need it. It is owned by <c> (c->ws); the
 * I/O starts with wsg_session_start().
 */
struct wsg_session *wsg_session_new(struct wsg_conn *c,
                                    const struct wsg_ws_loc_conf *wcf);

/*
 * Runs the modules' on_handshake hooks with the request <r> readable.
 * Returns 0, or the HTTP status a module refused the handshake with.
 */
int wsg_session_handshake(struct wsg_session *s,
                          const struct wsg_http_request *r);

/*
 * Offers the plain HTTP request <r> to the modules' on_http hooks.
 * Returns true when one of them answered it.
 */
bool wsg_session_http(struct wsg_session *s, const struct wsg_http_request *r);

/* The bus's slot of per-session state. */
void **wsg_session_bus(struct wsg_session *s);

/* The slot of the upstreams messages were routed to (upstream/pool.c). */
void **wsg_session_routes(struct wsg_session *s);

/* The connection of <s>. */
struct wsg_conn *wsg_session_conn(const struct wsg_session *s);

/* The configuration the session's worker runs. */
const struct wsg_cycle *wsg_session_cycle(const struct wsg_session *s);

/* Whether the session's 101 went out (it is not only a handshake). */
bool wsg_session_opened(const struct wsg_session *s);

/*
 * Turns connection <c> (its 101 already queued) into a WebSocket session
 * with the settings <wcf> and, when permessage-deflate was agreed, <dp>
 * (NULL otherwise), handled by <h> with <hdata> (NULL: the built-in echo).
 * Frames already in the input buffer are read from the next loop pass.
 * Returns the session, owned by <c>.
 */
struct wsg_session *wsg_session_start(struct wsg_conn *c,
                                      const struct wsg_ws_loc_conf *wcf,
                                      const struct wsg_deflate_params *dp,
                                      const struct wsg_session_handler *h,
                                      void *hdata);

/*
 * Stops reading the client until as many releases as holds: flow control
 * from a backend, or the echo's back-pressure. Holds are counted, so two
 * reasons to stop do not release each other.
 */
void wsg_session_hold(struct wsg_session *s);
void wsg_session_release(struct wsg_session *s);

/* Whether the output to the client is over half its cap (on_drain will
 * follow when it falls to a quarter). */
bool wsg_session_draining(const struct wsg_session *s);

/* Frees the session state only (the connection frees itself); NULL ok. */
void wsg_session_free(struct wsg_session *s);

/*
 * Sends one message: <opcode> TEXT or BINARY, <len> bytes at <data>
 * (copied, or taken as is when <owned>: then <data> is malloc'd and the
 * session frees it). Compressed when the extension was agreed and the
 * message is over the threshold. Returns 0, or WSG_ERROR when the client's
 * send buffer is over websocket_send_buffer_max (the message is dropped and
 * the session closed with 1008) or the session is closing.
 */
int wsg_session_queue(struct wsg_session *s, uint8_t opcode, uint8_t *data,
                      size_t len, int owned);

/*
 * Starts the close handshake: sends a close frame with <code> and
 * <reason>, then waits up to websocket_close_timeout for the client's
 * close before dropping the connection. A session already closing is left
 * alone.
 */
void wsg_session_close(struct wsg_session *s, uint16_t code,
                       const char *reason);

#endif
