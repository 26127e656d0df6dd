/*
 * The error log: nginx's levels and wording, one write(2) per line so lines
 * from several processes appending to one file never interleave. A level
 * test comes first, so a filtered call evaluates none of its arguments.
 */
#ifndef WSG_LOG_H
#define WSG_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

enum wsg_log_level {
    WSG_LOG_EMERG = 1,
    WSG_LOG_ALERT,
    WSG_LOG_CRIT,
    WSG_LOG_ERR,
    WSG_LOG_WARN,
    WSG_LOG_NOTICE,
    WSG_LOG_INFO,
    WSG_LOG_DEBUG,
};

/* An open log target. Its fd number is stable across reopen (dup2). */
struct wsg_log_file {
    struct wsg_log_file *next; /* in the owning config's list */
    char *path;                /* absolute; NULL means stderr */
    int fd;
};

struct wsg_log;

/* Appends context (", client: ...") to <buf>; returns bytes written. */
typedef size_t (*wsg_log_ctx_fn)(const struct wsg_log *log, char *buf,
                                 size_t len);

struct wsg_log {
    unsigned level;            /* highest level written */
    struct wsg_log_file *file; /* borrowed from the config */
    uint64_t conn_id;          /* printed as "*<id>"; 0 for none */
    const char *action;        /* " while <action>"; NULL for none */
    wsg_log_ctx_fn handler;    /* NULL for none */
    const void *data;          /* for <handler> */
};

/* The process's error log; before a config is loaded it writes to stderr. */
extern struct wsg_log *wsg_log_main;

/* The built-in stderr log (level notice), for before and after a config. */
struct wsg_log *wsg_log_stderr(void);

#define wsg_log(lvl, log, err, ...)                                            \
    do {                                                                       \
        if ((log)->level >= (unsigned) (lvl)) {                                \
            wsg_log_write((lvl), (log), (err), __VA_ARGS__);                   \
        }                                                                      \
    } while (0)

/*
 * An invariant, always checked (never peer input): on failure it logs an
 * alert with the place and aborts; the master starts a new worker.
 */
#define WSG_ASSERT(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            wsg_log_write(WSG_LOG_ALERT, wsg_log_main, 0,                      \
                          "assertion \"%s\" failed at %s:%d", #cond, __FILE__, \
                          __LINE__);                                           \
            abort();                                                           \
        }                                                                      \
    } while (0)

/*
 * Formats and writes one line: "YYYY/MM/DD HH:MM:SS [level] pid: *id msg
 * (errno: strerror) while action, context". A non-zero <err> appends the
 * errno text. Never fails: a line that cannot be written is lost.
 */
void wsg_log_write(unsigned level, const struct wsg_log *log, int err,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Returns the level named <name> ("debug" ... "emerg"), or 0. */
unsigned wsg_log_level_parse(const char *name, size_t len);
const char *wsg_log_level_name(unsigned level);

/*
 * Opens <path> for appending (O_APPEND|O_CLOEXEC, mode 0644), or stderr for
 * NULL. Returns the fd, or -1 with errno set.
 */
int wsg_log_open(const char *path);

/*
 * Reopens every file of the list <head> in place: a rotated file is
 * replaced by a fresh one at the same path, on the same fd number. When
 * <uid> is not -1 the new files are given to that user first, so workers
 * that dropped privileges can still write them. Failures are logged to
 * <log> and leave that file on its old fd.
 */
void wsg_log_reopen_all(struct wsg_log_file *head, long uid,
                        const struct wsg_log *log);

#endif
