/*
 * Inputs that end exactly at a PROT_NONE page: a parser that reads one
 * byte past its input faults, even without a sanitizer. The file that
 * includes this defines GUARD_MAX, the longest input it copies.
 */
#ifndef WSG_T_GUARD_H
#define WSG_T_GUARD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint8_t *guard_end; /* the first byte of a PROT_NONE page */

static void
guard_init(void)
{
    long page = sysconf(_SC_PAGESIZE);

    if (page <= 0 || (size_t) page < GUARD_MAX) {
        abort();
    }
    uint8_t *m = mmap(NULL, 2 * (size_t) page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    if (mprotect(m + page, (size_t) page, PROT_NONE) == -1) {
        perror("mprotect");
        abort();
    }
    guard_end = m + page;
}

/* Copies <len> bytes of <s> so that they end at the guard page; the copy
 * is writable (tests that unmask in place use it). */
static uint8_t *
guarded(const void *s, size_t len)
{
    if (len > GUARD_MAX) {
        abort();
    }
    uint8_t *p = guard_end - len;
    memmove(p, s, len);
    return p;
}

#endif
