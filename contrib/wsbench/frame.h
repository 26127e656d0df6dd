/*
 * RFC 6455 §5.2 frames as a client sees them: parse the headers the server
 * sends (never masked, no extensions negotiated), write masked headers, and
 * mask payloads. Pure code: bytes in, results out, no I/O.
 */
#ifndef WSB_FRAME_H
#define WSB_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSB_ERROR (-1)
#define WSB_AGAIN (-2)

#define WSB_OP_CONT   0x0
#define WSB_OP_TEXT   0x1
#define WSB_OP_BINARY 0x2
#define WSB_OP_CLOSE  0x8
#define WSB_OP_PING   0x9
#define WSB_OP_PONG   0xa

#define WSB_FRAME_HEADER_MAX 14
#define WSB_CONTROL_MAX      125

struct wsb_frame {
    bool fin;
    uint8_t opcode;
    uint64_t len; /* payload bytes */
};

/*
 * Parses the frame header at <p> (<len> bytes available) sent by a server.
 * Returns the header's length and fills <f>; WSB_AGAIN when <len> does not
 * hold the whole header; WSB_ERROR with a static reason in <why> for a
 * masked frame, reserved bits or opcodes, a fragmented or oversized control
 * frame, or a length with its top bit set.
 */
int wsb_frame_parse(const uint8_t *p, size_t len, struct wsb_frame *f,
                    const char **why);

/*
 * Writes a final frame's header for <opcode> and <len> payload bytes, masked
 * with <mask>, to <out> (WSB_FRAME_HEADER_MAX bytes of room). Returns the
 * header's length.
 */
size_t wsb_frame_header(uint8_t *out, uint8_t opcode, uint64_t len,
                        const uint8_t mask[4]);

/*
 * Copies <len> bytes from <src> to <dst> XORed with <mask>, starting at
 * byte <pos> of the mask cycle; <dst> may equal <src>. Returns the mask
 * position after the last byte, for the next piece of the same payload.
 */
size_t wsb_frame_mask(uint8_t *dst, const uint8_t *src, size_t len,
                      const uint8_t mask[4], size_t pos);

#endif
