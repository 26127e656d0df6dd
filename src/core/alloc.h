/*
 * Allocation that never returns NULL: on failure the process logs the size
 * and aborts (the master respawns a worker). Callers therefore never check;
 * the real defence is checking peer-supplied sizes against limits first.
 */
#ifndef WSG_ALLOC_H
#define WSG_ALLOC_H

#include <stddef.h>

void *wsg_malloc(size_t size);
void *wsg_calloc(size_t nmemb, size_t size);
void *wsg_realloc(void *ptr, size_t size);
char *wsg_strdup(const char *s);
char *wsg_strndup(const char *s, size_t len);

#endif
