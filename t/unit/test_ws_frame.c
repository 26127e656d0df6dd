/*
 * Tests of src/ws/ws_frame.h: header parsing (every length form, every
 * prefix of a header, from a copy that ends at a PROT_NONE page), the
 * per-frame protocol checks with their exact close codes, unmasking
 * against a byte loop, server headers, and close payloads.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"
#include "tap.h"
#include "ws/ws_frame.h"

/* Expands a string literal to its bytes and length, NULs included. */
#define LIT(s) (const uint8_t *) (s), sizeof(s) - 1

/* The longest vector the guard buffer holds. */
#define GUARD_MAX 1024

/* What a parse must not touch on success: a code nobody sends. */
#define CODE_UNSET 4242

#include "guard.h"

/* What a header vector must parse to; <rc> WSG_ERROR means close 1002. */
struct parsed {
    int rc;
    bool fin;
    uint8_t rsv;
    uint8_t opcode;
    bool masked;
    uint64_t len;
};

/*
 * Parses the header <s>/<n> whole (and, when it is accepted, with 3
 * payload bytes after it, which must change nothing), then every shorter
 * prefix, which must ask for more: a refused header is given exactly as
 * long as its length field and mask, so the verdict needs all <n> bytes.
 */
static void
parse_vector(const char *name, const uint8_t *s, size_t n,
             const struct parsed *want)
{
    uint8_t buf[32];
    struct wsg_ws_frame f;
    uint16_t code = CODE_UNSET;
    const uint8_t *p = guarded(s, n);

    memset(&f, 0xA5, sizeof(f));
    int rc = wsg_ws_frame_parse(p, n, &f, &code);
    if (want->rc == WSG_ERROR) {
        is_int(rc, WSG_ERROR, "%s: refused", name);
        is_int(code, WSG_WS_PROTOCOL, "%s: close code 1002", name);
    } else {
        is_int(rc, want->rc, "%s: header of %d bytes", name, want->rc);
        is_int(code, CODE_UNSET, "%s: close code untouched", name);
        is_uint(f.header_len, (size_t) want->rc, "%s: header_len", name);
        is_int(f.fin, want->fin, "%s: fin", name);
        is_int(f.rsv, want->rsv, "%s: rsv", name);
        is_int(f.opcode, want->opcode, "%s: opcode", name);
        is_int(f.masked, want->masked, "%s: masked", name);
        is_uint(f.len, want->len, "%s: payload length", name);
        if (want->masked) {
            is_mem(f.mask, 4, s + want->rc - 4, 4, "%s: mask", name);
        }

        memcpy(buf, s, n);
        memcpy(buf + n, "xyz", 3);
        p = guarded(buf, n + 3);
        is_int(wsg_ws_frame_parse(p, n + 3, &f, &code), want->rc,
               "%s: payload bytes after the header are not read", name);
    }

    size_t bad = 0;
    for (size_t k = 0; k < n; k++) {
        p = guarded(s, k);
        code = CODE_UNSET;
        rc = wsg_ws_frame_parse(p, k, &f, &code);
        if (rc != WSG_AGAIN || code != CODE_UNSET) {
            if (bad++ == 0) {
                note("%s: prefix of %zu bytes gives %d", name, k, rc);
            }
        }
    }
    is_int(bad, 0, "%s: WSG_AGAIN for each of the %zu shorter prefixes", name,
           n);
}

#define MASK "\x11\x22\x33\x44"

static void
test_parse(void)
{
    note("wsg_ws_frame_parse");
    struct parsed w;

    w = (struct parsed){2, true, 0, WSG_WS_TEXT, false, 0};
    parse_vector("7-bit 0, unmasked", LIT("\x81\x00"), &w);
    w = (struct parsed){2, true, 0, WSG_WS_TEXT, false, 5};
    parse_vector("7-bit 5, unmasked", LIT("\x81\x05"), &w);
    w = (struct parsed){2, false, 0, WSG_WS_BINARY, false, 125};
    parse_vector("7-bit 125, unmasked, not fin", LIT("\x02\x7d"), &w);
    w = (struct parsed){6, true, 0, WSG_WS_TEXT, true, 0};
    parse_vector("7-bit 0, masked", LIT("\x81\x80" MASK), &w);
    w = (struct parsed){6, true, 0, WSG_WS_PING, true, 125};
    parse_vector("7-bit 125, masked", LIT("\x89\xfd" MASK), &w);
    w = (struct parsed){4, true, 0, WSG_WS_BINARY, false, 126};
    parse_vector("16-bit 126, unmasked", LIT("\x82\x7e\x00\x7e"), &w);
    w = (struct parsed){4, true, 0, WSG_WS_BINARY, false, 0x1234};
    parse_vector("16-bit 0x1234, unmasked", LIT("\x82\x7e\x12\x34"), &w);
    w = (struct parsed){4, true, 0, WSG_WS_BINARY, false, 65535};
    parse_vector("16-bit 65535, unmasked", LIT("\x82\x7e\xff\xff"), &w);
    w = (struct parsed){8, false, 0, WSG_WS_CONT, true, 126};
    parse_vector("16-bit 126, masked", LIT("\x00\xfe\x00\x7e" MASK), &w);
    w = (struct parsed){8, true, 0, WSG_WS_TEXT, true, 65535};
    parse_vector("16-bit 65535, masked", LIT("\x81\xfe\xff\xff" MASK), &w);
    w = (struct parsed){10, true, 0, WSG_WS_BINARY, false, 65536};
    parse_vector("64-bit 65536, unmasked",
                 LIT("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"), &w);
    w = (struct parsed){
        10, true, 0, WSG_WS_BINARY, false, UINT64_C(0x0102030405060708)};
    parse_vector("64-bit byte order, unmasked",
                 LIT("\x82\x7f\x01\x02\x03\x04\x05\x06\x07\x08"), &w);
    w = (struct parsed){14, true, 0, WSG_WS_BINARY, true, 65536};
    parse_vector("64-bit 65536, masked",
                 LIT("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00" MASK), &w);
    w = (struct parsed){
        14, true, 0, WSG_WS_BINARY, true, UINT64_C(0x7fffffffffffffff)};
    parse_vector("64-bit 2^63-1, masked",
                 LIT("\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff" MASK), &w);
    w = (struct parsed){6, true, WSG_WS_RSV1, WSG_WS_TEXT, true, 3};
    parse_vector("RSV1 text", LIT("\xc1\x83" MASK), &w);
    w = (struct parsed){
        2,           false, WSG_WS_RSV1 | WSG_WS_RSV2 | WSG_WS_RSV3,
        WSG_WS_CONT, false, 0};
    parse_vector("all RSV bits, continuation", LIT("\x70\x00"), &w);
    w = (struct parsed){2, true, WSG_WS_RSV3, 0xF, false, 1};
    parse_vector("RSV3, opcode F", LIT("\x9f\x01"), &w);
    w = (struct parsed){6, true, 0, WSG_WS_CLOSE, true, 2};
    parse_vector("close", LIT("\x88\x82" MASK), &w);

    w = (struct parsed){WSG_ERROR, false, 0, 0, false, 0};
    parse_vector("16-bit 0 is not minimal", LIT("\x82\x7e\x00\x00"), &w);
    parse_vector("16-bit 125 is not minimal", LIT("\x82\x7e\x00\x7d"), &w);
    parse_vector("16-bit 125 masked is not minimal",
                 LIT("\x82\xfe\x00\x7d" MASK), &w);
    parse_vector("64-bit 0 is not minimal",
                 LIT("\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x00"), &w);
    parse_vector("64-bit 125 is not minimal",
                 LIT("\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x7d"), &w);
    parse_vector("64-bit 126 is not minimal",
                 LIT("\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x7e"), &w);
    parse_vector("64-bit 65535 is not minimal",
                 LIT("\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff"), &w);
    parse_vector("64-bit 65535 masked is not minimal",
                 LIT("\x82\xff\x00\x00\x00\x00\x00\x00\xff\xff" MASK), &w);
    parse_vector("64-bit with the MSB set",
                 LIT("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"), &w);
    parse_vector("64-bit all ones",
                 LIT("\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff"), &w);
    parse_vector("64-bit with the MSB set, masked",
                 LIT("\x82\xff\x80\x00\x00\x00\x00\x01\x00\x00" MASK), &w);
}

/* The first byte's bits land in the right fields for all 256 values. */
static void
test_parse_first_byte(void)
{
    size_t bad = 0;

    for (unsigned b = 0; b < 256; b++) {
        uint8_t s[2] = {(uint8_t) b, 0x01};
        struct wsg_ws_frame f;
        uint16_t code;
        const uint8_t *p = guarded(s, 2);
        if (wsg_ws_frame_parse(p, 2, &f, &code) != 2 || f.fin != (b >> 7) ||
            f.rsv != ((b >> 4) & 7) || f.opcode != (b & 0xF) || f.masked ||
            f.len != 1) {
            if (bad++ == 0) {
                note("first byte %02X misparsed", b);
            }
        }
    }
    is_int(bad, 0, "every first byte gives its fin, rsv and opcode");
}

/* A client message state: masks required, no extension, no limits. */
static struct wsg_ws_msg_state
client_state(void)
{
    struct wsg_ws_msg_state st;

    memset(&st, 0, sizeof(st));
    st.require_mask = true;
    return st;
}

static struct wsg_ws_frame
frame(bool fin, uint8_t rsv, uint8_t opcode, uint64_t len)
{
    struct wsg_ws_frame f;

    memset(&f, 0, sizeof(f));
    f.fin = fin;
    f.rsv = rsv;
    f.opcode = opcode;
    f.masked = true;
    memcpy(f.mask, MASK, 4);
    f.len = len;
    f.header_len = 6;
    return f;
}

/* Checks <f> against <st> and wants <code>. */
static void
check(struct wsg_ws_msg_state *st, struct wsg_ws_frame f, uint16_t code,
      const char *name)
{
    is_int(wsg_ws_frame_check(st, &f), code, "%s: %u", name, (unsigned) code);
}

static void
test_check_mask_rsv(void)
{
    struct wsg_ws_msg_state st;
    struct wsg_ws_frame f;

    note("wsg_ws_frame_check: masking and RSV bits");
    st = client_state();
    f = frame(true, 0, WSG_WS_TEXT, 5);
    f.masked = false;
    check(&st, f, WSG_WS_PROTOCOL, "unmasked text when masks are required");
    st = client_state();
    f = frame(true, 0, WSG_WS_PING, 0);
    f.masked = false;
    check(&st, f, WSG_WS_PROTOCOL, "unmasked ping when masks are required");
    st = client_state();
    st.require_mask = false;
    f = frame(true, 0, WSG_WS_TEXT, 5);
    f.masked = false;
    check(&st, f, 0, "unmasked text when masks are not required");
    st = client_state();
    check(&st, frame(true, 0, WSG_WS_TEXT, 5), 0, "masked text");
    is_int(st.opcode, WSG_WS_TEXT, "masked text opens a text message");
    is_uint(st.len, 5, "message length is the frame's");
    is_int(st.compressed, false, "message is not compressed");

    static const uint8_t rsvs[] = {WSG_WS_RSV1, WSG_WS_RSV2, WSG_WS_RSV3};
    for (size_t i = 0; i < WSG_NELEMS(rsvs); i++) {
        st = client_state();
        char name[64];
        snprintf(name, sizeof(name), "RSV %#x without an extension", rsvs[i]);
        check(&st, frame(true, rsvs[i], WSG_WS_TEXT, 1), WSG_WS_PROTOCOL, name);
    }

    st = client_state();
    st.allowed_rsv = WSG_WS_RSV1;
    check(&st, frame(false, WSG_WS_RSV1, WSG_WS_TEXT, 4), 0,
          "RSV1 on a first frame with deflate");
    is_int(st.compressed, true, "RSV1 marks the message compressed");
    check(&st, frame(false, 0, WSG_WS_CONT, 4), 0,
          "continuation without RSV1 with deflate");
    check(&st, frame(true, WSG_WS_RSV1, WSG_WS_CONT, 4), WSG_WS_PROTOCOL,
          "RSV1 on a continuation with deflate");

    static const uint8_t controls[] = {WSG_WS_CLOSE, WSG_WS_PING, WSG_WS_PONG};
    for (size_t i = 0; i < WSG_NELEMS(controls); i++) {
        char name[64];
        st = client_state();
        st.allowed_rsv = WSG_WS_RSV1;
        snprintf(name, sizeof(name), "RSV1 on control %#x with deflate",
                 controls[i]);
        check(&st, frame(true, WSG_WS_RSV1, controls[i], 0), WSG_WS_PROTOCOL,
              name);
    }

    st = client_state();
    st.allowed_rsv = WSG_WS_RSV1;
    check(&st, frame(true, WSG_WS_RSV2, WSG_WS_BINARY, 1), WSG_WS_PROTOCOL,
          "RSV2 with only RSV1 allowed");
    st = client_state();
    st.allowed_rsv = WSG_WS_RSV1;
    check(&st, frame(true, WSG_WS_RSV1 | WSG_WS_RSV3, WSG_WS_BINARY, 1),
          WSG_WS_PROTOCOL, "RSV1|RSV3 with only RSV1 allowed");
    st = client_state();
    st.allowed_rsv = WSG_WS_RSV1;
    check(&st, frame(true, 0, WSG_WS_BINARY, 1), 0,
          "no RSV bit with deflate allowed");
    is_int(st.compressed, false, "a message without RSV1 is not compressed");
}

static void
test_check_opcodes(void)
{
    struct wsg_ws_msg_state st;
    char name[64];

    note("wsg_ws_frame_check: opcodes and control frames");
    for (uint8_t op = 0; op < 16; op++) {
        bool known =
            op <= WSG_WS_BINARY || (op >= WSG_WS_CLOSE && op <= WSG_WS_PONG);
        if (known) {
            continue;
        }
        st = client_state();
        snprintf(name, sizeof(name), "unknown opcode %X", op);
        check(&st, frame(true, 0, op, 0), WSG_WS_PROTOCOL, name);
        st = client_state();
        check(&st, frame(false, 0, WSG_WS_TEXT, 1), 0, "open a message");
        snprintf(name, sizeof(name), "unknown opcode %X inside a message", op);
        check(&st, frame(true, 0, op, 0), WSG_WS_PROTOCOL, name);
    }

    static const uint8_t controls[] = {WSG_WS_CLOSE, WSG_WS_PING, WSG_WS_PONG};
    for (size_t i = 0; i < WSG_NELEMS(controls); i++) {
        uint8_t op = controls[i];
        st = client_state();
        snprintf(name, sizeof(name), "control %X, 0 bytes", op);
        check(&st, frame(true, 0, op, 0), 0, name);
        snprintf(name, sizeof(name), "control %X, 125 bytes", op);
        check(&st, frame(true, 0, op, 125), 0, name);
        snprintf(name, sizeof(name), "control %X, 126 bytes", op);
        check(&st, frame(true, 0, op, 126), WSG_WS_PROTOCOL, name);
        snprintf(name, sizeof(name), "control %X, 65536 bytes", op);
        check(&st, frame(true, 0, op, 65536), WSG_WS_PROTOCOL, name);
        snprintf(name, sizeof(name), "control %X, fragmented", op);
        check(&st, frame(false, 0, op, 0), WSG_WS_PROTOCOL, name);
        is_int(st.opcode, 0, "control %X opens no message", op);
    }
}

static void
test_check_fragments(void)
{
    struct wsg_ws_msg_state st;

    note("wsg_ws_frame_check: fragmentation");
    st = client_state();
    check(&st, frame(true, 0, WSG_WS_CONT, 1), WSG_WS_PROTOCOL,
          "fin continuation without a message");
    st = client_state();
    check(&st, frame(false, 0, WSG_WS_CONT, 1), WSG_WS_PROTOCOL,
          "continuation without a message");

    st = client_state();
    check(&st, frame(false, 0, WSG_WS_BINARY, 3), 0, "first fragment");
    is_int(st.opcode, WSG_WS_BINARY, "first fragment opens a binary message");
    check(&st, frame(false, 0, WSG_WS_CONT, 4), 0, "middle fragment");
    check(&st, frame(true, 0, WSG_WS_PING, 2), 0, "ping between fragments");
    is_int(st.opcode, WSG_WS_BINARY, "ping leaves the message open");
    is_uint(st.len, 7, "ping adds nothing to the message length");
    check(&st, frame(true, 0, WSG_WS_CONT, 5), 0, "last fragment");
    is_uint(st.len, 12, "message length is the sum of the fragments");

    /* the caller ends the message once the FIN frame's payload is read */
    st.opcode = 0;
    check(&st, frame(false, 0, WSG_WS_TEXT, 2), 0, "next message");
    is_uint(st.len, 2, "a new message starts its length at its first frame");

    st = client_state();
    check(&st, frame(false, 0, WSG_WS_TEXT, 1), 0, "open a text message");
    check(&st, frame(false, 0, WSG_WS_TEXT, 1), WSG_WS_PROTOCOL,
          "text frame inside a fragmented message");
    st = client_state();
    check(&st, frame(false, 0, WSG_WS_TEXT, 1), 0, "open a text message");
    check(&st, frame(true, 0, WSG_WS_BINARY, 1), WSG_WS_PROTOCOL,
          "binary frame inside a fragmented message");
    st = client_state();
    check(&st, frame(false, 0, WSG_WS_BINARY, 1), 0, "open a binary message");
    check(&st, frame(true, 0, WSG_WS_BINARY, 1), WSG_WS_PROTOCOL,
          "fin binary frame inside a fragmented message");
}

static void
test_check_limits(void)
{
    struct wsg_ws_msg_state st;

    note("wsg_ws_frame_check: limits");
    st = client_state();
    st.max_frame = 100;
    check(&st, frame(true, 0, WSG_WS_TEXT, 100), 0, "frame at max_frame");
    st.opcode = 0;
    check(&st, frame(true, 0, WSG_WS_TEXT, 101), WSG_WS_TOO_BIG,
          "frame over max_frame");
    st = client_state();
    st.max_frame = 100;
    check(&st, frame(false, 0, WSG_WS_BINARY, 100), 0, "fragment at max_frame");
    check(&st, frame(true, 0, WSG_WS_CONT, 101), WSG_WS_TOO_BIG,
          "continuation over max_frame");
    st = client_state();
    st.max_frame = 100;
    check(&st, frame(true, 0, WSG_WS_BINARY, UINT64_C(0x7fffffffffffffff)),
          WSG_WS_TOO_BIG, "2^63-1 bytes over max_frame");

    st = client_state();
    st.max_message = 1000;
    check(&st, frame(true, 0, WSG_WS_TEXT, 1000), 0, "frame at max_message");
    st.opcode = 0;
    check(&st, frame(true, 0, WSG_WS_TEXT, 1001), WSG_WS_TOO_BIG,
          "frame over max_message");
    st = client_state();
    st.max_message = 1000;
    check(&st, frame(false, 0, WSG_WS_TEXT, 400), 0, "400 of 1000");
    check(&st, frame(false, 0, WSG_WS_CONT, 400), 0, "800 of 1000");
    is_uint(st.len, 800, "message length accumulates");
    check(&st, frame(true, 0, WSG_WS_CONT, 200), 0, "1000 of 1000");
    st = client_state();
    st.max_message = 1000;
    check(&st, frame(false, 0, WSG_WS_TEXT, 400), 0, "400 of 1000");
    check(&st, frame(false, 0, WSG_WS_CONT, 400), 0, "800 of 1000");
    check(&st, frame(true, 0, WSG_WS_CONT, 201), WSG_WS_TOO_BIG,
          "fragment taking the message to 1001 of 1000");
    st = client_state();
    st.max_message = 1000;
    check(&st, frame(false, 0, WSG_WS_TEXT, 999), 0, "999 of 1000");
    check(&st, frame(false, 0, WSG_WS_CONT, UINT64_C(0x7fffffffffffffff)),
          WSG_WS_TOO_BIG, "2^63-1 byte fragment does not wrap the sum");

    st = client_state();
    st.max_message = 1000;
    check(&st, frame(true, 0, WSG_WS_TEXT, 1000), 0, "a full message");
    st.opcode = 0;
    check(&st, frame(true, 0, WSG_WS_TEXT, 1000), 0,
          "the next message has its own budget");

    st = client_state();
    check(&st, frame(false, 0, WSG_WS_BINARY, UINT64_C(1) << 62), 0,
          "2^62 bytes with no limits");
    check(&st, frame(true, 0, WSG_WS_CONT, UINT64_C(1) << 62), 0,
          "another 2^62 bytes with no limits");
    is_uint(st.len, UINT64_C(1) << 63, "2^63 bytes counted");
}

static void
naive_unmask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset)
{
    for (size_t i = 0; i < len; i++) {
        p[i] ^= mask[(offset + i) % 4];
    }
}

static void
test_unmask(void)
{
    static const uint8_t mask[4] = {0x9d, 0x01, 0x7f, 0xe4};
    uint8_t data[80], want[80], got[96];

    note("wsg_ws_unmask");
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t) (i * 37 + 11);
    }
    for (size_t len = 0; len <= 64; len++) {
        size_t bad = 0;
        for (uint64_t off = 0; off < 8; off++) {
            for (size_t align = 0; align < 8; align++) {
                memcpy(want, data, len);
                naive_unmask(want, len, mask, off);
                memset(got, 0xEE, sizeof(got));
                memcpy(got + align, data, len);
                wsg_ws_unmask(got + align, len, mask, off);
                bool around = true;
                for (size_t i = 0; i < sizeof(got); i++) {
                    if ((i < align || i >= align + len) && got[i] != 0xEE) {
                        around = false;
                    }
                }
                if (memcmp(got + align, want, len) != 0 || !around) {
                    if (bad++ == 0) {
                        note("len %zu offset %u alignment %zu differs", len,
                             (unsigned) off, align);
                    }
                }
            }
        }
        is_int(bad, 0,
               "%zu bytes, offsets 0..7, alignments 0..7: as a byte "
               "loop, nothing touched around",
               len);
    }

    for (size_t len = 0; len <= 64; len++) {
        size_t bad = 0;
        for (uint64_t off = 0; off < 8; off++) {
            memcpy(want, data, len);
            wsg_ws_unmask(want, len, mask, off);
            for (size_t k = 0; k <= len; k++) {
                memcpy(got, data, len);
                wsg_ws_unmask(got, k, mask, off);
                wsg_ws_unmask(got + k, len - k, mask, off + k);
                if (memcmp(got, want, len) != 0) {
                    if (bad++ == 0) {
                        note("len %zu offset %u split at %zu differs", len,
                             (unsigned) off, k);
                    }
                }
            }
        }
        is_int(bad, 0, "%zu bytes in two pieces at every split equal one go",
               len);
    }

    memcpy(want, data, 64);
    naive_unmask(want, 64, mask, 3);
    memcpy(got, data, 64);
    wsg_ws_unmask(got, 64, mask, (UINT64_C(1) << 40) + 3);
    is_mem(got, 64, want, 64, "offset 2^40+3 masks as offset 3");
    wsg_ws_unmask(got, 64, mask, 3);
    is_mem(got, 64, data, 64, "masking twice gives the input back");
}

/* Writes a header and checks its bytes, and that nothing past them moved. */
static void
header_vector(bool fin, uint8_t opcode, uint8_t rsv, uint64_t len,
              const uint8_t *want, size_t want_len)
{
    uint8_t out[WSG_WS_MAX_HEADER + 4];

    memset(out, 0xEE, sizeof(out));
    size_t n = wsg_ws_frame_header(out, fin, opcode, rsv, len);
    is_mem(out, n, want, want_len, "header for %llu bytes",
           (unsigned long long) len);
    size_t touched = 0;
    for (size_t i = n; i < sizeof(out); i++) {
        touched += out[i] != 0xEE;
    }
    is_int(touched, 0, "header for %llu bytes writes only its %zu bytes",
           (unsigned long long) len, n);

    struct wsg_ws_frame f;
    uint16_t code = CODE_UNSET;
    ok(wsg_ws_frame_parse(out, n, &f, &code) == (int) n && f.fin == fin &&
           f.opcode == opcode && f.rsv == rsv && !f.masked && f.len == len,
       "header for %llu bytes parses back", (unsigned long long) len);
}

static void
test_header(void)
{
    note("wsg_ws_frame_header");
    header_vector(true, WSG_WS_TEXT, 0, 0, LIT("\x81\x00"));
    header_vector(true, WSG_WS_BINARY, 0, 125, LIT("\x82\x7d"));
    header_vector(true, WSG_WS_BINARY, 0, 126, LIT("\x82\x7e\x00\x7e"));
    header_vector(false, WSG_WS_TEXT, 0, 65535, LIT("\x01\x7e\xff\xff"));
    header_vector(true, WSG_WS_BINARY, 0, 65536,
                  LIT("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"));
    header_vector(true, WSG_WS_CONT, 0, UINT64_C(1) << 32,
                  LIT("\x80\x7f\x00\x00\x00\x01\x00\x00\x00\x00"));
    header_vector(true, WSG_WS_TEXT, WSG_WS_RSV1, 3, LIT("\xc1\x03"));
    header_vector(true, WSG_WS_CLOSE, 0, 2, LIT("\x88\x02"));
    header_vector(true, WSG_WS_PONG, 0, 0, LIT("\x8a\x00"));
}

/* A close payload: a big-endian <code> then <reason>. */
static void
close_vector(uint16_t code, const uint8_t *reason, size_t rlen, uint16_t want)
{
    uint8_t s[2 + WSG_WS_MAX_CONTROL];
    uint16_t got = CODE_UNSET;

    s[0] = (uint8_t) (code >> 8);
    s[1] = (uint8_t) code;
    memcpy(s + 2, reason, rlen);
    const uint8_t *p = guarded(s, 2 + rlen);
    is_int(wsg_ws_close_parse(p, 2 + rlen, &got), want,
           "close %u with a %zu-byte reason: %u", code, rlen, want);
    if (want == 0) {
        is_int(got, code, "close %u: code read", code);
    }
}

static void
test_close(void)
{
    static const uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008,
                                    1009, 1010, 1011, 1012, 1013, 1014,
                                    3000, 3999, 4000, 4999};
    static const uint16_t bad[] = {0,    1,    999,  1004, 1005,
                                   1006, 1015, 1016, 1100, 2000,
                                   2999, 5000, 5001, 9999, 65535};
    uint16_t code;

    note("wsg_ws_close_parse");
    code = CODE_UNSET;
    is_int(wsg_ws_close_parse(guarded(LIT("")), 0, &code), 0, "empty close");
    is_int(code, WSG_WS_NO_STATUS, "empty close reads as 1005");
    is_int(wsg_ws_close_parse(guarded(LIT("\x03")), 1, &code), WSG_WS_PROTOCOL,
           "1-byte close: 1002");
    for (size_t i = 0; i < WSG_NELEMS(good); i++) {
        close_vector(good[i], LIT(""), 0);
        close_vector(good[i], LIT("bye"), 0);
    }
    for (size_t i = 0; i < WSG_NELEMS(bad); i++) {
        close_vector(bad[i], LIT(""), WSG_WS_PROTOCOL);
    }
    close_vector(1000, LIT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), 0);
    close_vector(1000, LIT("\xff"), WSG_WS_INVALID_DATA);
    close_vector(1001, LIT("ok\xed\xa0\x80"), WSG_WS_INVALID_DATA);
    close_vector(4000, LIT("\xc0\x80"), WSG_WS_INVALID_DATA);
    close_vector(1000, LIT("cut \xe2\x82"), WSG_WS_INVALID_DATA);

    uint8_t reason[WSG_WS_MAX_CONTROL - 2];
    memset(reason, 'r', sizeof(reason));
    close_vector(1000, reason, sizeof(reason), 0);

    size_t wrong = 0;
    for (uint32_t c = 0; c <= 0xFFFF; c++) {
        bool want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
                    (c >= 3000 && c <= 4999);
        uint8_t s[2] = {(uint8_t) (c >> 8), (uint8_t) c};
        uint16_t rc = wsg_ws_close_parse(s, 2, &code);
        if (wsg_ws_close_code_valid((uint16_t) c) != want ||
            rc != (want ? 0 : WSG_WS_PROTOCOL)) {
            if (wrong++ == 0) {
                note("close code %u judged wrongly", (unsigned) c);
            }
        }
    }
    is_int(wrong, 0,
           "every code 0..65535: valid exactly when 1000-1003, "
           "1007-1014 or 3000-4999");
}

int
main(void)
{
    guard_init();
    test_parse();
    test_parse_first_byte();
    test_check_mask_rsv();
    test_check_opcodes();
    test_check_fragments();
    test_check_limits();
    test_unmask();
    test_header();
    test_close();
    return done_testing();
}
