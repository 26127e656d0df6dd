/*
 * The master process: owns the configuration and the listening sockets,
 * forks the workers and supervises them. It runs no event loop: it sleeps
 * in sigsuspend() and acts on the flags its signal handlers set.
 */
#ifndef WSG_MASTER_H
#define WSG_MASTER_H

struct wsg_cycle;

/* What the master needs to reload: where the config came from. */
struct wsg_master_args {
    const char *prefix;    /* absolute, trailing '/' */
    const char *conf_file; /* absolute */
    const char *params;    /* -g string, or NULL */
};

/*
 * Runs the master on the loaded <cycle> (ownership passes to the master):
 * opens listeners, writes the pid file, starts the workers and supervises
 * until stopped. Returns the process exit status.
 */
int wsg_master_run(struct wsg_cycle *cycle, const struct wsg_master_args *args);

#endif
