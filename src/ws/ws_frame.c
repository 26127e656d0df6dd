/*
 * WebSocket frames (RFC 6455 §5.2 framing, §5.3 masking, §5.4
 * fragmentation, §5.5 control frames, §7.4 close codes). Every limit is
 * checked on the header, so a hostile length never reaches an allocation.
 */
#include "config.h"

#include "ws/ws_frame.h"

#include <string.h>

#include "core/core.h"
#include "ws/utf8.h"

int
wsg_ws_frame_parse(const uint8_t *p, size_t len, struct wsg_ws_frame *f,
                   uint16_t *close_code)
{
    if (len < 2) {
        return WSG_AGAIN;
    }
    f->fin = (p[0] & 0x80) != 0;
    f->rsv = (uint8_t) ((p[0] >> 4) & 0x7);
    f->opcode = p[0] & 0x0F;
    f->masked = (p[1] & 0x80) != 0;

    uint8_t len7 = p[1] & 0x7F;
    size_t need = 2 +
                  (len7 == 126   ? 2
                   : len7 == 127 ? 8
                                 : 0) +
                  (f->masked ? 4 : 0);
    if (len < need) {
        return WSG_AGAIN;
    }

    size_t i = 2;
    if (len7 == 126) {
        f->len = (uint64_t) p[2] << 8 | p[3];
        i = 4;
        if (f->len < 126) {
            *close_code = WSG_WS_PROTOCOL;
            return WSG_ERROR;
        }
    } else if (len7 == 127) {
        f->len = 0;
        for (i = 2; i < 10; i++) {
            f->len = f->len << 8 | p[i];
        }
        /* the most significant bit MUST be 0, and the form the shortest */
        if ((f->len >> 63) != 0 || f->len <= 0xFFFF) {
            *close_code = WSG_WS_PROTOCOL;
            return WSG_ERROR;
        }
    } else {
        f->len = len7;
    }
    if (f->masked) {
        memcpy(f->mask, p + i, 4);
        i += 4;
    }
    f->header_len = i;
    return (int) i;
}

static bool
is_control(uint8_t opcode)
{
    return (opcode & 0x8) != 0;
}

static uint16_t
check_control(const struct wsg_ws_frame *f)
{
    if (f->opcode != WSG_WS_CLOSE && f->opcode != WSG_WS_PING &&
        f->opcode != WSG_WS_PONG) {
        return WSG_WS_PROTOCOL;
    }
    if (!f->fin || f->len > WSG_WS_MAX_CONTROL || f->rsv != 0) {
        return WSG_WS_PROTOCOL;
    }
    return 0;
}

uint16_t
wsg_ws_frame_check(struct wsg_ws_msg_state *st, const struct wsg_ws_frame *f)
{
    if (st->require_mask && !f->masked) {
        return WSG_WS_PROTOCOL;
    }
    if ((f->rsv & ~st->allowed_rsv) != 0) {
        return WSG_WS_PROTOCOL;
    }
    if (is_control(f->opcode)) {
        return check_control(f);
    }
    if (f->opcode == WSG_WS_CONT) {
        if (st->opcode == 0 || f->rsv != 0) {
            /* nothing to continue, or RSV1 past the first frame (§6.1) */
            return WSG_WS_PROTOCOL;
        }
    } else if (f->opcode == WSG_WS_TEXT || f->opcode == WSG_WS_BINARY) {
        if (st->opcode != 0) {
            return WSG_WS_PROTOCOL;
        }
        st->opcode = f->opcode;
        st->compressed = (f->rsv & WSG_WS_RSV1) != 0;
        st->len = 0;
    } else {
        return WSG_WS_PROTOCOL;
    }
    if (st->max_frame != 0 && f->len > st->max_frame) {
        return WSG_WS_TOO_BIG;
    }
    /* on the wire bytes here; a compressed message is checked again on
     * its inflated size */
    if (st->max_message != 0 && f->len > st->max_message - st->len) {
        return WSG_WS_TOO_BIG;
    }
    st->len += f->len;
    return 0;
}

void
wsg_ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset)
{
    uint8_t m[8];
    size_t i = 0;

    for (size_t k = 0; k < 8; k++) {
        m[k] = mask[(offset + k) & 3];
    }
    uint64_t m64;
    memcpy(&m64, m, 8);
    /* memcpy in and out: unaligned-safe, and compiled to plain moves */
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= m64;
        memcpy(p + i, &w, 8);
    }
    for (; i < len; i++) {
        p[i] ^= m[i & 7];
    }
}

size_t
wsg_ws_frame_header(uint8_t *out, bool fin, uint8_t opcode, uint8_t rsv,
                    uint64_t len)
{
    out[0] = (uint8_t) ((fin ? 0x80 : 0) | (rsv << 4) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t) len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t) (len >> (56 - 8 * i));
    }
    return 10;
}

bool
wsg_ws_close_code_valid(uint16_t code)
{
    if (code >= 3000 && code <= 4999) {
        return true; /* registered (3xxx) and private (4xxx) use */
    }
    if (code < 1000 || code > 1014) {
        return false;
    }
    return code != 1004 && code != 1005 && code != 1006;
}

uint16_t
wsg_ws_close_parse(const uint8_t *p, size_t len, uint16_t *code)
{
    if (len == 0) {
        *code = WSG_WS_NO_STATUS;
        return 0;
    }
    if (len == 1) {
        return WSG_WS_PROTOCOL;
    }
    *code = (uint16_t) (p[0] << 8 | p[1]);
    if (!wsg_ws_close_code_valid(*code)) {
        return WSG_WS_PROTOCOL;
    }
    if (!wsg_utf8_valid(p + 2, len - 2)) {
        return WSG_WS_INVALID_DATA;
    }
    return 0;
}
