/*
 * Config arena: a list of blocks, each carved front to back. Large requests
 * get a block of their own so a big allocation never wastes a chunk tail.
 */
#include "config.h"

#include "core/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#define CHUNK_SIZE 16384

struct block {
    struct block *next;
    size_t used;
    size_t size;
    alignas(max_align_t) unsigned char data[];
};

struct wsg_arena {
    struct block *head;
};

struct wsg_arena *
wsg_arena_new(void)
{
    return wsg_calloc(1, sizeof(struct wsg_arena));
}

void
wsg_arena_free(struct wsg_arena *a)
{
    if (a == NULL) {
        return;
    }
    struct block *b = a->head;
    while (b != NULL) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

static struct block *
block_new(size_t size)
{
    struct block *b = wsg_malloc(sizeof(struct block) + size);

    b->next = NULL;
    b->used = 0;
    b->size = size;
    return b;
}

void *
wsg_arena_alloc(struct wsg_arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);

    if (size > SIZE_MAX / 2) {
        /* no config object is this large: a caller computed garbage */
        abort();
    }
    size = (size + align - 1) & ~(align - 1);

    struct block *b = a->head;
    if (size > CHUNK_SIZE / 4) {
        /* a private block, linked behind the current one to keep carving */
        struct block *big = block_new(size);
        big->used = size;
        if (b == NULL) {
            a->head = big;
        } else {
            big->next = b->next;
            b->next = big;
        }
        memset(big->data, 0, size);
        return big->data;
    }
    if (b == NULL || b->size - b->used < size) {
        b = block_new(CHUNK_SIZE);
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

void
wsg_arena_push(struct wsg_arena *a, void *arr, size_t *n, void *item)
{
    void ***items = arr;

    if ((*n & (*n - 1)) == 0) {
        void **bigger = wsg_arena_alloc(a, (*n ? *n * 2 : 1) * sizeof(void *));
        if (*n) {
            memcpy(bigger, *items, *n * sizeof(void *));
        }
        *items = bigger;
    }
    (*items)[(*n)++] = item;
}

char *
wsg_arena_strndup(struct wsg_arena *a, const char *s, size_t len)
{
    char *p = wsg_arena_alloc(a, len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
wsg_arena_strdup(struct wsg_arena *a, const char *s)
{
    return wsg_arena_strndup(a, s, strlen(s));
}
