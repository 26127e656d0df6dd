/*
 * The websocket module: the location-level settings of WebSocket
 * endpoints (limits, heartbeats, origins, subprotocols, permessage-deflate).
 * A location becomes an endpoint through proxy_pass or a module that
 * answers messages itself (wsg_conf_websocket_endpoint()).
 */
#ifndef WSG_WS_CONF_H
#define WSG_WS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/module.h"
#include "core/str.h"
#include "ws/deflate.h"

/* A list of words from a directive (origins, subprotocols). */
struct wsg_ws_list {
    struct wsg_str *items; /* NULL: not set */
    size_t n;
};

struct wsg_ws_loc_conf {
    int endpoint;                    /* 1 when a module answers here */
    uint64_t max_frame;              /* bytes; 0 none */
    uint64_t max_message;            /* bytes; 0 none */
    uint64_t send_buffer_max;        /* bytes queued to a client */
    uint64_t ping_interval_ms;       /* 0: no pings */
    uint64_t idle_timeout_ms;        /* 0: none */
    uint64_t close_timeout_ms;       /* wait for the peer's close */
    uint64_t send_timeout_ms;        /* a client that reads nothing */
    struct wsg_ws_list origins;      /* allowed Origin values; unset: any */
    struct wsg_ws_list subprotocols; /* the endpoint speaks these */
    int deflate;                     /* flag */
    uint64_t deflate_threshold;      /* bytes */
    int deflate_server_nct;          /* flag: server_no_context_takeover */
    int deflate_client_nct;          /* flag: client_no_context_takeover */
    int64_t deflate_server_bits;
    int64_t deflate_client_bits;
    int64_t deflate_level;
    struct wsg_deflate_conf deflate_conf; /* built by merge */
};

extern const struct wsg_module wsg_ws_module;

#define WSG_WS_MODULE_INDEX 2

static inline const struct wsg_ws_loc_conf *
wsg_ws_loc_conf(void *const *loc_conf)
{
    return loc_conf[WSG_WS_MODULE_INDEX];
}

/* Whether <wcf> makes its location a WebSocket endpoint. */
static inline bool
wsg_ws_is_endpoint(const struct wsg_ws_loc_conf *wcf)
{
    return wcf->endpoint == 1;
}

#endif
