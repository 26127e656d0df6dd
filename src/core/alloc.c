/*
 * Aborting allocators. Out of memory is not a condition a worker can serve
 * through, so it dies loudly and the master starts a fresh one.
 */
#include "config.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
oom(size_t size)
{
    char buf[96];
    int n = snprintf(buf, sizeof(buf),
                     "wsgate: [emerg] %d: out of memory allocating %zu bytes\n",
                     (int) getpid(), size);

    /* write(2), not stdio: stdio may itself need memory */
    if (n > 0 && write(STDERR_FILENO, buf, (size_t) n) == -1) {
        /* nothing left to report to */
    }
    abort();
}

void *
wsg_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL) {
        oom(size);
    }
    return p;
}

void *
wsg_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

    if (p == NULL) {
        oom(nmemb * size);
    }
    return p;
}

void *
wsg_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);

    if (p == NULL) {
        oom(size);
    }
    return p;
}

char *
wsg_strndup(const char *s, size_t len)
{
    char *p = wsg_malloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
wsg_strdup(const char *s)
{
    return wsg_strndup(s, strlen(s));
}
