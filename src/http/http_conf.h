/*
 * The http module: server and location blocks, listen addresses and the
 * access log. A listen address shared by several servers is one socket;
 * its per-address record names the servers reachable through it.
 */
#ifndef WSG_HTTP_CONF_H
#define WSG_HTTP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/module.h"
#include "core/str.h"
#include "net/listen.h"

struct wsg_http_srv_conf;

/* One listen address of a config, and the servers on it. */
struct wsg_http_addr {
    struct wsg_http_addr *next;
    struct wsg_listen_opt opt;
    bool opt_set;        /* options given explicitly */
    bool ssl;            /* TLS on this address */
    bool proxy_protocol; /* a PROXY header precedes everything */
    struct wsg_http_srv_conf *default_server;
    struct wsg_http_srv_conf **servers; /* in config order */
    size_t nservers;
};

struct wsg_http_main_conf {
    struct wsg_http_srv_conf **servers;
    size_t nservers;
    struct wsg_http_addr *addrs;
    size_t naddrs;
};

struct wsg_http_loc_conf {
    const char *name;   /* the location's path; "" for a server's defaults */
    bool exact;         /* "location = /path" */
    void **loc_conf;    /* every module's configuration of this location */
    int access_log_set; /* flag: access_log given */
    struct wsg_log_file *access_log; /* NULL: off */
    int access_log_json;             /* flag */
    int64_t return_status;           /* "return": status, or unset */
    struct wsg_str return_text;      /* "return": body */
};

struct wsg_http_srv_conf {
    struct wsg_conf_ctx *ctx; /* this server's main, srv and loc confs */
    const char *file;         /* where the block starts, for messages */
    unsigned line;
    struct wsg_str *names; /* server_name values */
    size_t nnames;
    struct wsg_http_loc_conf **locations;
    size_t nlocations;
    bool has_listen;
    uint64_t header_timeout_ms; /* client_header_timeout */
    uint64_t max_header_size;   /* client_max_header_size */
    int64_t max_headers;        /* client_max_headers */
    char *ssl_certificate;      /* absolute path; NULL: none */
    char *ssl_certificate_key;
    int ssl_protocols;             /* WSG_TLS_* bits; WSG_CONF_UNSET */
    char *ssl_ciphers;             /* TLS 1.2 cipher list */
    int ssl_session_tickets;       /* flag */
    struct ssl_ctx_st *ssl_ctx;    /* built at merge; freed with the cycle */
    struct wsg_cidr *real_ip_from; /* set_real_ip_from; NULL: none */
    size_t nreal_ip_from;
};

/* An address block of set_real_ip_from. */
struct wsg_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order, masked */
    unsigned bits;    /* prefix length */
};

/* Whether <sa> lies in one of the <n> blocks at <cidrs>. */
bool wsg_http_cidr_match(const struct wsg_cidr *cidrs, size_t n,
                         const struct sockaddr *sa);

extern const struct wsg_module wsg_http_module;

static inline struct wsg_http_main_conf *
wsg_http_main_conf(void *const *main_conf)
{
    return main_conf[WSG_HTTP_MODULE_INDEX];
}

static inline struct wsg_http_loc_conf *
wsg_http_loc_conf(void *const *loc_conf)
{
    return loc_conf[WSG_HTTP_MODULE_INDEX];
}

#endif
