/*
 * Process plumbing shared by master and workers: daemonizing, the pid
 * file, the process title, resource limits, CPU affinity and dropping
 * privileges. Each function logs its own failure with the failed call.
 */
#ifndef WSG_PROCESS_H
#define WSG_PROCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct wsg_cycle;
struct wsg_log;

/* This worker's row in the master's table: its counters and bus row. */
extern unsigned wsg_process_row;

/* Monotonic milliseconds, for every timeout and back-off. */
uint64_t wsg_process_now_ms(void);

/*
 * Detaches from the terminal: fork (the parent exits 0), setsid, stdin and
 * stdout to /dev/null. stderr is kept unless <quiet_stderr>, so an early
 * error still shows. Returns 0 in the daemon, WSG_ERROR on failure.
 */
int wsg_process_daemonize(bool quiet_stderr, const struct wsg_log *log);

/*
 * Writes the pid <pid> to <path> (atomically: a temporary file renamed
 * into place). Returns 0 or WSG_ERROR (logged).
 */
int wsg_process_write_pid(const char *path, pid_t pid,
                          const struct wsg_log *log);

/* Reads a pid from <path>; returns it, or -1 with a reason in *<why>. */
pid_t wsg_process_read_pid(const char *path, const char **why);

/* Saves argv so the process title can be set; call first thing in main. */
void wsg_process_init_title(int argc, char **argv);

/* Sets the title shown by ps ("wsgate: worker process"). */
void wsg_process_set_title(const char *title);

/*
 * In a worker: applies worker_rlimit_nofile, CPU affinity for <slot>, and
 * the user switch of <cycle>. Failures of the first two are logged and
 * tolerated; a failed user switch returns WSG_ERROR (a worker must not
 * run as root by accident).
 */
int wsg_process_setup_worker(const struct wsg_cycle *cycle, unsigned slot);

#endif
