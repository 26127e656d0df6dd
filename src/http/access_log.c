/*
 * Access log lines. Text:
 *   REMOTE - [TIME] "METHOD PATH" STATUS BYTES_IN BYTES_OUT DURATION
 *   MSGS_IN MSGS_OUT CLOSE_CODE
 * (CLOSE_CODE "-" when no WebSocket close code applies). JSON, one object
 * per line, strings escaped by jansson:
 *   {"time":..., "remote":..., "server":..., "method":..., "path":...,
 *    "status":..., "bytes_in":..., "bytes_out":..., "duration_ms":...,
 *    "messages_in":..., "messages_out":..., "close_code":... or null}
 * A connection that never sent a whole request logs "-" for method and
 * path and status 0, so slow or aborted clients still leave a trace.
 */
#include "config.h"

#include "http/access_log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cycle.h"
#include "http/http_conf.h"
#include "net/conn.h"
#include "process/process.h"
#include "process/worker.h"

#define LINE_MAX_TEXT 4096

static void
put_line(const struct wsg_log_file *f, const char *line, size_t len,
         const struct wsg_conn *c)
{
    if (write(f->fd, line, len) == -1) {
        wsg_log(WSG_LOG_ALERT, &c->w->cycle->log, errno,
                "write() to access log \"%s\" failed",
                f->path ? f->path : "stderr");
    }
}

/* The path printed for <c>: control bytes would forge lines, so escape. */
static void
safe_copy(char *dst, size_t dstlen, const char *src)
{
    size_t n = 0;

    for (; *src != '\0' && n + 5 < dstlen; src++) {
        unsigned char ch = (unsigned char) *src;
        if (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f) {
            n += (size_t) snprintf(dst + n, dstlen - n, "\\x%02X", ch);
        } else {
            dst[n++] = (char) ch;
        }
    }
    dst[n] = '\0';
}

void
wsg_access_log_write(const struct wsg_conn *c)
{
    const struct wsg_http_srv_conf *scf = c->addr->default_server;
    const struct wsg_http_loc_conf *lcf = wsg_http_loc_conf(scf->ctx->loc_conf);

    if (lcf->access_log == NULL) {
        return;
    }
    uint64_t ms = wsg_process_now_ms() - c->start_ms;
    char when[64];
    struct tm tm;
    localtime_r(&c->start.tv_sec, &tm);

    if (lcf->access_log_json) {
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm);
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:o}",
            "time", when, "remote", c->peer, "server", c->addr->opt.text,
            "method", c->method ? c->method : "-", "path",
            c->path ? c->path : "-", "status", c->status, "bytes_in",
            (json_int_t) c->bytes_in, "bytes_out", (json_int_t) c->bytes_out,
            "duration_ms", (json_int_t) ms, "messages_in",
            (json_int_t) c->msgs_in, "messages_out", (json_int_t) c->msgs_out,
            "close_code",
            c->close_code ? json_integer(c->close_code) : json_null());
        if (o == NULL) {
            return;
        }
        char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(o);
        if (s == NULL) {
            return;
        }
        size_t len = strlen(s);
        s[len] = '\n';
        put_line(lcf->access_log, s, len + 1, c);
        free(s);
        return;
    }

    char method[64], path[1024], line[LINE_MAX_TEXT];
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S %z", &tm);
    safe_copy(method, sizeof(method), c->method ? c->method : "-");
    safe_copy(path, sizeof(path), c->path ? c->path : "-");
    char code[8] = "-";
    if (c->close_code != 0) {
        snprintf(code, sizeof(code), "%u", (unsigned) c->close_code);
    }
    int n = snprintf(
        line, sizeof(line),
        "%s - [%s] \"%s %s\" %d %llu %llu %llu.%03llu %llu %llu "
        "%s\n",
        c->peer, when, method, path, c->status,
        (unsigned long long) c->bytes_in, (unsigned long long) c->bytes_out,
        (unsigned long long) (ms / 1000), (unsigned long long) (ms % 1000),
        (unsigned long long) c->msgs_in, (unsigned long long) c->msgs_out,
        code);
    if (n > 0) {
        put_line(lcf->access_log, line,
                 (size_t) n < sizeof(line) ? (size_t) n : sizeof(line) - 1, c);
    }
}
