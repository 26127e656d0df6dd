/*
 * wsgate: command line, configuration test, signalling a running master,
 * and start-up (daemonize, then hand over to the master loop).
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/cycle.h"
#include "core/log.h"
#include "process/master.h"
#include "process/process.h"
#include "process/signal.h"

#define DEFAULT_CONF "conf/wsgate.conf"

struct options {
    const char *prefix;
    const char *conf;
    const char *params;
    const char *signal;
    bool test;
    bool version;
    bool help;
    bool foreground;
};

static void
usage(FILE *f)
{
    fprintf(f,
            "Usage: wsgate [-hVtF] [-c file] [-p prefix] [-g directives] "
            "[-s signal]\n"
            "\n"
            "Options:\n"
            "  -h            this help\n"
            "  -V            versions of wsgate and its libraries, and the "
            "event method\n"
            "  -t            test the configuration file and exit\n"
            "  -F            stay in the foreground (as \"daemon off;\")\n"
            "  -c file       configuration file (default: %s)\n"
            "  -p prefix     prefix for relative paths (default: the current "
            "directory)\n"
            "  -g directives main-context directives, parsed before the file\n"
            "  -s signal     send signal to the running master: stop, quit, "
            "reload, reopen\n",
            DEFAULT_CONF);
}

static int
parse_options(int argc, char **argv, struct options *o)
{
    int c;

    opterr = 0;
    while ((c = getopt(argc, argv, ":hVtFc:p:g:s:")) != -1) {
        switch (c) {
        case 'h':
            o->help = true;
            break;
        case 'V':
            o->version = true;
            break;
        case 't':
            o->test = true;
            break;
        case 'F':
            o->foreground = true;
            break;
        case 'c':
            o->conf = optarg;
            break;
        case 'p':
            o->prefix = optarg;
            break;
        case 'g':
            o->params = optarg;
            break;
        case 's':
            if (wsg_signal_by_command(optarg) == 0) {
                fprintf(stderr,
                        "wsgate: invalid signal \"%s\", expecting stop, "
                        "quit, reload or reopen\n",
                        optarg);
                return -1;
            }
            o->signal = optarg;
            break;
        case ':':
            fprintf(stderr, "wsgate: option \"-%c\" requires an argument\n",
                    optopt);
            return -1;
        default:
            fprintf(stderr, "wsgate: invalid option \"-%c\"\n", optopt);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wsgate: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    return 0;
}

static void
print_version(void)
{
    struct event_base *base = event_base_new();

    printf("wsgate version %s\n", PACKAGE_VERSION);
    printf("libevent %s, event method %s\n", event_get_version(),
           base != NULL ? event_base_get_method(base) : "unknown");
    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("jansson %s\n", jansson_version_str());
    printf("zlib %s\n", zlibVersion());
    if (base != NULL) {
        event_base_free(base);
    }
}

/* Makes <path> absolute against <base>; <dir> adds a trailing '/'. */
static char *
absolute(const char *base, const char *path, bool dir)
{
    char *out = malloc(PATH_MAX * 2);
    size_t n;

    if (out == NULL) {
        return NULL;
    }
    if (path[0] == '/') {
        n = (size_t) snprintf(out, PATH_MAX * 2, "%s", path);
    } else {
        n = (size_t) snprintf(out, PATH_MAX * 2, "%s%s", base, path);
    }
    if (dir && n > 0 && out[n - 1] != '/' && n + 1 < PATH_MAX * 2) {
        out[n++] = '/';
        out[n] = '\0';
    }
    return out;
}

static int
send_signal(const struct wsg_cycle *cycle, const char *name)
{
    const char *path = wsg_core_conf(cycle)->pid_path, *why;
    pid_t pid = wsg_process_read_pid(path, &why);

    if (pid == -1) {
        fprintf(stderr, "wsgate: [error] cannot read pid file \"%s\": %s\n",
                path, why);
        return 1;
    }
    if (kill(pid, wsg_signal_by_command(name)) == -1) {
        fprintf(stderr, "wsgate: [error] kill(%d, %s) failed (%d: %s)\n",
                (int) pid, name, errno, strerror(errno));
        return 1;
    }
    return 0;
}

/* Tests, signals or starts, once the paths are known; returns the status. */
static int
run(const struct options *o, const char *prefix, const char *conf)
{
    char err[2048];
    bool open_files = !o->test && o->signal == NULL;
    struct wsg_cycle *cycle =
        wsg_cycle_load(prefix, conf, o->params, open_files, err, sizeof(err));

    if (cycle == NULL) {
        fprintf(stderr, "wsgate: [emerg] %s\n", err);
        if (o->test) {
            fprintf(stderr, "wsgate: configuration file %s test failed\n",
                    conf);
        }
        return 1;
    }
    if (o->test) {
        fprintf(stderr, "wsgate: configuration file %s test is successful\n",
                conf);
        wsg_cycle_free(cycle);
        return 0;
    }
    if (o->signal != NULL) {
        int rc = send_signal(cycle, o->signal);
        wsg_cycle_free(cycle);
        return rc;
    }
    const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
    if (ccf->user != NULL && geteuid() != 0) {
        wsg_log(WSG_LOG_WARN, &cycle->log, 0,
                "the \"user\" directive needs a master running as root, "
                "ignored");
    }
    if (ccf->daemon && !o->foreground) {
        /* keep stderr when the error log is stderr: it is the only log */
        bool quiet = ccf->error_log_path != NULL;
        if (wsg_process_daemonize(quiet, &cycle->log) != 0) {
            wsg_cycle_free(cycle);
            return 1;
        }
    }
    struct wsg_master_args args = {prefix, conf, o->params};
    return wsg_master_run(cycle, &args);
}

int
main(int argc, char **argv)
{
    struct options o = {0};
    char cwd[PATH_MAX];

    wsg_process_init_title(argc, argv);
    if (parse_options(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (o.version) {
        print_version();
        return 0;
    }
    if (getcwd(cwd, sizeof(cwd) - 1) == NULL) {
        fprintf(stderr, "wsgate: [emerg] getcwd() failed (%d: %s)\n", errno,
                strerror(errno));
        return 1;
    }
    strcat(cwd, "/");
    char real[PATH_MAX];
    /* an existing prefix is printed in its canonical form ("." resolved) */
    const char *p = o.prefix ? o.prefix : "";
    if (o.prefix != NULL && realpath(o.prefix, real) != NULL) {
        p = real;
    }
    char *prefix = absolute(cwd, p, true);
    char *conf = absolute(prefix, o.conf ? o.conf : DEFAULT_CONF, false);
    if (prefix == NULL || conf == NULL) {
        fprintf(stderr, "wsgate: [emerg] out of memory\n");
        return 1;
    }

    int rc = run(&o, prefix, conf);
    free(prefix);
    free(conf);
    return rc;
}
