/*
 * What an open connection sends and how it reads: the frame reader shared
 * by every mode, echo verification, the open-loop and room senders.
 */
#ifndef WSB_TRAFFIC_H
#define WSB_TRAFFIC_H

#include <stdint.h>

#include <event2/buffer.h>

#include "conn.h"

/* a room message's text is kept up to this size; the rest is skipped */
#define WSB_TEXT_MAX (64 * 1024)

/* <c> has just been upgraded at <now>: starts the mode's traffic. */
void wsb_traffic_open(struct wsb_conn *c, uint64_t now);

/*
 * Reads every whole frame in <in>, <c>'s input, at <now>. Returns 0, or -1
 * when <c> was dropped (a protocol error), after which neither <c>'s
 * buffers nor <in> may be used.
 */
int wsb_traffic_read(struct wsb_conn *c, struct evbuffer *in, uint64_t now);

/* Sends one echo message on <c> that was due at <intended_ns>. */
void wsb_traffic_send_echo(struct wsb_conn *c, uint64_t intended_ns,
                           uint64_t now);

/* Sends a masked frame of <opcode> with <len> bytes of <payload> on <c>. */
void wsb_traffic_send_frame(struct wsb_conn *c, uint8_t opcode,
                            const uint8_t *payload, size_t len);

/* Room: <c>, the sender, says the current wall-clock time to the room. */
void wsb_traffic_room_send(struct wsb_conn *c, uint64_t now);

/* Forgets any partly read frame or message and any echo in flight. */
void wsb_traffic_reset(struct wsb_conn *c);

#endif
