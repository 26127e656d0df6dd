/*
 * The upstream module's configuration: upstream { } blocks (servers,
 * balancing, protocol, pools, health checks) and the proxy_* directives of
 * a location. Server addresses are resolved when the configuration loads,
 * in the master, so a worker never blocks on DNS.
 */
#ifndef WSG_UPSTREAM_CONF_H
#define WSG_UPSTREAM_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/module.h"
#include "core/str.h"
#include "net/listen.h"

#define WSG_UPSTREAM_MODULE_INDEX 3

enum wsg_upstream_proto {
    WSG_PROTO_RAW,
    WSG_PROTO_LINE,
    WSG_PROTO_LENGTH,
    WSG_PROTO_MUX,
    WSG_PROTO_JSON,
};

enum wsg_upstream_balance {
    WSG_BALANCE_ROUND_ROBIN,
    WSG_BALANCE_LEAST_CONN,
    WSG_BALANCE_HASH,
};

enum wsg_upstream_failover {
    WSG_FAILOVER_REOPEN,
    WSG_FAILOVER_CLOSE,
};

struct wsg_balance_ring;
struct wsg_peer_state;
struct wsg_pool;

struct wsg_upstream_server {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char text[WSG_ADDR_TEXT_MAX]; /* "127.0.0.1:9001" */
    uint32_t weight;
    uint32_t max_fails; /* 0: passive health off */
    uint64_t fail_timeout_ms;
    bool backup;
    bool down;                    /* marked down in the config */
    uint32_t ring_id;             /* hash of <text>: its hash ring points */
    struct wsg_peer_state *state; /* node-wide, in shared memory */
};

struct wsg_upstream {
    const char *name;
    const char *file; /* where the block starts, for messages */
    unsigned line;
    struct wsg_upstream_server *servers;
    size_t nservers;
    int balance;          /* enum wsg_upstream_balance, or unset */
    const char *hash_key; /* "$remote_addr", "$arg_room", ... */
    bool hash_consistent;
    int protocol;      /* enum wsg_upstream_proto, or unset */
    int64_t pool_size; /* mux/json: connections per server per worker */
    uint64_t check_interval_ms; /* 0: no active health check */
    int64_t check_fails;
    int64_t check_passes;
    int proxy_protocol; /* 0 off, 1 or 2 the version, or unset */
    int failover;       /* enum wsg_upstream_failover, or unset */
    bool implicit;      /* made by "proxy_pass PROTOCOL HOST:PORT" */
    /* per worker, made on first use after fork (the config is the
     * worker's private copy then) */
    int64_t *rr_weights;           /* smooth round robin state */
    struct wsg_balance_ring *ring; /* consistent hash ring */
    struct wsg_pool *pool;         /* mux/json pool connections */
};

/* An upstream a module routes messages to (wsg_conf_need_upstream). */
struct wsg_upstream_use {
    const char *name;
    const char *file;
    unsigned line;
};

struct wsg_upstream_main_conf {
    struct wsg_upstream **upstreams;
    size_t nupstreams;
    struct wsg_upstream_use **uses; /* checked once all is parsed */
    size_t nuses;
};

struct wsg_upstream_loc_conf {
    struct wsg_upstream *upstream; /* proxy_pass target; NULL: none */
    const char *pass_name;         /* named upstream, resolved at init */
    const char *pass_file;
    unsigned pass_line;
    uint64_t connect_timeout_ms;
    uint64_t read_timeout_ms; /* 0: none */
    uint64_t buffer_size;
    int64_t next_tries;           /* 0: every server once */
    int message_text;             /* flag: proxy_message_type text */
    struct wsg_str *pass_headers; /* proxy_pass_headers, lower-case */
    size_t npass_headers;
};

extern const struct wsg_module wsg_upstream_module;

static inline const struct wsg_upstream_loc_conf *
wsg_upstream_loc_conf(void *const *loc_conf)
{
    return loc_conf[WSG_UPSTREAM_MODULE_INDEX];
}

static inline const struct wsg_upstream_main_conf *
wsg_upstream_main_conf(void *const *main_conf)
{
    return main_conf[WSG_UPSTREAM_MODULE_INDEX];
}

/* The upstream block named <name>/<len>, or NULL. */
struct wsg_upstream *
wsg_upstream_find(const struct wsg_upstream_main_conf *umcf, const char *name,
                  size_t len);

/* "raw", "line", ... for logs and messages. */
const char *wsg_upstream_proto_name(int proto);

/* Whether <proto> shares pooled backend connections among clients. */
static inline bool
wsg_upstream_pooled(int proto)
{
    return proto == WSG_PROTO_MUX || proto == WSG_PROTO_JSON;
}

#endif
