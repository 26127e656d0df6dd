/*
 * Modules: a static description of a piece of the gateway (its directives,
 * the configuration it keeps at each level, its per-process hooks). The
 * core itself is built of modules, so the directive machinery is the same
 * for built-ins and plugins. The ABI number guards binary compatibility.
 */
#ifndef WSG_MODULE_H
#define WSG_MODULE_H

#include <stddef.h>
#include <stdint.h>

struct wsg_conf;
struct wsg_cycle;
struct wsg_directive;

#define WSG_MODULE_ABI 1u

struct wsg_module {
    uint32_t abi;  /* WSG_MODULE_ABI; checked first */
    uint32_t size; /* sizeof(struct wsg_module); checked second */
    const char *name;
    const struct wsg_directive *directives; /* NULL-name terminated */

    /* Configuration at each level; each may be NULL. create returns an
     * arena object with every field unset; merge/init fill defaults and
     * return NULL or an error phrase. */
    void *(*create_main_conf)(struct wsg_conf *cf);
    const char *(*init_main_conf)(struct wsg_conf *cf, void *conf);
    void *(*create_srv_conf)(struct wsg_conf *cf);
    const char *(*merge_srv_conf)(struct wsg_conf *cf, void *parent,
                                  void *child);
    void *(*create_loc_conf)(struct wsg_conf *cf);
    const char *(*merge_loc_conf)(struct wsg_conf *cf, void *parent,
                                  void *child);

    /* In each worker after fork; nonzero stops the worker. */
    int (*init_process)(struct wsg_cycle *cycle);
    void (*exit_process)(struct wsg_cycle *cycle);
};

/* Built-in modules in initialization order; the core comes first. */
extern const struct wsg_module *const wsg_builtin_modules[];
extern const size_t wsg_builtin_nmodules;

/* Fixed indices of the core's own modules in every cycle. */
#define WSG_CORE_MODULE_INDEX 0
#define WSG_HTTP_MODULE_INDEX 1

#endif
