/*
 * RFC 6455 §5.2 frame headers and masking for the client side. Server frames
 * must be unmasked (§5.1) and carry no RSV bits, as wsbench offers no
 * extensions (§5.2).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "frame.h"

#include <string.h>

int
wsb_frame_parse(const uint8_t *p, size_t len, struct wsb_frame *f,
                const char **why)
{
    if (len < 2) {
        return WSB_AGAIN;
    }
    f->fin = (p[0] & 0x80) != 0;
    f->opcode = p[0] & 0x0f;
    if ((p[0] & 0x70) != 0) {
        *why = "reserved bits set";
        return WSB_ERROR;
    }
    if (p[1] & 0x80) {
        *why = "masked frame from the server";
        return WSB_ERROR;
    }
    bool control = (f->opcode & 0x08) != 0;
    if (f->opcode > WSB_OP_PONG ||
        (f->opcode > WSB_OP_BINARY && f->opcode < WSB_OP_CLOSE)) {
        *why = "reserved opcode";
        return WSB_ERROR;
    }

    size_t hlen = 2;
    uint64_t n = p[1] & 0x7f;
    if (n == 126) {
        hlen = 4;
    } else if (n == 127) {
        hlen = 10;
    }
    if (len < hlen) {
        return WSB_AGAIN;
    }
    if (hlen == 4) {
        n = (uint64_t) p[2] << 8 | p[3];
    } else if (hlen == 10) {
        n = 0;
        for (size_t i = 2; i < 10; i++) {
            n = n << 8 | p[i];
        }
        if (n >> 63) {
            *why = "length with the top bit set";
            return WSB_ERROR;
        }
    }
    if (control && (!f->fin || n > WSB_CONTROL_MAX)) {
        *why = "fragmented or oversized control frame";
        return WSB_ERROR;
    }
    f->len = n;
    return (int) hlen;
}

size_t
wsb_frame_header(uint8_t *out, uint8_t opcode, uint64_t len,
                 const uint8_t mask[4])
{
    size_t n = 2;

    out[0] = 0x80 | opcode;
    if (len < 126) {
        out[1] = 0x80 | (uint8_t) len;
    } else if (len <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
        n = 4;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++) {
            out[2 + i] = (uint8_t) (len >> (56 - 8 * i));
        }
        n = 10;
    }
    memcpy(out + n, mask, 4);
    return n + 4;
}

size_t
wsb_frame_mask(uint8_t *dst, const uint8_t *src, size_t len,
               const uint8_t mask[4], size_t pos)
{
    size_t i = 0;

    pos &= 3;
    /* the bulk goes 8 bytes at a time with the mask rotated to <pos>;
     * memcpy keeps the loads legal at any alignment and compiles to plain
     * moves */
    if (len >= 8) {
        uint8_t m8[8];
        for (int k = 0; k < 8; k++) {
            m8[k] = mask[(pos + (size_t) k) & 3];
        }
        uint64_t m;
        memcpy(&m, m8, 8);
        for (; i + 8 <= len; i += 8) {
            uint64_t v;
            memcpy(&v, src + i, 8);
            v ^= m;
            memcpy(dst + i, &v, 8);
        }
    }
    for (; i < len; i++) {
        dst[i] = src[i] ^ mask[(pos + i) & 3];
    }
    return (pos + len) & 3;
}
