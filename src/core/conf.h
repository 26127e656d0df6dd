/*
 * The directives file parser. Directives are declared in tables (name, the
 * contexts that allow it, argument counts, a handler, a field offset); the
 * parser checks everything it can from the table and formats every error as
 * "FILE:LINE: message". Handlers only return a short phrase or NULL.
 */
#ifndef WSG_CONF_H
#define WSG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

struct wsg_arena;
struct wsg_cycle;
struct wsg_conf;
struct wsg_directive;

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

/* Sentinels meaning "not set in this context": duplicates and merging. */
#define WSG_CONF_UNSET     (-1)
#define WSG_CONF_UNSET_U64 UINT64_MAX
#define WSG_CONF_UNSET_I64 INT64_MIN

/*
 * A directive handler. <conf> is the module's configuration structure of
 * the level the directive writes to (see wsg_conf_target()). Returns NULL
 * on success, or a short static or arena-held phrase that the parser
 * prints as `FILE:LINE: "name" directive PHRASE` (a phrase that starts
 * with '!' is printed alone, without the directive prefix).
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

/* A module's configuration structures, indexed by module index. */
struct wsg_conf_ctx {
    void **main_conf;
    void **srv_conf;
    void **loc_conf;
};

/* The state of one file being parsed (include makes a stack of them). */
struct wsg_conf_file {
    const char *name; /* as printed in errors */
    unsigned line;    /* line of the directive being handled */
};

/* Handles each statement of a block whose body is not directives. */
typedef const char *(*wsg_conf_line_fn)(struct wsg_conf *cf, void *data);

struct wsg_conf {
    struct wsg_cycle *cycle; /* the configuration being built */
    struct wsg_arena *arena; /* == cycle->arena */
    struct wsg_conf_file *file;
    unsigned ctx_type; /* WSG_CTX_* of the current block */
    struct wsg_conf_ctx *ctx;
    struct wsg_str args[WSG_CONF_MAX_ARGS + 1]; /* [0] is the name; each
                                                   NUL-terminated, arena */
    unsigned nargs;                             /* including the name */
    wsg_conf_line_fn handler; /* set by a block of non-directives */
    void *handler_data;
    unsigned include_depth;
    void *input; /* the parser's innermost input (private) */
    char *error; /* the formatted first error, arena-held; NULL if none */
};

/*
 * Parses the NUL-free buffer <buf>/<len>, named <name> in messages, into
 * the current context of <cf>. Used for -g strings and by include.
 * Returns 0, or WSG_ERROR with cf->error set.
 */
int wsg_conf_parse_buffer(struct wsg_conf *cf, const char *name,
                          const char *buf, size_t len);

/*
 * Reads and parses the file at <path>. Files over 16 MiB are refused.
 * Returns 0, or WSG_ERROR with cf->error set.
 */
int wsg_conf_parse_file(struct wsg_conf *cf, const char *path);

/*
 * Parses the body of a block directive whose handler is running: the
 * statements up to the matching "}" are handled in context <ctx_type>
 * with <ctx>. The previous context is restored before returning. Called
 * only from a WSG_DIR_BLOCK handler. Returns 0, or WSG_ERROR (cf->error set
 * already; the handler returns WSG_CONF_ERROR_SET).
 */
int wsg_conf_parse_block(struct wsg_conf *cf, unsigned ctx_type,
                         struct wsg_conf_ctx *ctx);

/*
 * Parses the body of a block whose statements are not directives: each
 * statement's words are left in cf->args and <fn> is called with <data>.
 * Returns 0, or WSG_ERROR with cf->error set.
 */
int wsg_conf_parse_lines(struct wsg_conf *cf, wsg_conf_line_fn fn, void *data);

/* Returned by a handler whose error the parser has already recorded. */
extern const char WSG_CONF_ERROR_SET[];

/*
 * Records "FILE:LINE: <fmt>" as cf->error, for the current directive's
 * line, unless an error is already recorded. Returns WSG_CONF_ERROR_SET.
 */
const char *wsg_conf_error(struct wsg_conf *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Formats a phrase into the arena, for handlers' returns. */
const char *wsg_conf_phrase(struct wsg_conf *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Resolves <path> against the prefix unless it is absolute. Returns an
 * arena string.
 */
char *wsg_conf_full_path(struct wsg_conf *cf, const char *path);

/* Entry for wsg_conf_set_enum()'s data: a NULL-name-terminated table. */
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
 * Generic setters; the field at d->offset has the type named. Each refuses
 * a second setting in one context ("is duplicate"), and a value that does
 * not parse or is out of bounds, naming it.
 *   flag: int, "on"|"off"             num:  int64_t, decimal
 *   size: uint64_t, 512 64k 1m 1g     msec: uint64_t, 250ms 30s 5m 1h 1d
 *   str:  char *, arena copy          enum: int, per d->data
 *   path: char *, made absolute against the prefix
 */
const char *wsg_conf_set_flag(struct wsg_conf *cf,
                              const struct wsg_directive *d, void *conf);
const char *wsg_conf_set_num(struct wsg_conf *cf, const struct wsg_directive *d,
                             void *conf);
const char *wsg_conf_set_size(struct wsg_conf *cf,
                              const struct wsg_directive *d, void *conf);
const char *wsg_conf_set_msec(struct wsg_conf *cf,
                              const struct wsg_directive *d, void *conf);
const char *wsg_conf_set_str(struct wsg_conf *cf, const struct wsg_directive *d,
                             void *conf);
const char *wsg_conf_set_enum(struct wsg_conf *cf,
                              const struct wsg_directive *d, void *conf);
const char *wsg_conf_set_path(struct wsg_conf *cf,
                              const struct wsg_directive *d, void *conf);

/* Merge helpers: take the parent's value, else the default, when unset. */
static inline void
wsg_conf_merge_int(int *v, int parent, int def)
{
    if (*v == WSG_CONF_UNSET) {
        *v = parent != WSG_CONF_UNSET ? parent : def;
    }
}

static inline void
wsg_conf_merge_u64(uint64_t *v, uint64_t parent, uint64_t def)
{
    if (*v == WSG_CONF_UNSET_U64) {
        *v = parent != WSG_CONF_UNSET_U64 ? parent : def;
    }
}

static inline void
wsg_conf_merge_i64(int64_t *v, int64_t parent, int64_t def)
{
    if (*v == WSG_CONF_UNSET_I64) {
        *v = parent != WSG_CONF_UNSET_I64 ? parent : def;
    }
}

static inline void
wsg_conf_merge_ptr(void *vp, void *parent, void *def)
{
    void **v = vp;

    if (*v == NULL) {
        *v = parent != NULL ? parent : def;
    }
}

#endif
