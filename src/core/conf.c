/*
 * Directives file parser. Reads statements (words up to ";" or "{"),
 * looks each name up in the tables of the cycle's modules, checks context
 * and argument count from the table, then calls the handler with the
 * module's configuration of the level the directive writes to. Every
 * message a user sees is formatted here, as "FILE:LINE: message".
 */
#include "config.h"

#include "core/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/conf_lex.h"
#include "core/core.h"
#include "core/cycle.h"
#include "core/module.h"

#define CONF_FILE_MAX      (16u * 1024 * 1024)
#define CONF_INCLUDE_DEPTH 16
#define CONF_BLOCK_DEPTH   32

const char WSG_CONF_ERROR_SET[] = "";

/* How a run of statements ended. */
enum end {
    END_EOF,   /* end of input, at the top of a file */
    END_BLOCK, /* a "}" closing the block being parsed */
};

/* The lexer of the innermost input, for wsg_conf_parse_block(). */
struct input {
    struct wsg_conf_lexer lx;
    struct input *outer;
    unsigned depth; /* open blocks in this input */
};

static const char *vphrase(struct wsg_conf *cf, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static const char *
vphrase(struct wsg_conf *cf, const char *fmt, va_list ap)
{
    char buf[1024];

    vsnprintf(buf, sizeof(buf), fmt, ap);
    return wsg_arena_strdup(cf->arena, buf);
}

const char *
wsg_conf_phrase(struct wsg_conf *cf, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    const char *p = vphrase(cf, fmt, ap);
    va_end(ap);
    return p;
}

const char *
wsg_conf_error(struct wsg_conf *cf, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (cf->error != NULL) {
        return WSG_CONF_ERROR_SET;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cf->file != NULL) {
        cf->error = (char *) wsg_conf_phrase(cf, "%s:%u: %s", cf->file->name,
                                             cf->file->line, msg);
    } else {
        cf->error = wsg_arena_strdup(cf->arena, msg);
    }
    return WSG_CONF_ERROR_SET;
}

size_t
wsg_conf_nargs(const struct wsg_conf *cf)
{
    return cf->nargs;
}

struct wsg_str
wsg_conf_arg(const struct wsg_conf *cf, size_t i)
{
    struct wsg_str none = {"", 0};

    return i < cf->nargs ? cf->args[i] : none;
}

void *
wsg_conf_alloc(struct wsg_conf *cf, size_t size)
{
    return wsg_arena_alloc(cf->arena, size);
}

char *
wsg_conf_full_path(struct wsg_conf *cf, const char *path)
{
    if (path[0] == '/') {
        return wsg_arena_strdup(cf->arena, path);
    }
    size_t plen = strlen(cf->cycle->prefix), len = strlen(path);
    char *full = wsg_arena_alloc(cf->arena, plen + len + 1);
    memcpy(full, cf->cycle->prefix, plen);
    memcpy(full + plen, path, len + 1);
    return full;
}

/*
 * Finds <name> in the modules' tables; sets *index to its module. One name
 * may have entries for different contexts ("server" is a block at main
 * level and a member of upstream blocks): the one allowed in <ctx_type>
 * wins; failing that, any, so the caller can say "not allowed here".
 */
static const struct wsg_directive *
lookup(const struct wsg_cycle *cycle, struct wsg_str name, unsigned ctx_type,
       size_t *index)
{
    const struct wsg_directive *found = NULL;

    for (size_t i = 0; i < cycle->nmodules; i++) {
        const struct wsg_directive *d = cycle->modules[i]->directives;
        for (; d != NULL && d->name != NULL; d++) {
            if (!wsg_str_eq(name, d->name)) {
                continue;
            }
            if (d->ctx & ctx_type) {
                *index = i;
                return d;
            }
            if (found == NULL) {
                found = d;
                *index = i;
            }
        }
    }
    return found;
}

/*
 * The configuration level a directive writes to: the innermost level its
 * contexts reach. A server-level setting of a location directive lands in
 * the server's location defaults and is merged down (nginx's model).
 */
static void *
target(struct wsg_conf *cf, const struct wsg_directive *d, size_t index)
{
    if (d->ctx & WSG_CTX_LOCATION) {
        return cf->ctx->loc_conf ? cf->ctx->loc_conf[index] : NULL;
    }
    if (d->ctx & WSG_CTX_SERVER) {
        return cf->ctx->srv_conf ? cf->ctx->srv_conf[index] : NULL;
    }
    return cf->ctx->main_conf[index];
}

static const char *
ctx_name(unsigned ctx)
{
    switch (ctx) {
    case WSG_CTX_MAIN:
        return "main";
    case WSG_CTX_EVENTS:
        return "events";
    case WSG_CTX_SERVER:
        return "server";
    case WSG_CTX_LOCATION:
        return "location";
    case WSG_CTX_UPSTREAM:
        return "upstream";
    default:
        return "this";
    }
}

static int include(struct wsg_conf *cf);

/* Runs the statement in cf->args, ended by <term> (";" or "{"). */
static int
handle(struct wsg_conf *cf, enum wsg_conf_tok term)
{
    const char *name = cf->args[0].p;

    if (cf->handler != NULL) {
        if (term != WSG_TOK_SEMI) {
            wsg_conf_error(cf, "unexpected \"{\" after \"%s\"", name);
            return WSG_ERROR;
        }
        const char *rv = cf->handler(cf, cf->handler_data);
        if (rv != NULL) {
            if (rv != WSG_CONF_ERROR_SET) {
                wsg_conf_error(cf, "%s", rv);
            }
            return WSG_ERROR;
        }
        return 0;
    }

    if (wsg_str_eq(cf->args[0], "include")) {
        if (term != WSG_TOK_SEMI) {
            wsg_conf_error(cf, "directive \"include\" is not terminated by "
                               "\";\"");
            return WSG_ERROR;
        }
        if (cf->nargs != 2) {
            wsg_conf_error(cf, "invalid number of arguments in \"include\" "
                               "directive");
            return WSG_ERROR;
        }
        return include(cf);
    }

    size_t index;
    const struct wsg_directive *d =
        lookup(cf->cycle, cf->args[0], cf->ctx_type, &index);
    if (d == NULL) {
        wsg_conf_error(cf, "unknown directive \"%s\"", name);
        return WSG_ERROR;
    }
    if (!(d->ctx & cf->ctx_type)) {
        wsg_conf_error(cf,
                       "\"%s\" directive is not allowed in the %s "
                       "context",
                       name, ctx_name(cf->ctx_type));
        return WSG_ERROR;
    }
    if ((d->ctx & WSG_DIR_BLOCK) && term != WSG_TOK_LBRACE) {
        wsg_conf_error(cf, "directive \"%s\" has no opening \"{\"", name);
        return WSG_ERROR;
    }
    if (!(d->ctx & WSG_DIR_BLOCK) && term != WSG_TOK_SEMI) {
        wsg_conf_error(cf, "directive \"%s\" is not terminated by \";\"", name);
        return WSG_ERROR;
    }
    unsigned nargs = cf->nargs - 1;
    if (nargs < d->min_args || nargs > d->max_args) {
        wsg_conf_error(cf, "invalid number of arguments in \"%s\" directive",
                       name);
        return WSG_ERROR;
    }

    void *conf = target(cf, d, index);
    const char *rv = d->set(cf, d, conf);
    if (rv == NULL) {
        return 0;
    }
    if (rv != WSG_CONF_ERROR_SET) {
        if (rv[0] == '!') {
            wsg_conf_error(cf, "%s", rv + 1);
        } else {
            wsg_conf_error(cf, "\"%s\" directive %s", name, rv);
        }
    }
    return WSG_ERROR;
}

/*
 * Parses statements from the current input until its end (END_EOF) or a
 * "}" (END_BLOCK), whichever <want> says is right. Returns 0 or WSG_ERROR.
 */
static int
parse(struct wsg_conf *cf, enum end want)
{
    struct wsg_conf_lexer *lx = &((struct input *) cf->input)->lx;
    struct wsg_conf_token t;

    cf->nargs = 0;
    for (;;) {
        wsg_conf_lex_next(lx, &t);
        if (cf->nargs == 0) {
            cf->file->line = t.line;
        }
        switch (t.type) {
        case WSG_TOK_ERROR:
            cf->file->line = t.line;
            wsg_conf_error(cf, "%s", lx->why);
            return WSG_ERROR;

        case WSG_TOK_WORD:
            if (cf->nargs > WSG_CONF_MAX_ARGS) {
                wsg_conf_error(cf, "too many arguments in \"%s\" directive",
                               cf->args[0].p);
                return WSG_ERROR;
            }
            if (cf->nargs == 0 && t.quoted && cf->handler == NULL) {
                wsg_conf_error(cf, "unexpected quoted string, expecting a "
                                   "directive name");
                return WSG_ERROR;
            }
            cf->args[cf->nargs].p = wsg_arena_strndup(cf->arena, t.p, t.len);
            cf->args[cf->nargs].len = t.len;
            cf->nargs++;
            break;

        case WSG_TOK_SEMI:
        case WSG_TOK_LBRACE:
            if (cf->nargs == 0) {
                wsg_conf_error(cf, "unexpected \"%s\"",
                               t.type == WSG_TOK_SEMI ? ";" : "{");
                return WSG_ERROR;
            }
            if (handle(cf, t.type) != 0) {
                return WSG_ERROR;
            }
            cf->nargs = 0;
            break;

        case WSG_TOK_RBRACE:
            if (cf->nargs != 0) {
                wsg_conf_error(cf,
                               "unexpected \"}\", expecting \";\" after "
                               "\"%s\"",
                               cf->args[0].p);
                return WSG_ERROR;
            }
            if (want != END_BLOCK) {
                wsg_conf_error(cf, "unexpected \"}\"");
                return WSG_ERROR;
            }
            return 0;

        case WSG_TOK_EOF:
            if (cf->nargs != 0) {
                wsg_conf_error(cf, "unexpected end of file, expecting \";\" "
                                   "or \"}\"");
                return WSG_ERROR;
            }
            if (want != END_EOF) {
                wsg_conf_error(cf, "unexpected end of file, expecting \"}\"");
                return WSG_ERROR;
            }
            return 0;
        }
    }
}

/* Parses a block body with either a new context or a line handler. */
static int
block(struct wsg_conf *cf, unsigned ctx_type, struct wsg_conf_ctx *ctx,
      wsg_conf_line_fn fn, void *data)
{
    struct input *in = cf->input;
    unsigned saved_type = cf->ctx_type;
    struct wsg_conf_ctx *saved_ctx = cf->ctx;
    wsg_conf_line_fn saved_fn = cf->handler;
    void *saved_data = cf->handler_data;
    struct wsg_str saved_args[WSG_CONF_MAX_ARGS + 1];
    unsigned saved_nargs = cf->nargs;
    unsigned saved_line = cf->file->line;

    if (in->depth >= CONF_BLOCK_DEPTH) {
        wsg_conf_error(cf, "blocks nested deeper than %d", CONF_BLOCK_DEPTH);
        return WSG_ERROR;
    }
    /* the block's handler may still read its own words after the body */
    memcpy(saved_args, cf->args, sizeof(saved_args));
    cf->ctx_type = ctx_type;
    cf->ctx = ctx;
    cf->handler = fn;
    cf->handler_data = data;
    in->depth++;
    int rc = parse(cf, END_BLOCK);
    in->depth--;
    cf->ctx_type = saved_type;
    cf->ctx = saved_ctx;
    cf->handler = saved_fn;
    cf->handler_data = saved_data;
    if (rc == 0) {
        memcpy(cf->args, saved_args, sizeof(saved_args));
        cf->nargs = saved_nargs;
        cf->file->line = saved_line;
    }
    return rc;
}

int
wsg_conf_parse_block(struct wsg_conf *cf, unsigned ctx_type,
                     struct wsg_conf_ctx *ctx)
{
    return block(cf, ctx_type, ctx, NULL, NULL);
}

int
wsg_conf_parse_lines(struct wsg_conf *cf, wsg_conf_line_fn fn, void *data)
{
    return block(cf, cf->ctx_type, cf->ctx, fn, data);
}

int
wsg_conf_parse_buffer(struct wsg_conf *cf, const char *name, const char *buf,
                      size_t len)
{
    struct wsg_conf_file file = {name, 0};
    struct wsg_conf_file *saved_file = cf->file;
    struct input *in = wsg_malloc(sizeof(*in));

    /* an included file starts a fresh input; its blocks are its own */
    in->outer = cf->input;
    in->depth = 0;
    wsg_conf_lex_init(&in->lx, buf, len);
    cf->input = in;
    cf->file = &file;

    int rc = parse(cf, END_EOF);

    cf->input = in->outer;
    cf->file = saved_file;
    free(in);
    return rc;
}

/* Reads all of <path> into a malloc'd buffer; returns NULL with errno. */
static char *
read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == -1) {
        int err = errno;
        close(fd);
        errno = err;
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > CONF_FILE_MAX) {
        close(fd);
        errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        return NULL;
    }
    size_t size = (size_t) st.st_size, n = 0;
    char *buf = wsg_malloc(size + 1);
    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r == -1 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            int err = r == 0 ? EIO : errno;
            free(buf);
            close(fd);
            errno = err;
            return NULL;
        }
        n += (size_t) r;
    }
    close(fd);
    *len = n;
    return buf;
}

int
wsg_conf_parse_file(struct wsg_conf *cf, const char *path)
{
    size_t len;
    char *buf = read_file(path, &len);

    if (buf == NULL) {
        int err = errno;
        wsg_conf_error(cf, "open() \"%s\" failed (%d: %s)", path, err,
                       strerror(err));
        return WSG_ERROR;
    }
    if (memchr(buf, '\0', len) != NULL) {
        free(buf);
        wsg_conf_error(cf, "\"%s\" is not a text file (it holds a NUL byte)",
                       path);
        return WSG_ERROR;
    }
    int rc =
        wsg_conf_parse_buffer(cf, wsg_arena_strdup(cf->arena, path), buf, len);
    free(buf);
    return rc;
}

/* include PATTERN: every file the glob names, in sorted order. */
static int
include(struct wsg_conf *cf)
{
    char *pattern = wsg_conf_full_path(cf, cf->args[1].p);
    bool wild = strpbrk(pattern, "*?[") != NULL;
    glob_t g;

    if (cf->include_depth >= CONF_INCLUDE_DEPTH) {
        wsg_conf_error(cf, "include nested deeper than %d files (a loop?)",
                       CONF_INCLUDE_DEPTH);
        return WSG_ERROR;
    }
    /* a plain name that does not exist must fail with open()'s reason */
    int flags = GLOB_ERR | (wild ? 0 : GLOB_NOCHECK);
    int grc = glob(pattern, flags, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        /* a pattern that matches nothing includes nothing, as in nginx */
        globfree(&g);
        return 0;
    }
    if (grc != 0) {
        globfree(&g);
        wsg_conf_error(cf, "glob() \"%s\" failed", pattern);
        return WSG_ERROR;
    }

    /* handle() left the include's own words in cf->args; a file restarts */
    struct wsg_conf_file *saved_file = cf->file;
    int rc = 0;
    cf->include_depth++;
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
        rc = wsg_conf_parse_file(cf, g.gl_pathv[i]);
    }
    cf->include_depth--;
    globfree(&g);
    cf->file = saved_file;
    return rc;
}

/* ---- generic setters ---- */

static void *
field(void *conf, const struct wsg_directive *d)
{
    return (char *) conf + d->offset;
}

const char *
wsg_conf_set_flag(struct wsg_conf *cf, const struct wsg_directive *d,
                  void *conf)
{
    int *v = field(conf, d);
    struct wsg_str a = cf->args[1];

    if (*v != WSG_CONF_UNSET) {
        return "is duplicate";
    }
    if (wsg_str_eq(a, "on")) {
        *v = 1;
    } else if (wsg_str_eq(a, "off")) {
        *v = 0;
    } else {
        return wsg_conf_phrase(cf,
                               "invalid value \"%s\", expecting \"on\" "
                               "or \"off\"",
                               a.p);
    }
    return NULL;
}

static const char *
check_bounds(struct wsg_conf *cf, const struct wsg_directive *d, uint64_t v,
             const char *text)
{
    const struct wsg_conf_bounds *b = d->data;

    if (b != NULL && (v < b->min || v > b->max)) {
        return wsg_conf_phrase(cf,
                               "value \"%s\" is out of range (%llu to "
                               "%llu)",
                               text, (unsigned long long) b->min,
                               (unsigned long long) b->max);
    }
    return NULL;
}

const char *
wsg_conf_set_num(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    int64_t *v = field(conf, d);
    struct wsg_str a = cf->args[1];
    uint64_t n;

    if (*v != WSG_CONF_UNSET_I64) {
        return "is duplicate";
    }
    if (wsg_str_parse_uint(a.p, a.len, INT64_MAX, &n) != 0) {
        return wsg_conf_phrase(cf, "invalid number \"%s\"", a.p);
    }
    const char *rv = check_bounds(cf, d, n, a.p);
    if (rv == NULL) {
        *v = (int64_t) n;
    }
    return rv;
}

/* How the size and time setters read a value, and name it when wrong. */
struct u64_kind {
    int (*read)(const char *s, size_t len, uint64_t *out);
    const char *what;   /* "size" */
    const char *expect; /* "a number with an optional k, m or g" */
};

static const struct u64_kind size_kind = {
    wsg_str_parse_size, "size", "a number with an optional k, m or g"};
static const struct u64_kind msec_kind = {
    wsg_str_parse_msec, "time", "a number with a unit: ms, s, m, h or d"};

static const char *
set_u64(struct wsg_conf *cf, const struct wsg_directive *d, void *conf,
        const struct u64_kind *k)
{
    uint64_t *v = field(conf, d);
    struct wsg_str a = cf->args[1];
    uint64_t n;

    if (*v != WSG_CONF_UNSET_U64) {
        return "is duplicate";
    }
    /* the largest value is the "unset" mark: storing it would drop it */
    if (k->read(a.p, a.len, &n) != 0 || n == WSG_CONF_UNSET_U64) {
        return wsg_conf_phrase(cf, "invalid %s \"%s\", expecting %s", k->what,
                               a.p, k->expect);
    }
    const char *rv = check_bounds(cf, d, n, a.p);
    if (rv == NULL) {
        *v = n;
    }
    return rv;
}

const char *
wsg_conf_set_size(struct wsg_conf *cf, const struct wsg_directive *d,
                  void *conf)
{
    return set_u64(cf, d, conf, &size_kind);
}

const char *
wsg_conf_set_msec(struct wsg_conf *cf, const struct wsg_directive *d,
                  void *conf)
{
    return set_u64(cf, d, conf, &msec_kind);
}

const char *
wsg_conf_set_str(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    char **v = field(conf, d);

    if (*v != NULL) {
        return "is duplicate";
    }
    *v = (char *) cf->args[1].p;
    return NULL;
}

const char *
wsg_conf_set_path(struct wsg_conf *cf, const struct wsg_directive *d,
                  void *conf)
{
    char **v = field(conf, d);

    if (*v != NULL) {
        return "is duplicate";
    }
    if (cf->args[1].len == 0) {
        return "needs a non-empty path";
    }
    *v = wsg_conf_full_path(cf, cf->args[1].p);
    return NULL;
}

const char *
wsg_conf_set_enum(struct wsg_conf *cf, const struct wsg_directive *d,
                  void *conf)
{
    int *v = field(conf, d);
    const struct wsg_conf_enum *e = d->data;
    struct wsg_str a = cf->args[1];

    if (*v != WSG_CONF_UNSET) {
        return "is duplicate";
    }
    for (; e->name != NULL; e++) {
        if (wsg_str_eq(a, e->name)) {
            *v = e->value;
            return NULL;
        }
    }
    char expect[256];
    size_t n = 0;
    for (e = d->data; e->name != NULL && n < sizeof(expect); e++) {
        int k =
            snprintf(expect + n, sizeof(expect) - n, "%s\"%s\"",
                     e == d->data ? "" : (e[1].name ? ", " : " or "), e->name);
        n += k > 0 ? (size_t) k : 0;
    }
    return wsg_conf_phrase(cf, "invalid value \"%s\", expecting %s", a.p,
                           expect);
}
