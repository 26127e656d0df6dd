/*
 * Proxying a WebSocket client to an upstream: choosing the server, and for
 * the one-connection-per-client protocols (raw, line, length) bridging the
 * client's session and its backend connection, with back-pressure both
 * ways. The backend is connected before the 101 is sent, so a client whose
 * upstream is down gets a 502, not a session that dies at once.
 */
#ifndef WSG_UPSTREAM_H
#define WSG_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wsg_conn;
struct wsg_http_request;
struct wsg_upstream;
struct wsg_upstream_loc_conf;
struct wsg_upstream_server;
struct wsg_ws_handshake;
struct wsg_ws_loc_conf;

/*
 * Takes over connection <c> whose upgrade request <r> passed the
 * handshake checks (<h>) on a location proxying to an upstream. Everything
 * it needs of <r> and <h> is copied before it returns (the caller drains
 * the head then). Answers the client itself: a 101 and a session, or 502
 * when no server can be reached.
 */
void wsg_upstream_start(struct wsg_conn *c, const struct wsg_ws_loc_conf *wcf,
                        const struct wsg_upstream_loc_conf *ulcf,
                        const struct wsg_ws_handshake *h,
                        const struct wsg_http_request *r);

/*
 * Chooses a server of <u> for a client whose hash key is <key>/<len>
 * (ignored unless the upstream hashes), skipping servers marked in
 * <excluded> (a bit per server index, for retries). Returns the index or
 * -1 when no server is up.
 */
int wsg_upstream_pick(struct wsg_upstream *u, const char *key, size_t len,
                      uint64_t excluded);

/*
 * As wsg_upstream_pick(), but always on <u>'s consistent hash ring,
 * whatever its balance method: the same key, the same server while it is
 * up. For messages routed with a key.
 */
int wsg_upstream_pick_key(struct wsg_upstream *u, const char *key, size_t len,
                          uint64_t excluded);

#endif
