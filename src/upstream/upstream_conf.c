/*
 * upstream { } blocks and the proxy_* directives. Inside a block the
 * module's main configuration slot is the upstream being defined, so the
 * generic setters and the table's offsets work on it. proxy_pass may name
 * an upstream defined further down: names are resolved once the whole file
 * is read.
 */
#include "config.h"

#include "upstream/upstream_conf.h"

#include <string.h>

#include "core/arena.h"
#include "core/conf.h"
#include "core/core.h"
#include "core/cycle.h"
#include "upstream/balance.h"

#define DEFAULT_CONNECT_TIMEOUT (5 * 1000)
#define DEFAULT_BUFFER_SIZE     (16 * 1024)
#define DEFAULT_POOL_SIZE       2
#define DEFAULT_FAIL_TIMEOUT    (10 * 1000)
#define DEFAULT_MAX_FAILS       1
#define DEFAULT_CHECK_FAILS     2
#define DEFAULT_CHECK_PASSES    1
/* Addresses one server name may resolve to. */
#define ADDRS_PER_SERVER        4

static const char *upstream_block(struct wsg_conf *cf,
                                  const struct wsg_directive *d, void *conf);
static const char *set_server(struct wsg_conf *cf,
                              const struct wsg_directive *d, void *conf);
static const char *set_balance(struct wsg_conf *cf,
                               const struct wsg_directive *d, void *conf);
static const char *set_health_check(struct wsg_conf *cf,
                                    const struct wsg_directive *d, void *conf);
static const char *set_proxy_protocol(struct wsg_conf *cf,
                                      const struct wsg_directive *d,
                                      void *conf);
static const char *set_proxy_pass(struct wsg_conf *cf,
                                  const struct wsg_directive *d, void *conf);
static const char *set_pass_headers(struct wsg_conf *cf,
                                    const struct wsg_directive *d, void *conf);

static const struct wsg_conf_enum protocols[] = {
    {"raw", WSG_PROTO_RAW},       {"line", WSG_PROTO_LINE},
    {"length", WSG_PROTO_LENGTH}, {"mux", WSG_PROTO_MUX},
    {"json", WSG_PROTO_JSON},     {NULL, 0},
};

static const struct wsg_conf_enum failovers[] = {
    {"reopen", WSG_FAILOVER_REOPEN},
    {"close", WSG_FAILOVER_CLOSE},
    {NULL, 0},
};

static const struct wsg_conf_enum message_types[] = {
    {"binary", 0},
    {"text", 1},
    {NULL, 0},
};

static const struct wsg_conf_bounds pool_bounds = {1, 64};
static const struct wsg_conf_bounds buffer_bounds = {512, 16u * 1024 * 1024};
static const struct wsg_conf_bounds tries_bounds = {0, 64};

#define UP(field) offsetof(struct wsg_upstream, field)
#define LOC       (WSG_CTX_MAIN | WSG_CTX_SERVER | WSG_CTX_LOCATION)
#define LC(field) offsetof(struct wsg_upstream_loc_conf, field)

static const struct wsg_directive upstream_directives[] = {
    {"upstream", WSG_CTX_MAIN | WSG_DIR_BLOCK, 1, 1, upstream_block, 0, NULL},
    {"server", WSG_CTX_UPSTREAM, 1, 6, set_server, 0, NULL},
    {"balance", WSG_CTX_UPSTREAM, 1, 3, set_balance, 0, NULL},
    {"protocol", WSG_CTX_UPSTREAM, 1, 1, wsg_conf_set_enum, UP(protocol),
     protocols},
    {"pool_size", WSG_CTX_UPSTREAM, 1, 1, wsg_conf_set_num, UP(pool_size),
     &pool_bounds},
    {"health_check", WSG_CTX_UPSTREAM, 0, 3, set_health_check, 0, NULL},
    {"proxy_protocol", WSG_CTX_UPSTREAM, 1, 1, set_proxy_protocol, 0, NULL},
    {"proxy_failover", WSG_CTX_UPSTREAM, 1, 1, wsg_conf_set_enum, UP(failover),
     failovers},
    {"proxy_pass", WSG_CTX_LOCATION, 1, 2, set_proxy_pass, 0, NULL},
    {"proxy_connect_timeout", LOC, 1, 1, wsg_conf_set_msec,
     LC(connect_timeout_ms), NULL},
    {"proxy_read_timeout", LOC, 1, 1, wsg_conf_set_msec, LC(read_timeout_ms),
     NULL},
    {"proxy_buffer_size", LOC, 1, 1, wsg_conf_set_size, LC(buffer_size),
     &buffer_bounds},
    {"proxy_next_upstream_tries", LOC, 1, 1, wsg_conf_set_num, LC(next_tries),
     &tries_bounds},
    {"proxy_message_type", LOC, 1, 1, wsg_conf_set_enum, LC(message_text),
     message_types},
    {"proxy_pass_headers", LOC, 1, WSG_CONF_MAX_ARGS, set_pass_headers, 0,
     NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

const char *
wsg_upstream_proto_name(int proto)
{
    for (const struct wsg_conf_enum *e = protocols; e->name != NULL; e++) {
        if (e->value == proto) {
            return e->name;
        }
    }
    return "?";
}

static struct wsg_upstream *
upstream_new(struct wsg_conf *cf, const char *name)
{
    struct wsg_upstream *u = wsg_arena_alloc(cf->arena, sizeof(*u));

    u->name = name;
    u->file = cf->file->name;
    u->line = cf->file->line;
    u->balance = WSG_CONF_UNSET;
    u->protocol = WSG_CONF_UNSET;
    u->pool_size = WSG_CONF_UNSET_I64;
    u->check_fails = DEFAULT_CHECK_FAILS;
    u->check_passes = DEFAULT_CHECK_PASSES;
    u->proxy_protocol = WSG_CONF_UNSET;
    u->failover = WSG_CONF_UNSET;
    return u;
}

struct wsg_upstream *
wsg_upstream_find(const struct wsg_upstream_main_conf *umcf, const char *name,
                  size_t len)
{
    for (size_t i = 0; i < umcf->nupstreams; i++) {
        const struct wsg_upstream *u = umcf->upstreams[i];
        if (!u->implicit && strncmp(u->name, name, len) == 0 &&
            u->name[len] == '\0') {
            return umcf->upstreams[i];
        }
    }
    return NULL;
}

static const char *
upstream_block(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_upstream_main_conf *umcf = conf;
    const char *name = cf->args[1].p;

    (void) d;
    if (wsg_upstream_find(umcf, name, strlen(name)) != NULL) {
        return wsg_conf_phrase(cf, "\"%s\" is duplicate", name);
    }
    struct wsg_upstream *u = upstream_new(cf, name);
    cf->cycle->modules_frozen = true;
    wsg_arena_push(cf->arena, &umcf->upstreams, &umcf->nupstreams, u);

    /* inside the block this module's main slot is the upstream itself */
    size_t n = cf->cycle->nmodules;
    struct wsg_conf_ctx *ctx = wsg_arena_alloc(cf->arena, sizeof(*ctx));
    *ctx = *cf->ctx;
    ctx->main_conf = wsg_arena_alloc(cf->arena, n * sizeof(void *));
    memcpy(ctx->main_conf, cf->ctx->main_conf, n * sizeof(void *));
    ctx->main_conf[WSG_UPSTREAM_MODULE_INDEX] = u;
    if (wsg_conf_parse_block(cf, WSG_CTX_UPSTREAM, ctx) != 0) {
        return WSG_CONF_ERROR_SET;
    }
    if (u->nservers == 0) {
        return wsg_conf_phrase(cf, "!upstream \"%s\" has no \"server\"", name);
    }
    return NULL;
}

/* A server's options before its "server" line sets any. */
static void
server_defaults(struct wsg_upstream_server *tmpl)
{
    memset(tmpl, 0, sizeof(*tmpl));
    tmpl->weight = 1;
    tmpl->max_fails = DEFAULT_MAX_FAILS;
    tmpl->fail_timeout_ms = DEFAULT_FAIL_TIMEOUT;
}

/* Adds server(s) resolved from <text> with the options of <tmpl>. */
static const char *
add_servers(struct wsg_conf *cf, struct wsg_upstream *u, const char *text,
            const struct wsg_upstream_server *tmpl)
{
    struct wsg_listen_opt addrs[ADDRS_PER_SERVER];
    const char *why;

    if (strncmp(text, "*:", 2) == 0 || strchr(text, ':') == NULL) {
        return wsg_conf_phrase(cf, "address \"%s\" needs a host and a port",
                               text);
    }
    int n = wsg_listen_parse_addr(text, addrs, ADDRS_PER_SERVER, &why);
    if (n < 0) {
        return wsg_conf_phrase(cf, "address \"%s\" %s", text, why);
    }
    struct wsg_upstream_server *grown =
        wsg_arena_alloc(cf->arena, (u->nservers + (size_t) n) * sizeof(*grown));
    if (u->nservers) {
        memcpy(grown, u->servers, u->nservers * sizeof(*grown));
    }
    for (int i = 0; i < n; i++) {
        struct wsg_upstream_server *s = &grown[u->nservers++];
        *s = *tmpl;
        memcpy(&s->addr, &addrs[i].addr, addrs[i].addrlen);
        s->addrlen = addrs[i].addrlen;
        memcpy(s->text, addrs[i].text, sizeof(s->text));
        s->ring_id = wsg_balance_hash32(s->text, strlen(s->text));
    }
    u->servers = grown;
    return NULL;
}

/* Parses "name=value" <a> whose name is <name>; returns the value or NULL. */
static const char *
option(struct wsg_str a, const char *name)
{
    size_t n = strlen(name);

    if (a.len > n + 1 && memcmp(a.p, name, n) == 0 && a.p[n] == '=') {
        return a.p + n + 1;
    }
    return NULL;
}

static const char *
server_option(struct wsg_conf *cf, struct wsg_str a,
              struct wsg_upstream_server *s)
{
    const char *v;
    uint64_t n;

    if (wsg_str_eq(a, "backup")) {
        s->backup = true;
    } else if (wsg_str_eq(a, "down")) {
        s->down = true;
    } else if ((v = option(a, "weight")) != NULL) {
        if (wsg_str_parse_uint(v, strlen(v), 1000, &n) != 0 || n == 0) {
            return wsg_conf_phrase(cf,
                                   "has an invalid weight \"%s\", "
                                   "expecting 1 to 1000",
                                   v);
        }
        s->weight = (uint32_t) n;
    } else if ((v = option(a, "max_fails")) != NULL) {
        if (wsg_str_parse_uint(v, strlen(v), 1000, &n) != 0) {
            return wsg_conf_phrase(cf, "has an invalid max_fails \"%s\"", v);
        }
        s->max_fails = (uint32_t) n;
    } else if ((v = option(a, "fail_timeout")) != NULL) {
        if (wsg_str_parse_msec(v, strlen(v), &n) != 0 || n == 0) {
            return wsg_conf_phrase(cf, "has an invalid fail_timeout \"%s\"", v);
        }
        s->fail_timeout_ms = n;
    } else {
        return wsg_conf_phrase(cf, "has an invalid parameter \"%s\"", a.p);
    }
    return NULL;
}

static const char *
set_server(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_upstream *u = conf;
    struct wsg_upstream_server tmpl;

    (void) d;
    server_defaults(&tmpl);
    for (unsigned i = 2; i < cf->nargs; i++) {
        const char *rv = server_option(cf, cf->args[i], &tmpl);
        if (rv != NULL) {
            return rv;
        }
    }
    return add_servers(cf, u, cf->args[1].p, &tmpl);
}

static const char *
set_balance(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_upstream *u = conf;
    struct wsg_str a = cf->args[1];

    (void) d;
    if (u->balance != WSG_CONF_UNSET) {
        return "is duplicate";
    }
    if (wsg_str_eq(a, "round_robin") && cf->nargs == 2) {
        u->balance = WSG_BALANCE_ROUND_ROBIN;
    } else if (wsg_str_eq(a, "least_conn") && cf->nargs == 2) {
        u->balance = WSG_BALANCE_LEAST_CONN;
    } else if (wsg_str_eq(a, "hash") && cf->nargs >= 3) {
        if (cf->nargs == 4 && !wsg_str_eq(cf->args[3], "consistent")) {
            return wsg_conf_phrase(cf,
                                   "has an invalid parameter \"%s\", "
                                   "expecting \"consistent\"",
                                   cf->args[3].p);
        }
        if (cf->args[2].p[0] != '$') {
            return wsg_conf_phrase(cf,
                                   "hash key \"%s\" must use a variable "
                                   "such as $remote_addr",
                                   cf->args[2].p);
        }
        u->balance = WSG_BALANCE_HASH;
        u->hash_key = cf->args[2].p;
        u->hash_consistent = cf->nargs == 4;
    } else {
        return "expects \"round_robin\", \"least_conn\" or \"hash KEY "
               "[consistent]\"";
    }
    return NULL;
}

static const char *
set_health_check(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_upstream *u = conf;
    uint64_t n;

    (void) d;
    if (u->check_interval_ms != 0) {
        return "is duplicate";
    }
    u->check_interval_ms = 5000;
    for (unsigned i = 1; i < cf->nargs; i++) {
        struct wsg_str a = cf->args[i];
        const char *v;
        if ((v = option(a, "interval")) != NULL &&
            wsg_str_parse_msec(v, strlen(v), &n) == 0 && n >= 10) {
            u->check_interval_ms = n;
        } else if ((v = option(a, "fails")) != NULL &&
                   wsg_str_parse_uint(v, strlen(v), 100, &n) == 0 && n > 0) {
            u->check_fails = (int64_t) n;
        } else if ((v = option(a, "passes")) != NULL &&
                   wsg_str_parse_uint(v, strlen(v), 100, &n) == 0 && n > 0) {
            u->check_passes = (int64_t) n;
        } else {
            return wsg_conf_phrase(cf,
                                   "has an invalid parameter \"%s\", "
                                   "expecting interval=TIME (10ms or "
                                   "more), fails=N or passes=N",
                                   a.p);
        }
    }
    return NULL;
}

static const char *
set_proxy_protocol(struct wsg_conf *cf, const struct wsg_directive *d,
                   void *conf)
{
    struct wsg_upstream *u = conf;
    struct wsg_str a = cf->args[1];

    (void) d;
    if (u->proxy_protocol != WSG_CONF_UNSET) {
        return "is duplicate";
    }
    if (wsg_str_eq(a, "off")) {
        u->proxy_protocol = 0;
    } else if (wsg_str_eq(a, "on") || wsg_str_eq(a, "v1")) {
        u->proxy_protocol = 1;
    } else if (wsg_str_eq(a, "v2")) {
        u->proxy_protocol = 2;
    } else {
        return wsg_conf_phrase(cf,
                               "invalid value \"%s\", expecting \"on\", "
                               "\"off\", \"v1\" or \"v2\"",
                               a.p);
    }
    return NULL;
}

static const char *
set_proxy_pass(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_upstream_loc_conf *ulcf = conf;

    (void) d;
    if (ulcf->upstream != NULL || ulcf->pass_name != NULL) {
        return "is duplicate";
    }
    ulcf->pass_file = cf->file->name;
    ulcf->pass_line = cf->file->line;
    if (cf->nargs == 2) {
        ulcf->pass_name = cf->args[1].p;
        return NULL;
    }
    /* proxy_pass PROTOCOL HOST:PORT: an upstream of one server */
    const struct wsg_conf_enum *e = protocols;
    while (e->name != NULL && !wsg_str_eq(cf->args[1], e->name)) {
        e++;
    }
    if (e->name == NULL) {
        return wsg_conf_phrase(cf,
                               "has an invalid protocol \"%s\", "
                               "expecting raw, line, length, mux or json",
                               cf->args[1].p);
    }
    struct wsg_upstream *u = upstream_new(cf, cf->args[2].p);
    struct wsg_upstream_server tmpl;
    server_defaults(&tmpl);
    const char *rv = add_servers(cf, u, cf->args[2].p, &tmpl);
    if (rv != NULL) {
        return rv;
    }
    u->implicit = true;
    u->protocol = e->value;
    /* listed with the named ones, so it is initialized and bound alike */
    struct wsg_upstream_main_conf *umcf =
        cf->ctx->main_conf[WSG_UPSTREAM_MODULE_INDEX];
    wsg_arena_push(cf->arena, &umcf->upstreams, &umcf->nupstreams, u);
    ulcf->upstream = u;
    return NULL;
}

static const char *
set_pass_headers(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_upstream_loc_conf *ulcf = conf;

    (void) d;
    if (ulcf->pass_headers != NULL) {
        return "is duplicate";
    }
    ulcf->pass_headers =
        wsg_arena_alloc(cf->arena, cf->nargs * sizeof(struct wsg_str));
    for (unsigned i = 1; i < cf->nargs; i++) {
        char *p = (char *) cf->args[i].p;
        /* names compare case-insensitively: keep them lower-case */
        for (size_t k = 0; k < cf->args[i].len; k++) {
            if (p[k] >= 'A' && p[k] <= 'Z') {
                p[k] = (char) (p[k] - 'A' + 'a');
            }
        }
        ulcf->pass_headers[ulcf->npass_headers++] = cf->args[i];
    }
    return NULL;
}

static void *
create_main_conf(struct wsg_conf *cf)
{
    return wsg_arena_alloc(cf->arena, sizeof(struct wsg_upstream_main_conf));
}

static void *
create_loc_conf(struct wsg_conf *cf)
{
    struct wsg_upstream_loc_conf *l = wsg_arena_alloc(cf->arena, sizeof(*l));

    l->connect_timeout_ms = WSG_CONF_UNSET_U64;
    l->read_timeout_ms = WSG_CONF_UNSET_U64;
    l->buffer_size = WSG_CONF_UNSET_U64;
    l->next_tries = WSG_CONF_UNSET_I64;
    l->message_text = WSG_CONF_UNSET;
    return l;
}

static const char *
merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    const struct wsg_upstream_loc_conf *p = parent;
    struct wsg_upstream_loc_conf *l = child;

    (void) cf;
    /* proxy_pass is per location: it is not inherited */
    wsg_conf_merge_u64(&l->connect_timeout_ms, p->connect_timeout_ms,
                       DEFAULT_CONNECT_TIMEOUT);
    wsg_conf_merge_u64(&l->read_timeout_ms, p->read_timeout_ms, 0);
    wsg_conf_merge_u64(&l->buffer_size, p->buffer_size, DEFAULT_BUFFER_SIZE);
    wsg_conf_merge_i64(&l->next_tries, p->next_tries, 0);
    wsg_conf_merge_int(&l->message_text, p->message_text, 0);
    if (l->pass_headers == NULL) {
        l->pass_headers = p->pass_headers;
        l->npass_headers = p->npass_headers;
    }
    if (l->pass_name != NULL) {
        /* resolved in init_main_conf, once every upstream is known */
        struct wsg_upstream_main_conf *umcf =
            cf->cycle->main_conf[WSG_UPSTREAM_MODULE_INDEX];
        l->upstream =
            wsg_upstream_find(umcf, l->pass_name, strlen(l->pass_name));
        if (l->upstream == NULL) {
            return wsg_conf_phrase(cf,
                                   "!%s:%u: \"proxy_pass\" names unknown "
                                   "upstream \"%s\"",
                                   l->pass_file, l->pass_line, l->pass_name);
        }
    }
    return NULL;
}

static const char *
init_upstream(struct wsg_conf *cf, struct wsg_upstream *u)
{
    wsg_conf_merge_int(&u->balance, WSG_CONF_UNSET, WSG_BALANCE_ROUND_ROBIN);
    wsg_conf_merge_int(&u->protocol, WSG_CONF_UNSET, WSG_PROTO_RAW);
    wsg_conf_merge_i64(&u->pool_size, WSG_CONF_UNSET_I64, DEFAULT_POOL_SIZE);
    wsg_conf_merge_int(&u->proxy_protocol, WSG_CONF_UNSET, 0);
    wsg_conf_merge_int(&u->failover, WSG_CONF_UNSET, WSG_FAILOVER_REOPEN);
    if (u->proxy_protocol != 0 && wsg_upstream_pooled(u->protocol)) {
        return wsg_conf_phrase(cf,
                               "!%s:%u: \"proxy_protocol\" applies to "
                               "raw, line and length upstreams; %s "
                               "carries the address in its open "
                               "envelope",
                               u->file, u->line,
                               wsg_upstream_proto_name(u->protocol));
    }
    return NULL;
}

void
wsg_conf_need_upstream(struct wsg_conf *cf, const char *name)
{
    struct wsg_upstream_main_conf *umcf =
        cf->ctx->main_conf[WSG_UPSTREAM_MODULE_INDEX];
    struct wsg_upstream_use *use = wsg_arena_alloc(cf->arena, sizeof(*use));

    use->name = wsg_arena_strdup(cf->arena, name);
    use->file = cf->file->name;
    use->line = cf->file->line;
    wsg_arena_push(cf->arena, &umcf->uses, &umcf->nuses, use);
}

/* The upstreams modules route messages to exist and share pools. */
static const char *
check_uses(struct wsg_conf *cf, const struct wsg_upstream_main_conf *umcf)
{
    for (size_t i = 0; i < umcf->nuses; i++) {
        const struct wsg_upstream_use *use = umcf->uses[i];
        const struct wsg_upstream *u =
            wsg_upstream_find(umcf, use->name, strlen(use->name));
        if (u == NULL) {
            return wsg_conf_phrase(cf, "!%s:%u: unknown upstream \"%s\"",
                                   use->file, use->line, use->name);
        }
        if (!wsg_upstream_pooled(u->protocol)) {
            return wsg_conf_phrase(cf,
                                   "!%s:%u: upstream \"%s\" speaks %s; "
                                   "messages are routed only to mux and "
                                   "json upstreams",
                                   use->file, use->line, use->name,
                                   wsg_upstream_proto_name(u->protocol));
        }
    }
    return NULL;
}

static const char *
init_main_conf(struct wsg_conf *cf, void *conf)
{
    struct wsg_upstream_main_conf *umcf = conf;

    for (size_t i = 0; i < umcf->nupstreams; i++) {
        const char *rv = init_upstream(cf, umcf->upstreams[i]);
        if (rv != NULL) {
            return rv;
        }
    }
    return check_uses(cf, umcf);
}

const struct wsg_module wsg_upstream_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "upstream",
    .directives = upstream_directives,
    .create_main_conf = create_main_conf,
    .init_main_conf = init_main_conf,
    .create_loc_conf = create_loc_conf,
    .merge_loc_conf = merge_loc_conf,
};
