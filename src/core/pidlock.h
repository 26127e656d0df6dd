/*
 * A spinlock in shared memory that knows its holder: the pid. A process
 * that dies holding it (a crashed worker) cannot wedge the others: a
 * waiter that finds the holder gone takes the lock over.
 */
#ifndef WSG_PIDLOCK_H
#define WSG_PIDLOCK_H

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

/* Spins before looking at the holder and yielding the CPU. */
#define WSG_PIDLOCK_SPINS 64

static inline void
wsg_pidlock_acquire(atomic_int *lock)
{
    int me = (int) getpid(), spins = 0;

    for (;;) {
        int owner = 0;
        if (atomic_compare_exchange_weak(lock, &owner, me)) {
            return;
        }
        if (++spins < WSG_PIDLOCK_SPINS) {
            continue;
        }
        spins = 0;
        if (owner != 0 && kill(owner, 0) == -1 && errno == ESRCH) {
            atomic_compare_exchange_strong(lock, &owner, 0);
        }
        sched_yield();
    }
}

static inline void
wsg_pidlock_release(atomic_int *lock)
{
    atomic_store(lock, 0);
}

#endif
