/*
 * Signal flags for the master. nginx's meanings: TERM/INT stop now, QUIT
 * stop gracefully, HUP reload, USR1 reopen logs. The handler saves errno
 * and sets a flag; all work happens in the master loop.
 */
#include "config.h"

#include "process/signal.h"

#include <errno.h>
#include <string.h>

#include "core/core.h"

volatile sig_atomic_t wsg_sig_reap;
volatile sig_atomic_t wsg_sig_terminate;
volatile sig_atomic_t wsg_sig_quit;
volatile sig_atomic_t wsg_sig_reconfigure;
volatile sig_atomic_t wsg_sig_reopen;
volatile sig_atomic_t wsg_sig_alarm;

static const int handled[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT,
                              SIGHUP,  SIGUSR1, SIGALRM};

static void
on_signal(int signo)
{
    int saved = errno;

    switch (signo) {
    case SIGCHLD:
        wsg_sig_reap = 1;
        break;
    case SIGTERM:
    case SIGINT:
        wsg_sig_terminate = 1;
        break;
    case SIGQUIT:
        wsg_sig_quit = 1;
        break;
    case SIGHUP:
        wsg_sig_reconfigure = 1;
        break;
    case SIGUSR1:
        wsg_sig_reopen = 1;
        break;
    case SIGALRM:
        wsg_sig_alarm = 1;
        break;
    default:
        break;
    }
    errno = saved;
}

int
wsg_signal_init_master(sigset_t *wait_set)
{
    sigset_t block;
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&block);
    for (size_t i = 0; i < WSG_NELEMS(handled); i++) {
        if (sigaction(handled[i], &sa, NULL) == -1) {
            return WSG_ERROR;
        }
        sigaddset(&block, handled[i]);
    }
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) == -1) {
        return WSG_ERROR;
    }
    if (sigprocmask(SIG_BLOCK, &block, NULL) == -1) {
        return WSG_ERROR;
    }
    sigemptyset(wait_set);
    return 0;
}

void
wsg_signal_worker_unblock(void)
{
    struct sigaction sa;
    sigset_t none;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    /* a reload is the master's business; a stray HUP must not kill us */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int
wsg_signal_by_command(const char *name)
{
    static const struct {
        const char *name;
        int signo;
    } commands[] = {
        {"stop", SIGTERM},
        {"quit", SIGQUIT},
        {"reload", SIGHUP},
        {"reopen", SIGUSR1},
    };

    for (size_t i = 0; i < WSG_NELEMS(commands); i++) {
        if (strcmp(name, commands[i].name) == 0) {
            return commands[i].signo;
        }
    }
    return 0;
}
