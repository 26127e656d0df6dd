/*
 * A WebSocket session on a client connection (RFC 6455 §5-§7): reads
 * frames, assembles and checks messages, answers control frames, keeps the
 * heartbeat, runs the close handshake and writes messages back. The
 * connection owns the session; the session frees the connection when it
 * is done, through wsg_conn_free().
 */
#ifndef WSG_SESSION_H
#define WSG_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "ws/ws_frame.h"

struct wsg_conn;
struct wsg_deflate_params;
struct wsg_session;
struct wsg_ws_loc_conf;

#define WSG_SESSION_GOING_AWAY WSG_WS_GOING_AWAY

/*
 * Turns connection <c> (its 101 already queued) into a WebSocket session
 * with the settings <wcf> and, when permessage-deflate was agreed, <dp>
 * (NULL otherwise). Frames already in the input buffer are read at once.
 */
void wsg_session_start(struct wsg_conn *c, const struct wsg_ws_loc_conf *wcf,
                       const struct wsg_deflate_params *dp);

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
int wsg_session_send(struct wsg_session *s, uint8_t opcode, uint8_t *data,
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
