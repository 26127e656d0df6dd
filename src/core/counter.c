/*
 * Counters and token buckets by name. 256 partitions of 256 entries; a
 * name hashes to a partition and probes linearly inside it, under the
 * partition's lock. A counter back at zero frees its entry; a bucket that
 * has refilled to full and sat idle is reclaimed when room is needed.
 */
#include "config.h"

#include "core/counter.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"
#include "core/pidlock.h"
#include "process/process.h"
#include "wsgate_module.h"

#define PARTITIONS   256
#define PER_PART     256
#define NAME_MAX_LEN 96
/* A full bucket untouched this long may give its entry to a new name. */
#define IDLE_MS      60000

enum kind { FREE = 0, COUNTER, BUCKET };

struct entry {
    uint8_t kind;
    uint8_t len;
    char name[NAME_MAX_LEN];
    long value;    /* COUNTER */
    double tokens; /* BUCKET */
    double burst;
    uint64_t last_ms; /* BUCKET: when tokens was computed */
};

struct partition {
    atomic_int lock;
    struct entry e[PER_PART];
};

static struct partition *table;

int
wsg_counter_init(void)
{
    if (table != NULL) {
        return 0;
    }
    void *p = mmap(NULL, PARTITIONS * sizeof(struct partition),
                   PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return WSG_ERROR;
    }
    table = p;
    return 0;
}

static uint32_t
hash(const char *p, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t) p[i]) * 16777619u;
    }
    return h;
}

static bool
reclaimable(const struct entry *e, uint64_t now)
{
    return e->kind == FREE || (e->kind == BUCKET && e->tokens >= e->burst &&
                               now - e->last_ms > IDLE_MS);
}

/* The entry of <name> in <p> (locked), made as <kind> when absent. */
static struct entry *
lookup(struct partition *p, uint32_t h, const char *name, size_t len,
       enum kind kind)
{
    uint64_t now = wsg_process_now_ms();
    struct entry *spare = NULL;

    for (size_t i = 0; i < PER_PART; i++) {
        struct entry *e = &p->e[(h + i) % PER_PART];
        if (e->kind != FREE && e->len == len &&
            memcmp(e->name, name, len) == 0) {
            return e;
        }
        if (spare == NULL && reclaimable(e, now)) {
            spare = e;
        }
    }
    if (spare != NULL) {
        memset(spare, 0, sizeof(*spare));
        spare->kind = (uint8_t) kind;
        spare->len = (uint8_t) len;
        memcpy(spare->name, name, len);
        spare->last_ms = now;
    }
    return spare;
}

long
wsg_counter_add(const char *name, size_t len, long delta)
{
    if (table == NULL || len == 0 || len > NAME_MAX_LEN) {
        return LONG_MIN;
    }
    uint32_t h = hash(name, len);
    struct partition *p = &table[h % PARTITIONS];
    long v = LONG_MIN;

    wsg_pidlock_acquire(&p->lock);
    struct entry *e = lookup(p, h / PARTITIONS, name, len, COUNTER);
    if (e != NULL && e->kind == COUNTER) {
        e->value += delta;
        v = e->value;
        if (v <= 0) {
            /* back at zero: the name is forgotten, its entry reusable */
            e->kind = FREE;
        }
    }
    wsg_pidlock_release(&p->lock);
    return v;
}

bool
wsg_counter_take(const char *name, size_t len, double rate, double burst,
                 double amount)
{
    if (table == NULL || len == 0 || len > NAME_MAX_LEN) {
        return true;
    }
    uint32_t h = hash(name, len);
    struct partition *p = &table[h % PARTITIONS];
    uint64_t now = wsg_process_now_ms();
    bool ok = true;

    wsg_pidlock_acquire(&p->lock);
    struct entry *e = lookup(p, h / PARTITIONS, name, len, BUCKET);
    if (e != NULL && e->kind == BUCKET) {
        if (e->burst == 0) {
            e->tokens = burst; /* a new bucket starts full */
        }
        e->burst = burst;
        e->tokens += rate * (double) (now - e->last_ms) / 1000.0;
        if (e->tokens > burst) {
            e->tokens = burst;
        }
        e->last_ms = now;
        ok = e->tokens >= amount;
        if (ok) {
            e->tokens -= amount;
        }
    }
    wsg_pidlock_release(&p->lock);
    return ok;
}
