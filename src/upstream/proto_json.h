/*
 * The json backend protocol: one JSON object per line, binary payloads in
 * base64 (docs/backend-protocol.md, "json envelopes"). Encoding and
 * decoding use jansson; base64 uses OpenSSL.
 */
#ifndef WSG_PROTO_JSON_H
#define WSG_PROTO_JSON_H

#include "upstream/envelope.h"

/*
 * Encodes an envelope as one line ending in '\n', in a malloc'd buffer;
 * sets *<len>. For open, <o> gives the fields (else NULL). Never fails.
 *
 * The members, in this order: "kind"; "id" (an integer; not for ping and
 * pong; env->id must be below 2^53); for a message "text" (env->data as a
 * JSON string, NULs and all) or "binary" (base64 with padding); for a
 * close "code" and "reason", both left out when env->code is 1005 (no
 * code); for ping and pong "data" (a string); for open the members of
 * wsg_mux_open_members(). Text, reasons and ping data are meant to be
 * UTF-8; other bytes are written as ISO-8859-1 (wsg_mux_json_string()).
 * env->kind must be one of enum wsg_env_kind.
 */
char *wsg_json_encode(const struct wsg_envelope *env,
                      const struct wsg_env_open *o, size_t *len);

/*
 * Finds the end of the next line in <p>/<len>: returns the line's length
 * including its '\n', WSG_AGAIN when no '\n' is there yet and len is
 * within <max_line>, or WSG_ERROR when more than <max_line> bytes came
 * without a '\n' (the link is unusable). So a line may hold <max_line>
 * bytes before its '\n'. A <max_line> of INT_MAX or more counts as
 * INT_MAX - 1, so that a line's length fits the int result.
 */
int wsg_json_line_end(const uint8_t *p, size_t len, size_t max_line);

/*
 * Decodes one line (without or with its '\n') into <env>. A message's
 * decoded bytes (text or base64-decoded binary) are put in a malloc'd
 * buffer returned in *<owned> (env->data points into it; the caller frees
 * it; NULL when nothing was allocated). Returns 0, or WSG_ERROR with a
 * static reason in *<why> for an envelope that is malformed (not an
 * object, unknown kind, a required member missing or ill-typed, bad
 * base64, both or neither of text and binary, an id of 2^53 or more):
 * the caller drops it and counts it; the link stays usable.
 *
 * What <env> holds on success, by kind:
 * - open: env->id; env->data/len is the line itself (the JSON object,
 *   without the '\n'), borrowed from <line>; *<owned> is NULL. Only
 *   "kind" and "id" are checked, since the gateway ignores an open.
 * - message: env->id, env->binary; env->data/len the message's bytes, in
 *   *<owned> (allocated even for an empty message).
 * - close: env->id; env->code, 1005 when "code" is absent; with a code,
 *   env->data/len is the close payload as mux carries it (2-byte code,
 *   then the reason) in *<owned>, and env->reason points into it; without
 *   one, env->data is NULL and the reason empty.
 * - ping, pong: env->id is 0 ("id" is not read); env->data/len is "data"
 *   (empty when absent), in *<owned> when not empty.
 * - pause, resume: env->id; env->data is NULL.
 * Also refused: a '\n' before the line's last byte, a close code that
 * wsg_mux_close_code_ok() refuses, a reason over 123 bytes or without a
 * code, ping data over 125 bytes, non-canonical base64 (RFC 4648 §3.5:
 * bits after the last byte must be zero). A member whose value is null
 * counts as absent, and a member name given twice makes the line
 * malformed.
 */
int wsg_json_decode(const uint8_t *line, size_t len, struct wsg_envelope *env,
                    uint8_t **owned, const char **why);

#endif
