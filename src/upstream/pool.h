/*
 * Shared backend pools (mux and json): each worker keeps pool_size
 * connections ("links") to every server of a pooled upstream, and binds
 * each client session to one link for its life, named by its connection
 * id. A dead link's clients are re-opened on another link (same id) or
 * closed, per proxy_failover.
 */
#ifndef WSG_POOL_H
#define WSG_POOL_H

#include <stdint.h>

struct event_base;
struct wsg_conn;
struct wsg_cycle;
struct wsg_http_request;
struct wsg_session;
struct wsg_upstream;
struct wsg_upstream_loc_conf;
struct wsg_ws_handshake;
struct wsg_ws_loc_conf;

/*
 * Opens the links of every pooled upstream of <cycle> on <base>; called
 * once in each worker as it starts. Links reconnect by themselves.
 */
void wsg_pool_init(struct wsg_cycle *cycle, struct event_base *base);

/*
 * Binds connection <c> (upgrade request <r> accepted as <h>) to a live link
 * of its pooled upstream and starts its session with an open envelope; or
 * answers 502 when no server of the upstream has a live link.
 */
void wsg_pool_start(struct wsg_conn *c, const struct wsg_ws_loc_conf *wcf,
                    const struct wsg_upstream_loc_conf *ulcf,
                    const struct wsg_ws_handshake *h,
                    const struct wsg_http_request *r);

/*
 * Session <s> ends with <code>: the backends it was routed to by
 * wsg_msg_to_upstream() get a close for each of its ids.
 */
void wsg_pool_routes_gone(struct wsg_session *s, uint16_t code);

#endif
