/*
 * Daemonizing, pid files, process titles and per-worker setup.
 */
#include "config.h"

#include "process/process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/cycle.h"
#include "core/log.h"
#include "core/str.h"

unsigned wsg_process_row;

uint64_t
wsg_process_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int
wsg_process_daemonize(bool quiet_stderr, const struct wsg_log *log)
{
    pid_t pid = fork();

    if (pid == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "fork() failed");
        return WSG_ERROR;
    }
    if (pid > 0) {
        _exit(0);
    }
    if (setsid() == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "setsid() failed");
        return WSG_ERROR;
    }
    umask(022);
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "open(\"/dev/null\") failed");
        return WSG_ERROR;
    }
    if (dup2(fd, STDIN_FILENO) == -1 || dup2(fd, STDOUT_FILENO) == -1 ||
        (quiet_stderr && dup2(fd, STDERR_FILENO) == -1)) {
        wsg_log(WSG_LOG_EMERG, log, errno, "dup2() failed");
        close(fd);
        return WSG_ERROR;
    }
    close(fd);
    return 0;
}

int
wsg_process_write_pid(const char *path, pid_t pid, const struct wsg_log *log)
{
    char tmp[4096], buf[32];

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp)) {
        wsg_log(WSG_LOG_EMERG, log, 0, "pid file path \"%s\" is too long",
                path);
        return WSG_ERROR;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "open() \"%s\" failed", tmp);
        return WSG_ERROR;
    }
    int n = snprintf(buf, sizeof(buf), "%d\n", (int) pid);
    if (write(fd, buf, (size_t) n) != n) {
        wsg_log(WSG_LOG_EMERG, log, errno, "write() \"%s\" failed", tmp);
        close(fd);
        unlink(tmp);
        return WSG_ERROR;
    }
    close(fd);
    if (rename(tmp, path) == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "rename() \"%s\" failed", path);
        unlink(tmp);
        return WSG_ERROR;
    }
    return 0;
}

pid_t
wsg_process_read_pid(const char *path, const char **why)
{
    char buf[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1) {
        *why = strerror(errno);
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        *why = "empty pid file";
        return -1;
    }
    size_t len = (size_t) n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) {
        len--;
    }
    uint64_t v;
    if (wsg_str_parse_uint(buf, len, INT32_MAX, &v) != 0 || v < 2) {
        *why = "invalid pid in pid file";
        return -1;
    }
    return (pid_t) v;
}

/* argv[0]'s storage, overwritten with the title (with what follows it). */
static char *title_base;
static size_t title_space;

void
wsg_process_init_title(int argc, char **argv)
{
    /* only argv's own contiguous bytes are used: environ stays untouched,
     * so the title can be as long as the command line was */
    if (argc < 1 || argv[0] == NULL) {
        return;
    }
    char *end = argv[0] + strlen(argv[0]);
    for (int i = 1; i < argc; i++) {
        if (argv[i] != end + 1) {
            break;
        }
        end = argv[i] + strlen(argv[i]);
    }
    title_base = argv[0];
    title_space = (size_t) (end - argv[0]);
}

void
wsg_process_set_title(const char *title)
{
    /* the kernel's comm name (15 bytes), shown by ps -o comm and top */
    prctl(PR_SET_NAME, (unsigned long) title, 0, 0, 0);
    if (title_base == NULL || title_space == 0) {
        return;
    }
    size_t n = strlen(title);
    if (n > title_space) {
        n = title_space;
    }
    memcpy(title_base, title, n);
    memset(title_base + n, '\0', title_space - n + 1);
}

static void
set_affinity(const struct wsg_core_conf *ccf, unsigned slot,
             const struct wsg_log *log)
{
    cpu_set_t set;
    CPU_ZERO(&set);

    if (ccf->affinity_auto) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        CPU_SET(slot % (unsigned) (ncpu > 0 ? ncpu : 1), &set);
    } else if (ccf->naffinity > 0) {
        uint64_t mask = ccf->affinity_masks[slot % ccf->naffinity];
        for (unsigned cpu = 0; cpu < 64; cpu++) {
            if (mask & ((uint64_t) 1 << cpu)) {
                CPU_SET(cpu, &set);
            }
        }
    } else {
        return;
    }
    if (sched_setaffinity(0, sizeof(set), &set) == -1) {
        wsg_log(WSG_LOG_ALERT, log, errno, "sched_setaffinity() failed");
    }
}

int
wsg_process_setup_worker(const struct wsg_cycle *cycle, unsigned slot)
{
    const struct wsg_core_conf *ccf = wsg_core_conf(cycle);
    const struct wsg_log *log = &cycle->log;

    if (ccf->worker_rlimit_nofile > 0) {
        struct rlimit rl;
        rl.rlim_cur = (rlim_t) ccf->worker_rlimit_nofile;
        rl.rlim_max = (rlim_t) ccf->worker_rlimit_nofile;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            wsg_log(WSG_LOG_ALERT, log, errno,
                    "setrlimit(RLIMIT_NOFILE, %lld) failed",
                    (long long) ccf->worker_rlimit_nofile);
        }
    }
    set_affinity(ccf, slot, log);
    if (ccf->user == NULL || geteuid() != 0) {
        return 0;
    }
    if (setgid(ccf->gid) == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "setgid(%d) failed", (int) ccf->gid);
        return WSG_ERROR;
    }
    if (initgroups(ccf->user, ccf->gid) == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "initgroups(%s) failed", ccf->user);
        return WSG_ERROR;
    }
    if (setuid(ccf->uid) == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "setuid(%d) failed", (int) ccf->uid);
        return WSG_ERROR;
    }
    /* a worker that lost its uid switch cannot dump a root-owned core */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    return 0;
}
