/*
 * The router module: "route EXPR { VALUE ACTION ...; }" in a location picks
 * one action per JSON text message by the value of EXPR (usually a field,
 * "$json.type"), as API gateways select routes: deliver to a user,
 * subscribe, unsubscribe, publish to a room, send to an upstream's backend
 * (by a hash key), reply, drop or close. Other
 * messages, and values with no route and no default, go on to the next
 * module. The block is parsed with wsg_conf_parse_lines; public API only.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "route_expr.h"
#include "wsgate_module.h"

/* Bytes of an expanded value (selector or target); longer has no value. */
#define ROUTE_VALUE_MAX  1024
/* Bytes of a close reason: a control frame's 125 less the code. */
#define ROUTE_REASON_MAX 123

enum route_action {
    ROUTE_DELIVER,     /* deliver user EXPR */
    ROUTE_SUBSCRIBE,   /* subscribe EXPR */
    ROUTE_UNSUBSCRIBE, /* unsubscribe EXPR */
    ROUTE_PUBLISH,     /* publish EXPR */
    ROUTE_REPLY,       /* reply TEXT */
    ROUTE_DROP,        /* drop */
    ROUTE_CLOSE,       /* close CODE [REASON] */
    ROUTE_UPSTREAM,    /* upstream NAME [hash EXPR] */
};

enum { NON_JSON_NEXT, NON_JSON_DROP };

/* One line of a route block; configuration memory. */
struct route_entry {
    struct wsg_str value; /* what the selector must equal */
    enum route_action action;
    struct wsg_route_expr target; /* deliver, (un)subscribe, publish;
                                     upstream: the hash key */
    bool has_target;
    struct wsg_str text; /* reply: the message; close: reason; upstream:
                            its name */
    uint16_t code;       /* close */
    struct route_entry *next;
};

struct router_loc_conf {
    struct wsg_route_expr *select; /* NULL: no route block here */
    struct route_entry *entries;   /* in file order */
    struct route_entry **tail;
    struct route_entry *fallback; /* "default", or NULL */
    int non_json;                 /* NON_JSON_*, or unset */
};

extern const struct wsg_module wsg_router_module;

/* ---- the route block ---- */

/* Name, action, and the number of words after the action's name. */
struct action_syntax {
    const char *name;
    enum route_action action;
    unsigned min_args, max_args;
};

static const struct action_syntax actions[] = {
    {"deliver", ROUTE_DELIVER, 2, 2},
    {"subscribe", ROUTE_SUBSCRIBE, 1, 1},
    {"unsubscribe", ROUTE_UNSUBSCRIBE, 1, 1},
    {"publish", ROUTE_PUBLISH, 1, 1},
    {"reply", ROUTE_REPLY, 1, 1},
    {"drop", ROUTE_DROP, 0, 0},
    {"close", ROUTE_CLOSE, 1, 2},
    {"upstream", ROUTE_UPSTREAM, 1, 3},
    {NULL, ROUTE_DROP, 0, 0},
};

static bool
str_eq(struct wsg_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static const struct route_entry *
find(const struct router_loc_conf *rlcf, const char *value, size_t len)
{
    for (const struct route_entry *r = rlcf->entries; r != NULL; r = r->next) {
        if (r->value.len == len && memcmp(r->value.p, value, len) == 0) {
            return r;
        }
    }
    return NULL;
}

/* Text sent as a message or close reason must be UTF-8; jansson checks. */
static bool
is_utf8(struct wsg_str s)
{
    json_t *j = json_stringn(s.p, s.len);

    json_decref(j);
    return j != NULL;
}

/* Codes a server may send (RFC 6455 7.4, and the IANA registry). */
static bool
valid_close_code(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static const char *
parse_close(struct wsg_conf *cf, struct route_entry *r)
{
    struct wsg_str a = wsg_conf_arg(cf, 2);
    unsigned code = 0;

    for (size_t i = 0; i < a.len && code < 10000; i++) {
        if (a.p[i] < '0' || a.p[i] > '9') {
            code = 0;
            break;
        }
        code = code * 10 + (unsigned) (a.p[i] - '0');
    }
    if (!valid_close_code(code)) {
        return wsg_conf_phrase(cf,
                               "invalid close code \"%s\" in route \"%s\", "
                               "expecting 1000-1003, 1007-1014 or 3000-4999",
                               a.p, wsg_conf_arg(cf, 0).p);
    }
    r->code = (uint16_t) code;
    r->text = wsg_conf_arg(cf, 3);
    if (r->text.len > ROUTE_REASON_MAX || !is_utf8(r->text)) {
        return wsg_conf_phrase(cf,
                               "close reason in route \"%s\" is over %d "
                               "bytes or not UTF-8",
                               wsg_conf_arg(cf, 0).p, ROUTE_REASON_MAX);
    }
    return NULL;
}

/* The words after the action's name, per action. */
static const char *
parse_args(struct wsg_conf *cf, struct route_entry *r)
{
    const char *value = wsg_conf_arg(cf, 0).p;
    struct wsg_str expr;

    switch (r->action) {
    case ROUTE_DELIVER:
        if (!str_eq(wsg_conf_arg(cf, 2), "user")) {
            return wsg_conf_phrase(cf,
                                   "unknown target \"%s\" of \"deliver\" in "
                                   "route \"%s\", expecting \"user\"",
                                   wsg_conf_arg(cf, 2).p, value);
        }
        expr = wsg_conf_arg(cf, 3);
        break;
    case ROUTE_SUBSCRIBE:
    case ROUTE_UNSUBSCRIBE:
    case ROUTE_PUBLISH:
        expr = wsg_conf_arg(cf, 2);
        break;
    case ROUTE_REPLY:
        r->text = wsg_conf_arg(cf, 2);
        return is_utf8(r->text) ? NULL
                                : wsg_conf_phrase(cf,
                                                  "reply in route \"%s\" is "
                                                  "not UTF-8",
                                                  value);
    case ROUTE_CLOSE:
        return parse_close(cf, r);
    case ROUTE_UPSTREAM:
        r->text = wsg_conf_arg(cf, 2);
        wsg_conf_need_upstream(cf, r->text.p);
        if (wsg_conf_nargs(cf) == 3) {
            return NULL;
        }
        if (wsg_conf_nargs(cf) != 5 || !str_eq(wsg_conf_arg(cf, 3), "hash")) {
            return wsg_conf_phrase(cf,
                                   "invalid arguments of \"upstream\" in "
                                   "route \"%s\", expecting "
                                   "\"upstream NAME [hash KEY]\"",
                                   value);
        }
        expr = wsg_conf_arg(cf, 4);
        break;
    case ROUTE_DROP:
    default:
        return NULL;
    }
    r->has_target = true;
    const char *why = wsg_route_expr_compile(&r->target, expr.p, expr.len);
    if (why != NULL) {
        return wsg_conf_phrase(cf, "expression \"%s\" in route \"%s\" %s",
                               expr.p, value, why);
    }
    return NULL;
}

/* One statement of the block: "VALUE ACTION ARGS...;". */
static const char *
route_line(struct wsg_conf *cf, void *data)
{
    struct router_loc_conf *rlcf = data;
    size_t nargs = wsg_conf_nargs(cf);
    struct wsg_str value = wsg_conf_arg(cf, 0);
    struct wsg_str name = wsg_conf_arg(cf, 1);

    if (nargs < 2) {
        return wsg_conf_phrase(cf, "route \"%s\" has no action", value.p);
    }
    const struct action_syntax *a = actions;
    while (a->name != NULL && !str_eq(name, a->name)) {
        a++;
    }
    if (a->name == NULL) {
        return wsg_conf_phrase(cf, "unknown action \"%s\" in route \"%s\"",
                               name.p, value.p);
    }
    if (nargs - 2 < a->min_args || nargs - 2 > a->max_args) {
        return wsg_conf_phrase(cf,
                               "invalid number of arguments of \"%s\" in "
                               "route \"%s\"",
                               a->name, value.p);
    }
    bool is_default = str_eq(value, "default");
    if (!is_default && value.len > 0 && value.p[0] == '\\') {
        /* "\default" routes the value "default" */
        value.p++;
        value.len--;
    }
    if (is_default ? rlcf->fallback != NULL
                   : find(rlcf, value.p, value.len) != NULL) {
        return wsg_conf_phrase(cf, "duplicate route \"%s\"", value.p);
    }
    struct route_entry *r = wsg_conf_alloc(cf, sizeof(*r));
    r->value = value;
    r->action = a->action;
    const char *why = parse_args(cf, r);
    if (why != NULL) {
        return why;
    }
    if (is_default) {
        rlcf->fallback = r;
    } else {
        *rlcf->tail = r;
        rlcf->tail = &r->next;
    }
    return NULL;
}

static const char *
set_route(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct router_loc_conf *rlcf = conf;
    struct wsg_str src = wsg_conf_arg(cf, 1);

    (void) d;
    if (rlcf->select != NULL) {
        return "is duplicate";
    }
    struct wsg_route_expr *e = wsg_conf_alloc(cf, sizeof(*e));
    const char *why = wsg_route_expr_compile(e, src.p, src.len);
    if (why != NULL) {
        return wsg_conf_phrase(cf, "expression \"%s\" %s", src.p, why);
    }
    rlcf->select = e;
    if (wsg_conf_parse_lines(cf, route_line, rlcf) != 0) {
        /* the statement's error is recorded with its line already */
        return "";
    }
    wsg_conf_websocket_endpoint(cf);
    return NULL;
}

static const struct wsg_conf_enum non_json_values[] = {
    {"next", NON_JSON_NEXT},
    {"drop", NON_JSON_DROP},
    {NULL, 0},
};

static const struct wsg_directive router_directives[] = {
    {"route", WSG_CTX_LOCATION | WSG_DIR_BLOCK, 1, 1, set_route, 0, NULL},
    {"route_non_json", WSG_CTX_LOCATION, 1, 1, wsg_conf_set_enum,
     offsetof(struct router_loc_conf, non_json), non_json_values},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
router_create_loc_conf(struct wsg_conf *cf)
{
    struct router_loc_conf *rlcf = wsg_conf_alloc(cf, sizeof(*rlcf));

    rlcf->tail = &rlcf->entries;
    rlcf->non_json = WSG_CONF_UNSET;
    return rlcf;
}

static const char *
router_merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    struct router_loc_conf *rlcf = child;

    (void) cf;
    (void) parent;
    /* per location, like the route block it qualifies */
    if (rlcf->non_json == WSG_CONF_UNSET) {
        rlcf->non_json = NON_JSON_NEXT;
    }
    return NULL;
}

/* ---- messages ---- */

/*
 * Carries out <r> for the message <m>; the message is done with. What
 * could not be done is logged at debug level only: clients cause it.
 */
static void
run(struct wsg_session *s, struct wsg_msg *m, const struct route_entry *r,
    const struct wsg_route_vars *v)
{
    char target[ROUTE_VALUE_MAX];
    size_t tlen = 0, len;
    const char *failed = NULL;

    if (r->has_target && wsg_route_expr_eval(&r->target, v, target,
                                             sizeof(target), &tlen) != 0) {
        failed = "has no target";
    }
    const void *data = wsg_msg_data(m, &len);
    switch (failed != NULL ? ROUTE_DROP : r->action) {
    case ROUTE_DELIVER:
        if (wsg_user_send(target, tlen, WSG_MSG_TEXT, data, len) < 0) {
            failed = "names a user online nowhere";
        }
        break;
    case ROUTE_SUBSCRIBE:
        if (wsg_session_join(s, target, tlen) != 0) {
            failed = "names a room the session cannot join";
        }
        break;
    case ROUTE_UNSUBSCRIBE:
        wsg_session_leave(s, target, tlen);
        break;
    case ROUTE_PUBLISH:
        if (wsg_room_publish(target, tlen, WSG_MSG_TEXT, data, len, s) < 0) {
            failed = "names a room without members";
        }
        break;
    case ROUTE_REPLY:
        wsg_session_send(s, WSG_MSG_TEXT, r->text.p, r->text.len);
        break;
    case ROUTE_CLOSE:
        wsg_session_end(s, r->code, r->text.p);
        break;
    case ROUTE_UPSTREAM:
        if (wsg_msg_to_upstream(s, m, r->text.p, r->text.len,
                                r->has_target ? target : NULL, tlen) != 0) {
            failed = "found no server to take it";
        }
        break;
    case ROUTE_DROP:
        break;
    }
    if (failed != NULL) {
        /* the route's value is the configuration's: safe to print */
        wsg_session_log(s, &wsg_router_module, WSG_LOG_LEVEL_DEBUG,
                        "route \"%.*s\" %s, message dropped",
                        (int) r->value.len, r->value.p, failed);
    }
}

static int
router_on_message(struct wsg_session *s, struct wsg_msg *m)
{
    const struct router_loc_conf *rlcf =
        wsg_session_loc_conf(s, &wsg_router_module);

    if (rlcf == NULL || rlcf->select == NULL) {
        return WSG_NEXT;
    }
    json_t *json = wsg_msg_is_text(m) ? wsg_msg_json(m) : NULL;
    if (!json_is_object(json)) {
        return rlcf->non_json == NON_JSON_DROP ? WSG_STOP : WSG_NEXT;
    }
    struct wsg_route_vars v = {json, wsg_session_user(s),
                               wsg_session_remote(s)};
    char value[ROUTE_VALUE_MAX];
    size_t len;
    const struct route_entry *r = NULL;
    if (wsg_route_expr_eval(rlcf->select, &v, value, sizeof(value), &len) ==
        0) {
        r = find(rlcf, value, len);
    }
    if (r == NULL) {
        r = rlcf->fallback;
    }
    if (r == NULL) {
        return WSG_NEXT;
    }
    run(s, m, r, &v);
    return WSG_STOP;
}

const struct wsg_module wsg_router_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "router",
    .directives = router_directives,
    .create_loc_conf = router_create_loc_conf,
    .merge_loc_conf = router_merge_loc_conf,
    .on_message = router_on_message,
};
