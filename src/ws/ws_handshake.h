/*
 * The WebSocket opening handshake (RFC 6455 §4.2): checking a client's
 * upgrade request against a location's settings, choosing the subprotocol
 * and extensions, and writing the 101 response.
 */
#ifndef WSG_WS_HANDSHAKE_H
#define WSG_WS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"
#include "ws/deflate.h"

struct wsg_http_request;
struct wsg_ws_loc_conf;

/* Length of a Sec-WebSocket-Accept value (base64 of 20 bytes) + NUL. */
#define WSG_WS_ACCEPT_LEN 29

struct wsg_ws_handshake {
    struct wsg_str key;         /* slice of the request */
    struct wsg_str subprotocol; /* chosen; len 0 for none */
    bool deflate;               /* permessage-deflate agreed */
    struct wsg_deflate_params deflate_params;
    char extensions[256]; /* response header value, "" for none */
};

/*
 * Checks the upgrade request <r> against <wcf> (RFC 6455 §4.2.1).
 * Returns 0 with <h> filled, or the HTTP status to refuse with and a static
 * reason in *<why>: 405 a method other than GET; 426 no "Upgrade:
 * websocket" (a plain request to a WebSocket location) or a
 * Sec-WebSocket-Version other than 13 (the response must then carry
 * "Sec-WebSocket-Version: 13"); 400 HTTP/1.0, no Host, no "upgrade" in
 * Connection, a missing, repeated or malformed Sec-WebSocket-Key, a
 * missing version, a malformed extension offer; 403 an Origin not allowed.
 */
int wsg_ws_handshake_check(const struct wsg_http_request *r,
                           const struct wsg_ws_loc_conf *wcf,
                           struct wsg_ws_handshake *h, const char **why);

/* Computes the Sec-WebSocket-Accept value for <key> into <out>. */
void wsg_ws_accept(struct wsg_str key, char out[WSG_WS_ACCEPT_LEN]);

/* Whether <key> is base64 of exactly 16 bytes (24 characters, "==" end). */
bool wsg_ws_key_valid(struct wsg_str key);

/*
 * Writes the 101 response for <h> into <buf> (<len> bytes); returns its
 * length, or 0 if it did not fit.
 */
size_t wsg_ws_handshake_response(const struct wsg_ws_handshake *h, char *buf,
                                 size_t len);

#endif
