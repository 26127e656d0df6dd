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
#include "wsgate_module.h"

struct wsg_arena;
struct wsg_cycle;
struct wsg_conf;
struct wsg_directive;

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

/* Returned by a handler whose error the parser has already recorded. */
extern const char WSG_CONF_ERROR_SET[];

/*
 * Records "FILE:LINE: <fmt>" as cf->error, for the current directive's
 * line, unless an error is already recorded. Returns WSG_CONF_ERROR_SET.
 */
const char *wsg_conf_error(struct wsg_conf *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Resolves <path> against the prefix unless it is absolute. Returns an
 * arena string.
 */
char *wsg_conf_full_path(struct wsg_conf *cf, const char *path);

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
