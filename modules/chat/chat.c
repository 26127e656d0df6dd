/*
 * The chat module: "chat on;" makes a location a chat endpoint with no
 * backend. Clients send small JSON messages (hello, dm, join, leave, say,
 * who, online, image) and the gateway delivers them through the node's
 * users and rooms, so clients held by different workers talk as if they
 * were on one. Every "from" is the session's user, never the client's
 * word. docs/chat.md is the protocol. Public module API only.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsgate_module.h"

#define CHAT_USER_MAX        64  /* bytes of a user name */
#define CHAT_ROOM_MAX        120 /* bytes of a room name (what the bus holds) */
#define CHAT_ROOMS_MAX       64  /* rooms a session is in (the core's limit) */
#define CHAT_WHO_MAX         1000 /* names one "who" answer lists */
/* chat_max_message's default and its largest value: the worker bus carries
 * at most half its 1 MiB ring, and a larger message would reach only the
 * sender's worker, silently. */
#define CHAT_MESSAGE_DEFAULT (256 * 1024)
#define CHAT_MESSAGE_MAX     (512 * 1024)

struct chat_loc_conf {
    int enabled;          /* flag */
    int anonymous;        /* flag: clients may name themselves with "hello" */
    uint64_t max_message; /* bytes of a client's message (size) */
};

/* A session's chat state, in its module data slot; freed by on_close. */
struct chat_session {
    char *rooms[CHAT_ROOMS_MAX]; /* joined rooms, owned */
    size_t room_lens[CHAT_ROOMS_MAX];
    size_t nrooms;
    json_t *image; /* owned: {"to":..} or {"room":..}, the target of the
                      next binary message; NULL: none */
};

extern const struct wsg_module wsg_chat_module;

/* ---- configuration ---- */

static const char *
set_chat(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    const char *rv = wsg_conf_set_flag(cf, d, conf);
    const struct chat_loc_conf *clcf = conf;

    if (rv == NULL && clcf->enabled == 1) {
        wsg_conf_websocket_endpoint(cf);
    }
    return rv;
}

static const struct wsg_conf_bounds message_bounds = {1, CHAT_MESSAGE_MAX};

static const struct wsg_directive chat_directives[] = {
    {"chat", WSG_CTX_LOCATION, 1, 1, set_chat,
     offsetof(struct chat_loc_conf, enabled), NULL},
    {"chat_anonymous", WSG_CTX_MAIN | WSG_CTX_SERVER | WSG_CTX_LOCATION, 1, 1,
     wsg_conf_set_flag, offsetof(struct chat_loc_conf, anonymous), NULL},
    {"chat_max_message", WSG_CTX_MAIN | WSG_CTX_SERVER | WSG_CTX_LOCATION, 1, 1,
     wsg_conf_set_size, offsetof(struct chat_loc_conf, max_message),
     &message_bounds},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
chat_create_loc_conf(struct wsg_conf *cf)
{
    struct chat_loc_conf *clcf = wsg_conf_alloc(cf, sizeof(*clcf));

    clcf->enabled = WSG_CONF_UNSET;
    clcf->anonymous = WSG_CONF_UNSET;
    clcf->max_message = WSG_CONF_UNSET_U64;
    return clcf;
}

static const char *
chat_merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    const struct chat_loc_conf *prev = parent;
    struct chat_loc_conf *clcf = child;

    (void) cf;
    /* "chat" is per location; the others are inherited */
    if (clcf->enabled == WSG_CONF_UNSET) {
        clcf->enabled = 0;
    }
    if (clcf->anonymous == WSG_CONF_UNSET) {
        clcf->anonymous =
            prev->anonymous != WSG_CONF_UNSET ? prev->anonymous : 1;
    }
    if (clcf->max_message == WSG_CONF_UNSET_U64) {
        clcf->max_message = prev->max_message != WSG_CONF_UNSET_U64
                                ? prev->max_message
                                : CHAT_MESSAGE_DEFAULT;
    }
    return NULL;
}

/* ---- replies ---- */

/*
 * Sends <o> (a new reference, stolen; NULL when building it failed) to
 * <s> as JSON text. Returns WSG_STOP, or WSG_ABORT when <o> could not be
 * built or written (only a name that is not UTF-8, from an auth module,
 * or memory can cause that).
 */
static int
reply(struct wsg_session *s, json_t *o)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    if (text == NULL) {
        return WSG_ABORT;
    }
    wsg_session_send(s, WSG_MSG_TEXT, text, strlen(text));
    free(text);
    return WSG_STOP;
}

/* Sends {"type":"error","error":<error>} and, when <key>, <key>: <val>. */
static int
fail(struct wsg_session *s, const char *error, const char *key, const char *val,
     size_t vlen)
{
    json_t *o = json_pack("{s:s, s:s}", "type", "error", "error", error);

    if (o != NULL && key != NULL) {
        json_object_set_new(o, key, json_stringn(val, vlen));
    }
    return reply(s, o);
}

static int
fail_field(struct wsg_session *s, const char *field)
{
    return fail(s, "invalid field", "field", field, strlen(field));
}

/* What send_json() returns besides WSG_ABORT. */
enum {
    SENT = 0,
    NOBODY = 1, /* the user is offline, the room empty */
};

/*
 * Encodes <o> (borrowed; NULL when building it failed) and sends it to
 * user <to>/<tolen>, or when <to> is NULL to room <room>/<rlen> but <s>.
 * Returns SENT, NOBODY, or WSG_ABORT when <o> could not be encoded.
 */
static int
send_json(struct wsg_session *s, const char *to, size_t tolen, const char *room,
          size_t rlen, json_t *o)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    int n;

    if (text == NULL) {
        return WSG_ABORT;
    }
    if (to != NULL) {
        n = wsg_user_send(to, tolen, WSG_MSG_TEXT, text, strlen(text));
    } else {
        n = wsg_room_publish(room, rlen, WSG_MSG_TEXT, text, strlen(text), s);
    }
    free(text);
    return n < 0 ? NOBODY : SENT;
}

/* ---- fields ---- */

static bool
valid_user(const char *p, size_t len)
{
    if (len == 0 || len > CHAT_USER_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* 1 to CHAT_ROOM_MAX bytes of UTF-8 (jansson checked) without controls. */
static bool
valid_room(const char *p, size_t len)
{
    if (len == 0 || len > CHAT_ROOM_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) p[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

/*
 * The string field <key> of <msg> when <valid> accepts it: its bytes, with
 * the length in <*len>; NULL when it is missing, not a string or refused.
 */
static const char *
field(const json_t *msg, const char *key, bool (*valid)(const char *, size_t),
      size_t *len)
{
    const json_t *v = json_object_get(msg, key);
    const char *p = json_string_value(v);

    if (p == NULL) {
        return NULL;
    }
    *len = json_string_length(v);
    return valid(p, *len) ? p : NULL;
}

/* ---- rooms this session joined ---- */

static size_t
room_index(const struct chat_session *cs, const char *room, size_t len)
{
    for (size_t i = 0; i < cs->nrooms; i++) {
        if (cs->room_lens[i] == len && memcmp(cs->rooms[i], room, len) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static bool
in_room(const struct chat_session *cs, const char *room, size_t len)
{
    return room_index(cs, room, len) != SIZE_MAX;
}

static struct chat_session *
session_state(struct wsg_session *s)
{
    void **slot = wsg_session_data(s, &wsg_chat_module);

    if (*slot == NULL) {
        *slot = calloc(1, sizeof(struct chat_session));
        if (*slot == NULL) {
            abort();
        }
    }
    return *slot;
}

/* ---- commands ---- */

static int
do_hello(struct wsg_session *s, const json_t *msg)
{
    const struct chat_loc_conf *clcf =
        wsg_session_loc_conf(s, &wsg_chat_module);
    size_t len;

    if (wsg_session_user(s).len != 0) {
        return fail(s, "already identified", NULL, NULL, 0);
    }
    if (clcf->anonymous != 1) {
        return fail(s, "anonymous users not allowed", NULL, NULL, 0);
    }
    const char *name = field(msg, "user", valid_user, &len);
    if (name == NULL) {
        return fail_field(s, "user");
    }
    /* not atomic across workers: two sessions saying hello with one name
     * at the same moment on two workers may both get it */
    if (wsg_user_online(name, len)) {
        return fail(s, "user name taken", "user", name, len);
    }
    wsg_session_set_user(s, name, len);
    return reply(
        s, json_pack("{s:s, s:s%}", "type", "welcome", "user", name, len));
}

static int
do_dm(struct wsg_session *s, struct chat_session *cs, const json_t *msg)
{
    struct wsg_str me = wsg_session_user(s);
    json_t *text = json_object_get(msg, "text");
    size_t len;

    (void) cs;
    const char *to = field(msg, "to", valid_user, &len);
    if (to == NULL) {
        return fail_field(s, "to");
    }
    if (!json_is_string(text)) {
        return fail_field(s, "text");
    }
    /* a fresh object: nothing the client sent but "text" is passed on */
    json_t *out = json_pack("{s:s, s:s%, s:O}", "type", "dm", "from", me.p,
                            me.len, "text", text);
    int rc = send_json(s, to, len, NULL, 0, out);
    json_decref(out);
    if (rc == NOBODY) {
        return fail(s, "no such user", "to", to, len);
    }
    return rc == WSG_ABORT ? WSG_ABORT : WSG_STOP;
}

static int
do_join(struct wsg_session *s, struct chat_session *cs, const json_t *msg)
{
    size_t len;
    const char *room = field(msg, "room", valid_room, &len);

    if (room == NULL) {
        return fail_field(s, "room");
    }
    if (!in_room(cs, room, len)) {
        if (cs->nrooms == CHAT_ROOMS_MAX ||
            wsg_session_join(s, room, len) != 0) {
            return fail(s, "too many rooms", "room", room, len);
        }
        cs->rooms[cs->nrooms] = malloc(len);
        if (cs->rooms[cs->nrooms] == NULL) {
            abort();
        }
        memcpy(cs->rooms[cs->nrooms], room, len);
        cs->room_lens[cs->nrooms++] = len;
    }
    return reply(s,
                 json_pack("{s:s, s:s%}", "type", "joined", "room", room, len));
}

static int
do_leave(struct wsg_session *s, struct chat_session *cs, const json_t *msg)
{
    size_t len;
    const char *room = field(msg, "room", valid_room, &len);

    if (room == NULL) {
        return fail_field(s, "room");
    }
    size_t i = room_index(cs, room, len);
    if (i != SIZE_MAX) {
        wsg_session_leave(s, room, len);
        free(cs->rooms[i]);
        cs->rooms[i] = cs->rooms[cs->nrooms - 1];
        cs->room_lens[i] = cs->room_lens[cs->nrooms - 1];
        cs->rooms[--cs->nrooms] = NULL;
    }
    return reply(s,
                 json_pack("{s:s, s:s%}", "type", "left", "room", room, len));
}

static int
do_say(struct wsg_session *s, struct chat_session *cs, const json_t *msg)
{
    struct wsg_str me = wsg_session_user(s);
    json_t *text = json_object_get(msg, "text");
    size_t len;
    const char *room = field(msg, "room", valid_room, &len);

    if (room == NULL) {
        return fail_field(s, "room");
    }
    if (!json_is_string(text)) {
        return fail_field(s, "text");
    }
    if (!in_room(cs, room, len)) {
        return fail(s, "not in room", "room", room, len);
    }
    json_t *out = json_pack("{s:s, s:s%, s:s%, s:O}", "type", "say", "room",
                            room, len, "from", me.p, me.len, "text", text);
    /* NOBODY cannot be: the sender is a member */
    int rc = send_json(s, NULL, 0, room, len, out);
    json_decref(out);
    return rc == WSG_ABORT ? WSG_ABORT : WSG_STOP;
}

static int
do_who(struct wsg_session *s, struct chat_session *cs, const json_t *msg)
{
    size_t len;
    const char *room = field(msg, "room", valid_room, &len);

    (void) cs;
    if (room == NULL) {
        return fail_field(s, "room");
    }
    return reply(s,
                 json_pack("{s:s, s:s%, s:o}", "type", "who", "room", room, len,
                           "users", wsg_room_members(room, len, CHAT_WHO_MAX)));
}

static int
do_online(struct wsg_session *s, struct chat_session *cs, const json_t *msg)
{
    size_t len;
    const char *user = field(msg, "user", valid_user, &len);

    (void) cs;
    if (user == NULL) {
        return fail_field(s, "user");
    }
    return reply(s, json_pack("{s:s, s:s%, s:b}", "type", "online", "user",
                              user, len, "online", wsg_user_online(user, len)));
}

/* Sets the target of the session's next binary message. */
static int
do_image(struct wsg_session *s, struct chat_session *cs, const json_t *msg)
{
    size_t len;
    json_t *target;

    if (json_object_get(msg, "to") != NULL) {
        const char *to = field(msg, "to", valid_user, &len);
        if (to == NULL) {
            return fail_field(s, "to");
        }
        target = json_pack("{s:s%}", "to", to, len);
    } else {
        const char *room = field(msg, "room", valid_room, &len);
        if (room == NULL) {
            return fail_field(s, "room");
        }
        if (!in_room(cs, room, len)) {
            return fail(s, "not in room", "room", room, len);
        }
        target = json_pack("{s:s%}", "room", room, len);
    }
    if (target == NULL) {
        return WSG_ABORT;
    }
    json_decref(cs->image);
    cs->image = target;
    return WSG_STOP;
}

/*
 * A binary message: sent unchanged to the target "image" named, after a
 * text notice saying who sent it and how big it is. The target is used
 * once, whatever happens.
 */
static int
image_data(struct wsg_session *s, struct chat_session *cs, struct wsg_msg *m)
{
    struct wsg_str me = wsg_session_user(s);
    size_t len;

    if (me.len == 0) {
        return fail(s, "say hello first", NULL, NULL, 0);
    }
    if (cs->image == NULL) {
        return fail(s, "no image target", NULL, NULL, 0);
    }
    json_t *notice = cs->image;
    cs->image = NULL;
    const void *data = wsg_msg_data(m, &len);
    json_t *to = json_object_get(notice, "to");
    json_t *room = json_object_get(notice, "room");
    const char *t = json_string_value(to != NULL ? to : room);
    size_t tlen = json_string_length(to != NULL ? to : room);
    int rc;

    json_object_set_new(notice, "type", json_string("image"));
    json_object_set_new(notice, "from", json_stringn(me.p, me.len));
    json_object_set_new(notice, "size", json_integer((json_int_t) len));
    if (to != NULL) {
        rc = send_json(s, t, tlen, NULL, 0, notice);
        if (rc == SENT) {
            wsg_user_send(t, tlen, WSG_MSG_BINARY, data, len);
        } else if (rc == NOBODY) {
            rc = fail(s, "no such user", "to", t, tlen);
        }
    } else if (in_room(cs, t, tlen)) {
        rc = send_json(s, NULL, 0, t, tlen, notice);
        if (rc == SENT) {
            wsg_room_publish(t, tlen, WSG_MSG_BINARY, data, len, s);
        }
    } else {
        /* left the room between "image" and its data */
        rc = fail(s, "not in room", "room", t, tlen);
    }
    json_decref(notice);
    return rc == WSG_ABORT ? WSG_ABORT : WSG_STOP;
}

/* A message over chat_max_message; an image's target is used up by it. */
static int
too_large(struct wsg_session *s, struct chat_session *cs, uint64_t max)
{
    json_decref(cs->image);
    cs->image = NULL;
    return reply(s, json_pack("{s:s, s:s, s:I}", "type", "error", "error",
                              "message too large", "max", (json_int_t) max));
}

struct command {
    const char *type;
    int (*run)(struct wsg_session *s, struct chat_session *cs,
               const json_t *msg);
};

static const struct command commands[] = {
    {"dm", do_dm},       {"join", do_join}, {"leave", do_leave},
    {"say", do_say},     {"who", do_who},   {"online", do_online},
    {"image", do_image}, {NULL, NULL},
};

/* ---- hooks ---- */

static int
chat_on_message(struct wsg_session *s, struct wsg_msg *m)
{
    const struct chat_loc_conf *clcf =
        wsg_session_loc_conf(s, &wsg_chat_module);

    if (clcf == NULL || clcf->enabled != 1) {
        return WSG_NEXT;
    }
    struct chat_session *cs = session_state(s);
    size_t len;
    wsg_msg_data(m, &len);
    if (len > clcf->max_message) {
        return too_large(s, cs, clcf->max_message);
    }
    if (!wsg_msg_is_text(m)) {
        return image_data(s, cs, m);
    }
    const json_t *msg = wsg_msg_json(m);
    if (!json_is_object(msg)) {
        return fail(s, "not a JSON object", NULL, NULL, 0);
    }
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type == NULL) {
        return fail_field(s, "type");
    }
    if (strcmp(type, "hello") == 0) {
        return do_hello(s, msg);
    }
    if (wsg_session_user(s).len == 0) {
        return fail(s, "say hello first", NULL, NULL, 0);
    }
    for (const struct command *c = commands; c->type != NULL; c++) {
        if (strcmp(type, c->type) == 0) {
            return c->run(s, cs, msg);
        }
    }
    return fail(s, "unknown type", NULL, NULL, 0);
}

static void
chat_on_close(struct wsg_session *s, uint16_t code)
{
    const struct chat_loc_conf *clcf =
        wsg_session_loc_conf(s, &wsg_chat_module);

    (void) code;
    if (clcf == NULL || clcf->enabled != 1) {
        return;
    }
    /* memberships end with the session in the core; only ours go here */
    void **slot = wsg_session_data(s, &wsg_chat_module);
    struct chat_session *cs = *slot;
    if (cs == NULL) {
        return;
    }
    for (size_t i = 0; i < cs->nrooms; i++) {
        free(cs->rooms[i]);
    }
    json_decref(cs->image);
    free(cs);
    *slot = NULL;
}

const struct wsg_module wsg_chat_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "chat",
    .directives = chat_directives,
    .create_loc_conf = chat_create_loc_conf,
    .merge_loc_conf = chat_merge_loc_conf,
    .on_message = chat_on_message,
    .on_close = chat_on_close,
};
