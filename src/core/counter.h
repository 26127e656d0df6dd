/*
 * Node-wide named counters and token buckets, in memory shared by every
 * worker: what a limit per client address needs when that client's
 * connections land on several workers. The table is split into
 * partitions, each with its own lock, so workers rarely wait on one
 * another.
 */
#ifndef WSG_COUNTER_H
#define WSG_COUNTER_H

/* Maps the table (master, once, before forking). Returns 0 or WSG_ERROR. */
int wsg_counter_init(void);

#endif
