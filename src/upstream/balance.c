/*
 * Backend choice: smooth weighted round robin (nginx), weighted least
 * connections with round robin among ties, and a consistent hash ring.
 * Everything is pure: the caller owns the peers and their state. A ring
 * point depends only on its peer's id, so adding a peer only adds points.
 */
#include "config.h"

#include "upstream/balance.h"

#include <stdlib.h>

#include "core/alloc.h"

/* Points per unit of weight: ketama's 160, also nginx's hash consistent. */
#define RING_POINTS_PER_WEIGHT 160

/* FNV-1a 32-bit parameters (FNV offset basis and prime). */
#define FNV32_BASIS 2166136261u
#define FNV32_PRIME 16777619u

/* Which peers serve a pick: primaries while any is up, else backups. */
enum tier {
    TIER_NONE = -1, /* no peer is up */
    TIER_PRIMARY,
    TIER_BACKUP,
};

struct point {
    uint32_t hash; /* position on the ring */
    uint32_t id;   /* the peer's id: orders equal hashes by identity */
    uint32_t peer; /* index into the peers the ring was built from */
};

struct wsg_balance_ring {
    struct point *points; /* owned; sorted by (hash, id, peer) */
    size_t npoints;
};

static enum tier
tier_in_use(const struct wsg_balance_peer *peers, size_t n)
{
    bool backup_up = false;

    for (size_t i = 0; i < n; i++) {
        if (!peers[i].up) {
            continue;
        }
        if (!peers[i].backup) {
            return TIER_PRIMARY;
        }
        backup_up = true;
    }
    return backup_up ? TIER_BACKUP : TIER_NONE;
}

static bool
in_tier(const struct wsg_balance_peer *p, enum tier t)
{
    return p->up && p->backup == (t == TIER_BACKUP);
}

/*
 * <c> * <w> as a 96-bit number hi * 2^32 + lo (lo < 2^32). Each partial
 * product of a 32-bit half by <w> fits in 64 bits, and hi cannot wrap:
 * (2^32 - 1)^2 + (2^32 - 1) < 2^64.
 */
static void
mul_64x32(uint64_t c, uint32_t w, uint64_t *hi, uint64_t *lo)
{
    uint64_t low = (c & 0xffffffffu) * w;

    *hi = (c >> 32) * w + (low >> 32);
    *lo = low & 0xffffffffu;
}

/*
 * Orders the loads conns/weight of <a> and <b> as -1, 0 or 1. Dividing
 * would round ties apart, and a plain 64-bit cross product can wrap once
 * conns passes 2^32, so the cross products are compared at 96 bits.
 */
static int
load_cmp(const struct wsg_balance_peer *a, const struct wsg_balance_peer *b)
{
    uint64_t ahi, alo, bhi, blo;

    mul_64x32(a->conns, b->weight, &ahi, &alo);
    mul_64x32(b->conns, a->weight, &bhi, &blo);
    if (ahi != bhi) {
        return ahi < bhi ? -1 : 1;
    }
    if (alo != blo) {
        return alo < blo ? -1 : 1;
    }
    return 0;
}

/*
 * nginx's smooth weighted round robin over the up peers of tier <t>, and
 * when <tied> is given only over those whose load equals its load. Each
 * candidate gains its weight, the largest wins (the first on equality, as
 * in nginx) and pays back the total, so over sum(weights) picks each peer
 * wins exactly its weight, interleaved rather than in runs.
 */
static int
smooth_pick(struct wsg_balance_peer *peers, size_t n, enum tier t,
            const struct wsg_balance_peer *tied)
{
    struct wsg_balance_peer *best = NULL;
    int64_t total = 0;

    for (size_t i = 0; i < n; i++) {
        struct wsg_balance_peer *p = &peers[i];
        if (!in_tier(p, t) || (tied != NULL && load_cmp(p, tied) != 0)) {
            continue;
        }
        p->current_weight += p->weight;
        total += p->weight;
        if (best == NULL || p->current_weight > best->current_weight) {
            best = p;
        }
    }
    if (best == NULL) {
        return -1;
    }
    best->current_weight -= total;
    return (int) (best - peers);
}

int
wsg_balance_round_robin(struct wsg_balance_peer *peers, size_t n)
{
    enum tier t = tier_in_use(peers, n);

    if (t == TIER_NONE) {
        return -1;
    }
    return smooth_pick(peers, n, t, NULL);
}

int
wsg_balance_least_conn(struct wsg_balance_peer *peers, size_t n)
{
    enum tier t = tier_in_use(peers, n);
    const struct wsg_balance_peer *best = NULL;
    size_t ties = 0;

    if (t == TIER_NONE) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct wsg_balance_peer *p = &peers[i];
        if (!in_tier(p, t)) {
            continue;
        }
        int cmp = best == NULL ? -1 : load_cmp(p, best);
        if (cmp < 0) {
            best = p;
            ties = 1;
        } else if (cmp == 0) {
            ties++;
        }
    }
    /* nginx leaves round robin state alone when there is no tie */
    if (ties == 1) {
        return (int) (best - peers);
    }
    return smooth_pick(peers, n, t, best);
}

/*
 * FNV-1a over the bytes, then murmur3's 32-bit finalizer (fmix32). FNV-1a
 * alone mixes its last bytes poorly, so inputs differing only there (the
 * point numbers of one peer) would land close together on the ring; fmix32
 * is a bijection that spreads each input bit over the whole result. Bytes
 * are read one at a time with no seed: the value depends on neither byte
 * order, alignment, platform nor run.
 */
uint32_t
wsg_balance_hash32(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint32_t h = FNV32_BASIS;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV32_PRIME;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* Point <i> of the peer <id>: hash32 of id || i, each little-endian. */
static uint32_t
point_hash(uint32_t id, uint32_t i)
{
    unsigned char b[8];

    for (int k = 0; k < 4; k++) {
        b[k] = (unsigned char) (id >> (8 * k));
        b[4 + k] = (unsigned char) (i >> (8 * k));
    }
    return wsg_balance_hash32(b, sizeof(b));
}

/*
 * Orders by hash, then by peer id, so equal hashes (rare, but possible)
 * resolve the same however the peers are ordered; the index comes last
 * only to make the order total.
 */
static int
point_cmp(const void *a, const void *b)
{
    const struct point *x = a, *y = b;

    if (x->hash != y->hash) {
        return x->hash < y->hash ? -1 : 1;
    }
    if (x->id != y->id) {
        return x->id < y->id ? -1 : 1;
    }
    return (x->peer > y->peer) - (x->peer < y->peer);
}

/*
 * Points a ring of <peers>/<n> needs, saturated at SIZE_MAX so that an
 * absurd total fails in wsg_calloc's overflow check (and aborts) instead
 * of wrapping into a short allocation.
 */
static size_t
ring_size(const struct wsg_balance_peer *peers, size_t n)
{
    size_t total = 0;

    for (size_t i = 0; i < n; i++) {
        size_t w = peers[i].weight;
        if (w > (SIZE_MAX - total) / RING_POINTS_PER_WEIGHT) {
            return SIZE_MAX;
        }
        total += w * RING_POINTS_PER_WEIGHT;
    }
    return total;
}

struct wsg_balance_ring *
wsg_balance_ring_new(const struct wsg_balance_peer *peers, size_t n)
{
    struct wsg_balance_ring *r = wsg_calloc(1, sizeof(*r));
    size_t k = 0;

    r->npoints = ring_size(peers, n);
    r->points = wsg_calloc(r->npoints, sizeof(*r->points));
    for (size_t i = 0; i < n; i++) {
        /* 64 bits, as weight * 160 can pass 2^32; past that the 32-bit
           point numbers repeat, which only duplicates points */
        uint64_t points = (uint64_t) peers[i].weight * RING_POINTS_PER_WEIGHT;
        for (uint64_t j = 0; j < points; j++) {
            r->points[k].hash = point_hash(peers[i].id, (uint32_t) j);
            r->points[k].id = peers[i].id;
            r->points[k].peer = (uint32_t) i;
            k++;
        }
    }
    qsort(r->points, r->npoints, sizeof(*r->points), point_cmp);
    return r;
}

void
wsg_balance_ring_free(struct wsg_balance_ring *r)
{
    if (r == NULL) {
        return;
    }
    free(r->points);
    free(r);
}

/* The first point at or after <h>, wrapping to 0 past the last one. */
static size_t
ring_find(const struct wsg_balance_ring *r, uint32_t h)
{
    size_t lo = 0, hi = r->npoints;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->points[mid].hash < h) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == r->npoints ? 0 : lo;
}

int
wsg_balance_hash(const struct wsg_balance_ring *r,
                 const struct wsg_balance_peer *peers, size_t n,
                 const void *key, size_t len)
{
    enum tier t = tier_in_use(peers, n);

    if (t == TIER_NONE || r->npoints == 0) {
        return -1;
    }
    size_t start = ring_find(r, wsg_balance_hash32(key, len));
    /* skipping unusable points rather than rebuilding is what keeps the
       keys of the other peers where they were while one is down */
    for (size_t k = 0; k < r->npoints; k++) {
        const struct point *pt = &r->points[(start + k) % r->npoints];
        if (pt->peer < n && in_tier(&peers[pt->peer], t)) {
            return (int) pt->peer;
        }
    }
    return -1;
}
