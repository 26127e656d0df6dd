/*
 * websocket_* and permessage_deflate* directives. Limits default to
 * values a chat deployment can live with (1 MiB messages, 30 s pings) and
 * every one can be changed per location.
 */
#include "config.h"

#include "ws/ws_conf.h"

#include <string.h>

#include "core/arena.h"
#include "core/conf.h"
#include "core/core.h"

#define DEFAULT_MAX_MESSAGE     (1024 * 1024)
#define DEFAULT_SEND_BUFFER_MAX (4 * 1024 * 1024)
#define DEFAULT_PING_INTERVAL   (30 * 1000)
#define DEFAULT_IDLE_TIMEOUT    (90 * 1000)
#define DEFAULT_CLOSE_TIMEOUT   (5 * 1000)
#define DEFAULT_SEND_TIMEOUT    (60 * 1000)
#define DEFAULT_DEFLATE_MIN     64

static const char *set_list(struct wsg_conf *cf, const struct wsg_directive *d,
                            void *conf);

/* 1 GiB: past that a single message is not a chat message */
static const struct wsg_conf_bounds size_bounds = {0, 1u << 30};
/* a message limit of 0 would mean "unbounded": not offered */
static const struct wsg_conf_bounds message_bounds = {1, 1u << 30};
static const struct wsg_conf_bounds buffer_bounds = {4096, 1u << 30};
static const struct wsg_conf_bounds bits_bounds = {9, 15};
static const struct wsg_conf_bounds level_bounds = {1, 9};

#define LOC      (WSG_CTX_MAIN | WSG_CTX_SERVER | WSG_CTX_LOCATION)
#define F(field) offsetof(struct wsg_ws_loc_conf, field)

static const struct wsg_directive ws_directives[] = {
    {"websocket_max_frame", LOC, 1, 1, wsg_conf_set_size, F(max_frame),
     &size_bounds},
    {"websocket_max_message", LOC, 1, 1, wsg_conf_set_size, F(max_message),
     &message_bounds},
    {"websocket_send_buffer_max", LOC, 1, 1, wsg_conf_set_size,
     F(send_buffer_max), &buffer_bounds},
    {"websocket_ping_interval", LOC, 1, 1, wsg_conf_set_msec,
     F(ping_interval_ms), NULL},
    {"websocket_idle_timeout", LOC, 1, 1, wsg_conf_set_msec, F(idle_timeout_ms),
     NULL},
    {"websocket_close_timeout", LOC, 1, 1, wsg_conf_set_msec,
     F(close_timeout_ms), NULL},
    {"websocket_send_timeout", LOC, 1, 1, wsg_conf_set_msec, F(send_timeout_ms),
     NULL},
    {"websocket_allowed_origins", LOC, 1, WSG_CONF_MAX_ARGS, set_list,
     F(origins), NULL},
    {"websocket_subprotocols", LOC, 1, WSG_CONF_MAX_ARGS, set_list,
     F(subprotocols), NULL},
    {"permessage_deflate", LOC, 1, 1, wsg_conf_set_flag, F(deflate), NULL},
    {"permessage_deflate_threshold", LOC, 1, 1, wsg_conf_set_size,
     F(deflate_threshold), &size_bounds},
    {"permessage_deflate_server_no_context_takeover", LOC, 1, 1,
     wsg_conf_set_flag, F(deflate_server_nct), NULL},
    {"permessage_deflate_client_no_context_takeover", LOC, 1, 1,
     wsg_conf_set_flag, F(deflate_client_nct), NULL},
    {"permessage_deflate_server_max_window_bits", LOC, 1, 1, wsg_conf_set_num,
     F(deflate_server_bits), &bits_bounds},
    {"permessage_deflate_client_max_window_bits", LOC, 1, 1, wsg_conf_set_num,
     F(deflate_client_bits), &bits_bounds},
    {"permessage_deflate_level", LOC, 1, 1, wsg_conf_set_num, F(deflate_level),
     &level_bounds},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

/*
 * A list of words; "," between them is optional ("chat, json" and
 * "chat json" are the same). Stored as a struct wsg_ws_list at d->offset.
 */
static const char *
set_list(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_ws_list *list = (void *) ((char *) conf + d->offset);

    if (list->items != NULL) {
        return "is duplicate";
    }
    list->items =
        wsg_arena_alloc(cf->arena, cf->nargs * sizeof(struct wsg_str));
    for (unsigned i = 1; i < cf->nargs; i++) {
        struct wsg_str a = cf->args[i];
        while (a.len > 0 && a.p[a.len - 1] == ',') {
            a.len--;
        }
        if (a.len > 0) {
            list->items[list->n++] = a;
        }
    }
    if (list->n == 0) {
        return "needs at least one value";
    }
    return NULL;
}

static void *
create_loc_conf(struct wsg_conf *cf)
{
    struct wsg_ws_loc_conf *w = wsg_arena_alloc(cf->arena, sizeof(*w));

    w->endpoint = WSG_CONF_UNSET;
    w->max_frame = WSG_CONF_UNSET_U64;
    w->max_message = WSG_CONF_UNSET_U64;
    w->send_buffer_max = WSG_CONF_UNSET_U64;
    w->ping_interval_ms = WSG_CONF_UNSET_U64;
    w->idle_timeout_ms = WSG_CONF_UNSET_U64;
    w->close_timeout_ms = WSG_CONF_UNSET_U64;
    w->send_timeout_ms = WSG_CONF_UNSET_U64;
    w->deflate = WSG_CONF_UNSET;
    w->deflate_threshold = WSG_CONF_UNSET_U64;
    w->deflate_server_nct = WSG_CONF_UNSET;
    w->deflate_client_nct = WSG_CONF_UNSET;
    w->deflate_server_bits = WSG_CONF_UNSET_I64;
    w->deflate_client_bits = WSG_CONF_UNSET_I64;
    w->deflate_level = WSG_CONF_UNSET_I64;
    return w;
}

static const char *
merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    const struct wsg_ws_loc_conf *p = parent;
    struct wsg_ws_loc_conf *w = child;

    (void) cf;
    wsg_conf_merge_int(&w->endpoint, p->endpoint, 0);
    wsg_conf_merge_u64(&w->max_frame, p->max_frame, 0);
    wsg_conf_merge_u64(&w->max_message, p->max_message, DEFAULT_MAX_MESSAGE);
    wsg_conf_merge_u64(&w->send_buffer_max, p->send_buffer_max,
                       DEFAULT_SEND_BUFFER_MAX);
    wsg_conf_merge_u64(&w->ping_interval_ms, p->ping_interval_ms,
                       DEFAULT_PING_INTERVAL);
    wsg_conf_merge_u64(&w->idle_timeout_ms, p->idle_timeout_ms,
                       DEFAULT_IDLE_TIMEOUT);
    wsg_conf_merge_u64(&w->close_timeout_ms, p->close_timeout_ms,
                       DEFAULT_CLOSE_TIMEOUT);
    wsg_conf_merge_u64(&w->send_timeout_ms, p->send_timeout_ms,
                       DEFAULT_SEND_TIMEOUT);
    if (w->origins.items == NULL) {
        w->origins = p->origins;
    }
    if (w->subprotocols.items == NULL) {
        w->subprotocols = p->subprotocols;
    }
    wsg_conf_merge_int(&w->deflate, p->deflate, 0);
    wsg_conf_merge_u64(&w->deflate_threshold, p->deflate_threshold,
                       DEFAULT_DEFLATE_MIN);
    wsg_conf_merge_int(&w->deflate_server_nct, p->deflate_server_nct, 0);
    wsg_conf_merge_int(&w->deflate_client_nct, p->deflate_client_nct, 0);
    wsg_conf_merge_i64(&w->deflate_server_bits, p->deflate_server_bits, 15);
    wsg_conf_merge_i64(&w->deflate_client_bits, p->deflate_client_bits, 15);
    wsg_conf_merge_i64(&w->deflate_level, p->deflate_level, 6);

    struct wsg_deflate_conf *d = &w->deflate_conf;
    d->enabled = w->deflate == 1;
    d->server_no_context_takeover = w->deflate_server_nct == 1;
    d->client_no_context_takeover = w->deflate_client_nct == 1;
    d->server_max_window_bits = (int) w->deflate_server_bits;
    d->client_max_window_bits = (int) w->deflate_client_bits;
    d->threshold = (size_t) w->deflate_threshold;
    d->level = (int) w->deflate_level;
    /* memLevel 8 is zlib's default; 256 KiB per compressing connection */
    d->mem_level = 8;
    return NULL;
}

const struct wsg_module wsg_ws_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "websocket",
    .directives = ws_directives,
    .create_loc_conf = create_loc_conf,
    .merge_loc_conf = merge_loc_conf,
};

void
wsg_conf_websocket_endpoint(struct wsg_conf *cf)
{
    struct wsg_ws_loc_conf *w = cf->ctx->loc_conf[WSG_WS_MODULE_INDEX];

    w->endpoint = 1;
}
