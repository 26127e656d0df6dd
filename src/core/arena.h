/*
 * A bump allocator for objects that live exactly as long as one loaded
 * configuration. Everything a config parse creates goes here, so a failed
 * reload frees the lot with one call and the running config is untouched.
 */
#ifndef WSG_ARENA_H
#define WSG_ARENA_H

#include <stddef.h>

struct wsg_arena;

/* Returns a new, empty arena (never NULL). */
struct wsg_arena *wsg_arena_new(void);

/* Frees <a> and every block allocated from it; accepts NULL. */
void wsg_arena_free(struct wsg_arena *a);

/* Returns <size> zeroed bytes aligned for any type, owned by <a>. */
void *wsg_arena_alloc(struct wsg_arena *a, size_t size);

/*
 * Appends <item> to the arena array of pointers at *<arr> holding *<n>
 * items (start at NULL and 0); the array grows by copying at powers of
 * two, which suits configuration lists. <arr> is the address of any
 * "T **" field.
 */
void wsg_arena_push(struct wsg_arena *a, void *arr, size_t *n, void *item);

/* Copies <len> bytes of <s> and a terminating NUL into <a>. */
char *wsg_arena_strndup(struct wsg_arena *a, const char *s, size_t len);
char *wsg_arena_strdup(struct wsg_arena *a, const char *s);

#endif
