/*
 * Error log writer. The time prefix is cached per second; a line is built in
 * a stack buffer and written with a single write(2), which O_APPEND makes
 * atomic for lines this short, so master and workers can share the file.
 */
#include "config.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "wsgate_module.h"

#define LOG_LINE_MAX 2048

static struct wsg_log_file stderr_file = {NULL, NULL, STDERR_FILENO};
static struct wsg_log stderr_log = {WSG_LOG_NOTICE, &stderr_file, 0,
                                    NULL,           NULL,         NULL};

struct wsg_log *wsg_log_main = &stderr_log;

struct wsg_log *
wsg_log_stderr(void)
{
    return &stderr_log;
}

static const char *const level_names[] = {
    "", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

unsigned
wsg_log_level_parse(const char *name, size_t len)
{
    for (unsigned i = 1; i < WSG_NELEMS(level_names); i++) {
        if (strlen(level_names[i]) == len &&
            memcmp(level_names[i], name, len) == 0) {
            return i;
        }
    }
    return 0;
}

const char *
wsg_log_level_name(unsigned level)
{
    return level < WSG_NELEMS(level_names) ? level_names[level] : "?";
}

static size_t
time_prefix(char *buf, size_t len)
{
    static time_t cached_sec = -1;
    static char cached[32];
    static size_t cached_len;
    struct timeval tv;

    gettimeofday(&tv, NULL);
    if (tv.tv_sec != cached_sec) {
        struct tm tm;
        localtime_r(&tv.tv_sec, &tm);
        cached_len = strftime(cached, sizeof(cached), "%Y/%m/%d %H:%M:%S", &tm);
        cached_sec = tv.tv_sec;
    }
    size_t n = cached_len < len ? cached_len : len;
    memcpy(buf, cached, n);
    return n;
}

/* snprintf that clamps to the space left and never returns past <len>. */
static size_t append(char *buf, size_t used, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t
append(char *buf, size_t used, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (used >= len) {
        return len;
    }
    va_start(ap, fmt);
    int n = vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return used;
    }
    return (size_t) n >= len - used ? len - 1 : used + (size_t) n;
}

void
wsg_log_write(unsigned level, const struct wsg_log *log, int err,
              const char *fmt, ...)
{
    char buf[LOG_LINE_MAX];
    /* keep room for the newline that always ends the line */
    const size_t len = sizeof(buf) - 1;
    va_list ap;
    int saved_errno = errno;

    size_t n = time_prefix(buf, len);
    n = append(buf, n, len, " [%s] %d: ", wsg_log_level_name(level),
               (int) getpid());
    if (log->conn_id != 0) {
        n = append(buf, n, len, "*%llu ", (unsigned long long) log->conn_id);
    }
    if (n < len) {
        va_start(ap, fmt);
        int k = vsnprintf(buf + n, len - n, fmt, ap);
        va_end(ap);
        if (k > 0) {
            n = (size_t) k >= len - n ? len - 1 : n + (size_t) k;
        }
    }
    if (err != 0) {
        n = append(buf, n, len, " (%d: %s)", err, strerror(err));
    }
    if (log->action != NULL) {
        n = append(buf, n, len, " while %s", log->action);
    }
    if (log->handler != NULL && n < len) {
        n += log->handler(log, buf + n, len - n);
    }
    if (n > len) {
        n = len;
    }
    buf[n++] = '\n';

    int fd = log->file != NULL ? log->file->fd : STDERR_FILENO;
    if (write(fd, buf, n) == -1) {
        /* nowhere to report a failing log; the line is lost */
    }
    errno = saved_errno;
}

int
wsg_log_open(const char *path)
{
    if (path == NULL) {
        return STDERR_FILENO;
    }
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

void
wsg_log_reopen_all(struct wsg_log_file *head, long uid,
                   const struct wsg_log *log)
{
    for (struct wsg_log_file *f = head; f != NULL; f = f->next) {
        if (f->path == NULL) {
            continue;
        }
        int fd = wsg_log_open(f->path);
        if (fd == -1) {
            wsg_log(WSG_LOG_ALERT, log, errno, "open() \"%s\" failed", f->path);
            continue;
        }
        if (uid != -1 && fchown(fd, (uid_t) uid, (gid_t) -1) == -1) {
            wsg_log(WSG_LOG_ALERT, log, errno, "fchown() \"%s\" failed",
                    f->path);
        }
        /* dup3 keeps the fd number, so every holder sees the new file */
        if (dup3(fd, f->fd, O_CLOEXEC) == -1) {
            wsg_log(WSG_LOG_ALERT, log, errno, "dup3() \"%s\" failed", f->path);
        }
        close(fd);
    }
}

_Static_assert(WSG_LOG_LEVEL_ERR == WSG_LOG_ERR &&
                   WSG_LOG_LEVEL_WARN == WSG_LOG_WARN &&
                   WSG_LOG_LEVEL_NOTICE == WSG_LOG_NOTICE &&
                   WSG_LOG_LEVEL_INFO == WSG_LOG_INFO &&
                   WSG_LOG_LEVEL_DEBUG == WSG_LOG_DEBUG,
               "the module API's log levels are the error_log levels");
