/*
 * The registry of built-in modules. The order is the order of
 * initialization and of hook calls; the core's own modules come first at
 * the fixed indices module.h names.
 */
#include "config.h"

#include "core/module.h"

#include "core/core.h"
#include "core/cycle.h"
#include "http/http_conf.h"
#include "upstream/upstream_conf.h"
#include "ws/ws_conf.h"

extern const struct wsg_module wsg_echo_module;
extern const struct wsg_module wsg_status_module;
extern const struct wsg_module wsg_ratelimit_module;
extern const struct wsg_module wsg_auth_module;
extern const struct wsg_module wsg_router_module;
extern const struct wsg_module wsg_chat_module;

/* clang-format off */
const struct wsg_module *const wsg_builtin_modules[] = {
    &wsg_core_module,
    &wsg_http_module,
    &wsg_ws_module,
    &wsg_upstream_module,
    &wsg_status_module,
    &wsg_ratelimit_module,
    /* after the limits: a client over them is refused before any crypto */
    &wsg_auth_module,
    /* handlers last: loaded modules are placed before them; the router
     * may take some messages and pass the rest to the chat */
    &wsg_router_module,
    &wsg_chat_module,
    &wsg_echo_module,
};
/* clang-format on */

const size_t wsg_builtin_nmodules = WSG_NELEMS(wsg_builtin_modules);
const size_t wsg_builtin_nhandlers = 3;

_Static_assert(WSG_NELEMS(wsg_builtin_modules) > WSG_UPSTREAM_MODULE_INDEX,
               "core modules must sit at their fixed indices");

size_t
wsg_module_index(const struct wsg_cycle *cycle, const struct wsg_module *m)
{
    /* a handful of modules: a scan is cheaper than keeping a map */
    for (size_t i = 0; i < cycle->nmodules; i++) {
        if (cycle->modules[i] == m) {
            return i;
        }
    }
    return SIZE_MAX;
}
