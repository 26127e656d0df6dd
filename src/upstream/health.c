/*
 * Active checks. A check is a non-blocking connect bounded by the check
 * interval; the result feeds wsg_peer_checked(), which turns fails
 * consecutive failures into "down" and passes successes into "up" again.
 * Changes are logged once, by the one worker that checks.
 */
#include "config.h"

#include "upstream/health.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/core.h"
#include "core/cycle.h"
#include "upstream/peer_state.h"
#include "upstream/upstream_conf.h"

struct check {
    struct wsg_upstream *u;
    size_t server;
    struct event_base *base;
    const struct wsg_log *log;
    struct event timer;
    struct bufferevent *be; /* the probe in flight, or NULL */
};

static void
verdict(struct check *k, bool ok)
{
    const struct wsg_upstream_server *s = &k->u->servers[k->server];

    if (k->be != NULL) {
        bufferevent_free(k->be);
        k->be = NULL;
    }
    if (wsg_peer_checked(s, ok, (unsigned) k->u->check_fails,
                         (unsigned) k->u->check_passes)) {
        wsg_log(ok ? WSG_LOG_NOTICE : WSG_LOG_WARN, k->log, 0,
                "upstream \"%s\" server %s is %s (health check)", k->u->name,
                s->text, ok ? "up again" : "down");
    }
}

static void
on_probe(struct bufferevent *be, short what, void *arg)
{
    (void) be;
    verdict(arg, (what & BEV_EVENT_CONNECTED) != 0);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct check *k = arg;
    const struct wsg_upstream_server *s = &k->u->servers[k->server];
    uint64_t ms = k->u->check_interval_ms;
    struct timeval tv = {(time_t) (ms / 1000),
                         (suseconds_t) ((ms % 1000) * 1000)};

    (void) fd;
    (void) what;
    if (k->be != NULL) {
        /* the last probe did not finish within an interval */
        verdict(k, false);
    }
    k->be = bufferevent_socket_new(k->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(k->be, NULL, NULL, on_probe, k);
    bufferevent_set_timeouts(k->be, NULL, &tv);
    bufferevent_socket_connect(k->be, (const struct sockaddr *) &s->addr,
                               (int) s->addrlen);
    evtimer_add(&k->timer, &tv);
}

void
wsg_health_init(struct wsg_cycle *cycle, struct event_base *base, unsigned slot)
{
    const struct wsg_upstream_main_conf *umcf =
        wsg_upstream_main_conf(cycle->main_conf);

    if (slot != 0) {
        return;
    }
    for (size_t i = 0; i < umcf->nupstreams; i++) {
        struct wsg_upstream *u = umcf->upstreams[i];
        if (u->check_interval_ms == 0) {
            continue;
        }
        for (size_t k = 0; k < u->nservers; k++) {
            struct check *c = wsg_calloc(1, sizeof(*c));
            struct timeval now = {0, 1000};
            c->u = u;
            c->server = k;
            c->base = base;
            c->log = &cycle->log;
            evtimer_assign(&c->timer, base, on_timer, c);
            evtimer_add(&c->timer, &now);
        }
    }
}
