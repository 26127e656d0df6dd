/*
 * The worker bus: delivery to users and rooms across the worker processes
 * of one node. Each worker has a row in a shared zone: an inbound ring
 * (many writers under a small lock, one reader) woken through an eventfd,
 * and a presence table only it writes and every worker reads. A message
 * goes only to the workers whose presence shows the user or room.
 */
#ifndef WSG_BUS_WORKER_H
#define WSG_BUS_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct wsg_session;

#define WSG_BUS_ROWS      256 /* one per process the master tracks */
#define WSG_BUS_USER_MAX  64  /* bytes of a user name */
#define WSG_BUS_ROOM_MAX  120 /* bytes of a room name */
#define WSG_BUS_ROOMS_MAX 64  /* rooms one session can be in */

/* Maps the zone and makes the eventfds (master, once, before forking). */
int wsg_bus_init(void);

/* In a new worker: takes row <row> and starts reading its ring. */
int wsg_bus_attach(unsigned row, struct event_base *base);

/* In the master: the worker of <row> is gone; its presence with it. */
void wsg_bus_row_gone(unsigned row);

/* Session bookkeeping, called by the session layer. */
void wsg_bus_user_changed(struct wsg_session *s, const char *old,
                          size_t oldlen);
void wsg_bus_session_gone(struct wsg_session *s);

#endif
