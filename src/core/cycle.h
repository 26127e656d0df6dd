/*
 * A cycle is one loaded configuration and everything built from it: the
 * arena, the per-module configuration, the log files. The master builds a
 * new cycle on reload and frees the old one only once the new one is
 * complete; a failed build leaves the running cycle untouched.
 */
#ifndef WSG_CYCLE_H
#define WSG_CYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/log.h"
#include "core/module.h"

struct wsg_arena;

#define WSG_WORKERS_MAX 64

/* Main-context settings of the core module. */
struct wsg_core_conf {
    int daemon;               /* flag */
    int64_t worker_processes; /* 0 means auto (one per CPU) */
    char *pid_path;           /* absolute */
    char *user;               /* NULL: no switch */
    char *group;
    uid_t uid;
    gid_t gid;
    int64_t worker_rlimit_nofile; /* 0: leave as is */
    int affinity_auto;            /* flag: worker i on CPU i % ncpu */
    uint64_t *affinity_masks;     /* explicit masks, one per worker */
    size_t naffinity;
    const char *affinity_file; /* where the masks were given */
    unsigned affinity_line;
    uint64_t worker_shutdown_timeout_ms;
    int64_t worker_connections;
    bool events_seen;
    char *error_log_path; /* absolute; NULL means stderr */
    unsigned error_log_level;
};

/* Run when the cycle is freed, newest first (e.g. SSL_CTX_free). */
struct wsg_cycle_cleanup {
    struct wsg_cycle_cleanup *next;
    void (*fn)(void *data);
    void *data;
};

struct wsg_cycle {
    struct wsg_arena *arena;
    const char *prefix;    /* absolute, with a trailing '/' */
    const char *conf_file; /* absolute */
    const struct wsg_module **modules;
    size_t nmodules;
    void **main_conf;           /* per module, by index */
    struct wsg_conf_ctx *ctx;   /* the main context's confs */
    struct wsg_log log;         /* the error log of this config */
    struct wsg_log_file *files; /* every log file this cycle opened */
    struct wsg_cycle_cleanup *cleanups;
    bool modules_frozen; /* a server or upstream block was read: the
                            module list can no longer grow */
};

extern const struct wsg_module wsg_core_module;

static inline struct wsg_core_conf *
wsg_core_conf(const struct wsg_cycle *cycle)
{
    return cycle->main_conf[WSG_CORE_MODULE_INDEX];
}

/*
 * Builds a cycle from <conf_file> under <prefix> (both absolute), with the
 * -g string <params> (may be NULL) parsed first. Log files are opened only
 * when <open_files> is set (not for -t or -s). On failure returns NULL and
 * copies the message into <err> (<errlen> bytes).
 */
struct wsg_cycle *wsg_cycle_load(const char *prefix, const char *conf_file,
                                 const char *params, bool open_files, char *err,
                                 size_t errlen);

/* Frees <cycle> and closes the files it opened; accepts NULL. */
void wsg_cycle_free(struct wsg_cycle *cycle);

/*
 * Finds or registers the log file <path> (absolute; NULL for stderr) in
 * <cycle>'s list; files are opened once the whole config has parsed, so a
 * config error leaves no file behind. Returns the entry (never NULL).
 */
struct wsg_log_file *wsg_cycle_log_file(struct wsg_cycle *cycle,
                                        const char *path);

/* Registers <fn>(<data>) to run when <cycle> is freed. */
void wsg_cycle_add_cleanup(struct wsg_cycle *cycle, void (*fn)(void *),
                           void *data);

/* The number of workers <cycle> asks for, "auto" resolved. */
unsigned wsg_cycle_workers(const struct wsg_cycle *cycle);

#endif
