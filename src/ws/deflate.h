/*
 * permessage-deflate (RFC 7692): negotiating the extension from a client's
 * offers, and compressing and inflating whole messages with zlib. Inflation
 * is bounded: a message that would inflate past the limit is refused
 * before its output is kept (a decompression bomb costs a close 1009, not
 * memory).
 */
#ifndef WSG_DEFLATE_H
#define WSG_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* The server's permessage_deflate settings (from the location). */
struct wsg_deflate_conf {
    bool enabled;
    bool server_no_context_takeover; /* we ask it of ourselves */
    bool client_no_context_takeover; /* we ask it of the client */
    int server_max_window_bits;      /* 8..15; the most we use */
    int client_max_window_bits;      /* 8..15; the most we accept */
    size_t threshold; /* messages shorter than this go uncompressed */
    int level;        /* zlib level 1..9 */
    int mem_level;    /* zlib memLevel 1..9 */
};

/* What was agreed with one client. */
struct wsg_deflate_params {
    bool server_no_context_takeover;
    bool client_no_context_takeover;
    int server_max_window_bits; /* 8..15 as agreed (9..15 for zlib) */
    int client_max_window_bits; /* 8..15; 15 when not in the response */
};

/* Room for the longest response value, 128 bytes, and its NUL. */
#define WSG_DEFLATE_RESP_MAX 160

/*
 * Reads every Sec-WebSocket-Extensions value the client sent (<values>,
 * <n> of them; each a comma list of offers with ;params), and picks the
 * first permessage-deflate offer that <conf> can accept (RFC 7692 §7.1).
 * An offer with an unknown or repeated parameter or a bad value is
 * declined and the next one tried (RFC 7692 §5); other extensions are
 * skipped. Returns 1 with <out> filled and the response header value
 * written to <resp> (NUL-terminated, at most <resplen> bytes, e.g.
 * "permessage-deflate; server_no_context_takeover";
 * WSG_DEFLATE_RESP_MAX always suffices), 0 when no offer is acceptable,
 * deflate is off or <resplen> is too small (the handshake goes on without
 * it), or WSG_ERROR when a value breaks the header grammar (empty or bad
 * name, unbalanced quote, stray character): the handshake is refused with
 * 400. <values> are borrowed and may hold any bytes.
 */
int wsg_deflate_negotiate(const struct wsg_deflate_conf *conf,
                          const struct wsg_str *values, size_t n,
                          struct wsg_deflate_params *out, char *resp,
                          size_t resplen);

struct wsg_deflate; /* per-connection zlib state, both directions */

/*
 * Creates the zlib state for <p> (from wsg_deflate_negotiate) and <conf>,
 * both borrowed. Returns NULL only if zlib fails or a window, level or
 * memLevel is out of range.
 */
struct wsg_deflate *wsg_deflate_new(const struct wsg_deflate_params *p,
                                    const struct wsg_deflate_conf *conf);
void wsg_deflate_free(struct wsg_deflate *d);

/*
 * Compresses a whole message <in>/<len>; stores the result without the
 * final 00 00 ff ff (RFC 7692 §7.2.1) in a new malloc'd buffer *<out> of
 * *<outlen> bytes, which the caller frees (the values passed in are
 * ignored). An empty message becomes the single byte 00. Returns 0, or
 * WSG_ERROR with *<out> NULL and *<outlen> 0 (send the message
 * uncompressed: the compressor has dropped its window, so later messages
 * still decode).
 */
int wsg_deflate_compress(struct wsg_deflate *d, const uint8_t *in, size_t len,
                         uint8_t **out, size_t *outlen);

/*
 * Inflates one compressed message given in pieces: call _inflate for each
 * piece (<last> on the final one; the 00 00 ff ff tail is added
 * internally), appending to the malloc'd *<out> of *<outlen> bytes (start
 * both at NULL/0, and pass back what the previous piece left). Refuses
 * output past <max> bytes before allocating more than <max> + 1 bytes for
 * it. After the last piece *<out> is non-NULL and sized to fit; the caller
 * frees it. A message of no bytes at all inflates to an empty one.
 * Returns 0, WSG_ERROR on corrupt or truncated data (close 1007), or
 * WSG_DEFLATE_TOO_BIG (close 1009). On error the partial output is freed,
 * *<out> set to NULL and *<outlen> to 0, and inflation starts over.
 */
#define WSG_DEFLATE_TOO_BIG (-3)
int wsg_deflate_inflate(struct wsg_deflate *d, const uint8_t *in, size_t len,
                        bool last, size_t max, uint8_t **out, size_t *outlen);

#endif
