/*
 * server { }, location { }, listen, server_name and access_log. The merge
 * at the end of parsing pushes main-level defaults into servers and server
 * defaults into locations, for every module, so each location holds the
 * complete configuration a connection needs.
 */
#include "config.h"

#include "http/http_conf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/core.h"
#include "core/cycle.h"
#include "http/http_parse.h"
#include "net/tls.h"

#define ADDRS_PER_LISTEN 4

/* Slowloris defence: a request head must be complete within this. */
#define DEFAULT_HEADER_TIMEOUT  (10 * 1000)
#define DEFAULT_MAX_HEADER_SIZE 8192
#define DEFAULT_MAX_HEADERS     64

static const char *server_block(struct wsg_conf *cf,
                                const struct wsg_directive *d, void *conf);
static const char *location_block(struct wsg_conf *cf,
                                  const struct wsg_directive *d, void *conf);
static const char *set_listen(struct wsg_conf *cf,
                              const struct wsg_directive *d, void *conf);
static const char *set_server_name(struct wsg_conf *cf,
                                   const struct wsg_directive *d, void *conf);
static const char *set_access_log(struct wsg_conf *cf,
                                  const struct wsg_directive *d, void *conf);
static const char *set_return(struct wsg_conf *cf,
                              const struct wsg_directive *d, void *conf);
static const char *set_real_ip_from(struct wsg_conf *cf,
                                    const struct wsg_directive *d, void *conf);

static const struct wsg_conf_bounds header_size_bounds = {256, 1024 * 1024};
static const struct wsg_conf_bounds headers_bounds = {8, WSG_HTTP_MAX_HEADERS};

static const struct wsg_directive http_directives[] = {
    {"server", WSG_CTX_MAIN | WSG_DIR_BLOCK, 0, 0, server_block, 0, NULL},
    {"listen", WSG_CTX_SERVER, 1, 8, set_listen, 0, NULL},
    {"server_name", WSG_CTX_SERVER, 1, WSG_CONF_MAX_ARGS, set_server_name, 0,
     NULL},
    {"location", WSG_CTX_SERVER | WSG_DIR_BLOCK, 1, 2, location_block, 0, NULL},
    {"access_log", WSG_CTX_MAIN | WSG_CTX_SERVER | WSG_CTX_LOCATION, 1, 2,
     set_access_log, 0, NULL},
    {"return", WSG_CTX_SERVER | WSG_CTX_LOCATION, 1, 2, set_return, 0, NULL},
    {"client_header_timeout", WSG_CTX_MAIN | WSG_CTX_SERVER, 1, 1,
     wsg_conf_set_msec, offsetof(struct wsg_http_srv_conf, header_timeout_ms),
     NULL},
    {"client_max_header_size", WSG_CTX_MAIN | WSG_CTX_SERVER, 1, 1,
     wsg_conf_set_size, offsetof(struct wsg_http_srv_conf, max_header_size),
     &header_size_bounds},
    {"ssl_certificate", WSG_CTX_MAIN | WSG_CTX_SERVER, 1, 1, wsg_conf_set_path,
     offsetof(struct wsg_http_srv_conf, ssl_certificate), NULL},
    {"ssl_certificate_key", WSG_CTX_MAIN | WSG_CTX_SERVER, 1, 1,
     wsg_conf_set_path, offsetof(struct wsg_http_srv_conf, ssl_certificate_key),
     NULL},
    {"ssl_protocols", WSG_CTX_MAIN | WSG_CTX_SERVER, 1, 2,
     wsg_tls_set_protocols, 0, NULL},
    {"ssl_ciphers", WSG_CTX_MAIN | WSG_CTX_SERVER, 1, 1, wsg_conf_set_str,
     offsetof(struct wsg_http_srv_conf, ssl_ciphers), NULL},
    {"ssl_session_tickets", WSG_CTX_MAIN | WSG_CTX_SERVER, 1, 1,
     wsg_conf_set_flag, offsetof(struct wsg_http_srv_conf, ssl_session_tickets),
     NULL},
    {"set_real_ip_from", WSG_CTX_MAIN | WSG_CTX_SERVER, 1, WSG_CONF_MAX_ARGS,
     set_real_ip_from, 0, NULL},
    {"client_max_headers", WSG_CTX_MAIN | WSG_CTX_SERVER, 1, 1,
     wsg_conf_set_num, offsetof(struct wsg_http_srv_conf, max_headers),
     &headers_bounds},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
create_main_conf(struct wsg_conf *cf)
{
    return wsg_arena_alloc(cf->arena, sizeof(struct wsg_http_main_conf));
}

static void *
create_srv_conf(struct wsg_conf *cf)
{
    struct wsg_http_srv_conf *scf = wsg_arena_alloc(cf->arena, sizeof(*scf));

    scf->header_timeout_ms = WSG_CONF_UNSET_U64;
    scf->max_header_size = WSG_CONF_UNSET_U64;
    scf->max_headers = WSG_CONF_UNSET_I64;
    scf->ssl_protocols = WSG_CONF_UNSET;
    scf->ssl_session_tickets = WSG_CONF_UNSET;
    return scf;
}

static const char *
merge_srv_conf(struct wsg_conf *cf, void *parent, void *child)
{
    const struct wsg_http_srv_conf *prev = parent;
    struct wsg_http_srv_conf *scf = child;

    (void) cf;
    wsg_conf_merge_u64(&scf->header_timeout_ms, prev->header_timeout_ms,
                       DEFAULT_HEADER_TIMEOUT);
    wsg_conf_merge_u64(&scf->max_header_size, prev->max_header_size,
                       DEFAULT_MAX_HEADER_SIZE);
    wsg_conf_merge_i64(&scf->max_headers, prev->max_headers,
                       DEFAULT_MAX_HEADERS);
    wsg_conf_merge_ptr(&scf->ssl_certificate, prev->ssl_certificate, NULL);
    wsg_conf_merge_ptr(&scf->ssl_certificate_key, prev->ssl_certificate_key,
                       NULL);
    wsg_conf_merge_int(&scf->ssl_protocols, prev->ssl_protocols,
                       WSG_TLS_V1_2 | WSG_TLS_V1_3);
    wsg_conf_merge_ptr(&scf->ssl_ciphers, prev->ssl_ciphers,
                       (char *) WSG_TLS_DEFAULT_CIPHERS);
    wsg_conf_merge_int(&scf->ssl_session_tickets, prev->ssl_session_tickets, 1);
    if (scf->real_ip_from == NULL) {
        scf->real_ip_from = prev->real_ip_from;
        scf->nreal_ip_from = prev->nreal_ip_from;
    }
    return wsg_tls_init_server(cf, scf);
}

static void *
create_loc_conf(struct wsg_conf *cf)
{
    struct wsg_http_loc_conf *lcf = wsg_arena_alloc(cf->arena, sizeof(*lcf));

    lcf->name = "";
    lcf->access_log_set = WSG_CONF_UNSET;
    lcf->access_log_json = WSG_CONF_UNSET;
    lcf->return_status = WSG_CONF_UNSET_I64;
    return lcf;
}

static const char *
merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    struct wsg_http_loc_conf *prev = parent, *lcf = child;

    (void) cf;
    if (lcf->access_log_set == WSG_CONF_UNSET) {
        lcf->access_log_set = prev->access_log_set;
        lcf->access_log = prev->access_log;
        lcf->access_log_json = prev->access_log_json;
    }
    wsg_conf_merge_int(&lcf->access_log_json, WSG_CONF_UNSET, 0);
    /* "return" is not inherited: a server's return answers only requests
     * that no location matches */
    return NULL;
}

/* Creates a fresh set of srv and loc confs (for a server block). */
static void
create_confs(struct wsg_conf *cf, struct wsg_conf_ctx *ctx, bool srv)
{
    size_t n = cf->cycle->nmodules;

    ctx->loc_conf = wsg_arena_alloc(cf->arena, n * sizeof(void *));
    if (srv) {
        ctx->srv_conf = wsg_arena_alloc(cf->arena, n * sizeof(void *));
    }
    for (size_t i = 0; i < n; i++) {
        const struct wsg_module *m = cf->cycle->modules[i];
        if (srv && m->create_srv_conf != NULL) {
            ctx->srv_conf[i] = m->create_srv_conf(cf);
        }
        if (m->create_loc_conf != NULL) {
            ctx->loc_conf[i] = m->create_loc_conf(cf);
        }
    }
}

static const char *
server_block(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_http_main_conf *hmcf = conf;
    struct wsg_conf_ctx *ctx = wsg_arena_alloc(cf->arena, sizeof(*ctx));

    (void) d;
    cf->cycle->modules_frozen = true;
    ctx->main_conf = cf->ctx->main_conf;
    create_confs(cf, ctx, true);

    struct wsg_http_srv_conf *scf = ctx->srv_conf[WSG_HTTP_MODULE_INDEX];
    scf->ctx = ctx;
    scf->file = cf->file->name;
    scf->line = cf->file->line;
    wsg_http_loc_conf(ctx->loc_conf)->loc_conf = ctx->loc_conf;
    wsg_arena_push(cf->arena, &hmcf->servers, &hmcf->nservers, scf);

    if (wsg_conf_parse_block(cf, WSG_CTX_SERVER, ctx) != 0) {
        return WSG_CONF_ERROR_SET;
    }
    if (!scf->has_listen) {
        return "!\"server\" block has no \"listen\" directive";
    }
    return NULL;
}

static const char *
location_block(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_http_srv_conf *scf = cf->ctx->srv_conf[WSG_HTTP_MODULE_INDEX];
    struct wsg_conf_ctx *ctx = wsg_arena_alloc(cf->arena, sizeof(*ctx));
    bool exact = false;
    const char *path = cf->args[1].p;

    (void) d;
    (void) conf;
    if (cf->nargs == 3) {
        if (!wsg_str_eq(cf->args[1], "=")) {
            return wsg_conf_phrase(cf,
                                   "has an invalid modifier \"%s\", "
                                   "expecting \"=\"",
                                   cf->args[1].p);
        }
        exact = true;
        path = cf->args[2].p;
    }
    if (path[0] != '/') {
        return wsg_conf_phrase(cf, "path \"%s\" must start with \"/\"", path);
    }
    for (size_t i = 0; i < scf->nlocations; i++) {
        const struct wsg_http_loc_conf *o = scf->locations[i];
        if (o->exact == exact && strcmp(o->name, path) == 0) {
            return wsg_conf_phrase(cf, "\"%s%s\" is duplicate",
                                   exact ? "= " : "", path);
        }
    }

    ctx->main_conf = cf->ctx->main_conf;
    ctx->srv_conf = cf->ctx->srv_conf;
    create_confs(cf, ctx, false);
    struct wsg_http_loc_conf *lcf = wsg_http_loc_conf(ctx->loc_conf);
    lcf->name = path;
    lcf->exact = exact;
    lcf->loc_conf = ctx->loc_conf;
    wsg_arena_push(cf->arena, &scf->locations, &scf->nlocations, lcf);

    if (wsg_conf_parse_block(cf, WSG_CTX_LOCATION, ctx) != 0) {
        return WSG_CONF_ERROR_SET;
    }
    return NULL;
}

/* What a listen line says beyond the address and socket options. */
struct listen_flags {
    bool opt_set; /* socket options given on this line */
    bool is_default;
    bool ssl;
    bool proxy_protocol;
};

/* Parses "name=value" options of listen into <o>; returns NULL or why. */
static const char *
listen_option(struct wsg_conf *cf, struct wsg_str a, struct wsg_listen_opt *o,
              struct listen_flags *fl)
{
    if (wsg_str_eq(a, "ssl")) {
        fl->ssl = true;
        return NULL;
    }
    if (wsg_str_eq(a, "proxy_protocol")) {
        fl->proxy_protocol = true;
        return NULL;
    }
    if (wsg_str_eq(a, "default_server")) {
        fl->is_default = true;
        return NULL;
    }
    if (wsg_str_eq(a, "reuseport")) {
        o->reuseport = true;
        return NULL;
    }
    if (a.len > 8 && memcmp(a.p, "backlog=", 8) == 0) {
        uint64_t v;
        if (wsg_str_parse_uint(a.p + 8, a.len - 8, 65535, &v) != 0 || v == 0) {
            return wsg_conf_phrase(cf,
                                   "has an invalid backlog \"%s\", "
                                   "expecting 1 to 65535",
                                   a.p + 8);
        }
        o->backlog = (int) v;
        return NULL;
    }
    if (wsg_str_eq(a, "ipv6only=on") || wsg_str_eq(a, "ipv6only=off")) {
        o->ipv6only = a.p[10] == 'n';
        return NULL;
    }
    return wsg_conf_phrase(cf, "has an invalid parameter \"%s\"", a.p);
}

/* Records server <scf> on address <o>, merging with earlier listens. */
static const char *
add_addr(struct wsg_conf *cf, struct wsg_http_srv_conf *scf,
         const struct wsg_listen_opt *o, const struct listen_flags *fl)
{
    struct wsg_http_main_conf *hmcf = wsg_http_main_conf(cf->ctx->main_conf);
    bool opt_set = fl->opt_set;
    struct wsg_http_addr *a;

    for (a = hmcf->addrs; a != NULL; a = a->next) {
        if (a->opt.addrlen == o->addrlen &&
            memcmp(&a->opt.addr, &o->addr, o->addrlen) == 0) {
            break;
        }
    }
    if (a == NULL) {
        a = wsg_arena_alloc(cf->arena, sizeof(*a));
        a->opt = *o;
        a->ssl = fl->ssl;
        a->proxy_protocol = fl->proxy_protocol;
        a->next = hmcf->addrs;
        hmcf->addrs = a;
        hmcf->naddrs++;
    } else if (a->ssl != fl->ssl) {
        return wsg_conf_phrase(cf,
                               "!%s is listened to both with and "
                               "without \"ssl\"",
                               o->text);
    } else if (a->proxy_protocol != fl->proxy_protocol) {
        return wsg_conf_phrase(cf,
                               "!%s is listened to both with and "
                               "without \"proxy_protocol\"",
                               o->text);
    } else if (opt_set && a->opt_set) {
        return wsg_conf_phrase(cf, "!duplicate listen options for %s", o->text);
    } else if (opt_set) {
        a->opt = *o;
    }
    a->opt_set = a->opt_set || opt_set;
    for (size_t i = 0; i < a->nservers; i++) {
        if (a->servers[i] == scf) {
            return wsg_conf_phrase(cf, "!duplicate listen %s in one server",
                                   o->text);
        }
    }
    if (fl->is_default) {
        if (a->default_server != NULL) {
            return wsg_conf_phrase(cf, "!a duplicate default server for %s",
                                   o->text);
        }
        a->default_server = scf;
    }
    wsg_arena_push(cf->arena, &a->servers, &a->nservers, scf);
    return NULL;
}

static const char *
set_listen(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_http_srv_conf *scf = conf;
    struct wsg_listen_opt addrs[ADDRS_PER_LISTEN], opt;
    struct listen_flags fl = {false, false, false, false};
    const char *why;

    (void) d;
    int n = wsg_listen_parse_addr(cf->args[1].p, addrs, ADDRS_PER_LISTEN, &why);
    if (n < 0) {
        return wsg_conf_phrase(cf, "address \"%s\" %s", cf->args[1].p, why);
    }
    memset(&opt, 0, sizeof(opt));
    opt.backlog = -1;
    opt.ipv6only = -1;
    for (unsigned i = 2; i < cf->nargs; i++) {
        const char *rv = listen_option(cf, cf->args[i], &opt, &fl);
        if (rv != NULL) {
            return rv;
        }
    }
    fl.opt_set = opt.backlog != -1 || opt.reuseport || opt.ipv6only != -1;
    for (int i = 0; i < n; i++) {
        addrs[i].backlog = opt.backlog != -1 ? opt.backlog : 511;
        addrs[i].reuseport = opt.reuseport;
        addrs[i].ipv6only = opt.ipv6only;
        const char *rv = add_addr(cf, scf, &addrs[i], &fl);
        if (rv != NULL) {
            return rv;
        }
    }
    scf->has_listen = true;
    return NULL;
}

static const char *
set_server_name(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_http_srv_conf *scf = conf;

    (void) d;
    /* names are few: one array sized per directive is enough */
    struct wsg_str *names = wsg_arena_alloc(
        cf->arena, (scf->nnames + cf->nargs - 1) * sizeof(struct wsg_str));
    if (scf->nnames) {
        memcpy(names, scf->names, scf->nnames * sizeof(struct wsg_str));
    }
    for (unsigned i = 1; i < cf->nargs; i++) {
        /* names compare case-insensitively: keep one spelling */
        char *p = (char *) cf->args[i].p;
        for (size_t k = 0; k < cf->args[i].len; k++) {
            if (p[k] >= 'A' && p[k] <= 'Z') {
                p[k] = (char) (p[k] - 'A' + 'a');
            }
        }
        names[scf->nnames++] = cf->args[i];
    }
    scf->names = names;
    return NULL;
}

static const char *
set_access_log(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_http_loc_conf *lcf = conf;

    (void) d;
    if (lcf->access_log_set != WSG_CONF_UNSET) {
        return "is duplicate";
    }
    if (wsg_str_eq(cf->args[1], "off")) {
        if (cf->nargs > 2) {
            return "takes no format after \"off\"";
        }
        lcf->access_log_set = 1;
        lcf->access_log = NULL;
        lcf->access_log_json = 0;
        return NULL;
    }
    if (cf->nargs > 2 && !wsg_str_eq(cf->args[2], "json") &&
        !wsg_str_eq(cf->args[2], "text")) {
        return wsg_conf_phrase(cf,
                               "has an invalid format \"%s\", expecting "
                               "\"text\" or \"json\"",
                               cf->args[2].p);
    }
    lcf->access_log_set = 1;
    lcf->access_log_json = cf->nargs > 2 && wsg_str_eq(cf->args[2], "json");
    if (wsg_str_eq(cf->args[1], "stderr")) {
        lcf->access_log = wsg_cycle_log_file(cf->cycle, NULL);
    } else {
        lcf->access_log = wsg_cycle_log_file(
            cf->cycle, wsg_conf_full_path(cf, cf->args[1].p));
    }
    return NULL;
}

/* set_real_ip_from CIDR...: who may send a PROXY protocol header. */
static const char *
set_real_ip_from(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_http_srv_conf *scf = conf;

    (void) d;
    if (scf->real_ip_from != NULL) {
        return "is duplicate";
    }
    scf->real_ip_from =
        wsg_arena_alloc(cf->arena, cf->nargs * sizeof(struct wsg_cidr));
    for (unsigned i = 1; i < cf->nargs; i++) {
        struct wsg_cidr *c = &scf->real_ip_from[scf->nreal_ip_from++];
        char ip[64];
        const char *slash = strchr(cf->args[i].p, '/');
        size_t iplen =
            slash ? (size_t) (slash - cf->args[i].p) : cf->args[i].len;
        uint64_t bits = 0;
        if (iplen >= sizeof(ip)) {
            goto bad;
        }
        memcpy(ip, cf->args[i].p, iplen);
        ip[iplen] = '\0';
        if (inet_pton(AF_INET, ip, c->addr) == 1) {
            c->family = AF_INET;
            c->bits = 32;
        } else if (inet_pton(AF_INET6, ip, c->addr) == 1) {
            c->family = AF_INET6;
            c->bits = 128;
        } else {
            goto bad;
        }
        if (slash != NULL) {
            if (wsg_str_parse_uint(slash + 1, strlen(slash + 1), c->bits,
                                   &bits) != 0) {
                goto bad;
            }
            c->bits = (unsigned) bits;
        }
        continue;
    bad:
        return wsg_conf_phrase(cf,
                               "has an invalid address \"%s\", "
                               "expecting ADDRESS or ADDRESS/BITS",
                               cf->args[i].p);
    }
    return NULL;
}

bool
wsg_http_cidr_match(const struct wsg_cidr *cidrs, size_t n,
                    const struct sockaddr *sa)
{
    uint8_t a[16];
    int family = sa->sa_family;

    if (family == AF_INET) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof(s4));
        memcpy(a, &s4.sin_addr, 4);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof(s6));
        memcpy(a, &s6.sin6_addr, 16);
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const struct wsg_cidr *c = &cidrs[i];
        unsigned full = c->bits / 8, rest = c->bits % 8;
        if (c->family != family || memcmp(a, c->addr, full) != 0) {
            continue;
        }
        uint8_t mask = (uint8_t) (0xFF << (8 - rest));
        if (rest == 0 || ((a[full] ^ c->addr[full]) & mask) == 0) {
            return true;
        }
    }
    return false;
}

/* return CODE [TEXT]: answer with a fixed response, not WebSocket. */
static const char *
set_return(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_http_loc_conf *lcf = conf;
    uint64_t code;

    (void) d;
    if (lcf->return_status != WSG_CONF_UNSET_I64) {
        return "is duplicate";
    }
    if (wsg_str_parse_uint(cf->args[1].p, cf->args[1].len, 599, &code) != 0 ||
        code < 200 || (code >= 300 && code < 400)) {
        return wsg_conf_phrase(cf,
                               "has an invalid status \"%s\", expecting "
                               "200 to 299 or 400 to 599",
                               cf->args[1].p);
    }
    lcf->return_status = (int64_t) code;
    if (cf->nargs > 2) {
        lcf->return_text = cf->args[2];
    }
    return NULL;
}

/* Merges every module's srv and loc confs of <scf> from the main level. */
static const char *
merge_server(struct wsg_conf *cf, struct wsg_http_srv_conf *scf)
{
    struct wsg_conf_ctx *top = cf->cycle->ctx;
    const struct wsg_module *const *mods = cf->cycle->modules;
    struct wsg_conf_file file = {scf->file, scf->line};
    struct wsg_conf_file *saved = cf->file;
    const char *rv = NULL;

    /* a merge error points at the server block */
    cf->file = &file;
    for (size_t i = 0; i < cf->cycle->nmodules && rv == NULL; i++) {
        const struct wsg_module *m = mods[i];
        if (m->merge_srv_conf != NULL) {
            rv = m->merge_srv_conf(cf, top->srv_conf[i], scf->ctx->srv_conf[i]);
        }
        if (rv == NULL && m->merge_loc_conf != NULL) {
            rv = m->merge_loc_conf(cf, top->loc_conf[i], scf->ctx->loc_conf[i]);
        }
        for (size_t k = 0; k < scf->nlocations && rv == NULL; k++) {
            if (m->merge_loc_conf != NULL) {
                rv = m->merge_loc_conf(cf, scf->ctx->loc_conf[i],
                                       scf->locations[k]->loc_conf[i]);
            }
        }
    }
    if (rv != NULL && rv != WSG_CONF_ERROR_SET) {
        /* a phrase that names its own position ('!') is printed alone;
         * any other is placed at the server block */
        if (rv[0] == '!') {
            cf->file = NULL;
        }
        wsg_conf_error(cf, "%s", rv[0] == '!' ? rv + 1 : rv);
        rv = WSG_CONF_ERROR_SET;
    }
    cf->file = saved;
    return rv;
}

static const char *
init_main_conf(struct wsg_conf *cf, void *conf)
{
    struct wsg_http_main_conf *hmcf = conf;
    void **top = cf->cycle->ctx->loc_conf;

    wsg_http_loc_conf(top)->loc_conf = top;
    for (size_t i = 0; i < hmcf->nservers; i++) {
        const char *rv = merge_server(cf, hmcf->servers[i]);
        if (rv != NULL) {
            return rv;
        }
    }
    for (struct wsg_http_addr *a = hmcf->addrs; a != NULL; a = a->next) {
        if (a->default_server == NULL) {
            a->default_server = a->servers[0];
        }
        const struct wsg_http_srv_conf *ds = a->default_server;
        if (a->proxy_protocol && ds->nreal_ip_from == 0) {
            return wsg_conf_phrase(cf,
                                   "!%s:%u: %s is listened to with "
                                   "\"proxy_protocol\" but no "
                                   "\"set_real_ip_from\" says whom to "
                                   "trust",
                                   ds->file, ds->line, a->opt.text);
        }
        if (a->ssl && ds->ssl_ctx == NULL) {
            return wsg_conf_phrase(cf,
                                   "!%s:%u: no \"ssl_certificate\" is "
                                   "defined for the server listening "
                                   "on %s with \"ssl\"",
                                   ds->file, ds->line, a->opt.text);
        }
    }
    return NULL;
}

const struct wsg_module wsg_http_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "http",
    .directives = http_directives,
    .create_main_conf = create_main_conf,
    .init_main_conf = init_main_conf,
    .create_srv_conf = create_srv_conf,
    .merge_srv_conf = merge_srv_conf,
    .create_loc_conf = create_loc_conf,
    .merge_loc_conf = merge_loc_conf,
};
