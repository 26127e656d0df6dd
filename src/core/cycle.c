/*
 * Loading a configuration into a cycle, and the core module: the
 * main-context directives that shape the processes (workers, pid file,
 * user, limits, the error log, the events block).
 */
#include "config.h"

#include "core/cycle.h"

#include <errno.h>
#include <dlfcn.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/conf.h"
#include "core/core.h"

#define DEFAULT_PID_PATH           "logs/wsgate.pid"
#define DEFAULT_ERROR_LOG          "logs/error.log"
#define DEFAULT_SHUTDOWN_TIMEOUT   (30 * 1000)
#define DEFAULT_WORKER_CONNECTIONS 1024

static const char *set_workers(struct wsg_conf *cf,
                               const struct wsg_directive *d, void *conf);
static const char *set_user(struct wsg_conf *cf, const struct wsg_directive *d,
                            void *conf);
static const char *set_affinity(struct wsg_conf *cf,
                                const struct wsg_directive *d, void *conf);
static const char *set_error_log(struct wsg_conf *cf,
                                 const struct wsg_directive *d, void *conf);
static const char *events_block(struct wsg_conf *cf,
                                const struct wsg_directive *d, void *conf);
static const char *load_module(struct wsg_conf *cf,
                               const struct wsg_directive *d, void *conf);

static const struct wsg_conf_bounds rlimit_bounds = {1, 1u << 30};
static const struct wsg_conf_bounds connections_bounds = {1, 1000000};

static const struct wsg_directive core_directives[] = {
    {"daemon", WSG_CTX_MAIN, 1, 1, wsg_conf_set_flag,
     offsetof(struct wsg_core_conf, daemon), NULL},
    {"worker_processes", WSG_CTX_MAIN, 1, 1, set_workers, 0, NULL},
    {"pid", WSG_CTX_MAIN, 1, 1, wsg_conf_set_path,
     offsetof(struct wsg_core_conf, pid_path), NULL},
    {"user", WSG_CTX_MAIN, 1, 2, set_user, 0, NULL},
    {"worker_rlimit_nofile", WSG_CTX_MAIN, 1, 1, wsg_conf_set_num,
     offsetof(struct wsg_core_conf, worker_rlimit_nofile), &rlimit_bounds},
    {"worker_cpu_affinity", WSG_CTX_MAIN, 1, WSG_WORKERS_MAX, set_affinity, 0,
     NULL},
    {"worker_shutdown_timeout", WSG_CTX_MAIN, 1, 1, wsg_conf_set_msec,
     offsetof(struct wsg_core_conf, worker_shutdown_timeout_ms), NULL},
    {"error_log", WSG_CTX_MAIN, 1, 2, set_error_log, 0, NULL},
    {"events", WSG_CTX_MAIN | WSG_DIR_BLOCK, 0, 0, events_block, 0, NULL},
    {"load_module", WSG_CTX_MAIN, 1, 1, load_module, 0, NULL},
    {"worker_connections", WSG_CTX_EVENTS, 1, 1, wsg_conf_set_num,
     offsetof(struct wsg_core_conf, worker_connections), &connections_bounds},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
create_main_conf(struct wsg_conf *cf)
{
    struct wsg_core_conf *ccf = wsg_arena_alloc(cf->arena, sizeof(*ccf));

    ccf->daemon = WSG_CONF_UNSET;
    ccf->worker_processes = WSG_CONF_UNSET_I64;
    ccf->worker_rlimit_nofile = WSG_CONF_UNSET_I64;
    ccf->affinity_auto = WSG_CONF_UNSET;
    ccf->worker_shutdown_timeout_ms = WSG_CONF_UNSET_U64;
    ccf->worker_connections = WSG_CONF_UNSET_I64;
    ccf->uid = (uid_t) -1;
    ccf->gid = (gid_t) -1;
    return ccf;
}

static const char *
init_main_conf(struct wsg_conf *cf, void *conf)
{
    struct wsg_core_conf *ccf = conf;

    wsg_conf_merge_int(&ccf->daemon, WSG_CONF_UNSET, 1);
    wsg_conf_merge_i64(&ccf->worker_processes, WSG_CONF_UNSET_I64, 1);
    wsg_conf_merge_i64(&ccf->worker_rlimit_nofile, WSG_CONF_UNSET_I64, 0);
    wsg_conf_merge_int(&ccf->affinity_auto, WSG_CONF_UNSET, 0);
    wsg_conf_merge_u64(&ccf->worker_shutdown_timeout_ms, WSG_CONF_UNSET_U64,
                       DEFAULT_SHUTDOWN_TIMEOUT);
    wsg_conf_merge_i64(&ccf->worker_connections, WSG_CONF_UNSET_I64,
                       DEFAULT_WORKER_CONNECTIONS);
    if (ccf->pid_path == NULL) {
        ccf->pid_path = wsg_conf_full_path(cf, DEFAULT_PID_PATH);
    }
    if (ccf->error_log_level == 0) {
        ccf->error_log_path = wsg_conf_full_path(cf, DEFAULT_ERROR_LOG);
        ccf->error_log_level = WSG_LOG_ERR;
    }
    if (ccf->naffinity > 0 && ccf->naffinity < wsg_cycle_workers(cf->cycle)) {
        return wsg_conf_phrase(cf,
                               "!%s:%u: \"worker_cpu_affinity\" gives %zu "
                               "masks for %u worker processes",
                               ccf->affinity_file, ccf->affinity_line,
                               ccf->naffinity, wsg_cycle_workers(cf->cycle));
    }
    wsg_cycle_log_file(cf->cycle, ccf->error_log_path);
    return NULL;
}

const struct wsg_module wsg_core_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "core",
    .directives = core_directives,
    .create_main_conf = create_main_conf,
    .init_main_conf = init_main_conf,
};

static const char *
set_workers(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_core_conf *ccf = conf;
    struct wsg_str a = cf->args[1];
    uint64_t n;

    (void) d;
    if (ccf->worker_processes != WSG_CONF_UNSET_I64) {
        return "is duplicate";
    }
    if (wsg_str_eq(a, "auto")) {
        ccf->worker_processes = 0;
        return NULL;
    }
    if (wsg_str_parse_uint(a.p, a.len, WSG_WORKERS_MAX, &n) != 0 || n == 0) {
        return wsg_conf_phrase(cf,
                               "invalid value \"%s\", expecting \"auto\" "
                               "or a number from 1 to %d",
                               a.p, WSG_WORKERS_MAX);
    }
    ccf->worker_processes = (int64_t) n;
    return NULL;
}

static const char *
set_user(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_core_conf *ccf = conf;

    (void) d;
    if (ccf->user != NULL) {
        return "is duplicate";
    }
    const char *user = cf->args[1].p;
    const char *group = cf->nargs > 2 ? cf->args[2].p : NULL;

    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        return wsg_conf_phrase(cf, "names unknown user \"%s\"", user);
    }
    ccf->user = (char *) user;
    ccf->uid = pw->pw_uid;
    ccf->gid = pw->pw_gid;
    if (group != NULL) {
        struct group *gr = getgrnam(group);
        if (gr == NULL) {
            return wsg_conf_phrase(cf, "names unknown group \"%s\"", group);
        }
        ccf->group = (char *) group;
        ccf->gid = gr->gr_gid;
    }
    return NULL;
}

static const char *
set_affinity(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_core_conf *ccf = conf;

    (void) d;
    if (ccf->affinity_auto != WSG_CONF_UNSET) {
        return "is duplicate";
    }
    if (wsg_str_eq(cf->args[1], "auto")) {
        if (cf->nargs != 2) {
            return "takes \"auto\" alone";
        }
        ccf->affinity_auto = 1;
        return NULL;
    }
    ccf->affinity_auto = 0;
    ccf->affinity_file = cf->file->name;
    ccf->affinity_line = cf->file->line;
    ccf->naffinity = cf->nargs - 1;
    ccf->affinity_masks =
        wsg_arena_alloc(cf->arena, ccf->naffinity * sizeof(uint64_t));
    for (size_t i = 0; i < ccf->naffinity; i++) {
        struct wsg_str a = cf->args[i + 1];
        uint64_t mask = 0;
        /* masks read like nginx's: rightmost digit is CPU 0 */
        if (a.len == 0 || a.len > 64 || strspn(a.p, "01") != a.len ||
            strchr(a.p, '1') == NULL) {
            return wsg_conf_phrase(cf,
                                   "invalid mask \"%s\", expecting \"auto\" "
                                   "or masks of 0 and 1 with at least "
                                   "one 1",
                                   a.p);
        }
        for (size_t k = 0; k < a.len; k++) {
            mask = (mask << 1) | (uint64_t) (a.p[k] == '1');
        }
        ccf->affinity_masks[i] = mask;
    }
    return NULL;
}

static const char *
set_error_log(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_core_conf *ccf = conf;

    (void) d;
    if (ccf->error_log_level != 0) {
        return "is duplicate";
    }
    unsigned level = WSG_LOG_ERR;
    if (cf->nargs > 2) {
        level = wsg_log_level_parse(cf->args[2].p, cf->args[2].len);
        if (level == 0) {
            return wsg_conf_phrase(cf,
                                   "invalid level \"%s\", expecting one of "
                                   "debug, info, notice, warn, error, "
                                   "crit, alert, emerg",
                                   cf->args[2].p);
        }
    }
    if (wsg_str_eq(cf->args[1], "stderr")) {
        ccf->error_log_path = NULL;
    } else if (cf->args[1].len == 0) {
        return "needs a file name or \"stderr\"";
    } else {
        ccf->error_log_path = wsg_conf_full_path(cf, cf->args[1].p);
    }
    ccf->error_log_level = level;
    return NULL;
}

static const char *
events_block(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct wsg_core_conf *ccf = conf;

    (void) d;
    if (ccf->events_seen) {
        return "is duplicate";
    }
    ccf->events_seen = true;
    if (wsg_conf_parse_block(cf, WSG_CTX_EVENTS, cf->ctx) != 0) {
        return WSG_CONF_ERROR_SET;
    }
    return NULL;
}

/* An arena copy of the <n> pointers at <arr> with <item> put at <pos>. */
static void **
insert(struct wsg_conf *cf, void **arr, size_t n, size_t pos, void *item)
{
    void **bigger = wsg_arena_alloc(cf->arena, (n + 1) * sizeof(void *));

    memcpy(bigger, arr, pos * sizeof(void *));
    bigger[pos] = item;
    memcpy(bigger + pos + 1, arr + pos, (n - pos) * sizeof(void *));
    return bigger;
}

/*
 * Adds <m> after the other loaded modules and before the built-in handlers,
 * with its main-level confs. Only main-level arrays exist yet (no server
 * block was read), so shifting the handlers' slots moves every reference.
 */
static void
add_module(struct wsg_conf *cf, const struct wsg_module *m)
{
    struct wsg_cycle *cycle = cf->cycle;
    struct wsg_conf_ctx *ctx = cycle->ctx;
    size_t n = cycle->nmodules, pos = n - wsg_builtin_nhandlers;

    cycle->modules = (const struct wsg_module **) insert(
        cf, (void **) cycle->modules, n, pos, (void *) m);
    cycle->nmodules = n + 1;
    ctx->main_conf =
        insert(cf, ctx->main_conf, n, pos,
               m->create_main_conf ? m->create_main_conf(cf) : NULL);
    ctx->srv_conf = insert(cf, ctx->srv_conf, n, pos,
                           m->create_srv_conf ? m->create_srv_conf(cf) : NULL);
    ctx->loc_conf = insert(cf, ctx->loc_conf, n, pos,
                           m->create_loc_conf ? m->create_loc_conf(cf) : NULL);
    cycle->main_conf = ctx->main_conf;
}

/* Whether <d>'s name is taken in a context it also claims. */
static const struct wsg_module *
clash(const struct wsg_cycle *cycle, const struct wsg_directive *d)
{
    for (size_t i = 0; i < cycle->nmodules; i++) {
        const struct wsg_directive *o = cycle->modules[i]->directives;
        for (; o != NULL && o->name != NULL; o++) {
            if (strcmp(o->name, d->name) == 0 &&
                (o->ctx & d->ctx & WSG_CTX_ANY) != 0) {
                return cycle->modules[i];
            }
        }
    }
    return NULL;
}

/* Checks a loaded module's struct; returns NULL or the phrase refusing it. */
static const char *
check_module(struct wsg_conf *cf, const struct wsg_module *m, const char *path)
{
    /* abi and size first: nothing else of the struct is trusted before */
    if (m->abi != WSG_MODULE_ABI) {
        return wsg_conf_phrase(cf,
                               "!\"load_module\" directive: \"%s\" was "
                               "built for module ABI %u, this wsgate "
                               "has ABI %u",
                               path, m->abi, WSG_MODULE_ABI);
    }
    if (m->size != sizeof(struct wsg_module)) {
        return wsg_conf_phrase(cf,
                               "!\"load_module\" directive: \"%s\" has "
                               "a struct wsg_module of %u bytes, this "
                               "wsgate expects %zu",
                               path, m->size, sizeof(struct wsg_module));
    }
    if (m->name == NULL || m->name[0] == '\0') {
        return wsg_conf_phrase(cf,
                               "!\"load_module\" directive: \"%s\" "
                               "has a module without a name",
                               path);
    }
    for (size_t i = 0; i < cf->cycle->nmodules; i++) {
        if (strcmp(cf->cycle->modules[i]->name, m->name) == 0) {
            return wsg_conf_phrase(cf,
                                   "!\"load_module\" directive: module "
                                   "\"%s\" is already loaded",
                                   m->name);
        }
    }
    for (const struct wsg_directive *d = m->directives; d && d->name; d++) {
        const struct wsg_module *o = clash(cf->cycle, d);
        if (o != NULL) {
            return wsg_conf_phrase(cf,
                                   "!\"load_module\" directive: module "
                                   "\"%s\" defines \"%s\", which "
                                   "module \"%s\" defines already",
                                   m->name, d->name, o->name);
        }
    }
    return NULL;
}

/*
 * load_module PATH: a module built as a shared object. The handle is never
 * closed: old workers may still run its code, and a reload that names the
 * same path gets the same (already loaded) object back.
 */
static const char *
load_module(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    char *path = wsg_conf_full_path(cf, cf->args[1].p);

    (void) d;
    (void) conf;
    if (cf->cycle->modules_frozen) {
        return "must come before any \"server\" or \"upstream\" block";
    }
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        return wsg_conf_phrase(cf, "cannot load \"%s\": %s", path, dlerror());
    }
    const struct wsg_module *m = dlsym(handle, "wsg_module");
    const char *why = m == NULL ? NULL : check_module(cf, m, path);
    if (m == NULL || why != NULL) {
        /* a refused object is not kept: nothing of it may run later */
        dlclose(handle);
        return m == NULL ? wsg_conf_phrase(cf,
                                           "!\"load_module\" directive: "
                                           "\"%s\" has no \"wsg_module\" "
                                           "symbol",
                                           path)
                         : why;
    }
    add_module(cf, m);
    return NULL;
}

unsigned
wsg_cycle_workers(const struct wsg_cycle *cycle)
{
    const struct wsg_core_conf *ccf = wsg_core_conf(cycle);

    if (ccf->worker_processes > 0) {
        return (unsigned) ccf->worker_processes;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        return 1;
    }
    return n > WSG_WORKERS_MAX ? WSG_WORKERS_MAX : (unsigned) n;
}

struct wsg_log_file *
wsg_cycle_log_file(struct wsg_cycle *cycle, const char *path)
{
    for (struct wsg_log_file *f = cycle->files; f != NULL; f = f->next) {
        if ((path == NULL && f->path == NULL) ||
            (path != NULL && f->path != NULL && strcmp(path, f->path) == 0)) {
            return f;
        }
    }
    struct wsg_log_file *f = wsg_arena_alloc(cycle->arena, sizeof(*f));
    f->path = path ? wsg_arena_strdup(cycle->arena, path) : NULL;
    f->fd = path ? -1 : STDERR_FILENO;
    f->next = cycle->files;
    cycle->files = f;
    return f;
}

/* Opens every registered log file; returns 0 or WSG_ERROR with <err>. */
static int
open_files(struct wsg_cycle *cycle, char *err, size_t errlen)
{
    for (struct wsg_log_file *f = cycle->files; f != NULL; f = f->next) {
        if (f->path == NULL || f->fd != -1) {
            continue;
        }
        f->fd = wsg_log_open(f->path);
        if (f->fd == -1) {
            int e = errno;
            snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", f->path, e,
                     strerror(e));
            return WSG_ERROR;
        }
    }
    return 0;
}

void
wsg_cycle_add_cleanup(struct wsg_cycle *cycle, void (*fn)(void *), void *data)
{
    struct wsg_cycle_cleanup *c = wsg_arena_alloc(cycle->arena, sizeof(*c));

    c->fn = fn;
    c->data = data;
    c->next = cycle->cleanups;
    cycle->cleanups = c;
}

void
wsg_cycle_free(struct wsg_cycle *cycle)
{
    if (cycle == NULL) {
        return;
    }
    for (struct wsg_cycle_cleanup *c = cycle->cleanups; c != NULL;
         c = c->next) {
        c->fn(c->data);
    }
    for (struct wsg_log_file *f = cycle->files; f != NULL; f = f->next) {
        if (f->path != NULL && f->fd != -1) {
            close(f->fd);
            f->fd = -1;
        }
    }
    wsg_arena_free(cycle->arena);
}

/* Creates every module's configuration of the main level. */
static struct wsg_conf_ctx *
main_ctx(struct wsg_conf *cf)
{
    struct wsg_cycle *cycle = cf->cycle;
    struct wsg_conf_ctx *ctx = wsg_arena_alloc(cf->arena, sizeof(*ctx));
    size_t n = cycle->nmodules;

    ctx->main_conf = wsg_arena_alloc(cf->arena, n * sizeof(void *));
    ctx->srv_conf = wsg_arena_alloc(cf->arena, n * sizeof(void *));
    ctx->loc_conf = wsg_arena_alloc(cf->arena, n * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        const struct wsg_module *m = cycle->modules[i];
        if (m->create_main_conf != NULL) {
            ctx->main_conf[i] = m->create_main_conf(cf);
        }
        if (m->create_srv_conf != NULL) {
            ctx->srv_conf[i] = m->create_srv_conf(cf);
        }
        if (m->create_loc_conf != NULL) {
            ctx->loc_conf[i] = m->create_loc_conf(cf);
        }
    }
    return ctx;
}

static int
parse_all(struct wsg_conf *cf, const char *params)
{
    if (params != NULL && wsg_conf_parse_buffer(cf, "command line", params,
                                                strlen(params)) != 0) {
        return WSG_ERROR;
    }
    if (wsg_conf_parse_file(cf, cf->cycle->conf_file) != 0) {
        return WSG_ERROR;
    }
    for (size_t i = 0; i < cf->cycle->nmodules; i++) {
        const struct wsg_module *m = cf->cycle->modules[i];
        if (m->init_main_conf == NULL) {
            continue;
        }
        const char *rv = m->init_main_conf(cf, cf->ctx->main_conf[i]);
        if (rv != NULL) {
            if (rv != WSG_CONF_ERROR_SET) {
                wsg_conf_error(cf, "%s", rv[0] == '!' ? rv + 1 : rv);
            }
            return WSG_ERROR;
        }
    }
    return 0;
}

struct wsg_cycle *
wsg_cycle_load(const char *prefix, const char *conf_file, const char *params,
               bool open_log_files, char *err, size_t errlen)
{
    struct wsg_arena *arena = wsg_arena_new();
    struct wsg_cycle *cycle = wsg_arena_alloc(arena, sizeof(*cycle));

    cycle->arena = arena;
    cycle->prefix = wsg_arena_strdup(arena, prefix);
    cycle->conf_file = wsg_arena_strdup(arena, conf_file);
    cycle->nmodules = wsg_builtin_nmodules;
    cycle->modules =
        wsg_arena_alloc(arena, cycle->nmodules * sizeof(cycle->modules[0]));
    for (size_t i = 0; i < cycle->nmodules; i++) {
        cycle->modules[i] = wsg_builtin_modules[i];
    }

    struct wsg_conf cf = {0};
    cf.cycle = cycle;
    cf.arena = arena;
    cf.ctx_type = WSG_CTX_MAIN;
    cf.ctx = main_ctx(&cf);
    cycle->ctx = cf.ctx;
    cycle->main_conf = cf.ctx->main_conf;

    if (parse_all(&cf, params) != 0) {
        snprintf(err, errlen, "%s", cf.error ? cf.error : "unknown error");
        wsg_cycle_free(cycle);
        return NULL;
    }
    if (open_log_files && open_files(cycle, err, errlen) != 0) {
        wsg_cycle_free(cycle);
        return NULL;
    }
    const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
    cycle->log.level = ccf->error_log_level;
    cycle->log.file = wsg_cycle_log_file(cycle, ccf->error_log_path);
    return cycle;
}
