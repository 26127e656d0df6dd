/*
 * Active health checks: every interval, a TCP connect to each server of
 * each upstream with health_check. One worker (slot 0) runs them and
 * writes the verdict to the shared peer state, which every worker reads.
 */
#ifndef WSG_HEALTH_H
#define WSG_HEALTH_H

struct event_base;
struct wsg_cycle;

/* Starts the checks of <cycle> on <base> when <slot> is 0. */
void wsg_health_init(struct wsg_cycle *cycle, struct event_base *base,
                     unsigned slot);

#endif
