/*
 * Master signal handling: handlers only set flags; the master loop blocks
 * every signal it handles and waits in sigsuspend(), so a flag is never
 * missed between the check and the wait.
 */
#ifndef WSG_SIGNAL_H
#define WSG_SIGNAL_H

#include <signal.h>

/* Set by the handlers, cleared by the master loop. */
extern volatile sig_atomic_t wsg_sig_reap;        /* SIGCHLD */
extern volatile sig_atomic_t wsg_sig_terminate;   /* SIGTERM, SIGINT */
extern volatile sig_atomic_t wsg_sig_quit;        /* SIGQUIT */
extern volatile sig_atomic_t wsg_sig_reconfigure; /* SIGHUP */
extern volatile sig_atomic_t wsg_sig_reopen;      /* SIGUSR1 */
extern volatile sig_atomic_t wsg_sig_alarm;       /* SIGALRM */

/*
 * Installs the master's handlers and blocks those signals; the set to
 * wait with (everything unblocked) goes to <wait_set>. Returns 0, or
 * WSG_ERROR with errno set.
 */
int wsg_signal_init_master(sigset_t *wait_set);

/*
 * In a new worker, once it has its own handlers for the stop, quit and
 * reopen signals: restores the default action of the master-only ones
 * (SIGCHLD, SIGALRM), ignores SIGHUP, and unblocks everything.
 */
void wsg_signal_worker_unblock(void);

/*
 * Maps a -s argument ("stop", "quit", "reload", "reopen") to its signal;
 * returns 0 for an unknown name.
 */
int wsg_signal_by_command(const char *name);

#endif
