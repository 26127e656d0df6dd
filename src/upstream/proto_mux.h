/*
 * The mux backend protocol: 14-byte binary envelope headers
 * (docs/backend-protocol.md, "mux envelopes").
 */
#ifndef WSG_PROTO_MUX_H
#define WSG_PROTO_MUX_H

#include <stdbool.h>

#include "upstream/envelope.h"

/* jansson's object type, named without including jansson.h */
struct json_t;

/*
 * Writes the 14-byte header of an envelope into <out>; returns 14.
 */
size_t wsg_mux_header(uint8_t *out, uint8_t kind, uint8_t flags, uint64_t id,
                      uint32_t len);

/*
 * Decodes one envelope at <p>/<len> (bytes from a backend). <max_message>
 * bounds a message's payload; other kinds are bounded by
 * WSG_ENV_CONTROL_MAX. Returns the envelope's total length (> 0) with
 * <env> filled (env->data points into <p>), WSG_AGAIN when more bytes are
 * needed, or WSG_ERROR with a static reason in *<why> when the link can no
 * longer be trusted: unknown kind, unknown flag bits, a length over its
 * bound, a close payload of 1 byte or with a code that may not be sent.
 * A text message that is not UTF-8 is NOT an error here (the caller drops
 * that envelope and counts it; see wsg_mux_check_text()).
 *
 * In detail, the bounds are: a message at most <max_message> bytes and
 * at most INT_MAX - WSG_MUX_HEADER (the total must fit the int result);
 * open WSG_ENV_CONTROL_MAX; close, ping and pong WSG_WS_MAX_CONTROL (125,
 * what a WebSocket close or ping frame can carry); pause and resume 0.
 * A close reason must also be UTF-8, and its code pass
 * wsg_mux_close_code_ok() (1006 is the one code accepted that a peer may
 * not send). Each field is judged as soon as its bytes are in: a bad kind
 * fails on the first byte, bad flags on the second, a length on the 14th,
 * so garbage never waits for a payload.
 * Flag bit 0 is accepted on every kind but only a message reads it.
 * On success: env->binary is the flag for a message, else false; env->id
 * is 0 for ping and pong (their id field is ignored); env->data/len is the
 * payload (for close, the code and reason as on the wire); for close,
 * env->code is the code (1005 for an empty payload) and env->reason points
 * just past it; other kinds leave code 0 and an empty reason.
 */
int wsg_mux_decode(const uint8_t *p, size_t len, size_t max_message,
                   struct wsg_envelope *env, const char **why);

/*
 * Builds the JSON payload of an open envelope from <o> into a malloc'd,
 * NUL-terminated string; sets *<len>. Never fails (aborts on OOM).
 */
char *wsg_mux_open_payload(const struct wsg_env_open *o, size_t *len);

/*
 * Whether <env> may be delivered as it is: false only for a text message
 * whose payload is not UTF-8 (the caller drops that envelope and counts
 * it), true for every other envelope.
 */
bool wsg_mux_check_text(const struct wsg_envelope *env);

/*
 * Whether a backend's close envelope may carry code <code>: a code a
 * WebSocket peer may send (wsg_ws_close_code_valid()), or 1006, which the
 * gateway itself sends for a client that dropped its connection, so that
 * an echo backend's copy is no protocol error. 1006 never goes into a
 * close frame: the caller treats it as a close without a code.
 */
bool wsg_mux_close_code_ok(uint16_t code);

/*
 * Adds the members of an open envelope ("path", "query", "remote",
 * "subprotocol", "user", "headers") from <o> to the JSON object <obj>,
 * which the caller keeps owning. Shared by the mux open payload and the
 * json open line. Never fails (aborts on OOM).
 */
void wsg_mux_open_members(struct json_t *obj, const struct wsg_env_open *o);

/*
 * jansson helpers of both codecs: need() returns <j>, aborting when it is
 * NULL (jansson fails only on OOM once inputs are checked); set() adds
 * <value> (a new reference, stolen) under <key> to <obj>, aborting on OOM.
 */
struct json_t *wsg_mux_json_need(struct json_t *j);
void wsg_mux_json_set(struct json_t *obj, const char *key,
                      struct json_t *value);

/*
 * Returns a new reference to a JSON string of <p>/<len> (<p> may be NULL
 * when <len> is 0). UTF-8 is kept as it is; bytes that are not UTF-8 (an
 * obs-text header value, say) are read as ISO-8859-1, one character per
 * byte, so building a line never fails on a peer's bytes. Never NULL
 * (aborts on OOM).
 */
struct json_t *wsg_mux_json_string(const char *p, size_t len);

/*
 * Serializes <j> (borrowed) compactly into a malloc'd buffer, followed by
 * '\n' when <newline>, and NUL-terminated (the NUL is not counted in
 * *<len>). Never fails (aborts on OOM).
 */
char *wsg_mux_json_dump(const struct json_t *j, bool newline, size_t *len);

#endif
