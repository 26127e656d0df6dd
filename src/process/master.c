/*
 * Master process. Workers of the current generation fill numbered slots;
 * a reload starts a new generation and sends QUIT to the old one, whose
 * processes are tracked until they exit (and killed if they overstay
 * worker_shutdown_timeout by more than a grace period). A worker that dies
 * on its own is respawned in its slot, after a growing delay when it keeps
 * dying young.
 */
#include "config.h"

#include "process/master.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/core.h"
#include "core/cycle.h"
#include "http/http_conf.h"
#include "net/listen.h"
#include "process/process.h"
#include "process/signal.h"
#include "bus/bus_worker.h"
#include "core/counter.h"
#include "core/stats.h"
#include "process/worker.h"
#include "upstream/peer_state.h"

/* Workers of old generations tracked at once; older ones are stopped. */
#define PROCS_MAX (WSG_WORKERS_MAX * 4)
_Static_assert(PROCS_MAX <= WSG_STATS_ENTRIES, "a counters entry per row");
/* A worker that dies younger than this counts as crash-looping. */
#define YOUNG_MS         2000
/* Respawn back-off: doubles from the first delay up to the cap. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   10000
/* How long past a deadline before TERM is escalated to KILL. */
#define STOP_KILL_MS     5000
#define QUIT_GRACE_MS    5000

struct proc {
    pid_t pid; /* 0: free entry */
    unsigned slot;
    unsigned generation;
    bool retiring; /* sent QUIT or TERM; not to be respawned */
    uint64_t started_ms;
    uint64_t kill_at_ms; /* 0: none; SIGKILL when passed */
};

struct slot {
    pid_t pid;              /* 0 while waiting to be respawned */
    unsigned young_deaths;  /* consecutive deaths younger than YOUNG_MS */
    uint64_t respawn_at_ms; /* when pid is 0 */
};

struct master {
    struct wsg_cycle *cycle;
    const struct wsg_master_args *args;
    struct wsg_listener *listeners;
    struct proc procs[PROCS_MAX];
    struct slot slots[WSG_WORKERS_MAX];
    unsigned nslots;
    unsigned generation;
    bool stopping; /* TERM: everything goes now */
    bool quitting; /* QUIT: workers finish, then the master leaves */
    uint64_t stop_kill_at_ms;
};

static struct proc *
find_proc(struct master *m, pid_t pid)
{
    for (size_t i = 0; i < PROCS_MAX; i++) {
        if (m->procs[i].pid == pid) {
            return &m->procs[i];
        }
    }
    return NULL;
}

static size_t
live_procs(const struct master *m)
{
    size_t n = 0;

    for (size_t i = 0; i < PROCS_MAX; i++) {
        n += m->procs[i].pid != 0;
    }
    return n;
}

static void
signal_all(struct master *m, int signo, bool retiring_too)
{
    for (size_t i = 0; i < PROCS_MAX; i++) {
        struct proc *p = &m->procs[i];
        if (p->pid != 0 && (retiring_too || !p->retiring) &&
            kill(p->pid, signo) == -1 && errno != ESRCH) {
            wsg_log(WSG_LOG_ALERT, wsg_log_main, errno, "kill(%d, %d) failed",
                    (int) p->pid, signo);
        }
    }
}

/* Frees the oldest retiring entry by stopping it now; for a full table. */
static struct proc *
make_room(struct master *m)
{
    struct proc *oldest = NULL;

    for (size_t i = 0; i < PROCS_MAX; i++) {
        struct proc *p = &m->procs[i];
        if (p->pid == 0) {
            return p;
        }
        if (p->retiring &&
            (oldest == NULL || p->generation < oldest->generation)) {
            oldest = p;
        }
    }
    if (oldest == NULL) {
        return NULL;
    }
    wsg_log(WSG_LOG_WARN, wsg_log_main, 0,
            "too many old worker generations, killing worker process %d",
            (int) oldest->pid);
    kill(oldest->pid, SIGKILL);
    /* the entry stays until it is reaped; forget it so the slot is free */
    oldest->pid = 0;
    return oldest;
}

static void
spawn(struct master *m, unsigned slot)
{
    struct proc *p = make_room(m);

    if (p == NULL) {
        wsg_log(WSG_LOG_ALERT, wsg_log_main, 0,
                "no room to track worker process for slot %u", slot);
        return;
    }
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid == -1) {
        wsg_log(WSG_LOG_ALERT, wsg_log_main, errno,
                "fork() of worker process %u failed", slot);
        m->slots[slot].respawn_at_ms = wsg_process_now_ms() + BACKOFF_MAX_MS;
        return;
    }
    if (pid == 0) {
        /* its counters and its bus row are those of its row here */
        wsg_process_row = (unsigned) (p - m->procs);
        wsg_stats_attach(wsg_process_row);
        wsg_worker_run(m->cycle, m->listeners, slot, master);
    }
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    p->slot = slot;
    p->generation = m->generation;
    p->started_ms = wsg_process_now_ms();
    m->slots[slot].pid = pid;
    m->slots[slot].respawn_at_ms = 0;
    wsg_log(WSG_LOG_NOTICE, wsg_log_main, 0, "start worker process %d",
            (int) pid);
}

static void
spawn_all(struct master *m)
{
    m->nslots = wsg_cycle_workers(m->cycle);
    for (unsigned i = 0; i < m->nslots; i++) {
        m->slots[i].pid = 0;
        m->slots[i].young_deaths = 0;
        spawn(m, i);
    }
}

static void
log_exit(pid_t pid, int status, bool expected)
{
    unsigned level = expected ? WSG_LOG_NOTICE : WSG_LOG_ALERT;

    if (WIFSIGNALED(status)) {
        wsg_log(level, wsg_log_main, 0,
                "worker process %d exited on signal %d%s", (int) pid,
                WTERMSIG(status), WCOREDUMP(status) ? " (core dumped)" : "");
    } else {
        wsg_log(level, wsg_log_main, 0, "worker process %d exited with code %d",
                (int) pid, WEXITSTATUS(status));
    }
}

/* A current worker died on its own: schedule its replacement. */
static void
plan_respawn(struct master *m, const struct proc *p, uint64_t now)
{
    struct slot *s = &m->slots[p->slot];

    s->pid = 0;
    if (now - p->started_ms < YOUNG_MS) {
        s->young_deaths++;
    } else {
        s->young_deaths = 0;
    }
    uint64_t delay = 0;
    if (s->young_deaths > 0) {
        unsigned shift = s->young_deaths - 1 > 10 ? 10 : s->young_deaths - 1;
        delay = (uint64_t) BACKOFF_FIRST_MS << shift;
        delay = delay > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay;
        wsg_log(WSG_LOG_WARN, wsg_log_main, 0,
                "worker process %u died %u times in a row within %d ms of "
                "start, respawning in %llu ms",
                p->slot, s->young_deaths, YOUNG_MS, (unsigned long long) delay);
    }
    s->respawn_at_ms = now + delay;
}

static void
reap(struct master *m)
{
    int status;
    pid_t pid;
    uint64_t now = wsg_process_now_ms();

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct proc *p = find_proc(m, pid);
        if (p == NULL) {
            /* one we forgot on purpose (make_room) */
            continue;
        }
        bool current = !p->retiring && p->generation == m->generation;
        wsg_stats_worker_gone((unsigned) (p - m->procs));
        wsg_bus_row_gone((unsigned) (p - m->procs));
        log_exit(pid, status, !current || m->stopping || m->quitting);
        if (current && !m->stopping && !m->quitting) {
            plan_respawn(m, p, now);
        } else if (current) {
            m->slots[p->slot].pid = 0;
        }
        p->pid = 0;
    }
}

static void
respawn_due(struct master *m, uint64_t now)
{
    if (m->stopping || m->quitting) {
        return;
    }
    for (unsigned i = 0; i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        if (s->pid == 0 && s->respawn_at_ms <= now) {
            spawn(m, i);
        }
    }
}

static void
kill_overdue(struct master *m, uint64_t now)
{
    for (size_t i = 0; i < PROCS_MAX; i++) {
        struct proc *p = &m->procs[i];
        if (p->pid != 0 && p->kill_at_ms != 0 && p->kill_at_ms <= now) {
            wsg_log(WSG_LOG_ALERT, wsg_log_main, 0,
                    "worker process %d did not exit in time, sending SIGKILL",
                    (int) p->pid);
            kill(p->pid, SIGKILL);
            p->kill_at_ms = 0;
        }
    }
}

/* Arms SIGALRM for the earliest pending deadline, if any. */
static void
arm_timer(const struct master *m, uint64_t now)
{
    uint64_t next = UINT64_MAX;

    for (size_t i = 0; i < PROCS_MAX; i++) {
        const struct proc *p = &m->procs[i];
        if (p->pid != 0 && p->kill_at_ms != 0 && p->kill_at_ms < next) {
            next = p->kill_at_ms;
        }
    }
    for (unsigned i = 0; i < m->nslots && !m->stopping && !m->quitting; i++) {
        if (m->slots[i].pid == 0 && m->slots[i].respawn_at_ms < next) {
            next = m->slots[i].respawn_at_ms;
        }
    }
    struct itimerval it = {{0, 0}, {0, 0}};
    if (next != UINT64_MAX) {
        /* at least 1 ms: a zero it_value would disarm the timer */
        uint64_t ms = next > now ? next - now : 1;
        it.it_value.tv_sec = (time_t) (ms / 1000);
        it.it_value.tv_usec = (suseconds_t) ((ms % 1000) * 1000);
    }
    setitimer(ITIMER_REAL, &it, NULL);
}

/* Sends <signo> to every live worker and sets a kill deadline. */
static void
retire_all(struct master *m, int signo, uint64_t deadline)
{
    for (size_t i = 0; i < PROCS_MAX; i++) {
        struct proc *p = &m->procs[i];
        if (p->pid == 0 || (p->retiring && signo == SIGQUIT)) {
            continue;
        }
        p->retiring = true;
        if (p->kill_at_ms == 0 || deadline < p->kill_at_ms) {
            p->kill_at_ms = deadline;
        }
        kill(p->pid, signo);
    }
}

/* Gathers the new cycle's listen addresses for reconcile. */
static int
open_listeners(struct master *m, struct wsg_cycle *cycle)
{
    struct wsg_http_main_conf *hmcf = wsg_http_main_conf(cycle->main_conf);
    size_t n = hmcf->naddrs, i = 0;
    const struct wsg_listen_opt **opts = wsg_calloc(n ? n : 1, sizeof(*opts));
    void **confs = wsg_calloc(n ? n : 1, sizeof(*confs));

    for (struct wsg_http_addr *a = hmcf->addrs; a != NULL; a = a->next, i++) {
        opts[i] = &a->opt;
        confs[i] = a;
    }
    int rc = wsg_listen_reconcile(&m->listeners, opts, confs, n,
                                  wsg_cycle_workers(cycle), &cycle->log);
    free(opts);
    free(confs);
    return rc;
}

static void
reload(struct master *m)
{
    char err[2048];
    const struct wsg_master_args *a = m->args;

    wsg_log(WSG_LOG_NOTICE, wsg_log_main, 0, "reconfiguring");
    struct wsg_cycle *next = wsg_cycle_load(a->prefix, a->conf_file, a->params,
                                            true, err, sizeof(err));
    if (next == NULL) {
        wsg_log(WSG_LOG_EMERG, wsg_log_main, 0, "%s", err);
        wsg_log(WSG_LOG_ERR, wsg_log_main, 0,
                "reload failed, still running the previous configuration");
        return;
    }
    if (wsg_peer_state_bind(next, err, sizeof(err)) != 0) {
        wsg_log(WSG_LOG_EMERG, wsg_log_main, 0, "%s", err);
        wsg_log(WSG_LOG_ERR, wsg_log_main, 0,
                "reload failed, still running the previous configuration");
        wsg_cycle_free(next);
        return;
    }
    if (open_listeners(m, next) != 0) {
        wsg_log(WSG_LOG_ERR, wsg_log_main, 0,
                "reload failed, still running the previous configuration");
        wsg_cycle_free(next);
        return;
    }

    struct wsg_cycle *prev = m->cycle;
    const char *old_pid = wsg_core_conf(prev)->pid_path;
    const char *new_pid = wsg_core_conf(next)->pid_path;
    if (strcmp(old_pid, new_pid) != 0 &&
        wsg_process_write_pid(new_pid, getpid(), &next->log) == 0) {
        unlink(old_pid);
    }

    uint64_t now = wsg_process_now_ms();
    uint64_t deadline =
        now + wsg_core_conf(prev)->worker_shutdown_timeout_ms + QUIT_GRACE_MS;
    retire_all(m, SIGQUIT, deadline);

    m->cycle = next;
    wsg_log_main = &next->log;
    /* free the old cycle first: new workers must not inherit its files */
    wsg_cycle_free(prev);
    m->generation++;
    spawn_all(m);
    wsg_log(WSG_LOG_NOTICE, wsg_log_main, 0,
            "reconfigured, %u worker processes", m->nslots);
}

static void
reopen(struct master *m)
{
    const struct wsg_core_conf *ccf = wsg_core_conf(m->cycle);
    long uid = ccf->user != NULL && geteuid() == 0 ? (long) ccf->uid : -1;

    wsg_log(WSG_LOG_NOTICE, wsg_log_main, 0, "reopening logs");
    wsg_log_reopen_all(m->cycle->files, uid, wsg_log_main);
    signal_all(m, SIGUSR1, true);
}

/* Acts on the flags the handlers set; returns true when the master is done. */
static bool
handle_flags(struct master *m)
{
    uint64_t now = wsg_process_now_ms();

    if (wsg_sig_reap) {
        wsg_sig_reap = 0;
        reap(m);
    }
    if (wsg_sig_terminate) {
        wsg_sig_terminate = 0;
        if (!m->stopping) {
            wsg_log(WSG_LOG_NOTICE, wsg_log_main, 0, "stopping");
            m->stopping = true;
            retire_all(m, SIGTERM, now + STOP_KILL_MS);
            wsg_listen_close_all(&m->listeners);
        }
    }
    if (wsg_sig_quit) {
        wsg_sig_quit = 0;
        if (!m->quitting && !m->stopping) {
            wsg_log(WSG_LOG_NOTICE, wsg_log_main, 0,
                    "gracefully shutting down");
            m->quitting = true;
            retire_all(m, SIGQUIT,
                       now +
                           wsg_core_conf(m->cycle)->worker_shutdown_timeout_ms +
                           QUIT_GRACE_MS);
            wsg_listen_close_all(&m->listeners);
        }
    }
    if ((m->stopping || m->quitting) && live_procs(m) == 0) {
        return true;
    }
    if (wsg_sig_reconfigure) {
        wsg_sig_reconfigure = 0;
        if (!m->stopping && !m->quitting) {
            reload(m);
        }
    }
    if (wsg_sig_reopen) {
        wsg_sig_reopen = 0;
        reopen(m);
    }
    wsg_sig_alarm = 0;
    now = wsg_process_now_ms();
    kill_overdue(m, now);
    respawn_due(m, now);
    arm_timer(m, now);
    return false;
}

int
wsg_master_run(struct wsg_cycle *cycle, const struct wsg_master_args *args)
{
    static struct master master;
    struct master *m = &master;
    sigset_t wait_set;

    m->cycle = cycle;
    m->args = args;
    wsg_log_main = &cycle->log;
    if (wsg_signal_init_master(&wait_set) != 0) {
        wsg_log(WSG_LOG_EMERG, wsg_log_main, errno, "sigaction() failed");
        return 1;
    }
    char err[256];
    if (wsg_stats_init() != 0) {
        wsg_log(WSG_LOG_EMERG, wsg_log_main, errno,
                "mmap() of the counters zone failed");
        return 1;
    }
    if (wsg_counter_init() != 0) {
        wsg_log(WSG_LOG_EMERG, wsg_log_main, errno,
                "mmap() of the counters table failed");
        return 1;
    }
    if (wsg_bus_init() != 0) {
        wsg_log(WSG_LOG_EMERG, wsg_log_main, errno,
                "making the worker bus failed");
        return 1;
    }
    if (wsg_peer_state_init() != 0) {
        wsg_log(WSG_LOG_EMERG, wsg_log_main, errno,
                "mmap() of the upstream state zone failed");
        return 1;
    }
    if (wsg_peer_state_bind(cycle, err, sizeof(err)) != 0) {
        wsg_log(WSG_LOG_EMERG, wsg_log_main, 0, "%s", err);
        return 1;
    }
    if (open_listeners(m, cycle) != 0) {
        return 1;
    }
    const char *pid_path = wsg_core_conf(cycle)->pid_path;
    if (wsg_process_write_pid(pid_path, getpid(), wsg_log_main) != 0) {
        wsg_listen_close_all(&m->listeners);
        return 1;
    }
    wsg_process_set_title("wsgate: master process");
    wsg_log(WSG_LOG_NOTICE, wsg_log_main, 0, "wsgate %s started",
            PACKAGE_VERSION);
    spawn_all(m);
    arm_timer(m, wsg_process_now_ms());

    for (;;) {
        sigsuspend(&wait_set);
        if (handle_flags(m)) {
            break;
        }
    }

    wsg_log(WSG_LOG_NOTICE, wsg_log_main, 0, "exit");
    /* the pid file names this process; remove it only if it still does */
    const char *why;
    if (wsg_process_read_pid(wsg_core_conf(m->cycle)->pid_path, &why) ==
        getpid()) {
        unlink(wsg_core_conf(m->cycle)->pid_path);
    }
    wsg_listen_close_all(&m->listeners);
    wsg_log_main = wsg_log_stderr();
    wsg_cycle_free(m->cycle);
    return 0;
}
