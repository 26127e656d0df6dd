/*
 * The worker loop. Signals arrive as libevent events, so handlers run as
 * ordinary callbacks between I/O. A graceful quit closes the listeners at
 * once, lets connections finish, and closes what is left when
 * worker_shutdown_timeout expires; the loop ends when no connection is
 * left.
 */
#include "config.h"

#include "process/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/core.h"
#include "core/cycle.h"
#include "bus/bus_worker.h"
#include "core/stats.h"
#include "http/http_conf.h"
#include "net/conn.h"
#include "net/listen.h"
#include "process/process.h"
#include "process/signal.h"
#include "upstream/health.h"
#include "upstream/pool.h"

#include <sys/prctl.h>

/* Pause before accepting again after EMFILE/ENFILE. */
#define ACCEPT_RETRY_MS 100
/* At most one "connections refused" line per this many ms. */
#define REFUSE_LOG_MS   1000

static void
stop_accepting(struct wsg_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        evconnlistener_free(w->listeners[i]);
    }
    free(w->listeners);
    w->listeners = NULL;
    w->nlisteners = 0;
}

/* Refuses a connection over worker_connections: 503 if it is plain. */
static void
refuse(struct wsg_worker *w, int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
    uint64_t now = wsg_process_now_ms();

    /* best effort on a fresh socket: its send buffer is empty */
    if (write(fd, busy, sizeof(busy) - 1) == -1) {
        /* the client is gone already; nothing to tell it */
    }
    close(fd);
    w->refused++;
    atomic_fetch_add_explicit(&wsg_stats->refused, 1, memory_order_relaxed);
    if (now - w->refused_logged_ms >= REFUSE_LOG_MS) {
        wsg_log(WSG_LOG_WARN, &w->cycle->log, 0,
                "%zu worker_connections are not enough, %llu connections "
                "refused",
                w->max_conns, (unsigned long long) w->refused);
        w->refused_logged_ms = now;
    }
}

/* The one worker of this process; libevent callbacks get it from here. */
static struct wsg_worker *the_worker;

static void
on_accept_conn(struct evconnlistener *l, evutil_socket_t fd,
               struct sockaddr *sa, int socklen, void *arg)
{
    struct wsg_worker *w = the_worker;
    const struct wsg_http_addr *addr = arg;

    (void) l;
    (void) socklen;
    if (w->nconns >= w->max_conns) {
        refuse(w, fd);
        return;
    }
    wsg_conn_accept(w, fd, sa, addr);
}

static void
on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct wsg_worker *w = arg;

    (void) fd;
    (void) what;
    for (size_t i = 0; i < w->nlisteners; i++) {
        evconnlistener_enable(w->listeners[i]);
    }
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
    struct wsg_worker *w = the_worker;
    int err = EVUTIL_SOCKET_ERROR();

    (void) l;
    (void) arg;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        /* out of descriptors or memory: back off instead of spinning */
        wsg_log(WSG_LOG_CRIT, &w->cycle->log, err, "accept() failed");
        for (size_t i = 0; i < w->nlisteners; i++) {
            evconnlistener_disable(w->listeners[i]);
        }
        struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
        evtimer_add(w->accept_timer, &tv);
        return;
    }
    wsg_log(WSG_LOG_ERR, &w->cycle->log, err, "accept() failed");
}

static void
finish_if_idle(struct wsg_worker *w)
{
    if (w->exiting && w->nconns == 0) {
        event_base_loopbreak(w->base);
    }
}

struct event_base *
wsg_worker_base(void)
{
    return the_worker != NULL ? the_worker->base : NULL;
}

void
wsg_worker_conn_gone(struct wsg_worker *w)
{
    finish_if_idle(w);
}

/* After the closes of a shutdown, what is left is dropped after this. */
#define CLOSE_GRACE_MS 3000

static void
on_hard_stop(evutil_socket_t fd, short what, void *arg)
{
    struct wsg_worker *w = arg;

    (void) fd;
    (void) what;
    wsg_log(WSG_LOG_NOTICE, &w->cycle->log, 0,
            "dropping %zu connections that did not close in time", w->nconns);
    while (!TAILQ_EMPTY(&w->conns)) {
        wsg_conn_free(TAILQ_FIRST(&w->conns));
    }
    event_base_loopbreak(w->base);
}

static void
on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct wsg_worker *w = arg;
    struct wsg_conn *c, *next;
    struct timeval tv = {CLOSE_GRACE_MS / 1000, (CLOSE_GRACE_MS % 1000) * 1000};

    (void) fd;
    (void) what;
    wsg_log(WSG_LOG_NOTICE, &w->cycle->log, 0,
            "worker_shutdown_timeout expired, closing %zu connections",
            w->nconns);
    /* WebSocket clients get a close frame with 1001 and a moment to
     * answer it; anything else goes now */
    for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        wsg_conn_shutdown(c);
    }
    if (w->nconns == 0) {
        event_base_loopbreak(w->base);
        return;
    }
    evtimer_assign(w->shutdown_timer, w->base, on_hard_stop, w);
    evtimer_add(w->shutdown_timer, &tv);
}

static void
graceful(struct wsg_worker *w)
{
    if (w->exiting) {
        return;
    }
    w->exiting = true;
    wsg_log(WSG_LOG_NOTICE, &w->cycle->log, 0, "gracefully shutting down");
    wsg_process_set_title("wsgate: worker process is shutting down");
    stop_accepting(w);

    /* connections go on serving until the shutdown timeout */
    uint64_t ms = wsg_core_conf(w->cycle)->worker_shutdown_timeout_ms;
    struct timeval tv = {(time_t) (ms / 1000),
                         (suseconds_t) ((ms % 1000) * 1000)};
    w->shutdown_timer = evtimer_new(w->base, on_shutdown_timeout, w);
    evtimer_add(w->shutdown_timer, &tv);
    finish_if_idle(w);
}

static void
on_signal(evutil_socket_t signo, short what, void *arg)
{
    struct wsg_worker *w = arg;

    (void) what;
    switch (signo) {
    case SIGTERM:
    case SIGINT:
        wsg_log(WSG_LOG_NOTICE, &w->cycle->log, 0, "exiting");
        while (!TAILQ_EMPTY(&w->conns)) {
            wsg_conn_free(TAILQ_FIRST(&w->conns));
        }
        event_base_loopbreak(w->base);
        break;
    case SIGQUIT:
        graceful(w);
        break;
    case SIGUSR1:
        wsg_log(WSG_LOG_NOTICE, &w->cycle->log, 0, "reopening logs");
        wsg_log_reopen_all(w->cycle->files, -1, &w->cycle->log);
        break;
    default:
        break;
    }
}

/*
 * Creates an accepting listener for every socket this worker serves: a
 * shared socket, or with reuseport each socket k with k % workers == slot
 * (there may be more sockets than workers after a reload lowered the
 * count; they stay open and served, so no queued connection is reset).
 */
static int
start_listeners(struct wsg_worker *w, struct wsg_listener *listeners)
{
    unsigned nworkers = wsg_cycle_workers(w->cycle);
    size_t n = 0;

    for (struct wsg_listener *l = listeners; l != NULL; l = l->next) {
        n += l->nfds;
    }
    w->listeners = wsg_calloc(n ? n : 1, sizeof(*w->listeners));
    for (struct wsg_listener *l = listeners; l != NULL; l = l->next) {
        for (size_t k = 0; k < l->nfds; k++) {
            if (l->nfds > 1 && k % nworkers != w->slot) {
                /* another worker's socket: our copy is not needed */
                close(l->fds[k]);
                continue;
            }
            struct evconnlistener *el = evconnlistener_new(
                w->base, on_accept_conn, l->conf,
                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, l->fds[k]);
            if (el == NULL) {
                wsg_log(WSG_LOG_EMERG, &w->cycle->log, 0,
                        "evconnlistener_new() on %s failed", l->opt.text);
                return WSG_ERROR;
            }
            evconnlistener_set_error_cb(el, on_accept_error);
            w->listeners[w->nlisteners++] = el;
        }
    }
    return 0;
}

static int
start_signals(struct wsg_worker *w)
{
    static const int signos[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1};

    for (size_t i = 0; i < WSG_NELEMS(signos); i++) {
        w->signals[i] = evsignal_new(w->base, signos[i], on_signal, w);
        if (w->signals[i] == NULL || evsignal_add(w->signals[i], NULL) != 0) {
            wsg_log(WSG_LOG_EMERG, &w->cycle->log, 0, "evsignal_add(%d) failed",
                    signos[i]);
            return WSG_ERROR;
        }
    }
    return 0;
}

static int
init_modules(struct wsg_worker *w)
{
    for (size_t i = 0; i < w->cycle->nmodules; i++) {
        const struct wsg_module *m = w->cycle->modules[i];
        if (m->init_process != NULL && m->init_process(w->cycle) != 0) {
            wsg_log(WSG_LOG_EMERG, &w->cycle->log, 0,
                    "module \"%s\" failed to start", m->name);
            return WSG_ERROR;
        }
    }
    return 0;
}

void
wsg_worker_run(struct wsg_cycle *cycle, struct wsg_listener *listeners,
               unsigned slot, pid_t master)
{
    static struct wsg_worker worker;
    struct wsg_worker *w = &worker;

    the_worker = w;
    w->cycle = cycle;
    w->slot = slot;
    w->max_conns = (size_t) wsg_core_conf(cycle)->worker_connections;
    TAILQ_INIT(&w->conns);
    wsg_log_main = &cycle->log;
    wsg_process_set_title("wsgate: worker process");
    /* an orphaned worker finishes its connections and leaves; a master
     * that died before the prctl took effect is caught by the check */
    prctl(PR_SET_PDEATHSIG, SIGQUIT, 0, 0, 0);
    if (getppid() != master) {
        exit(0);
    }

    if (wsg_process_setup_worker(cycle, slot) != 0) {
        exit(2);
    }
    struct event_config *ecfg = event_config_new();
    /* epoll is the design; the others are fallbacks we do not want */
    event_config_avoid_method(ecfg, "select");
    event_config_avoid_method(ecfg, "poll");
    /* a write event added and removed within one loop pass costs no
     * epoll_ctl, and a read and a write change on one socket cost one */
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (w->base == NULL) {
        wsg_log(WSG_LOG_EMERG, &cycle->log, 0, "event_base_new() failed");
        exit(2);
    }
    w->accept_timer = evtimer_new(w->base, on_accept_retry, w);
    if (start_signals(w) != 0 || start_listeners(w, listeners) != 0 ||
        init_modules(w) != 0) {
        exit(2);
    }
    if (wsg_bus_attach(wsg_process_row, w->base) != 0) {
        wsg_log(WSG_LOG_EMERG, &cycle->log, 0, "joining the worker bus failed");
        exit(2);
    }
    /* pooled upstreams are connected before the first client needs them */
    wsg_pool_init(cycle, w->base);
    wsg_health_init(cycle, w->base, slot);
    wsg_signal_worker_unblock();
    wsg_log(WSG_LOG_NOTICE, &cycle->log, 0,
            "worker process %u started, event method %s", slot,
            event_base_get_method(w->base));

    event_base_dispatch(w->base);

    for (size_t i = 0; i < cycle->nmodules; i++) {
        if (cycle->modules[i]->exit_process != NULL) {
            cycle->modules[i]->exit_process(cycle);
        }
    }
    wsg_log(WSG_LOG_NOTICE, &cycle->log, 0, "worker process %u exiting", slot);
    exit(0);
}
