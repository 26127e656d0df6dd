/*
 * Node-wide traffic counters. Each worker process writes only its own
 * entry of a zone shared with the master (so counting costs no contended
 * cache line); readers sum every entry. Entries outlive their process:
 * totals keep counting across respawns and reloads, while the master
 * zeroes a dead worker's gauge of open connections.
 */
#ifndef WSG_STATS_H
#define WSG_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define WSG_STATS_ENTRIES 256 /* the master tracks at most this many */

/* Close codes counted one by one: 1000..1015; others go to "other". */
#define WSG_STATS_CODES 16

struct wsg_stats {
    atomic_uint_fast64_t accepted;    /* TCP connections accepted */
    atomic_uint_fast64_t refused;     /* over worker_connections */
    atomic_uint_fast64_t handshakes;  /* 101 sent */
    atomic_int_fast64_t connections;  /* open now (gauge) */
    atomic_uint_fast64_t messages_in; /* WebSocket messages from clients */
    atomic_uint_fast64_t messages_out;
    atomic_uint_fast64_t bytes_in; /* their payload bytes */
    atomic_uint_fast64_t bytes_out;
    atomic_uint_fast64_t close_codes[WSG_STATS_CODES];
    atomic_uint_fast64_t close_other;
    atomic_uint_fast64_t bus_dropped; /* worker bus queue was full */
};

/* This process's entry; a private dummy until wsg_stats_attach(). */
extern struct wsg_stats *wsg_stats;

/* Maps the zone (master, once, before forking). Returns 0 or WSG_ERROR. */
int wsg_stats_init(void);

/* In a new worker: count into entry <index>. */
void wsg_stats_attach(unsigned index);

/* In the master, when the worker of entry <index> is gone. */
void wsg_stats_worker_gone(unsigned index);

/* Counts a session's close <code>. */
void wsg_stats_close_code(uint16_t code);

/* Sums every entry into <out> (plain numbers in the same layout). */
void wsg_stats_sum(uint64_t *fields, size_t nfields);

/* The number of uint64 fields of struct wsg_stats, for wsg_stats_sum. */
#define WSG_STATS_FIELDS (sizeof(struct wsg_stats) / sizeof(uint64_t))

#endif
