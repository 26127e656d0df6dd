/*
 * wsgate module API: the one header a module includes, built in or loaded
 * with "load_module". A module is a static struct wsg_module exported as
 * the symbol "wsg_module": a name, a table of directives, per-level
 * configuration, per-process hooks and per-message hooks. Modules see
 * opaque types and call functions; the core's layouts stay private, so a
 * module built for this ABI keeps working while the core changes.
 * docs/modules.md walks through writing one.
 */
#ifndef WSGATE_MODULE_H
#define WSGATE_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever struct wsg_module or a function's contract changes. */
#define WSG_MODULE_ABI 3u

#define WSG_API __attribute__((visibility("default")))

struct json_t;        /* jansson's */
struct wsg_conf;      /* the configuration being parsed */
struct wsg_cycle;     /* a loaded configuration */
struct wsg_directive; /* below */
struct wsg_msg;       /* one message, in a hook */
struct wsg_session;   /* one WebSocket client */

/* A slice: never assumed NUL-terminated. */
struct wsg_str {
    const char *p;
    size_t len;
};

/* ---- hooks ---- */

/* What a message or handshake hook returns. */
#define WSG_NEXT 0 /* go on: the next module, then the location */
#define WSG_STOP 1 /* done: nothing after this module sees it */
#define WSG_ABORT                                                              \
    (-1) /* failed: logged with the module's name; the                         \
            session is closed with 1011 */

/* ---- directives ---- */

/* Contexts a directive may appear in (bit mask). */
#define WSG_CTX_MAIN     0x0001u
#define WSG_CTX_EVENTS   0x0002u
#define WSG_CTX_SERVER   0x0004u
#define WSG_CTX_LOCATION 0x0008u
#define WSG_CTX_UPSTREAM 0x0010u
#define WSG_CTX_ANY      0x00ffu
/* The directive takes a { ... } body, which its handler parses. */
#define WSG_DIR_BLOCK    0x0100u

/* Most arguments a directive can take; also "no upper bound" in tables. */
#define WSG_CONF_MAX_ARGS 32

/* "Not set here" values of the generic setters' fields. */
#define WSG_CONF_UNSET     (-1)
#define WSG_CONF_UNSET_U64 UINT64_MAX
#define WSG_CONF_UNSET_I64 INT64_MIN

/*
 * A directive handler. <conf> is the module's configuration of the level
 * the directive writes to: its location configuration when the directive
 * is allowed in locations, else its server one, else its main one. Returns
 * NULL, or a short phrase the parser prints as
 * `FILE:LINE: "name" directive PHRASE` (a phrase starting with '!' is
 * printed alone).
 */
typedef const char *(*wsg_directive_fn)(struct wsg_conf *cf,
                                        const struct wsg_directive *d,
                                        void *conf);

struct wsg_directive {
    const char *name;
    unsigned ctx;      /* WSG_CTX_* where allowed, | WSG_DIR_BLOCK */
    unsigned min_args; /* not counting the name */
    unsigned max_args; /* WSG_CONF_MAX_ARGS for "any number" */
    wsg_directive_fn set;
    size_t offset;    /* field in <conf>, for the generic setters */
    const void *data; /* enum table or bounds, for the generic setters */
};

/* Entry of wsg_conf_set_enum()'s data: a NULL-name-terminated table. */
struct wsg_conf_enum {
    const char *name;
    int value;
};

/* Inclusive bounds for wsg_conf_set_num/size/msec; data may be NULL. */
struct wsg_conf_bounds {
    uint64_t min;
    uint64_t max;
};

/*
 * Generic setters; the field at d->offset has the type named, and starts
 * unset (WSG_CONF_UNSET*, or NULL). A second setting in one context is
 * "duplicate"; a bad value is refused, naming it.
 *   flag: int, "on"|"off"             num:  int64_t, decimal
 *   size: uint64_t, 512 64k 1m 1g     msec: uint64_t, 250ms 30s 5m 1h 1d
 *   str:  char *, NUL-terminated      enum: int, per d->data
 *   path: char *, made absolute against the prefix
 */
WSG_API const char *wsg_conf_set_flag(struct wsg_conf *cf,
                                      const struct wsg_directive *d,
                                      void *conf);
WSG_API const char *wsg_conf_set_num(struct wsg_conf *cf,
                                     const struct wsg_directive *d, void *conf);
WSG_API const char *wsg_conf_set_size(struct wsg_conf *cf,
                                      const struct wsg_directive *d,
                                      void *conf);
WSG_API const char *wsg_conf_set_msec(struct wsg_conf *cf,
                                      const struct wsg_directive *d,
                                      void *conf);
WSG_API const char *wsg_conf_set_str(struct wsg_conf *cf,
                                     const struct wsg_directive *d, void *conf);
WSG_API const char *wsg_conf_set_enum(struct wsg_conf *cf,
                                      const struct wsg_directive *d,
                                      void *conf);
WSG_API const char *wsg_conf_set_path(struct wsg_conf *cf,
                                      const struct wsg_directive *d,
                                      void *conf);

/* The number of words of the directive being handled, its name included. */
WSG_API size_t wsg_conf_nargs(const struct wsg_conf *cf);

/* Word <i> (0 is the name); NUL-terminated, valid for the config's life. */
WSG_API struct wsg_str wsg_conf_arg(const struct wsg_conf *cf, size_t i);

/*
 * Zeroed memory that lives as long as the configuration being built; for
 * configuration structures (create_*_conf). Never NULL.
 */
WSG_API void *wsg_conf_alloc(struct wsg_conf *cf, size_t size);

/*
 * Handles one statement of a block whose body is not directives: its
 * words are wsg_conf_arg(cf, 0 ...). Returns NULL or an error phrase.
 */
typedef const char *(*wsg_conf_line_fn)(struct wsg_conf *cf, void *data);

/*
 * From the handler of a WSG_DIR_BLOCK directive: parses the block's body
 * up to its "}", calling <fn> with <data> for each statement (a module's
 * own little language, like router's "route"). Returns 0, or -1 when a
 * statement failed (the error, with its file and line, is recorded: the
 * handler then returns any non-NULL phrase, e.g. "").
 */
WSG_API int wsg_conf_parse_lines(struct wsg_conf *cf, wsg_conf_line_fn fn,
                                 void *data);

/*
 * From a directive handler in a location: makes that location accept
 * WebSocket upgrades, for a module that answers messages itself (the echo,
 * a chat). Locations with proxy_pass are endpoints already.
 */
WSG_API void wsg_conf_websocket_endpoint(struct wsg_conf *cf);

/*
 * From a directive handler: this module will route messages to upstream
 * <name> (wsg_msg_to_upstream). Checked once the whole configuration is
 * read, so the upstream block may come later in the file: an unknown name,
 * or an upstream that does not speak mux or json, is an error at the
 * directive's line.
 */
WSG_API void wsg_conf_need_upstream(struct wsg_conf *cf, const char *name);

/* A phrase for a handler to return, formatted into configuration memory. */
WSG_API const char *wsg_conf_phrase(struct wsg_conf *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the module ---- */

struct wsg_module {
    uint32_t abi;  /* WSG_MODULE_ABI; checked first */
    uint32_t size; /* sizeof(struct wsg_module); checked second */
    const char *name;
    const struct wsg_directive *directives; /* NULL-name terminated; or
                                               NULL */

    /* Configuration at each level; each may be NULL. create returns an
     * object (wsg_conf_alloc) with every field unset; merge and init fill
     * defaults and return NULL or an error phrase. */
    void *(*create_main_conf)(struct wsg_conf *cf);
    const char *(*init_main_conf)(struct wsg_conf *cf, void *conf);
    void *(*create_srv_conf)(struct wsg_conf *cf);
    const char *(*merge_srv_conf)(struct wsg_conf *cf, void *parent,
                                  void *child);
    void *(*create_loc_conf)(struct wsg_conf *cf);
    const char *(*merge_loc_conf)(struct wsg_conf *cf, void *parent,
                                  void *child);

    /* In each worker after fork, before it accepts; non-zero stops the
     * worker. exit_process runs as the worker leaves. */
    int (*init_process)(struct wsg_cycle *cycle);
    void (*exit_process)(struct wsg_cycle *cycle);

    /* The upgrade request passed the protocol checks; the 101 is not sent
     * yet. WSG_STOP with wsg_session_reject() refuses it. */
    int (*on_handshake)(struct wsg_session *s);
    /* A complete message from the client. WSG_STOP when this module
     * handled it (sent, routed, dropped); WSG_NEXT passes it on. */
    int (*on_message)(struct wsg_session *s, struct wsg_msg *m);
    /* The session is ending with <code> (1006: dropped without a close).
     * Per-session data must be freed here. */
    void (*on_close)(struct wsg_session *s, uint16_t code);
    /* A plain HTTP request (not an upgrade) to a location that is not a
     * WebSocket endpoint: WSG_STOP after wsg_session_respond(), or
     * WSG_NEXT. Headers are readable as in on_handshake. */
    int (*on_http)(struct wsg_session *s);
};

/* Message types of wsg_session_send(). */
#define WSG_MSG_TEXT   0x1
#define WSG_MSG_BINARY 0x2

/* ---- sessions ---- */

/*
 * Sends a message to the client: <type> WSG_MSG_TEXT (UTF-8: the caller
 * guarantees it) or WSG_MSG_BINARY, <len> bytes at <data>, copied.
 * Returns 0, or -1 when the session is closing or its send buffer is over
 * websocket_send_buffer_max (the session is then closed with 1008).
 */
WSG_API int wsg_session_send(struct wsg_session *s, int type, const void *data,
                             size_t len);

/*
 * Sends the message <m> being handled to <s>, as received (text or
 * binary). A large payload is handed over without a copy; <m> stays
 * readable until the hook returns. Returns as wsg_session_send().
 */
WSG_API int wsg_session_send_msg(struct wsg_session *s, struct wsg_msg *m);

/* Starts the close handshake with <code> and <reason>. */
WSG_API void wsg_session_end(struct wsg_session *s, uint16_t code,
                             const char *reason);

/* In on_handshake: refuse with HTTP <status> (400-599). */
WSG_API void wsg_session_reject(struct wsg_session *s, int status);

/* The session's user id ("" when none) and its setter (copied). */
WSG_API struct wsg_str wsg_session_user(const struct wsg_session *s);
WSG_API void wsg_session_set_user(struct wsg_session *s, const char *user,
                                  size_t len);

/*
 * In on_http: answers the request with <status>, a Content-Type of
 * <content_type> and the <len> bytes of <body> (copied), then closes.
 */
WSG_API void wsg_session_respond(struct wsg_session *s, int status,
                                 const char *content_type, const void *body,
                                 size_t len);

/* The client's address, without the port ("203.0.113.7"). */
WSG_API const char *wsg_session_remote(const struct wsg_session *s);

/* The request target of the handshake: path and query ("/chat?room=1"). */
WSG_API struct wsg_str wsg_session_path(const struct wsg_session *s);

/*
 * In on_handshake only: the first request header named <name>
 * (case-insensitive); p == NULL when there is none, or outside the hook.
 */
WSG_API struct wsg_str wsg_session_header(const struct wsg_session *s,
                                          const char *name);

/*
 * <module>'s configuration of the session's location (what its
 * create_loc_conf made), or NULL when the module has none.
 */
WSG_API void *wsg_session_loc_conf(const struct wsg_session *s,
                                   const struct wsg_module *module);

/*
 * <module>'s slot of per-session data: a pointer the module sets and reads
 * as it likes; it starts NULL and the module frees what it stored in
 * on_close.
 */
WSG_API void **wsg_session_data(struct wsg_session *s,
                                const struct wsg_module *module);

/*
 * String attributes of a session (a role, a tenant): <value> is copied;
 * NULL removes the attribute. A session holds at most 16. Returns 0, or
 * -1 when full. wsg_session_attr() returns p == NULL when absent.
 */
WSG_API int wsg_session_set_attr(struct wsg_session *s, const char *name,
                                 const char *value);
WSG_API struct wsg_str wsg_session_attr(const struct wsg_session *s,
                                        const char *name);

/* ---- timers ---- */

struct wsg_timer;

/*
 * Calls <fn>(<s>, <data>) once, <ms> milliseconds from now. With a session
 * <s> the timer dies with it (it never fires after on_close); with NULL it
 * belongs to the worker (call it from init_process or a hook). Returns the
 * timer, which wsg_timer_cancel() stops and frees before it fires; a timer
 * that fired is freed by the core after <fn> returns.
 */
WSG_API struct wsg_timer *
wsg_timer_add(struct wsg_session *s, uint64_t ms,
              void (*fn)(struct wsg_session *s, void *data), void *data);
WSG_API void wsg_timer_cancel(struct wsg_timer *t);

/* ---- messages (valid only during the hook that received them) ---- */

/* The payload; never NULL (an empty message has len 0). */
WSG_API const void *wsg_msg_data(const struct wsg_msg *m, size_t *len);

/* Whether the message is text (UTF-8, checked), else binary. */
WSG_API bool wsg_msg_is_text(const struct wsg_msg *m);

/*
 * The message parsed as JSON, once, on first call: a borrowed reference
 * the message owns (do not decref), or NULL when it is binary or not JSON.
 */
WSG_API struct json_t *wsg_msg_json(struct wsg_msg *m);

/*
 * Sends the message <m> being handled to upstream <name>/<nlen>, which
 * speaks mux or json (docs/backend-protocol.md), and lets its backend
 * answer the session. <key>/<klen> picks the server on the upstream's
 * consistent hash ring, whatever its balance method: messages with one key
 * go to one server, in order, while it is up. With key NULL the session
 * keeps to one server of the upstream, chosen by its balance method on
 * first use (a hash upstream hashes the client's address).
 *
 * The backend sees a session as one connection id per server it reaches:
 * an open envelope (path, query, address and user of the session) comes
 * before its first message, a close when the session ends. A session
 * reaches at most 32 servers this way. When the server's connection dies,
 * the id is reopened on another server, or, with proxy_failover close,
 * forgotten (the next message opens a new one); the session goes on.
 *
 * Returns 0, or -1 when the message could not be sent: an unknown or
 * per-client upstream, no server with a live connection, or the 32 used
 * up. The message is then dropped, and counted in the upstream's dropped
 * when a server was to blame.
 */
WSG_API int wsg_msg_to_upstream(struct wsg_session *s, struct wsg_msg *m,
                                const char *name, size_t nlen, const char *key,
                                size_t klen);

/* ---- users and rooms, across every worker of the node ---- */

/*
 * A user is a session's wsg_session_set_user() name; a room is any name
 * sessions join. Delivery reaches every matching session on the node,
 * whichever worker holds it: at once on this worker, through the worker
 * bus on the others. Messages from one sender to one user or room arrive
 * in the order sent. A bus queue that is full drops the message for that
 * worker and counts it (bus_dropped in wsg_stats_json).
 */

/* The largest message the bus carries to other workers. */
#define WSG_BUS_MESSAGE_MAX (512u * 1024)

/*
 * Sends a message to every session of user <user>/<ulen> (at most 64
 * bytes). Returns the number of workers it was sent towards (this one
 * included), or -1 when the user is online nowhere or the message is over
 * WSG_BUS_MESSAGE_MAX (then nobody gets it).
 */
WSG_API int wsg_user_send(const char *user, size_t ulen, int type,
                          const void *data, size_t len);

/*
 * Sends a message to every member of room <room>/<rlen> but <except> (may
 * be NULL; a sender usually does not get its own message back). Returns as
 * wsg_user_send(), -1 when the room has no member.
 */
WSG_API int wsg_room_publish(const char *room, size_t rlen, int type,
                             const void *data, size_t len,
                             const struct wsg_session *except);

/*
 * Makes <s> a member of room <room>/<rlen> (at most 120 bytes; a session
 * is in at most 64 rooms). Joining twice is one membership. Returns 0, or
 * -1 when a limit is reached. Memberships end with the session.
 */
WSG_API int wsg_session_join(struct wsg_session *s, const char *room,
                             size_t rlen);
WSG_API void wsg_session_leave(struct wsg_session *s, const char *room,
                               size_t rlen);

/* Whether some session of the node has user name <user>/<ulen>. */
WSG_API bool wsg_user_online(const char *user, size_t ulen);

/*
 * The distinct user names of room <room>/<rlen>'s members (sessions with
 * no user are not listed), at most <max>: a new JSON array of strings.
 */
WSG_API struct json_t *wsg_room_members(const char *room, size_t rlen,
                                        size_t max);

/* ---- node-wide counters and token buckets ---- */

/*
 * Adds <delta> to the node-wide counter <name>/<len> (at most 96 bytes;
 * a new counter starts at 0) and returns its new value; a counter back at
 * 0 or below is forgotten. For limits that must hold across workers, such
 * as connections per client address. Returns LONG_MIN when the table has
 * no room (65,536 names) or the name is too long: a limit should then let
 * the client through rather than refuse everyone.
 */
WSG_API long wsg_counter_add(const char *name, size_t len, long delta);

/*
 * Takes <amount> tokens from the node-wide token bucket <name>/<len> that
 * refills at <rate> tokens per second up to <burst> (a new bucket starts
 * full). Returns true when there were enough (they are taken), false when
 * not (nothing is taken). True also when the table has no room.
 */
WSG_API bool wsg_counter_take(const char *name, size_t len, double rate,
                              double burst, double amount);

/* ---- logging ---- */

/* Levels, as in error_log. */
#define WSG_LOG_LEVEL_ERR    4
#define WSG_LOG_LEVEL_WARN   5
#define WSG_LOG_LEVEL_NOTICE 6
#define WSG_LOG_LEVEL_INFO   7
#define WSG_LOG_LEVEL_DEBUG  8

/*
 * Writes a line to the error log at <level> in the context of <s> (its
 * connection id and client), as "module NAME: message". Lines below the
 * configured level cost a comparison.
 */
WSG_API void wsg_session_log(const struct wsg_session *s,
                             const struct wsg_module *module, int level,
                             const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- node statistics ---- */

/*
 * A new JSON object (the caller decrefs it) with the node's counters summed
 * over all workers: uptime_s, workers, connections, accepted, refused,
 * handshakes, messages_in/out, bytes_in/out (payload), close_codes (by
 * code, and "other"), and per upstream its servers' address, up,
 * connections, dropped and connect_fails. docs/modules.md lists them.
 */
WSG_API struct json_t *wsg_stats_json(const struct wsg_session *s);

#ifdef __cplusplus
}
#endif

#endif
