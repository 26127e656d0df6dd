/*
 * The echo module: "websocket_echo on;" makes a location a WebSocket
 * endpoint that sends every message back to its sender, text as text and
 * binary as binary. For tests, demos and measuring the gateway itself.
 * It uses only the public module API, like any third-party module.
 */
#include <stddef.h>

#include "wsgate_module.h"

struct echo_loc_conf {
    int enabled; /* flag */
};

extern const struct wsg_module wsg_echo_module;

static const char *
set_echo(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    const char *rv = wsg_conf_set_flag(cf, d, conf);
    const struct echo_loc_conf *elcf = conf;

    if (rv == NULL && elcf->enabled == 1) {
        wsg_conf_websocket_endpoint(cf);
    }
    return rv;
}

static const struct wsg_directive echo_directives[] = {
    {"websocket_echo", WSG_CTX_LOCATION, 1, 1, set_echo,
     offsetof(struct echo_loc_conf, enabled), NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
echo_create_loc_conf(struct wsg_conf *cf)
{
    struct echo_loc_conf *elcf = wsg_conf_alloc(cf, sizeof(*elcf));

    elcf->enabled = WSG_CONF_UNSET;
    return elcf;
}

static const char *
echo_merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    struct echo_loc_conf *elcf = child;

    (void) cf;
    (void) parent;
    /* per location: a location echoes only when it says so */
    if (elcf->enabled == WSG_CONF_UNSET) {
        elcf->enabled = 0;
    }
    return NULL;
}

static int
echo_on_message(struct wsg_session *s, struct wsg_msg *m)
{
    const struct echo_loc_conf *elcf =
        wsg_session_loc_conf(s, &wsg_echo_module);

    if (elcf == NULL || elcf->enabled != 1) {
        return WSG_NEXT;
    }
    /* the message goes back without a copy of its payload when it is big */
    wsg_session_send_msg(s, m);
    return WSG_STOP;
}

const struct wsg_module wsg_echo_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "echo",
    .directives = echo_directives,
    .create_loc_conf = echo_create_loc_conf,
    .merge_loc_conf = echo_merge_loc_conf,
    .on_message = echo_on_message,
};
