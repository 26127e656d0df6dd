/*
 * Choosing a backend server (pure: the caller passes the servers' state):
 * smooth weighted round robin (nginx's algorithm), least connections
 * (weighted), and consistent hashing on a ring with virtual nodes, so that
 * adding or removing one server moves only about 1/N of the keys.
 */
#ifndef WSG_BALANCE_H
#define WSG_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the balancer reads of each server (and, for round robin, keeps). */
struct wsg_balance_peer {
    uint32_t weight;        /* >= 1 */
    bool up;                /* usable now (not down, not failed) */
    bool backup;            /* used only when no primary is up */
    int64_t current_weight; /* round robin state; start at 0 */
    uint64_t conns;         /* live connections (node-wide) */
    uint32_t id;            /* stable identity for the hash ring: e.g. a
                               hash of "host:port" */
};

/*
 * Smooth weighted round robin over the up peers of the tier in use
 * (primaries, or backups when no primary is up); updates current_weight.
 * Returns the index chosen, or -1 when no peer is up.
 */
int wsg_balance_round_robin(struct wsg_balance_peer *peers, size_t n);

/*
 * The up peer (same tiers) with the fewest conns per weight; ties go to
 * round robin among them. Returns its index or -1.
 */
int wsg_balance_least_conn(struct wsg_balance_peer *peers, size_t n);

/* A consistent hash ring built from the peers' ids and weights. */
struct wsg_balance_ring;

/*
 * Builds a ring with 160 points per unit of weight for each peer (tiers
 * are applied at lookup). Returns NULL only on allocation failure (never:
 * aborts on OOM).
 */
struct wsg_balance_ring *
wsg_balance_ring_new(const struct wsg_balance_peer *peers, size_t n);
void wsg_balance_ring_free(struct wsg_balance_ring *r);

/*
 * The peer for key <key>/<len>: the first point at or after the key's hash
 * whose peer is up (in the tier in use). Returns its index or -1.
 */
int wsg_balance_hash(const struct wsg_balance_ring *r,
                     const struct wsg_balance_peer *peers, size_t n,
                     const void *key, size_t len);

/* The 32-bit hash the ring uses (for ids and keys): stable across runs. */
uint32_t wsg_balance_hash32(const void *key, size_t len);

#endif
