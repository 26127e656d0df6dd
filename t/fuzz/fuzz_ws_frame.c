/*
 * Fuzz target for src/ws/ws_frame.h. The first input byte picks the
 * limits a connection runs with; the rest is what a client sent, walked
 * frame by frame as the session does: parse the header, check it against
 * the message state, unmask the payload in place, validate text and close
 * payloads, end the message on FIN. Each step is compared with a plain
 * restatement of RFC 6455 §5, and any disagreement aborts.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ws/utf8.h"
#include "ws/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
require(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_ws_frame: %s\n", what);
        abort();
    }
}

/* The connection settings chosen by the first byte. */
static void
settings(uint8_t b, struct wsg_ws_msg_state *st)
{
    static const uint64_t frames[4] = {0, 16, 125, 65536};
    static const uint64_t messages[4] = {0, 64, 1000, 1 << 20};

    memset(st, 0, sizeof(*st));
    st->require_mask = (b & 1) != 0;
    st->allowed_rsv = (b & 2) != 0 ? WSG_WS_RSV1 : 0;
    st->max_frame = frames[(b >> 2) & 3];
    st->max_message = messages[(b >> 4) & 3];
}

/*
 * Parses the header at <p>/<len> and checks the result against the
 * field layout of §5.2. Returns the parse result.
 */
static int
parse_checked(const uint8_t *p, size_t len, struct wsg_ws_frame *f)
{
    uint16_t code = 0;
    int rc = wsg_ws_frame_parse(p, len, f, &code);

    if (len < 2) {
        require(rc == WSG_AGAIN, "no AGAIN on a 0- or 1-byte header");
        return rc;
    }
    uint8_t len7 = p[1] & 0x7F;
    bool masked = (p[1] & 0x80) != 0;
    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    size_t need = 2 + ext + (masked ? 4 : 0);
    if (len < need) {
        require(rc == WSG_AGAIN, "no AGAIN on a cut header");
        return rc;
    }
    uint64_t n = len7;
    if (ext != 0) {
        n = 0;
        for (size_t i = 0; i < ext; i++) {
            n = n << 8 | p[2 + i];
        }
    }
    bool minimal = ext == 0 || (ext == 2 && n >= 126) ||
                   (ext == 8 && n > 0xFFFF && n < (UINT64_C(1) << 63));
    if (!minimal) {
        require(rc == WSG_ERROR, "a bad length accepted");
        require(code == WSG_WS_PROTOCOL, "a bad length not closed with 1002");
        return rc;
    }
    require(rc > 0 && (size_t) rc == need, "wrong header length");
    require(f->header_len == need, "wrong header_len");
    require(f->fin == ((p[0] & 0x80) != 0), "wrong fin");
    require(f->rsv == ((p[0] >> 4) & 7), "wrong rsv");
    require(f->opcode == (p[0] & 0xF), "wrong opcode");
    require(f->masked == masked, "wrong mask bit");
    require(f->len == n, "wrong payload length");
    if (masked) {
        require(memcmp(f->mask, p + 2 + ext, 4) == 0, "wrong mask");
    }
    for (size_t k = 0; k < need; k++) {
        struct wsg_ws_frame g;
        require(wsg_ws_frame_parse(p, k, &g, &code) == WSG_AGAIN,
                "a header prefix did not ask for more");
    }
    return rc;
}

/* The close code §5 and the header comment give <f> in state <st>. */
static uint16_t
expected_code(const struct wsg_ws_msg_state *st, const struct wsg_ws_frame *f)
{
    uint8_t op = f->opcode;
    bool control = op >= 8;

    if (st->require_mask && !f->masked) {
        return WSG_WS_PROTOCOL;
    }
    if ((f->rsv & ~st->allowed_rsv) != 0) {
        return WSG_WS_PROTOCOL;
    }
    if (control) {
        bool known =
            op == WSG_WS_CLOSE || op == WSG_WS_PING || op == WSG_WS_PONG;
        return known && f->fin && f->rsv == 0 && f->len <= 125
                   ? 0
                   : WSG_WS_PROTOCOL;
    }
    if (op != WSG_WS_CONT && op != WSG_WS_TEXT && op != WSG_WS_BINARY) {
        return WSG_WS_PROTOCOL;
    }
    if (op == WSG_WS_CONT && (st->opcode == 0 || f->rsv != 0)) {
        return WSG_WS_PROTOCOL;
    }
    if (op != WSG_WS_CONT && st->opcode != 0) {
        return WSG_WS_PROTOCOL;
    }
    uint64_t so_far = op == WSG_WS_CONT ? st->len : 0;
    if (st->max_frame != 0 && f->len > st->max_frame) {
        return WSG_WS_TOO_BIG;
    }
    if (st->max_message != 0 && f->len > st->max_message - so_far) {
        return WSG_WS_TOO_BIG;
    }
    return 0;
}

/* Checks a close payload's verdict against §5.5.1 and §7.4. */
static void
close_checked(const uint8_t *p, size_t len)
{
    uint16_t code = 0;
    uint16_t rc = wsg_ws_close_parse(p, len, &code);

    if (len == 0) {
        require(rc == 0 && code == WSG_WS_NO_STATUS, "empty close not 1005");
        return;
    }
    if (len == 1) {
        require(rc == WSG_WS_PROTOCOL, "1-byte close not refused with 1002");
        return;
    }
    uint16_t c = (uint16_t) (p[0] << 8 | p[1]);
    bool sendable = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
                    (c >= 3000 && c <= 4999);
    require(wsg_ws_close_code_valid(c) == sendable, "close code misjudged");
    if (!sendable) {
        require(rc == WSG_WS_PROTOCOL, "a bad close code not refused");
        return;
    }
    require(code == c, "close code misread");
    bool text = wsg_utf8_valid(p + 2, len - 2);
    require(rc == (text ? 0 : WSG_WS_INVALID_DATA), "close reason misjudged");
}

/* A server header for <f>'s fields must parse back to them. */
static void
header_round_trip(const struct wsg_ws_frame *f)
{
    uint8_t out[WSG_WS_MAX_HEADER];
    struct wsg_ws_frame g;
    uint16_t code;

    size_t n = wsg_ws_frame_header(out, f->fin, f->opcode, f->rsv, f->len);
    require(n == 2 || n == 4 || n == 10, "server header of odd length");
    require(wsg_ws_frame_parse(out, n, &g, &code) == (int) n,
            "server header does not parse");
    require(g.fin == f->fin && g.rsv == f->rsv && g.opcode == f->opcode &&
                !g.masked && g.len == f->len,
            "server header parses to other fields");
}

/* Unmasks <p> in place in two pieces and compares with a byte loop. */
static void
unmask_checked(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t off,
               uint8_t *scratch)
{
    for (size_t i = 0; i < len; i++) {
        scratch[i] = p[i] ^ mask[(off + i) & 3];
    }
    /* a split point that moves with the mask, within the payload */
    size_t k = len / 2 + (mask[0] & 7);
    if (k > len) {
        k = len;
    }
    wsg_ws_unmask(p, k, mask, off);
    wsg_ws_unmask(p + k, len - k, mask, off + k);
    require(memcmp(p, scratch, len) == 0, "unmask differs from a byte loop");
}

/* What the walk keeps between frames beyond the frame module's state. */
struct walk {
    struct wsg_ws_msg_state st;
    uint32_t utf8;  /* incremental state of an open text message */
    bool utf8_bad;  /* the open text message already failed */
    uint8_t *msg;   /* the open message's payload so far */
    size_t msg_len; /* bytes in <msg> */
    uint8_t *bytes; /* a scratch buffer as long as the input */
};

/*
 * Takes in the payload <p>/<n> of data frame <f> (all of it, or what the
 * input held), and ends the message after a whole FIN frame.
 */
static void
data_payload(struct walk *w, const struct wsg_ws_frame *f, const uint8_t *p,
             size_t n)
{
    memcpy(w->msg + w->msg_len, p, n);
    w->msg_len += n;
    if (w->st.opcode == WSG_WS_TEXT && !w->st.compressed && !w->utf8_bad) {
        w->utf8_bad = wsg_utf8_validate(&w->utf8, p, n) != 0;
    }
    if (!f->fin || n != f->len) {
        return;
    }
    if (w->st.opcode == WSG_WS_TEXT && !w->st.compressed) {
        bool whole = wsg_utf8_valid(w->msg, w->msg_len);
        bool pieces = !w->utf8_bad && w->utf8 == WSG_UTF8_ACCEPT;
        require(whole == pieces, "UTF-8 over fragments differs from whole");
    }
    /* the session ends the message once its last payload is read */
    w->st.opcode = 0;
    w->utf8 = WSG_UTF8_ACCEPT;
    w->utf8_bad = false;
    w->msg_len = 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    struct walk w;
    settings(data[0], &w.st);
    w.utf8 = WSG_UTF8_ACCEPT;
    w.utf8_bad = false;
    w.msg_len = 0;

    /* an exact-size copy, unmasked in place as the session does */
    size_t left = size - 1;
    uint8_t *in = malloc(left ? left : 1);
    w.msg = malloc(left ? left : 1);
    w.bytes = malloc(left ? left : 1);
    require(in != NULL && w.msg != NULL && w.bytes != NULL, "malloc failed");
    memcpy(in, data + 1, left);

    uint8_t *p = in;
    while (left > 0) {
        struct wsg_ws_frame f;
        int rc = parse_checked(p, left, &f);
        if (rc < 0) {
            break;
        }
        header_round_trip(&f);

        struct wsg_ws_msg_state before = w.st;
        uint16_t want = expected_code(&w.st, &f);
        uint16_t code = wsg_ws_frame_check(&w.st, &f);
        require(code == want, "frame check gives the wrong close code");
        if (code != 0) {
            break;
        }
        if (w.st.max_message != 0) {
            require(w.st.len <= w.st.max_message, "message past its limit");
        }
        if (f.opcode >= 8) {
            require(before.opcode == w.st.opcode &&
                        before.compressed == w.st.compressed &&
                        before.len == w.st.len,
                    "a control frame changed the message state");
        } else {
            require(w.st.opcode != 0, "a data frame left no message open");
        }

        p += rc;
        left -= (size_t) rc;
        size_t n = f.len < left ? (size_t) f.len : left;
        if (f.masked) {
            unmask_checked(p, n, f.mask, 0, w.bytes);
        }
        if (f.opcode >= 8) {
            if (n != f.len) {
                break;
            }
            if (f.opcode == WSG_WS_CLOSE) {
                close_checked(p, n);
                break;
            }
        } else {
            data_payload(&w, &f, p, n);
        }
        p += n;
        left -= n;
    }

    free(w.bytes);
    free(w.msg);
    free(in);
    return 0;
}
