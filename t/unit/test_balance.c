/*
 * Tests of src/upstream/balance.h: the exact smooth round robin sequences
 * of nginx, weights, down peers and backups; least connections with
 * weights, ties and 96-bit cross products; and the consistent hash ring's
 * spread, the keys that move when a peer joins or leaves, and stability.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/balance.h"
#include "tap.h"

/* Keys hashed in each ring test. */
#define KEYS 100000

/* Peers in the ring tests, at most. */
#define RING_PEERS_MAX 5

static int owner_a[KEYS]; /* each key's peer in the first ring */
static int owner_b[KEYS]; /* ... and in the ring it is compared with */

/*
 * Runs <picks> picks of <pick> and writes them as letters ('a' for index
 * 0, '-' for -1) into <out>, which holds at least <picks> + 1 bytes.
 */
static const char *
letters(int (*pick)(struct wsg_balance_peer *, size_t),
        struct wsg_balance_peer *peers, size_t n, size_t picks, char *out)
{
    for (size_t i = 0; i < picks; i++) {
        int idx = pick(peers, n);
        out[i] = idx < 0 ? '-' : (char) ('a' + idx);
    }
    out[picks] = '\0';
    return out;
}

static void
test_hash32(void)
{
    char buf[32];

    /* pinned: a change would move every key of every deployed ring */
    is_uint(wsg_balance_hash32("", 0), 0xab3e7c0bu, "hash32 of nothing");
    is_uint(wsg_balance_hash32("a", 1), 0x1a80b1b3u, "hash32 of \"a\"");
    is_uint(wsg_balance_hash32("10.0.0.1:9000", 13), 0x2459c0deu,
            "hash32 of an address");
    is_uint(wsg_balance_hash32("hello world", 11), 0xb90456ecu,
            "hash32 of \"hello world\"");
    memcpy(buf + 1, "hello world", 11);
    is_uint(wsg_balance_hash32(buf + 1, 11), 0xb90456ecu,
            "hash32 ignores alignment");
}

static void
test_rr_sequence(void)
{
    struct wsg_balance_peer p[] = {
        {.weight = 5, .up = true},
        {.weight = 1, .up = true},
        {.weight = 1, .up = true},
    };
    char s[16];

    is_str(letters(wsg_balance_round_robin, p, 3, 7, s), "aabacaa",
           "weights 5,1,1 give nginx's sequence");
    ok(p[0].current_weight == 0 && p[1].current_weight == 0 &&
           p[2].current_weight == 0,
       "current weights are back to 0 after sum(weights) picks");
    is_str(letters(wsg_balance_round_robin, p, 3, 14, s), "aabacaaaabacaa",
           "and the sequence repeats");
}

static void
test_rr_weights(void)
{
    struct wsg_balance_peer p[] = {
        {.weight = 3, .up = true},
        {.weight = 2, .up = true},
        {.weight = 1, .up = true},
    };
    int count[3] = {0};
    const int picks = 10000;

    for (int i = 0; i < picks; i++) {
        int idx = wsg_balance_round_robin(p, 3);
        if (idx >= 0) {
            count[idx]++;
        }
    }
    for (int i = 0; i < 3; i++) {
        double expected = picks * (double) p[i].weight / 6.0;
        note("weight %u: %d of %d picks (%.2f%%, ideal %.2f%%)", p[i].weight,
             count[i], picks, 100.0 * count[i] / picks,
             100.0 * expected / picks);
        ok(count[i] >= expected * 0.99 && count[i] <= expected * 1.01,
           "weight %u gets its share within 1%%", p[i].weight);
    }
}

static void
test_rr_down(void)
{
    struct wsg_balance_peer p[] = {
        {.weight = 1, .up = true},
        {.weight = 1, .up = true},
        {.weight = 1, .up = true},
    };
    char s[128];

    is_str(letters(wsg_balance_round_robin, p, 3, 6, s), "abcabc",
           "equal weights rotate");
    p[1].up = false;
    letters(wsg_balance_round_robin, p, 3, 100, s);
    ok(strchr(s, 'b') == NULL, "a down peer is never picked");
    is_str(s + 94, "acacac", "the others alternate");
    p[1].up = true;
    is_str(letters(wsg_balance_round_robin, p, 3, 3, s), "abc",
           "it is picked again once up");
}

static void
test_rr_backups(void)
{
    struct wsg_balance_peer p[] = {
        {.weight = 1, .up = true},
        {.weight = 1, .up = true},
        {.weight = 2, .up = true, .backup = true},
        {.weight = 1, .up = true, .backup = true},
    };
    char s[16];

    is_str(letters(wsg_balance_round_robin, p, 4, 6, s), "ababab",
           "backups idle while primaries are up");
    p[0].up = false;
    is_str(letters(wsg_balance_round_robin, p, 4, 3, s), "bbb",
           "backups idle while one primary is up");
    p[1].up = false;
    is_str(letters(wsg_balance_round_robin, p, 4, 3, s), "cdc",
           "backups serve, weighted, when no primary is up");
    p[0].up = true;
    is_str(letters(wsg_balance_round_robin, p, 4, 3, s), "aaa",
           "a primary back up takes over again");
    for (size_t i = 0; i < 4; i++) {
        p[i].up = false;
    }
    is_int(wsg_balance_round_robin(p, 4), -1, "-1 when nothing is up");
    is_int(wsg_balance_round_robin(NULL, 0), -1, "-1 with no peers");
}

static void
test_lc_least(void)
{
    struct wsg_balance_peer p[] = {
        {.weight = 1, .up = true, .conns = 3},
        {.weight = 1, .up = true, .conns = 1},
        {.weight = 1, .up = true, .conns = 2},
    };

    is_int(wsg_balance_least_conn(p, 3), 1, "the least loaded peer");
    p[1].up = false;
    is_int(wsg_balance_least_conn(p, 3), 2, "the least loaded up peer");
    p[0].backup = true;
    p[2].up = false;
    is_int(wsg_balance_least_conn(p, 3), 0, "a backup when no primary is up");
    p[0].up = false;
    is_int(wsg_balance_least_conn(p, 3), -1, "-1 when nothing is up");
}

static void
test_lc_weight(void)
{
    struct wsg_balance_peer p[] = {
        {.weight = 1, .up = true, .conns = 1},
        {.weight = 2, .up = true, .conns = 1},
        {.weight = 3, .up = true},
    };

    is_int(wsg_balance_least_conn(p, 2), 1, "1/2 is less than 1/1");
    p[1].conns = 3;
    is_int(wsg_balance_least_conn(p, 2), 0, "1/1 is less than 3/2");
    /* each pick opens a connection: loads must stay proportional */
    p[0].conns = p[1].conns = 0;
    for (int i = 0; i < 600; i++) {
        int idx = wsg_balance_least_conn(p, 3);
        if (idx >= 0) {
            p[idx].conns++;
        }
    }
    ok(p[0].conns == 100 && p[1].conns == 200 && p[2].conns == 300,
       "600 picks over weights 1,2,3 open 100,200,300 connections");
}

static void
test_lc_ties(void)
{
    struct wsg_balance_peer p[] = {
        {.weight = 1, .up = true},
        {.weight = 1, .up = true},
        {.weight = 1, .up = true, .conns = 5},
    };
    struct wsg_balance_peer w[] = {
        {.weight = 2, .up = true, .conns = 2},
        {.weight = 1, .up = true, .conns = 1},
    };
    char s[16];

    is_str(letters(wsg_balance_least_conn, p, 3, 6, s), "ababab",
           "equally loaded peers alternate");
    is_str(letters(wsg_balance_least_conn, w, 2, 6, s), "abaaba",
           "ties on conns/weight go by weighted round robin");
}

static void
test_lc_wide(void)
{
    /* 64-bit cross products wrap on these and choose wrongly */
    struct wsg_balance_peer p[] = {
        {.weight = 1, .up = true, .conns = UINT64_C(1) << 40},
        {.weight = UINT32_MAX, .up = true, .conns = UINT64_MAX},
    };
    struct wsg_balance_peer q[] = {
        {.weight = UINT32_MAX - 1, .up = true, .conns = UINT64_MAX},
        {.weight = UINT32_MAX, .up = true, .conns = UINT64_MAX},
    };
    /* both exactly 2^32 + 1 per unit of weight */
    struct wsg_balance_peer t[] = {
        {.weight = UINT32_MAX, .up = true, .conns = UINT64_MAX},
        {.weight = 1, .up = true, .conns = (UINT64_C(1) << 32) + 1},
    };

    is_int(wsg_balance_least_conn(p, 2), 1, "2^32+1 per weight beats 2^40");
    is_int(wsg_balance_least_conn(q, 2), 1, "2^32+1 per weight beats 2^32+2");
    /* only a tie runs round robin, which moves every tied current_weight */
    is_int(wsg_balance_least_conn(t, 2), 0, "an exact tie at 96 bits...");
    is_int(t[1].current_weight, 1, "... is settled by round robin");
}

/* <n> peers of weight 1 with ids hashed from their addresses. */
static void
ring_peers(struct wsg_balance_peer *peers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char addr[32];
        int len = snprintf(addr, sizeof(addr), "10.0.0.%zu:9000", i + 1);
        memset(&peers[i], 0, sizeof(peers[i]));
        peers[i].weight = 1;
        peers[i].up = true;
        peers[i].id = wsg_balance_hash32(addr, (size_t) len);
    }
}

/* Looks up KEYS keys "user:<i>" and stores each one's peer in <owner>. */
static void
ring_assign(const struct wsg_balance_ring *r,
            const struct wsg_balance_peer *peers, size_t n, int *owner)
{
    for (int i = 0; i < KEYS; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "user:%d", i);
        owner[i] = wsg_balance_hash(r, peers, n, key, (size_t) len);
    }
}

/* A new ring over <peers>/<n>, queried into <owner>, then freed. */
static void
ring_run(const struct wsg_balance_peer *peers, size_t n, int *owner)
{
    struct wsg_balance_ring *r = wsg_balance_ring_new(peers, n);

    ring_assign(r, peers, n, owner);
    wsg_balance_ring_free(r);
}

/* Percent of the keys in <owner> that went to peer <idx>. */
static double
share(const int *owner, int idx)
{
    int count = 0;

    for (int i = 0; i < KEYS; i++) {
        count += owner[i] == idx;
    }
    return 100.0 * count / KEYS;
}

static void
test_ring_spread(void)
{
    struct wsg_balance_peer p[4];

    /* 160 points give each peer's share a standard deviation of about 8%
       of itself (160 arcs of mean 1/640), so +-10% is a property of these
       four ids, not of every id set; the hash is stable, so it is fixed */
    ring_peers(p, 4);
    ring_run(p, 4, owner_a);
    for (int i = 0; i < 4; i++) {
        double pct = share(owner_a, i);
        note("peer %d of 4 holds %.2f%% of keys (ideal 25%%)", i, pct);
        ok(pct >= 22.5 && pct <= 27.5, "peer %d holds 25%% +-10%% of keys", i);
    }
}

static void
test_ring_add(void)
{
    struct wsg_balance_peer p[RING_PEERS_MAX];
    int moved = 0, elsewhere = 0;

    ring_peers(p, 5);
    ring_run(p, 4, owner_a);
    ring_run(p, 5, owner_b);
    for (int i = 0; i < KEYS; i++) {
        if (owner_a[i] != owner_b[i]) {
            moved++;
            elsewhere += owner_b[i] != 4;
        }
    }
    double pct = 100.0 * moved / KEYS;
    note("adding a 5th peer moved %.2f%% of keys (ideal 20%%)", pct);
    ok(pct >= 15.0 && pct <= 25.0, "adding a 5th peer moves 15-25%% of keys");
    is_int(elsewhere, 0, "every moved key moved to the new peer");
}

static void
test_ring_remove(void)
{
    struct wsg_balance_peer p[RING_PEERS_MAX];
    struct wsg_balance_ring *r;
    int moved = 0, strays = 0, stuck = 0;

    ring_peers(p, 5);
    r = wsg_balance_ring_new(p, 5);
    ring_assign(r, p, 5, owner_a);
    p[2].up = false;
    ring_assign(r, p, 5, owner_b);
    wsg_balance_ring_free(r);
    for (int i = 0; i < KEYS; i++) {
        if (owner_a[i] != 2) {
            strays += owner_b[i] != owner_a[i];
        } else {
            moved++;
            stuck += owner_b[i] == 2 || owner_b[i] < 0;
        }
    }
    note("marking 1 of 5 peers down moved %.2f%% of keys (ideal 20%%)",
         100.0 * moved / KEYS);
    is_int(strays, 0, "keys of the other peers stay put");
    is_int(stuck, 0, "keys of the down peer all found an up peer");
}

static void
test_ring_weights(void)
{
    struct wsg_balance_peer p[3];

    /* the same spread applies: 15% holds for these ids, not for all */
    ring_peers(p, 3);
    p[0].weight = 2;
    ring_run(p, 3, owner_a);
    double heavy = share(owner_a, 0);
    double light = (share(owner_a, 1) + share(owner_a, 2)) / 2;
    note("weight 2 holds %.2f%%, weight 1 %.2f%% on average: %.2fx (ideal "
         "50%%, 25%%, 2x)",
         heavy, light, heavy / light);
    ok(heavy / light >= 1.7 && heavy / light <= 2.3,
       "a weight-2 peer holds 2x the keys within 15%%");
}

static void
test_ring_rebuild(void)
{
    struct wsg_balance_peer p[4], rev[4];
    int diff = 0;

    ring_peers(p, 4);
    ring_run(p, 4, owner_a);
    ring_run(p, 4, owner_b);
    is_mem(owner_b, sizeof(owner_b), owner_a, sizeof(owner_a),
           "a rebuilt ring maps every key to the same peer");
    for (int i = 0; i < 4; i++) {
        rev[i] = p[3 - i];
    }
    ring_run(rev, 4, owner_b);
    for (int i = 0; i < KEYS; i++) {
        diff += owner_b[i] < 0 || rev[owner_b[i]].id != p[owner_a[i]].id;
    }
    is_int(diff, 0, "and so does a ring over the peers in another order");
}

static void
test_ring_tiers(void)
{
    struct wsg_balance_peer p[4];
    int on_backup = 0;

    ring_peers(p, 4);
    p[2].backup = p[3].backup = true;
    struct wsg_balance_ring *r = wsg_balance_ring_new(p, 4);
    ring_assign(r, p, 4, owner_a);
    p[0].up = false;
    ring_assign(r, p, 4, owner_b);
    for (int i = 0; i < KEYS; i++) {
        on_backup += owner_a[i] >= 2 || owner_b[i] != 1;
    }
    is_int(on_backup, 0, "backups hold no key while a primary is up");
    p[1].up = false;
    ring_assign(r, p, 4, owner_b);
    note("with the primaries down, backups hold %.2f%% and %.2f%% of keys",
         share(owner_b, 2), share(owner_b, 3));
    is_int((int) (share(owner_b, 2) + share(owner_b, 3) + 0.5), 100,
           "backups hold every key when no primary is up");
    p[2].up = p[3].up = false;
    is_int(wsg_balance_hash(r, p, 4, "k", 1), -1, "-1 when nothing is up");
    wsg_balance_ring_free(r);
    r = wsg_balance_ring_new(NULL, 0);
    is_int(wsg_balance_hash(r, NULL, 0, "k", 1), -1, "-1 on an empty ring");
    wsg_balance_ring_free(r);
    wsg_balance_ring_free(NULL);
}

int
main(void)
{
    test_hash32();
    test_rr_sequence();
    test_rr_weights();
    test_rr_down();
    test_rr_backups();
    test_lc_least();
    test_lc_weight();
    test_lc_ties();
    test_lc_wide();
    test_ring_spread();
    test_ring_add();
    test_ring_remove();
    test_ring_weights();
    test_ring_rebuild();
    test_ring_tiers();
    return done_testing();
}
