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

#include "wsgate_module.h" /* struct wsg_module */

/*
 * Built-in modules in order; the core comes first. The last
 * wsg_builtin_nhandlers of them answer messages themselves (the echo):
 * loaded modules go before those, so their hooks see messages first.
 */
extern const struct wsg_module *const wsg_builtin_modules[];
extern const size_t wsg_builtin_nmodules;
extern const size_t wsg_builtin_nhandlers;

struct wsg_cycle;

/* The index of <m> among <cycle>'s modules, or SIZE_MAX. */
size_t wsg_module_index(const struct wsg_cycle *cycle,
                        const struct wsg_module *m);

/* Fixed indices of the core's own modules in every cycle. */
#define WSG_CORE_MODULE_INDEX 0
#define WSG_HTTP_MODULE_INDEX 1

#endif
