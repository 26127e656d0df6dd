/*
 * WebSocket framing (RFC 6455 §5): parsing frame headers from clients,
 * checking each frame against the state of the message it belongs to,
 * unmasking, close payloads, and building the headers of server frames.
 * Pure: bytes in, results out; the session layer does the I/O.
 */
#ifndef WSG_WS_FRAME_H
#define WSG_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wsg_ws_opcode {
    WSG_WS_CONT = 0x0,
    WSG_WS_TEXT = 0x1,
    WSG_WS_BINARY = 0x2,
    WSG_WS_CLOSE = 0x8,
    WSG_WS_PING = 0x9,
    WSG_WS_PONG = 0xA,
};

/* Close codes (RFC 6455 §7.4.1, IANA registry). */
#define WSG_WS_NORMAL       1000
#define WSG_WS_GOING_AWAY   1001
#define WSG_WS_PROTOCOL     1002
#define WSG_WS_UNSUPPORTED  1003
#define WSG_WS_NO_STATUS    1005 /* never sent: "no code received" */
#define WSG_WS_ABNORMAL     1006 /* never sent: "dropped without close" */
#define WSG_WS_INVALID_DATA 1007
#define WSG_WS_POLICY       1008
#define WSG_WS_TOO_BIG      1009
#define WSG_WS_INTERNAL     1011
#define WSG_WS_RESTART      1012
#define WSG_WS_TRY_AGAIN    1013
#define WSG_WS_BAD_GATEWAY  1014

/* The longest server frame header: 2 + 8 bytes of length (no mask). */
#define WSG_WS_MAX_HEADER  14
/* Control frames carry at most this much payload (§5.5). */
#define WSG_WS_MAX_CONTROL 125

#define WSG_WS_RSV1 0x4 /* permessage-deflate's "compressed" bit */
#define WSG_WS_RSV2 0x2
#define WSG_WS_RSV3 0x1

struct wsg_ws_frame {
    bool fin;
    uint8_t rsv; /* RSV1..3 as WSG_WS_RSV* bits */
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t len;      /* payload length */
    size_t header_len; /* bytes of the header, mask included */
};

/*
 * Parses one frame header at <p>/<len>. Returns the header's length (> 0)
 * with <f> filled, WSG_AGAIN when more bytes are needed (at most 14), or
 * WSG_ERROR with *<close_code> set: 1002 for a 64-bit length with its top
 * bit set or a length not in its shortest form (§5.2).
 */
int wsg_ws_frame_parse(const uint8_t *p, size_t len, struct wsg_ws_frame *f,
                       uint16_t *close_code);

/* The message state a connection keeps between frames. */
struct wsg_ws_msg_state {
    uint8_t opcode;       /* TEXT or BINARY while a message is open, else 0 */
    bool compressed;      /* the open message had RSV1 on its first frame */
    uint64_t len;         /* payload bytes of the open message so far */
    uint8_t allowed_rsv;  /* WSG_WS_RSV1 when permessage-deflate is on */
    bool require_mask;    /* frames from clients must be masked */
    uint64_t max_frame;   /* payload limit of one frame (0: none) */
    uint64_t max_message; /* payload limit of one message (0: none) */
};

/*
 * Checks frame <f> against <st> and advances <st>: a data frame opens or
 * continues a message. The caller ends the message (st->opcode = 0) once
 * the payload of its FIN frame is read, since frames of other messages
 * may not start before. Control frames are exempt from max_frame (they
 * are capped at 125 bytes).
 * Returns 0, or a close code: 1002 for an unmasked frame when a mask is
 * required, RSV bits without an extension that defines them, RSV1 on a
 * continuation or control frame, an unknown opcode, a control frame that
 * is fragmented or over 125 bytes, a continuation with nothing to continue,
 * a new data frame inside a fragmented message; 1009 for a frame over
 * max_frame or a message growing past max_message (checked on the header,
 * before any payload is read).
 */
uint16_t wsg_ws_frame_check(struct wsg_ws_msg_state *st,
                            const struct wsg_ws_frame *f);

/*
 * Unmasks (or masks) <len> bytes at <p> in place with <mask>, starting at
 * byte <offset> of the payload, so a payload unmasked in pieces comes out
 * the same as in one go. Works eight bytes at a time.
 */
void wsg_ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4],
                   uint64_t offset);

/*
 * Writes a server frame header (never masked) for a payload of <len>
 * bytes into <out> (WSG_WS_MAX_HEADER bytes); returns its length.
 */
size_t wsg_ws_frame_header(uint8_t *out, bool fin, uint8_t opcode, uint8_t rsv,
                           uint64_t len);

/*
 * Validates a received close payload <p>/<len> (§5.5.1, §7.4): empty, or a
 * code the peer may send plus a UTF-8 reason. Sets *<code> to the code, or
 * 1005 for an empty payload. Returns 0, or the close code to answer with:
 * 1002 for a 1-byte payload or a code that must not be sent (below 1000,
 * 1004-1006, 1015, 1016-2999, 5000 and above), 1007 for a reason that is
 * not UTF-8.
 */
uint16_t wsg_ws_close_parse(const uint8_t *p, size_t len, uint16_t *code);

/* Whether a peer may send close code <code> on the wire. */
bool wsg_ws_close_code_valid(uint16_t code);

#endif
