/*
 * Tests of the directives parser (src/core/conf.h) through the loader
 * wsg_cycle_load() on files in a temp dir: stored values, defaults, and the
 * exact "FILE:LINE: message" of every error of the parser and its modules.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/conf.h"
#include "core/core.h"
#include "core/cycle.h"
#include "core/log.h"
#include "http/http_conf.h"
#include "tap.h"

static char dir[64];        /* the temp dir */
static char prefix[80];     /* dir with a trailing '/' */
static char conf_path[112]; /* prefix + "wsgate.conf" */
static char err[2048];      /* the last load's error */

static void
die(const char *what)
{
    perror(what);
    exit(2);
}

/*
 * Returns <tpl> with "${conf}" replaced by the config file's path and
 * "${prefix}" by the prefix. The result lives until the fourth next call.
 */
static const char *
expand(const char *tpl)
{
    static char ring[4][1024];
    static unsigned next;
    char *out = ring[next++ % 4];
    size_t n = 0;

    while (*tpl != '\0' && n < sizeof(ring[0]) - 1) {
        const char *with = NULL;
        size_t skip = 0;
        if (strncmp(tpl, "${conf}", 7) == 0) {
            with = conf_path;
            skip = 7;
        } else if (strncmp(tpl, "${prefix}", 9) == 0) {
            with = prefix;
            skip = 9;
        }
        if (with == NULL) {
            out[n++] = *tpl++;
            continue;
        }
        n += (size_t) snprintf(out + n, sizeof(ring[0]) - n, "%s", with);
        tpl += skip;
    }
    out[n] = '\0';
    return out;
}

/* Writes <len> bytes of <buf> to <name> under the prefix. */
static void
write_len(const char *name, const char *buf, size_t len)
{
    char path[256];

    snprintf(path, sizeof(path), "%s%s", prefix, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        die(path);
    }
    if (write(fd, buf, len) != (ssize_t) len) {
        die("write");
    }
    close(fd);
}

static void
write_file(const char *name, const char *text)
{
    write_len(name, text, strlen(text));
}

static void
make_dir(const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s%s", prefix, name);
    if (mkdir(path, 0755) == -1 && errno != EEXIST) {
        die(path);
    }
}

/* Writes <text> as the config file and loads it with the -g <params>. */
static struct wsg_cycle *
load(const char *params, const char *text)
{
    write_file("wsgate.conf", text);
    err[0] = '\0';
    return wsg_cycle_load(prefix, conf_path, params, false, err, sizeof(err));
}

/* Loads <text> and checks it is accepted; the caller frees the cycle. */
static struct wsg_cycle *
loads(const char *params, const char *text, const char *name)
{
    struct wsg_cycle *cycle = load(params, text);

    if (!ok(cycle != NULL, "%s: loads", name)) {
        note("error: %s", err);
    }
    return cycle;
}

/* Loads <text> and checks it fails with exactly <expected> (expanded). */
static void
fails(const char *params, const char *text, const char *expected,
      const char *name)
{
    struct wsg_cycle *cycle = load(params, text);

    if (ok(cycle == NULL, "%s: refused", name)) {
        is_str(err, expand(expected), "%s: message", name);
    }
    wsg_cycle_free(cycle);
}

static struct wsg_http_main_conf *
http(const struct wsg_cycle *cycle)
{
    return wsg_http_main_conf(cycle->main_conf);
}

/* The server-level defaults of server <i>. */
static struct wsg_http_loc_conf *
srv_loc(const struct wsg_cycle *cycle, size_t i)
{
    return wsg_http_loc_conf(http(cycle)->servers[i]->ctx->loc_conf);
}

static struct wsg_http_addr *
find_addr(const struct wsg_cycle *cycle, const char *text)
{
    for (struct wsg_http_addr *a = http(cycle)->addrs; a != NULL; a = a->next) {
        if (strcmp(a->opt.text, text) == 0) {
            return a;
        }
    }
    return NULL;
}

static void
test_defaults(void)
{
    struct wsg_cycle *cycle = loads(NULL, "", "an empty file");

    if (cycle == NULL) {
        return;
    }
    const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
    is_int(ccf->daemon, 1, "default: daemon on");
    is_int(ccf->worker_processes, 1, "default: worker_processes 1");
    is_int(wsg_cycle_workers(cycle), 1, "default: one worker");
    is_int(ccf->worker_connections, 1024, "default: worker_connections 1024");
    is_uint(ccf->worker_shutdown_timeout_ms, 30000,
            "default: worker_shutdown_timeout 30s");
    is_int(ccf->worker_rlimit_nofile, 0, "default: rlimit left as is");
    is_int(ccf->affinity_auto, 0, "default: no auto affinity");
    is_int(ccf->naffinity, 0, "default: no affinity masks");
    is_str(ccf->user, NULL, "default: no user switch");
    is_str(ccf->pid_path, expand("${prefix}logs/wsgate.pid"),
           "default: pid under the prefix");
    is_str(ccf->error_log_path, expand("${prefix}logs/error.log"),
           "default: error_log under the prefix");
    is_int(ccf->error_log_level, WSG_LOG_ERR, "default: error_log level");
    is_int(cycle->log.level, WSG_LOG_ERR, "the cycle's log has that level");
    ok(cycle->log.file != NULL &&
           strcmp(cycle->log.file->path, ccf->error_log_path) == 0,
       "the cycle's log is that file");
    ok(cycle->log.file != NULL && cycle->log.file->fd == -1,
       "and it is not opened when open_files is false");
    is_int(http(cycle)->nservers, 0, "default: no servers");
    is_int(http(cycle)->naddrs, 0, "default: no addresses");
    is_str(cycle->prefix, prefix, "the cycle keeps its prefix");
    is_str(cycle->conf_file, conf_path, "and its file");
    wsg_cycle_free(cycle);

    cycle = loads(NULL, "# just a comment\n\n", "comments only");
    wsg_cycle_free(cycle);
}

static void
test_core_values(void)
{
    struct wsg_cycle *cycle = loads(NULL,
                                    "daemon off;\n"
                                    "worker_processes 4;\n"
                                    "pid run/w.pid;\n"
                                    "worker_rlimit_nofile 65536;\n"
                                    "worker_shutdown_timeout 1m30s;\n"
                                    "error_log /var/log/wsg.log debug;\n"
                                    "events {\n"
                                    "    worker_connections 4096;\n"
                                    "}\n",
                                    "core directives");

    if (cycle != NULL) {
        const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
        is_int(ccf->daemon, 0, "daemon off");
        is_int(ccf->worker_processes, 4, "worker_processes 4");
        is_int(wsg_cycle_workers(cycle), 4, "four workers");
        is_str(ccf->pid_path, expand("${prefix}run/w.pid"),
               "a relative pid path is under the prefix");
        is_int(ccf->worker_rlimit_nofile, 65536, "worker_rlimit_nofile");
        is_uint(ccf->worker_shutdown_timeout_ms, 90000,
                "worker_shutdown_timeout 1m30s");
        is_str(ccf->error_log_path, "/var/log/wsg.log",
               "an absolute error_log path is kept");
        is_int(ccf->error_log_level, WSG_LOG_DEBUG, "error_log level debug");
        is_int(cycle->log.level, WSG_LOG_DEBUG, "the cycle's log level");
        is_int(ccf->worker_connections, 4096, "worker_connections in events");
        ok(ccf->events_seen, "the events block is recorded");
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL,
                  "pid /run/wsgate.pid;\n"
                  "daemon \"on\";\n"
                  "worker_shutdown_timeout 10;\n"
                  "worker_processes 64;\n"
                  "events { worker_connections 1000000; }\n",
                  "more core values");
    if (cycle != NULL) {
        const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
        is_str(ccf->pid_path, "/run/wsgate.pid", "an absolute pid is kept");
        is_int(ccf->daemon, 1, "a quoted \"on\" is on");
        is_uint(ccf->worker_shutdown_timeout_ms, 10000,
                "a bare time is seconds");
        is_int(ccf->worker_processes, 64, "worker_processes 64 (the most)");
        is_int(ccf->worker_connections, 1000000,
               "worker_connections 1000000 (the most)");
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL, "worker_processes auto;\n", "worker_processes auto");
    if (cycle != NULL) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned want = n < 1 ? 1 : n > 64 ? 64 : (unsigned) n;
        is_int(wsg_core_conf(cycle)->worker_processes, 0,
               "auto is stored as 0");
        is_int(wsg_cycle_workers(cycle), want, "auto is one per CPU");
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL, "events {\n}\n", "an empty events block");
    if (cycle != NULL) {
        is_int(wsg_core_conf(cycle)->worker_connections, 1024,
               "an empty events block keeps the default");
        wsg_cycle_free(cycle);
    }
}

static void
test_core_errors(void)
{
    fails(NULL, "daemon yes;\n",
          "${conf}:1: \"daemon\" directive invalid value \"yes\", expecting "
          "\"on\" or \"off\"",
          "daemon yes");
    fails(NULL, "daemon ON;\n",
          "${conf}:1: \"daemon\" directive invalid value \"ON\", expecting "
          "\"on\" or \"off\"",
          "flags are lower case");
    fails(NULL, "daemon on;\ndaemon off;\n",
          "${conf}:2: \"daemon\" directive is duplicate", "daemon twice");

    static const char workers_msg[] =
        "${conf}:1: \"worker_processes\" directive invalid value \"%s\", "
        "expecting \"auto\" or a number from 1 to 64";
    static const char *const bad_workers[] = {
        "0", "65", "-1", "two", "1k", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_workers) / sizeof(bad_workers[0]); i++) {
        char text[64], msg[256];
        snprintf(text, sizeof(text), "worker_processes %s;\n", bad_workers[i]);
        snprintf(msg, sizeof(msg), workers_msg, bad_workers[i]);
        char name[64];
        snprintf(name, sizeof(name), "worker_processes %s", bad_workers[i]);
        fails(NULL, text, msg, name);
    }
    fails(NULL, "worker_processes auto;\nworker_processes 2;\n",
          "${conf}:2: \"worker_processes\" directive is duplicate",
          "worker_processes twice");

    fails(NULL, "pid \"\";\n",
          "${conf}:1: \"pid\" directive needs a non-empty path",
          "an empty pid");
    fails(NULL, "pid a.pid;\npid b.pid;\n",
          "${conf}:2: \"pid\" directive is duplicate", "pid twice");

    fails(NULL, "worker_rlimit_nofile 0;\n",
          "${conf}:1: \"worker_rlimit_nofile\" directive value \"0\" is out "
          "of range (1 to 1073741824)",
          "worker_rlimit_nofile below range");
    fails(NULL, "worker_rlimit_nofile 1073741825;\n",
          "${conf}:1: \"worker_rlimit_nofile\" directive value "
          "\"1073741825\" is out of range (1 to 1073741824)",
          "worker_rlimit_nofile above range");
    fails(NULL, "worker_rlimit_nofile lots;\n",
          "${conf}:1: \"worker_rlimit_nofile\" directive invalid number "
          "\"lots\"",
          "worker_rlimit_nofile not a number");
    fails(NULL, "worker_rlimit_nofile 64k;\n",
          "${conf}:1: \"worker_rlimit_nofile\" directive invalid number "
          "\"64k\"",
          "numbers take no suffix");
    fails(NULL, "worker_rlimit_nofile 9223372036854775808;\n",
          "${conf}:1: \"worker_rlimit_nofile\" directive invalid number "
          "\"9223372036854775808\"",
          "a number past INT64_MAX");
    fails(NULL, "worker_rlimit_nofile 1;\nworker_rlimit_nofile 1;\n",
          "${conf}:2: \"worker_rlimit_nofile\" directive is duplicate",
          "worker_rlimit_nofile twice");

    fails(NULL, "worker_shutdown_timeout 5x;\n",
          "${conf}:1: \"worker_shutdown_timeout\" directive invalid time "
          "\"5x\", expecting a number with a unit: ms, s, m, h or d",
          "a bad time");
    fails(NULL, "worker_shutdown_timeout 30s1m;\n",
          "${conf}:1: \"worker_shutdown_timeout\" directive invalid time "
          "\"30s1m\", expecting a number with a unit: ms, s, m, h or d",
          "time parts in the wrong order");
    fails(NULL, "worker_shutdown_timeout 213503982335d;\n",
          "${conf}:1: \"worker_shutdown_timeout\" directive invalid time "
          "\"213503982335d\", expecting a number with a unit: ms, s, m, h "
          "or d",
          "a time that overflows");
    fails(NULL, "worker_shutdown_timeout 1s;\nworker_shutdown_timeout 2s;\n",
          "${conf}:2: \"worker_shutdown_timeout\" directive is duplicate",
          "worker_shutdown_timeout twice");
    /* the largest time is the setter's "unset" mark: it must not pass */
    fails(NULL, "worker_shutdown_timeout 18446744073709551615ms;\n",
          "${conf}:1: \"worker_shutdown_timeout\" directive invalid time "
          "\"18446744073709551615ms\", expecting a number with a unit: ms, "
          "s, m, h or d",
          "a time equal to the unset mark");

    fails(NULL, "worker_connections 10;\n",
          "${conf}:1: \"worker_connections\" directive is not allowed in the "
          "main context",
          "worker_connections in main");
    fails(NULL, "events {\n    worker_connections 0;\n}\n",
          "${conf}:2: \"worker_connections\" directive value \"0\" is out of "
          "range (1 to 1000000)",
          "worker_connections 0");
    fails(NULL, "events {\n    worker_connections 1000001;\n}\n",
          "${conf}:2: \"worker_connections\" directive value \"1000001\" is "
          "out of range (1 to 1000000)",
          "worker_connections above range");
    fails(NULL,
          "events {\n    worker_connections 10;\n"
          "    worker_connections 20;\n}\n",
          "${conf}:3: \"worker_connections\" directive is duplicate",
          "worker_connections twice");
    fails(NULL, "events {\n}\nevents {\n}\n",
          "${conf}:3: \"events\" directive is duplicate", "events twice");
    fails(NULL, "events {\n    daemon off;\n}\n",
          "${conf}:2: \"daemon\" directive is not allowed in the events "
          "context",
          "daemon inside events");
    fails(NULL, "events x {\n}\n",
          "${conf}:1: invalid number of arguments in \"events\" directive",
          "events takes no argument");
}

static void
test_affinity(void)
{
    struct wsg_cycle *cycle = loads(
        NULL, "worker_processes 2;\nworker_cpu_affinity 01 10;\n", "masks");

    if (cycle != NULL) {
        const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
        is_int(ccf->naffinity, 2, "two masks");
        ok(ccf->naffinity == 2 && ccf->affinity_masks[0] == 1 &&
               ccf->affinity_masks[1] == 2,
           "the rightmost digit is CPU 0");
        is_int(ccf->affinity_auto, 0, "masks are not auto");
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL,
                  "worker_cpu_affinity "
                  "1000000000000000000000000000000000000000000000000000000000"
                  "000000 0110;\n",
                  "a 64-digit mask, and more masks than workers");
    if (cycle != NULL) {
        const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
        ok(ccf->naffinity == 2 &&
               ccf->affinity_masks[0] == (UINT64_C(1) << 63) &&
               ccf->affinity_masks[1] == 6,
           "the leftmost of 64 digits is CPU 63");
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL, "worker_cpu_affinity auto;\n", "affinity auto");
    if (cycle != NULL) {
        is_int(wsg_core_conf(cycle)->affinity_auto, 1, "auto is set");
        is_int(wsg_core_conf(cycle)->naffinity, 0, "with no masks");
        wsg_cycle_free(cycle);
    }

    static const char mask_msg[] =
        "${conf}:1: \"worker_cpu_affinity\" directive invalid mask \"%s\", "
        "expecting \"auto\" or masks of 0 and 1 with at least one 1";
    static const char *const bad_masks[] = {
        "0", "012", "0x1", "auto2",
        /* 65 digits, one more than a mask holds */
        "10000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof(bad_masks) / sizeof(bad_masks[0]); i++) {
        char text[128], msg[320], name[128];
        snprintf(text, sizeof(text), "worker_cpu_affinity 1 %s;\n",
                 bad_masks[i]);
        snprintf(msg, sizeof(msg), mask_msg, bad_masks[i]);
        snprintf(name, sizeof(name), "mask \"%.20s\"", bad_masks[i]);
        fails(NULL, text, msg, name);
    }
    fails(NULL, "worker_cpu_affinity auto 01;\n",
          "${conf}:1: \"worker_cpu_affinity\" directive takes \"auto\" alone",
          "auto with masks");
    fails(NULL, "worker_cpu_affinity auto;\nworker_cpu_affinity 1;\n",
          "${conf}:2: \"worker_cpu_affinity\" directive is duplicate",
          "worker_cpu_affinity twice");
    fails(NULL, "worker_processes 2;\nworker_cpu_affinity 01;\n",
          "${conf}:2: \"worker_cpu_affinity\" gives 1 masks for 2 worker "
          "processes",
          "fewer masks than workers");
}

static void
test_error_log(void)
{
    struct wsg_cycle *cycle = loads(NULL, "error_log stderr;\n", "stderr");

    if (cycle != NULL) {
        const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
        is_str(ccf->error_log_path, NULL, "stderr has no path");
        is_int(ccf->error_log_level, WSG_LOG_ERR,
               "the level defaults to error");
        ok(cycle->log.file != NULL && cycle->log.file->path == NULL &&
               cycle->log.file->fd == STDERR_FILENO,
           "the cycle logs to stderr");
        wsg_cycle_free(cycle);
    }

    static const char *const levels[] = {"",       "emerg", "alert",
                                         "crit",   "error", "warn",
                                         "notice", "info",  "debug"};
    for (unsigned i = 1; i < sizeof(levels) / sizeof(levels[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "error_log logs/e.log %s;\n", levels[i]);
        cycle = load(NULL, text);
        ok(cycle != NULL && wsg_core_conf(cycle)->error_log_level == i &&
               strcmp(wsg_core_conf(cycle)->error_log_path,
                      expand("${prefix}logs/e.log")) == 0,
           "error_log level %s", levels[i]);
        wsg_cycle_free(cycle);
    }

    fails(NULL, "error_log logs/e.log verbose;\n",
          "${conf}:1: \"error_log\" directive invalid level \"verbose\", "
          "expecting one of debug, info, notice, warn, error, crit, alert, "
          "emerg",
          "an unknown level");
    fails(NULL, "error_log logs/e.log ERROR;\n",
          "${conf}:1: \"error_log\" directive invalid level \"ERROR\", "
          "expecting one of debug, info, notice, warn, error, crit, alert, "
          "emerg",
          "levels are lower case");
    fails(NULL, "error_log \"\";\n",
          "${conf}:1: \"error_log\" directive needs a file name or "
          "\"stderr\"",
          "an empty error_log");
    fails(NULL, "error_log stderr;\nerror_log a.log;\n",
          "${conf}:2: \"error_log\" directive is duplicate", "error_log twice");
    fails(NULL, "error_log a b c;\n",
          "${conf}:1: invalid number of arguments in \"error_log\" directive",
          "error_log with three arguments");
}

static void
test_user(void)
{
    struct wsg_cycle *cycle = loads(NULL, "user root;\n", "user root");

    if (cycle != NULL) {
        const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
        is_str(ccf->user, "root", "the user is kept");
        is_int(ccf->uid, 0, "with its uid");
        is_int(ccf->gid, 0, "and its primary group");
        is_str(ccf->group, NULL, "no group named");
        wsg_cycle_free(cycle);
    }
    cycle = loads(NULL, "user root root;\n", "user and group");
    if (cycle != NULL) {
        is_str(wsg_core_conf(cycle)->group, "root", "the group is kept");
        wsg_cycle_free(cycle);
    }

    fails(NULL, "user wsg-no-such-user;\n",
          "${conf}:1: \"user\" directive names unknown user "
          "\"wsg-no-such-user\"",
          "an unknown user");
    fails(NULL, "user root wsg-no-such-group;\n",
          "${conf}:1: \"user\" directive names unknown group "
          "\"wsg-no-such-group\"",
          "an unknown group");
    fails(NULL, "user root;\nuser root;\n",
          "${conf}:2: \"user\" directive is duplicate", "user twice");
    fails(NULL, "user;\n",
          "${conf}:1: invalid number of arguments in \"user\" directive",
          "user without arguments");
    fails(NULL, "user a b c;\n",
          "${conf}:1: invalid number of arguments in \"user\" directive",
          "user with three arguments");
}

static void
test_syntax_errors(void)
{
    fails(NULL, "daemon off;\ndeamon on;\n",
          "${conf}:2: unknown directive \"deamon\"", "a misspelt directive");
    fails(NULL, "Daemon off;\n", "${conf}:1: unknown directive \"Daemon\"",
          "names are case-sensitive");
    fails(NULL, "daemon;\n",
          "${conf}:1: invalid number of arguments in \"daemon\" directive",
          "too few arguments");
    fails(NULL, "daemon on off;\n",
          "${conf}:1: invalid number of arguments in \"daemon\" directive",
          "too many arguments for the table");
    fails(NULL, "daemon on {\n}\n",
          "${conf}:1: directive \"daemon\" is not terminated by \";\"",
          "a block on a simple directive");
    fails(NULL, "events;\n",
          "${conf}:1: directive \"events\" has no opening \"{\"",
          "a block directive ended by \";\"");
    fails(NULL, "server;\n",
          "${conf}:1: directive \"server\" has no opening \"{\"",
          "server ended by \";\"");
    fails(NULL, "daemon off;\n}\n", "${conf}:2: unexpected \"}\"",
          "a stray \"}\"");
    fails(NULL, "events {\n    worker_connections 10\n}\n",
          "${conf}:2: unexpected \"}\", expecting \";\" after "
          "\"worker_connections\"",
          "a missing \";\" before \"}\"");
    fails(NULL, "events {\n    worker_connections 10;\n",
          "${conf}:3: unexpected end of file, expecting \"}\"",
          "an unclosed block");
    fails(NULL, "daemon off",
          "${conf}:1: unexpected end of file, expecting \";\" or \"}\"",
          "a missing \";\" at the end");
    fails(NULL, "daemon off;\n;\n", "${conf}:2: unexpected \";\"",
          "a lone \";\"");
    fails(NULL, "{\n}\n", "${conf}:1: unexpected \"{\"", "a lone \"{\"");
    fails(NULL, "\"daemon\" off;\n",
          "${conf}:1: unexpected quoted string, expecting a directive name",
          "a quoted directive name");
    fails(NULL, "# one\n# two\ndaemon \"off;\n",
          "${conf}:3: unexpected end of file, expecting \"",
          "an unterminated quote");
    fails(NULL, "pid 'a'b;\n",
          "${conf}:1: unexpected character after a quoted string",
          "a byte after a quote");
    fails(NULL, "pid a'b';\n", "${conf}:1: unexpected quote inside a word",
          "a quote inside a word");
    fails(NULL, "daemon off; # comment ; {\ndaemon on;\n",
          "${conf}:2: \"daemon\" directive is duplicate",
          "a comment hides what follows it on its line");

    /* the table allows 32 names; 33 overflow the parser's argument list */
    char text[512] = "server {\n    listen 8080;\n    server_name";
    for (int i = 0; i < 33; i++) {
        snprintf(text + strlen(text), sizeof(text) - strlen(text), " n%d", i);
    }
    strcat(text, ";\n}\n");
    fails(NULL, text,
          "${conf}:3: too many arguments in \"server_name\" directive",
          "33 arguments");
    char *cut = strstr(text, " n32;");
    memcpy(cut, ";\n}\n", 5);
    struct wsg_cycle *cycle = loads(NULL, text, "32 arguments");
    if (cycle != NULL) {
        is_int(http(cycle)->servers[0]->nnames, 32, "all 32 names are kept");
        wsg_cycle_free(cycle);
    }

    char nul[] = "daemon off;\0\n";
    write_len("wsgate.conf", nul, sizeof(nul) - 1);
    struct wsg_cycle *c =
        wsg_cycle_load(prefix, conf_path, NULL, false, err, sizeof(err));
    ok(c == NULL, "a NUL byte in the file is refused");
    is_str(err, expand("\"${conf}\" is not a text file (it holds a NUL byte)"),
           "and named");
    wsg_cycle_free(c);

    char missing[160], msg[400];
    snprintf(missing, sizeof(missing), "%snot-there.conf", prefix);
    c = wsg_cycle_load(prefix, missing, NULL, false, err, sizeof(err));
    snprintf(msg, sizeof(msg), "open() \"%s\" failed (%d: %s)", missing, ENOENT,
             strerror(ENOENT));
    ok(c == NULL, "a missing config file is refused");
    is_str(err, msg, "with open()'s reason");
    wsg_cycle_free(c);
}

static void
test_params(void)
{
    struct wsg_cycle *cycle =
        loads("daemon off; worker_processes 3;", "", "-g directives");

    if (cycle != NULL) {
        is_int(wsg_core_conf(cycle)->daemon, 0, "-g daemon off");
        is_int(wsg_core_conf(cycle)->worker_processes, 3,
               "-g worker_processes 3");
        wsg_cycle_free(cycle);
    }
    cycle = loads("events { worker_connections 77; }", "daemon off;\n",
                  "-g with a block, and a file");
    if (cycle != NULL) {
        is_int(wsg_core_conf(cycle)->worker_connections, 77,
               "-g may hold a block");
        is_int(wsg_core_conf(cycle)->daemon, 0, "and the file still counts");
        wsg_cycle_free(cycle);
    }

    fails("daemon off;", "# the file\ndaemon on;\n",
          "${conf}:2: \"daemon\" directive is duplicate",
          "-g first: the file's copy is the duplicate");
    fails("events { }", "events {\n}\n",
          "${conf}:1: \"events\" directive is duplicate",
          "an events block in -g and in the file");
    fails("daemon off; daemon on;", "",
          "command line:1: \"daemon\" directive is duplicate",
          "a duplicate within -g");
    fails("worker_processes 0;", "",
          "command line:1: \"worker_processes\" directive invalid value "
          "\"0\", expecting \"auto\" or a number from 1 to 64",
          "a bad value in -g");
    fails("bogus;", "", "command line:1: unknown directive \"bogus\"",
          "an unknown directive in -g");
    fails("daemon off", "",
          "command line:1: unexpected end of file, expecting \";\" or \"}\"",
          "-g without \";\"");
    fails("server { }", "",
          "command line:1: \"server\" block has no \"listen\" directive",
          "a server in -g is named as from the command line");
    fails("bogus;", "also bogus;\n",
          "command line:1: unknown directive \"bogus\"",
          "-g is parsed before the file");
}

static void
test_include(void)
{
    make_dir("conf.d");
    /* written out of order: the glob must sort them */
    write_file("conf.d/c.conf", "server {\n    listen 127.0.0.1:8083;\n"
                                "    server_name c;\n}\n");
    write_file("conf.d/a.conf", "server {\n    listen 127.0.0.1:8081;\n"
                                "    server_name a;\n}\n");
    write_file("conf.d/b.conf", "server {\n    listen 127.0.0.1:8082;\n"
                                "    server_name b;\n}\n");
    write_file("conf.d/notes.txt", "not a config\n");

    struct wsg_cycle *cycle =
        loads(NULL, "include conf.d/*.conf;\n", "include a glob");
    if (cycle != NULL) {
        struct wsg_http_main_conf *h = http(cycle);
        if (is_int(h->nservers, 3, "three files, three servers")) {
            ok(h->servers[0]->nnames == 1 &&
                   wsg_str_eq(h->servers[0]->names[0], "a") &&
                   h->servers[1]->nnames == 1 &&
                   wsg_str_eq(h->servers[1]->names[0], "b") &&
                   h->servers[2]->nnames == 1 &&
                   wsg_str_eq(h->servers[2]->names[0], "c"),
               "included in sorted order");
            is_str(h->servers[1]->file, expand("${prefix}conf.d/b.conf"),
                   "a server knows the file it came from");
            is_int(h->servers[1]->line, 1, "and its line there");
        }
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL, expand("include ${prefix}conf.d/a.conf;\n"),
                  "include an absolute path");
    if (cycle != NULL) {
        is_int(http(cycle)->nservers, 1, "one server from one file");
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL, "include conf.d/*.none;\ndaemon off;\n",
                  "a glob that matches nothing");
    if (cycle != NULL) {
        is_int(http(cycle)->nservers, 0, "includes nothing");
        is_int(wsg_core_conf(cycle)->daemon, 0, "and parsing goes on");
        wsg_cycle_free(cycle);
    }

    write_file("listen.inc", "listen 8080;\nserver_name inc;\n");
    cycle = loads(NULL, "server {\n    include listen.inc;\n}\n",
                  "include inside a server");
    if (cycle != NULL) {
        struct wsg_http_main_conf *h = http(cycle);
        ok(h->nservers == 1 && h->servers[0]->has_listen &&
               h->servers[0]->nnames == 1,
           "the included directives apply to the server");
        wsg_cycle_free(cycle);
    }

    write_file("bad.inc", "# a comment\n\nbogus;\n");
    fails(NULL, "daemon off;\ninclude bad.inc;\n",
          "${prefix}bad.inc:3: unknown directive \"bogus\"",
          "an error in an included file names that file and line");
    write_file("ok.inc", "daemon off;\n\n\n\n");
    fails(NULL, "include ok.inc;\n\n\ndaemon on;\n",
          "${conf}:4: \"daemon\" directive is duplicate",
          "after an include, errors name the including file again");
    write_file("main.inc", "daemon off;\n");
    fails(NULL, "server {\n    listen 8080;\n    include main.inc;\n}\n",
          "${prefix}main.inc:1: \"daemon\" directive is not allowed in the "
          "server context",
          "an included file is parsed in the including context");
    write_file("close.inc", "listen 8080;\n}\n");
    fails(NULL, "server {\n    include close.inc;\n}\n",
          "${prefix}close.inc:2: unexpected \"}\"",
          "an included file cannot close the including block");
    write_file("open.inc", "server {\n    listen 8080;\n");
    fails(NULL, "include open.inc;\n}\n",
          "${prefix}open.inc:3: unexpected end of file, expecting \"}\"",
          "an included file must close its own blocks");

    char msg[512];
    snprintf(msg, sizeof(msg),
             "${conf}:2: open() \"${prefix}missing.conf\" failed (%d: %s)",
             ENOENT, strerror(ENOENT));
    fails(NULL, "daemon off;\ninclude missing.conf;\n", msg,
          "include of a missing file");
    snprintf(msg, sizeof(msg),
             "${conf}:1: open() \"${prefix}conf.d\" failed (%d: %s)", EINVAL,
             strerror(EINVAL));
    fails(NULL, "include conf.d;\n", msg, "include of a directory");

    write_len("nul.inc", "daemon\0off;\n", 12);
    fails(NULL, "include nul.inc;\n",
          "${conf}:1: \"${prefix}nul.inc\" is not a text file (it holds a "
          "NUL byte)",
          "include of a file with a NUL");

    char big[160];
    snprintf(big, sizeof(big), "%sbig.inc", prefix);
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1 || ftruncate(fd, 16 * 1024 * 1024 + 1) == -1) {
        die(big);
    }
    close(fd);
    snprintf(msg, sizeof(msg),
             "${conf}:1: open() \"${prefix}big.inc\" failed (%d: %s)", EFBIG,
             strerror(EFBIG));
    fails(NULL, "include big.inc;\n", msg, "include of a file over 16 MiB");

    fails(NULL, "daemon off;\ninclude wsgate.conf;\n",
          "${conf}:1: \"daemon\" directive is duplicate",
          "a self-include sees its own directives again");
    fails(NULL, "include wsgate.conf;\n",
          "${conf}:1: include nested deeper than 16 files (a loop?)",
          "a self-include loop stops at 16 files");

    fails(NULL, "include;\n",
          "${conf}:1: invalid number of arguments in \"include\" directive",
          "include without a pattern");
    fails(NULL, "include a b;\n",
          "${conf}:1: invalid number of arguments in \"include\" directive",
          "include with two patterns");
    fails(NULL, "include a {\n}\n",
          "${conf}:1: directive \"include\" is not terminated by \";\"",
          "include with a block");
}

static void
test_server(void)
{
    struct wsg_cycle *cycle = loads(NULL,
                                    "server {\n"
                                    "    listen 8080;\n"
                                    "    server_name Example.COM www.x;\n"
                                    "    server_name more;\n"
                                    "}\n",
                                    "a minimal server");

    if (cycle != NULL) {
        struct wsg_http_main_conf *h = http(cycle);
        struct wsg_http_srv_conf *s = h->servers[0];
        is_int(h->nservers, 1, "one server");
        is_str(s->file, conf_path, "it knows its file");
        is_int(s->line, 1, "and line");
        ok(s->has_listen, "it has a listen");
        ok(s->nnames == 3 && wsg_str_eq(s->names[0], "example.com") &&
               wsg_str_eq(s->names[1], "www.x") &&
               wsg_str_eq(s->names[2], "more"),
           "server_name values accumulate, lower-cased");
        if (is_int(h->naddrs, 1, "one address")) {
            struct wsg_http_addr *a = h->addrs;
            const struct sockaddr_in *sin =
                (const struct sockaddr_in *) &a->opt.addr;
            is_str(a->opt.text, "0.0.0.0:8080", "a bare port is 0.0.0.0");
            ok(sin->sin_family == AF_INET && ntohs(sin->sin_port) == 8080 &&
                   sin->sin_addr.s_addr == htonl(INADDR_ANY),
               "as an IPv4 wildcard sockaddr");
            is_int(a->opt.backlog, 511, "default backlog 511");
            ok(!a->opt.reuseport, "no reuseport by default");
            is_int(a->opt.ipv6only, -1, "ipv6only left to the system");
            ok(!a->opt_set, "no options given");
            ok(a->nservers == 1 && a->servers[0] == s, "the server is on it");
            ok(a->default_server == s,
               "the first server is the default server");
        }
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL,
                  "server {\n    listen 8080;\n}\n"
                  "server {\n    listen *:8080;\n}\n"
                  "server {\n    listen 127.0.0.1:8080;\n"
                  "    listen [::1]:8080;\n}\n",
                  "listen forms");
    if (cycle != NULL) {
        struct wsg_http_main_conf *h = http(cycle);
        struct wsg_http_addr *any = find_addr(cycle, "0.0.0.0:8080");
        struct wsg_http_addr *lo = find_addr(cycle, "127.0.0.1:8080");
        struct wsg_http_addr *lo6 = find_addr(cycle, "[::1]:8080");
        is_int(h->naddrs, 3, "8080 and *:8080 are one address of three");
        ok(any != NULL && any->nservers == 2 &&
               any->servers[0] == h->servers[0] &&
               any->servers[1] == h->servers[1] &&
               any->default_server == h->servers[0],
           "two servers share the wildcard, first is default");
        ok(lo != NULL && lo->nservers == 1 && lo->servers[0] == h->servers[2],
           "127.0.0.1:8080 is its own address");
        ok(lo6 != NULL && lo6->opt.addr.ss_family == AF_INET6 &&
               lo6->opt.addrlen == sizeof(struct sockaddr_in6),
           "[::1]:8080 is an IPv6 address");
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL,
                  "server {\n    listen 8080;\n}\n"
                  "server {\n"
                  "    listen [::]:9000 backlog=128 reuseport ipv6only=on "
                  "default_server;\n"
                  "    listen 8080 default_server backlog=64 ipv6only=off;\n"
                  "}\n",
                  "listen options");
    if (cycle != NULL) {
        struct wsg_http_main_conf *h = http(cycle);
        struct wsg_http_addr *a = find_addr(cycle, "[::]:9000");
        struct wsg_http_addr *b = find_addr(cycle, "0.0.0.0:8080");
        ok(a != NULL && a->opt.backlog == 128 && a->opt.reuseport &&
               a->opt.ipv6only == 1 && a->opt_set,
           "backlog=, reuseport and ipv6only=on are kept");
        ok(a != NULL && a->default_server == h->servers[1],
           "default_server on a new address");
        ok(b != NULL && b->opt.backlog == 64 && !b->opt.reuseport &&
               b->opt.ipv6only == 0 && b->opt_set,
           "options from a later server apply to a shared address");
        ok(b != NULL && b->default_server == h->servers[1],
           "default_server overrides the first server");
        wsg_cycle_free(cycle);
    }

    fails(NULL, "listen 8080;\n",
          "${conf}:1: \"listen\" directive is not allowed in the main "
          "context",
          "listen in main");
    fails(NULL, "server {\n    listen 8080;\n    worker_processes 2;\n}\n",
          "${conf}:3: \"worker_processes\" directive is not allowed in the "
          "server context",
          "worker_processes in a server");
    fails(NULL, "server {\n    server {\n    }\n}\n",
          "${conf}:2: \"server\" directive is not allowed in the server "
          "context",
          "a server in a server");
    fails(NULL, "server {\n    listen 8080;\n    events {\n    }\n}\n",
          "${conf}:3: \"events\" directive is not allowed in the server "
          "context",
          "events in a server");
    fails(NULL, "server_name x;\n",
          "${conf}:1: \"server_name\" directive is not allowed in the main "
          "context",
          "server_name in main");
    fails(NULL, "server {\n    server_name x;\n}\n",
          "${conf}:1: \"server\" block has no \"listen\" directive",
          "a server without listen");
    fails(NULL, "server x {\n    listen 8080;\n}\n",
          "${conf}:1: invalid number of arguments in \"server\" directive",
          "server takes no argument");
    fails(NULL, "server {\n    listen;\n}\n",
          "${conf}:2: invalid number of arguments in \"listen\" directive",
          "listen without an address");
    fails(NULL, "server {\n    listen 8080 a b c d e f g h;\n}\n",
          "${conf}:2: invalid number of arguments in \"listen\" directive",
          "listen with eight options");

    static const char *const bad_ports[] = {
        "0", "70000", "65536", "127.0.0.1:0", "*:", "80x", "[::1]:99999"};
    for (size_t i = 0; i < sizeof(bad_ports) / sizeof(bad_ports[0]); i++) {
        char text[128], msg[256], name[64];
        snprintf(text, sizeof(text), "server {\n    listen %s;\n}\n",
                 bad_ports[i]);
        snprintf(msg, sizeof(msg),
                 "${conf}:2: \"listen\" directive address \"%s\" has an "
                 "invalid port, expecting 1 to 65535",
                 bad_ports[i]);
        snprintf(name, sizeof(name), "listen %s", bad_ports[i]);
        fails(NULL, text, msg, name);
    }
    fails(NULL, "server {\n    listen [::1]8080;\n}\n",
          "${conf}:2: \"listen\" directive address \"[::1]8080\" expecting "
          "\"[IPV6]:PORT\"",
          "listen [::1]8080");
    fails(NULL, "server {\n    listen :8080;\n}\n",
          "${conf}:2: \"listen\" directive address \":8080\" has an invalid "
          "host",
          "listen :8080");

    static const char *const bad_opts[] = {"backlog=", "fast", "ipv6only=yes",
                                           "Reuseport", "default"};
    for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
        char text[128], msg[256], name[64];
        snprintf(text, sizeof(text), "server {\n    listen 8080 %s;\n}\n",
                 bad_opts[i]);
        snprintf(msg, sizeof(msg),
                 "${conf}:2: \"listen\" directive has an invalid parameter "
                 "\"%s\"",
                 bad_opts[i]);
        snprintf(name, sizeof(name), "listen option %s", bad_opts[i]);
        fails(NULL, text, msg, name);
    }
    static const char *const bad_backlogs[] = {"0", "65536", "x", "-1"};
    for (size_t i = 0; i < sizeof(bad_backlogs) / sizeof(bad_backlogs[0]);
         i++) {
        char text[128], msg[256], name[64];
        snprintf(text, sizeof(text),
                 "server {\n    listen 8080 backlog=%s;\n}\n", bad_backlogs[i]);
        snprintf(msg, sizeof(msg),
                 "${conf}:2: \"listen\" directive has an invalid backlog "
                 "\"%s\", expecting 1 to 65535",
                 bad_backlogs[i]);
        snprintf(name, sizeof(name), "backlog=%s", bad_backlogs[i]);
        fails(NULL, text, msg, name);
    }

    fails(NULL,
          "server {\n    listen 8080 default_server;\n}\n"
          "server {\n    listen *:8080 default_server;\n}\n",
          "${conf}:5: a duplicate default server for 0.0.0.0:8080",
          "two default servers on one address");
    fails(NULL,
          "server {\n    listen 8080 backlog=10;\n}\n"
          "server {\n    listen 8080 reuseport;\n}\n",
          "${conf}:5: duplicate listen options for 0.0.0.0:8080",
          "options on two listens of one address");
    fails(NULL, "server {\n    listen 8080;\n    listen *:8080;\n}\n",
          "${conf}:3: duplicate listen 0.0.0.0:8080 in one server",
          "one address twice in a server");
}

static void
test_location(void)
{
    struct wsg_cycle *cycle = loads(NULL,
                                    "server {\n"
                                    "    listen 8080;\n"
                                    "    location /ws {\n    }\n"
                                    "    location = /ws {\n    }\n"
                                    "    location = /exact {\n    }\n"
                                    "}\n",
                                    "locations");

    if (cycle != NULL) {
        struct wsg_http_srv_conf *s = http(cycle)->servers[0];
        if (is_int(s->nlocations, 3, "three locations")) {
            ok(strcmp(s->locations[0]->name, "/ws") == 0 &&
                   !s->locations[0]->exact,
               "a prefix location");
            ok(strcmp(s->locations[1]->name, "/ws") == 0 &&
                   s->locations[1]->exact,
               "= /ws is another location than /ws");
            ok(strcmp(s->locations[2]->name, "/exact") == 0 &&
                   s->locations[2]->exact,
               "an exact location");
            ok(s->locations[2]->loc_conf != NULL &&
                   wsg_http_loc_conf(s->locations[2]->loc_conf) ==
                       s->locations[2],
               "a location reaches its own module confs");
        }
        is_str(srv_loc(cycle, 0)->name, "", "a server's defaults are unnamed");
        wsg_cycle_free(cycle);
    }

    fails(NULL,
          "server {\n    listen 8080;\n    location /a {\n    }\n"
          "    location /a {\n    }\n}\n",
          "${conf}:5: \"location\" directive \"/a\" is duplicate",
          "a location twice");
    fails(NULL,
          "server {\n    listen 8080;\n    location = /a {\n    }\n"
          "    location = /a {\n    }\n}\n",
          "${conf}:5: \"location\" directive \"= /a\" is duplicate",
          "an exact location twice");
    fails(NULL, "server {\n    listen 8080;\n    location ws {\n    }\n}\n",
          "${conf}:3: \"location\" directive path \"ws\" must start with "
          "\"/\"",
          "a path without \"/\"");
    fails(NULL, "server {\n    listen 8080;\n    location = ws {\n    }\n}\n",
          "${conf}:3: \"location\" directive path \"ws\" must start with "
          "\"/\"",
          "an exact path without \"/\"");
    fails(NULL, "server {\n    listen 8080;\n    location ~ /a {\n    }\n}\n",
          "${conf}:3: \"location\" directive has an invalid modifier \"~\", "
          "expecting \"=\"",
          "an unknown modifier");
    fails(NULL, "server {\n    listen 8080;\n    location {\n    }\n}\n",
          "${conf}:3: invalid number of arguments in \"location\" directive",
          "a location without a path");
    fails(NULL,
          "server {\n    listen 8080;\n    location = /a /b {\n    }\n}\n",
          "${conf}:3: invalid number of arguments in \"location\" directive",
          "a location with three arguments");
    fails(NULL, "server {\n    listen 8080;\n    location /a;\n}\n",
          "${conf}:3: directive \"location\" has no opening \"{\"",
          "a location without a block");
    fails(NULL, "location /a {\n}\n",
          "${conf}:1: \"location\" directive is not allowed in the main "
          "context",
          "a location in main");
    fails(NULL,
          "server {\n    listen 8080;\n    location /a {\n"
          "        location /b {\n        }\n    }\n}\n",
          "${conf}:4: \"location\" directive is not allowed in the location "
          "context",
          "a location in a location");
    fails(NULL,
          "server {\n    listen 8080;\n    location /a {\n"
          "        listen 9090;\n    }\n}\n",
          "${conf}:4: \"listen\" directive is not allowed in the location "
          "context",
          "listen in a location");
}

static void
test_access_log(void)
{
    struct wsg_cycle *cycle = loads(NULL,
                                    "server {\n"
                                    "    listen 8080;\n"
                                    "    location /a {\n    }\n"
                                    "}\n",
                                    "no access_log");

    if (cycle != NULL) {
        struct wsg_http_srv_conf *s = http(cycle)->servers[0];
        ok(srv_loc(cycle, 0)->access_log == NULL &&
               s->locations[0]->access_log == NULL,
           "the access log is off by default");
        is_int(s->locations[0]->access_log_json, 0, "and not json");
        wsg_cycle_free(cycle);
    }

    cycle = loads(NULL,
                  "access_log logs/access.log;\n"
                  "server {\n"
                  "    listen 8080;\n"
                  "    location /inherit {\n    }\n"
                  "    location /json {\n"
                  "        access_log /var/log/ws.log json;\n"
                  "    }\n"
                  "    location /text {\n"
                  "        access_log logs/access.log text;\n"
                  "    }\n"
                  "    location /err {\n"
                  "        access_log stderr;\n"
                  "    }\n"
                  "}\n"
                  "server {\n"
                  "    listen 8081;\n"
                  "    access_log off;\n"
                  "    location /off {\n    }\n"
                  "}\n",
                  "access_log at every level");
    if (cycle != NULL) {
        struct wsg_http_srv_conf *s0 = http(cycle)->servers[0];
        struct wsg_http_srv_conf *s1 = http(cycle)->servers[1];
        struct wsg_log_file *main_log = srv_loc(cycle, 0)->access_log;
        ok(main_log != NULL &&
               strcmp(main_log->path, expand("${prefix}logs/access.log")) == 0,
           "main-level access_log reaches a server, under the prefix");
        ok(s0->locations[0]->access_log == main_log &&
               s0->locations[0]->access_log_json == 0,
           "and a location without its own");
        ok(s0->locations[1]->access_log != NULL &&
               strcmp(s0->locations[1]->access_log->path, "/var/log/ws.log") ==
                   0 &&
               s0->locations[1]->access_log_json == 1,
           "a location's json access_log");
        ok(s0->locations[2]->access_log == main_log &&
               s0->locations[2]->access_log_json == 0,
           "one path is one log file, text format");
        ok(s0->locations[3]->access_log != NULL &&
               s0->locations[3]->access_log->path == NULL &&
               s0->locations[3]->access_log->fd == STDERR_FILENO,
           "access_log stderr");
        ok(srv_loc(cycle, 1)->access_log == NULL &&
               s1->locations[0]->access_log == NULL,
           "a server's off overrides main and reaches its locations");
        bool listed = false;
        for (struct wsg_log_file *f = cycle->files; f != NULL; f = f->next) {
            listed = listed || f == main_log;
        }
        ok(listed, "the access log is among the cycle's files");
        wsg_cycle_free(cycle);
    }

    fails(NULL, "server {\n    listen 8080;\n    access_log a.log xml;\n}\n",
          "${conf}:3: \"access_log\" directive has an invalid format \"xml\", "
          "expecting \"text\" or \"json\"",
          "an unknown access_log format");
    fails(NULL, "access_log off json;\n",
          "${conf}:1: \"access_log\" directive takes no format after \"off\"",
          "off with a format");
    fails(NULL,
          "server {\n    listen 8080;\n    access_log a.log;\n"
          "    access_log off;\n}\n",
          "${conf}:4: \"access_log\" directive is duplicate",
          "access_log twice in a server");
    fails(NULL, "access_log a b c;\n",
          "${conf}:1: invalid number of arguments in \"access_log\" "
          "directive",
          "access_log with three arguments");
    fails(NULL, "events {\n    access_log off;\n}\n",
          "${conf}:2: \"access_log\" directive is not allowed in the events "
          "context",
          "access_log in events");
}

/*
 * ---- the generic setters and block kinds, through a module of our own:
 * line blocks and deep nesting cannot be reached with the built-ins ----
 */

struct probe_conf {
    uint64_t size;
    uint64_t anysize;
    int mode;
    int side;
    char *name;
    unsigned depth; /* deepest nest block reached */
    unsigned open;  /* nest blocks open now */
    char lines[256];
    char tag[32];
};

static const char *
nest_block(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct probe_conf *pc = conf;

    (void) d;
    pc->open++;
    if (pc->open > pc->depth) {
        pc->depth = pc->open;
    }
    int rc = wsg_conf_parse_block(cf, WSG_CTX_MAIN, cf->ctx);
    pc->open--;
    return rc == 0 ? NULL : WSG_CONF_ERROR_SET;
}

static const char *
on_line(struct wsg_conf *cf, void *data)
{
    struct probe_conf *pc = data;
    size_t n = strlen(pc->lines);

    if (wsg_str_eq(cf->args[0], "fail")) {
        return "a line says no";
    }
    for (unsigned i = 0; i < cf->nargs; i++) {
        n += (size_t) snprintf(pc->lines + n, sizeof(pc->lines) - n, "%s%s",
                               i ? " " : "", cf->args[i].p);
    }
    snprintf(pc->lines + n, sizeof(pc->lines) - n, "|");
    return NULL;
}

static const char *
lines_block(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct probe_conf *pc = conf;

    (void) d;
    if (wsg_conf_parse_lines(cf, on_line, pc) != 0) {
        return WSG_CONF_ERROR_SET;
    }
    /* the block's own words are back once its body is parsed */
    if (cf->nargs == 2) {
        snprintf(pc->tag, sizeof(pc->tag), "%s", cf->args[1].p);
    }
    return NULL;
}

static const struct wsg_conf_bounds size_bounds = {1, 1024 * 1024};
static const struct wsg_conf_enum modes[] = {
    {"text", 1}, {"binary", 2}, {"auto", 3}, {NULL, 0}};
static const struct wsg_conf_enum sides[] = {
    {"left", 1}, {"right", 2}, {NULL, 0}};

static const struct wsg_directive probe_directives[] = {
    {"buffer", WSG_CTX_MAIN, 1, 1, wsg_conf_set_size,
     offsetof(struct probe_conf, size), &size_bounds},
    {"anysize", WSG_CTX_MAIN, 1, 1, wsg_conf_set_size,
     offsetof(struct probe_conf, anysize), NULL},
    {"mode", WSG_CTX_MAIN, 1, 1, wsg_conf_set_enum,
     offsetof(struct probe_conf, mode), modes},
    {"side", WSG_CTX_MAIN, 1, 1, wsg_conf_set_enum,
     offsetof(struct probe_conf, side), sides},
    {"name", WSG_CTX_MAIN, 1, 1, wsg_conf_set_str,
     offsetof(struct probe_conf, name), NULL},
    {"nest", WSG_CTX_MAIN | WSG_DIR_BLOCK, 0, 0, nest_block, 0, NULL},
    {"lines", WSG_CTX_MAIN | WSG_DIR_BLOCK, 0, 1, lines_block, 0, NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static const struct wsg_module probe_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "probe",
    .directives = probe_directives,
};

/* A cycle holding only the probe module, for wsg_conf_parse_buffer(). */
struct probe {
    struct wsg_cycle cycle;
    const struct wsg_module *modules[1];
    void *main_conf[1];
    struct wsg_conf_ctx ctx;
    struct wsg_conf cf;
    struct probe_conf pc;
};

static int
probe_parse(struct probe *p, const char *text)
{
    memset(p, 0, sizeof(*p));
    p->cycle.arena = wsg_arena_new();
    p->cycle.prefix = prefix;
    p->cycle.conf_file = "probe";
    p->modules[0] = &probe_module;
    p->cycle.modules = p->modules;
    p->cycle.nmodules = 1;
    p->pc.size = WSG_CONF_UNSET_U64;
    p->pc.anysize = WSG_CONF_UNSET_U64;
    p->pc.mode = WSG_CONF_UNSET;
    p->pc.side = WSG_CONF_UNSET;
    p->main_conf[0] = &p->pc;
    p->ctx.main_conf = p->main_conf;
    p->cycle.main_conf = p->main_conf;
    p->cycle.ctx = &p->ctx;
    p->cf.cycle = &p->cycle;
    p->cf.arena = p->cycle.arena;
    p->cf.ctx_type = WSG_CTX_MAIN;
    p->cf.ctx = &p->ctx;
    return wsg_conf_parse_buffer(&p->cf, "probe", text, strlen(text));
}

/* Parses <text> with the probe module; checks it fails with <expected>. */
static void
probe_fails(const char *text, const char *expected, const char *name)
{
    struct probe p;

    if (is_int(probe_parse(&p, text), WSG_ERROR, "%s: refused", name)) {
        is_str(p.cf.error, expected, "%s: message", name);
    }
    wsg_arena_free(p.cycle.arena);
}

static void
test_generic_setters(void)
{
    struct probe p;

    if (is_int(probe_parse(&p, "buffer 64k;\nanysize 16G;\nmode binary;\n"
                               "side right;\nname \"a b\";\n"),
               0, "size, enum and str setters")) {
        is_uint(p.pc.size, 64 * 1024, "buffer 64k");
        is_uint(p.pc.anysize, UINT64_C(16) << 30, "anysize 16G");
        is_int(p.pc.mode, 2, "mode binary");
        is_int(p.pc.side, 2, "side right");
        is_str(p.pc.name, "a b", "name \"a b\"");
    }
    wsg_arena_free(p.cycle.arena);

    probe_fails("buffer 1kb;",
                "probe:1: \"buffer\" directive invalid size \"1kb\", "
                "expecting a number with an optional k, m or g",
                "a bad size");
    probe_fails("buffer 2m;",
                "probe:1: \"buffer\" directive value \"2m\" is out of range "
                "(1 to 1048576)",
                "a size above range");
    probe_fails("buffer 0;",
                "probe:1: \"buffer\" directive value \"0\" is out of range "
                "(1 to 1048576)",
                "a size below range");
    probe_fails("buffer 1k;\nbuffer 1k;",
                "probe:2: \"buffer\" directive is duplicate", "size twice");
    probe_fails("anysize 18446744073709551615;",
                "probe:1: \"anysize\" directive invalid size "
                "\"18446744073709551615\", expecting a number with an "
                "optional k, m or g",
                "a size equal to the unset mark");
    probe_fails("mode json;",
                "probe:1: \"mode\" directive invalid value \"json\", "
                "expecting \"text\", \"binary\" or \"auto\"",
                "a bad enum value lists the choices");
    probe_fails("side up;",
                "probe:1: \"side\" directive invalid value \"up\", "
                "expecting \"left\" or \"right\"",
                "two choices read \"a\" or \"b\"");
    probe_fails("mode Text;",
                "probe:1: \"mode\" directive invalid value \"Text\", "
                "expecting \"text\", \"binary\" or \"auto\"",
                "enum values are case-sensitive");
    probe_fails("mode text;\nmode auto;",
                "probe:2: \"mode\" directive is duplicate", "enum twice");
    probe_fails("name a;\nname b;", "probe:2: \"name\" directive is duplicate",
                "str twice");
}

static void
test_blocks(void)
{
    struct probe p;
    char text[1024] = "";

    for (int i = 0; i < 32; i++) {
        strcat(text, "nest {\n");
    }
    for (int i = 0; i < 32; i++) {
        strcat(text, "}\n");
    }
    if (is_int(probe_parse(&p, text), 0, "blocks nest 32 deep")) {
        is_int(p.pc.depth, 32, "all 32 were entered");
    }
    wsg_arena_free(p.cycle.arena);

    text[0] = '\0';
    for (int i = 0; i < 33; i++) {
        strcat(text, "nest {\n");
    }
    for (int i = 0; i < 33; i++) {
        strcat(text, "}\n");
    }
    probe_fails(text, "probe:33: blocks nested deeper than 32",
                "33 nested blocks");

    if (is_int(probe_parse(&p, "lines tag {\n    a b;\n    \"q w\" c;\n"
                               "    include x;\n}\nname after;\n"),
               0, "a block of lines")) {
        is_str(p.pc.lines, "a b|q w c|include x|",
               "each statement reaches the line handler, even a quoted "
               "first word and \"include\"");
        is_str(p.pc.tag, "tag",
               "the block's handler sees its own words "
               "after the body");
        is_str(p.pc.name, "after", "directives work again after the block");
    }
    wsg_arena_free(p.cycle.arena);

    probe_fails("lines {\n    a;\n    fail now;\n}\n",
                "probe:3: a line says no", "a line handler's error");
    probe_fails("lines {\n    a {\n    }\n}\n",
                "probe:2: unexpected \"{\" after \"a\"",
                "a block inside a block of lines");
    probe_fails("lines {\n    a\n}\n",
                "probe:2: unexpected \"}\", expecting \";\" after \"a\"",
                "a line without \";\"");
    probe_fails("nest {\n    name x;\n}\nname y;\n",
                "probe:4: \"name\" directive is duplicate",
                "a block parses in the context it is given");
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

int
main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/wsgate-test-conf-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        die("mkdtemp");
    }
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    snprintf(conf_path, sizeof(conf_path), "%swsgate.conf", prefix);

    test_defaults();
    test_core_values();
    test_core_errors();
    test_affinity();
    test_error_log();
    test_user();
    test_syntax_errors();
    test_params();
    test_include();
    test_server();
    test_location();
    test_access_log();
    test_generic_setters();
    test_blocks();

    if (nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) == -1) {
        die("nftw");
    }
    return done_testing();
}
