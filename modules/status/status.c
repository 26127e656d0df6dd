/*
 * The status module: "status json;" answers GET requests to its location
 * with the node's counters as JSON, "status prometheus;" with the same in
 * Prometheus' text format (version 0.0.4). Counters are summed over all
 * workers by the core (wsg_stats_json); this module only renders them.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsgate_module.h"

enum { STATUS_OFF, STATUS_JSON, STATUS_PROMETHEUS };

struct status_loc_conf {
    int format; /* STATUS_*, or unset */
};

extern const struct wsg_module wsg_status_module;

static const struct wsg_conf_enum formats[] = {
    {"off", STATUS_OFF},
    {"json", STATUS_JSON},
    {"prometheus", STATUS_PROMETHEUS},
    {NULL, 0},
};

static const struct wsg_directive status_directives[] = {
    {"status", WSG_CTX_LOCATION, 1, 1, wsg_conf_set_enum,
     offsetof(struct status_loc_conf, format), formats},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
status_create_loc_conf(struct wsg_conf *cf)
{
    struct status_loc_conf *slcf = wsg_conf_alloc(cf, sizeof(*slcf));

    slcf->format = WSG_CONF_UNSET;
    return slcf;
}

static const char *
status_merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    struct status_loc_conf *slcf = child;

    (void) cf;
    (void) parent;
    /* per location: the counters are shown only where asked for */
    if (slcf->format == WSG_CONF_UNSET) {
        slcf->format = STATUS_OFF;
    }
    return NULL;
}

/* A growing text buffer for the Prometheus rendering. */
struct text {
    char *p;
    size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(struct text *t, const char *fmt, ...)
{
    va_list ap;

    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t) n < t->cap - t->len) {
            t->len += (size_t) n;
            return;
        }
        t->cap = t->cap * 2 + (n > 0 ? (size_t) n : 0);
        char *bigger = realloc(t->p, t->cap);
        if (bigger == NULL) {
            abort();
        }
        t->p = bigger;
    }
}

static long long
num(json_t *o, const char *key)
{
    return (long long) json_integer_value(json_object_get(o, key));
}

static void
metric(struct text *t, long long value, const char *name, const char *type,
       const char *help)
{
    put(t, "# HELP wsgate_%s %s\n# TYPE wsgate_%s %s\nwsgate_%s %lld\n", name,
        help, name, type, name, value);
}

static void
render_upstreams(struct text *t, json_t *ups)
{
    const char *name;
    json_t *u;

    put(t, "# HELP wsgate_upstream_up Whether a server takes new clients.\n"
           "# TYPE wsgate_upstream_up gauge\n"
           "# HELP wsgate_upstream_connections Clients on a server now.\n"
           "# TYPE wsgate_upstream_connections gauge\n"
           "# HELP wsgate_upstream_dropped_total Messages not delivered.\n"
           "# TYPE wsgate_upstream_dropped_total counter\n");
    json_object_foreach(ups, name, u)
    {
        size_t i;
        json_t *srv;
        json_array_foreach(json_object_get(u, "servers"), i, srv)
        {
            const char *a = json_string_value(json_object_get(srv, "address"));
            put(t, "wsgate_upstream_up{upstream=\"%s\",server=\"%s\"} %d\n",
                name, a, json_is_true(json_object_get(srv, "up")));
            put(t,
                "wsgate_upstream_connections{upstream=\"%s\",server=\"%s\"} "
                "%lld\n",
                name, a, num(srv, "connections"));
            put(t,
                "wsgate_upstream_dropped_total{upstream=\"%s\",server=\"%s\"} "
                "%lld\n",
                name, a, num(srv, "dropped"));
        }
    }
}

static char *
prometheus(json_t *st, size_t *len)
{
    struct text t = {malloc(4096), 0, 4096};
    const char *code;
    json_t *v;

    if (t.p == NULL) {
        abort();
    }
    metric(&t, num(st, "uptime_s"), "uptime_seconds", "gauge",
           "Seconds since the node started.");
    metric(&t, num(st, "workers"), "workers", "gauge",
           "Worker processes configured.");
    metric(&t, num(st, "connections"), "connections", "gauge",
           "Client connections open now.");
    put(&t,
        "# HELP wsgate_accepted_total Client connections accepted.\n"
        "# TYPE wsgate_accepted_total counter\n"
        "wsgate_accepted_total %lld\n",
        num(st, "accepted"));
    put(&t,
        "# HELP wsgate_refused_total Connections over "
        "worker_connections.\n# TYPE wsgate_refused_total counter\n"
        "wsgate_refused_total %lld\n",
        num(st, "refused"));
    put(&t,
        "# HELP wsgate_handshakes_total WebSocket sessions opened.\n"
        "# TYPE wsgate_handshakes_total counter\n"
        "wsgate_handshakes_total %lld\n",
        num(st, "handshakes"));
    put(&t,
        "# HELP wsgate_messages_total WebSocket messages.\n"
        "# TYPE wsgate_messages_total counter\n"
        "wsgate_messages_total{direction=\"in\"} %lld\n"
        "wsgate_messages_total{direction=\"out\"} %lld\n",
        num(st, "messages_in"), num(st, "messages_out"));
    put(&t,
        "# HELP wsgate_bytes_total WebSocket message payload bytes.\n"
        "# TYPE wsgate_bytes_total counter\n"
        "wsgate_bytes_total{direction=\"in\"} %lld\n"
        "wsgate_bytes_total{direction=\"out\"} %lld\n",
        num(st, "bytes_in"), num(st, "bytes_out"));
    put(&t, "# HELP wsgate_closes_total Sessions ended, by close code.\n"
            "# TYPE wsgate_closes_total counter\n");
    json_object_foreach(json_object_get(st, "close_codes"), code, v)
    {
        put(&t, "wsgate_closes_total{code=\"%s\"} %lld\n", code,
            (long long) json_integer_value(v));
    }
    render_upstreams(&t, json_object_get(st, "upstreams"));
    *len = t.len;
    return t.p;
}

static int
status_on_http(struct wsg_session *s)
{
    const struct status_loc_conf *slcf =
        wsg_session_loc_conf(s, &wsg_status_module);

    if (slcf == NULL || slcf->format == STATUS_OFF) {
        return WSG_NEXT;
    }
    json_t *st = wsg_stats_json(s);
    size_t len;
    char *body;
    if (slcf->format == STATUS_JSON) {
        body = json_dumps(st, JSON_COMPACT);
        len = body ? strlen(body) : 0;
        wsg_session_respond(s, 200, "application/json", body, len);
    } else {
        body = prometheus(st, &len);
        wsg_session_respond(s, 200, "text/plain; version=0.0.4", body, len);
    }
    free(body);
    json_decref(st);
    return WSG_STOP;
}

const struct wsg_module wsg_status_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "status",
    .directives = status_directives,
    .create_loc_conf = status_create_loc_conf,
    .merge_loc_conf = status_merge_loc_conf,
    .on_http = status_on_http,
};
