/*
 * The shared peer-state zone. Only the master claims and frees slots
 * (between loads, single-threaded); workers only touch a slot's atomic
 * counters, so no lock is needed: claiming writes the key first and sets
 * "used" last.
 */
#include "config.h"

#include "upstream/peer_state.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"
#include "core/cycle.h"
#include "upstream/upstream_conf.h"

struct zone {
    atomic_uint_fast64_t next_id;
    struct wsg_peer_state peers[WSG_PEER_STATES];
};

static struct zone *zone;

int
wsg_peer_state_init(void)
{
    if (zone != NULL) {
        return 0;
    }
    void *p = mmap(NULL, sizeof(struct zone), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return WSG_ERROR;
    }
    zone = p;
    atomic_store(&zone->next_id, 1);
    return 0;
}

uint64_t
wsg_peer_state_next_id(void)
{
    static uint64_t local;

    /* without a zone (unit tests) ids are still unique in this process */
    return zone ? atomic_fetch_add(&zone->next_id, 1) : ++local;
}

static struct wsg_peer_state *
claim(const char *key, unsigned char *bound)
{
    struct wsg_peer_state *free_slot = NULL;

    for (size_t i = 0; i < WSG_PEER_STATES; i++) {
        struct wsg_peer_state *p = &zone->peers[i];
        if (atomic_load(&p->used) && strcmp(p->key, key) == 0) {
            bound[i] = 1;
            return p;
        }
        if (!atomic_load(&p->used) && free_slot == NULL) {
            free_slot = p;
        }
    }
    if (free_slot == NULL) {
        return NULL;
    }
    size_t i = (size_t) (free_slot - zone->peers);
    memset(free_slot, 0, sizeof(*free_slot));
    snprintf(free_slot->key, sizeof(free_slot->key), "%s", key);
    atomic_store(&free_slot->used, 1);
    bound[i] = 1;
    return free_slot;
}

int
wsg_peer_state_bind(struct wsg_cycle *cycle, char *err, size_t errlen)
{
    const struct wsg_upstream_main_conf *umcf =
        wsg_upstream_main_conf(cycle->main_conf);
    unsigned char bound[WSG_PEER_STATES] = {0};

    if (zone == NULL) {
        return 0;
    }
    for (size_t i = 0; i < umcf->nupstreams; i++) {
        struct wsg_upstream *u = umcf->upstreams[i];
        for (size_t k = 0; k < u->nservers; k++) {
            struct wsg_upstream_server *s = &u->servers[k];
            char key[WSG_PEER_KEY_MAX];
            snprintf(key, sizeof(key), "%s/%s", u->name, s->text);
            s->state = claim(key, bound);
            if (s->state == NULL) {
                snprintf(err, errlen,
                         "more than %d upstream servers are in use",
                         WSG_PEER_STATES);
                return WSG_ERROR;
            }
        }
    }
    /* slots nobody names and nobody uses any more are free again */
    for (size_t i = 0; i < WSG_PEER_STATES; i++) {
        struct wsg_peer_state *p = &zone->peers[i];
        if (!bound[i] && atomic_load(&p->used) && atomic_load(&p->conns) == 0) {
            atomic_store(&p->used, 0);
        }
    }
    return 0;
}

bool
wsg_peer_up(const struct wsg_upstream_server *s, uint64_t now_ms)
{
    const struct wsg_peer_state *p = s->state;

    if (s->down) {
        return false;
    }
    if (p == NULL) {
        return true;
    }
    return !atomic_load(&p->check_down) &&
           atomic_load(&p->down_until_ms) <= now_ms;
}

void
wsg_peer_failed(const struct wsg_upstream_server *s, uint64_t now_ms)
{
    struct wsg_peer_state *p = s->state;

    if (p == NULL) {
        return;
    }
    atomic_fetch_add(&p->connect_fails, 1);
    if (s->max_fails == 0) {
        return;
    }
    /* a new window when the last one is over; races only shift it a bit */
    if (now_ms - atomic_load(&p->window_ms) >= s->fail_timeout_ms) {
        atomic_store(&p->window_ms, now_ms);
        atomic_store(&p->fails, 0);
    }
    if (atomic_fetch_add(&p->fails, 1) + 1 >= s->max_fails) {
        atomic_store(&p->down_until_ms, now_ms + s->fail_timeout_ms);
        atomic_store(&p->fails, 0);
    }
}

void
wsg_peer_recovered(const struct wsg_upstream_server *s)
{
    struct wsg_peer_state *p = s->state;

    if (p != NULL &&
        (atomic_load(&p->down_until_ms) != 0 || atomic_load(&p->fails) != 0)) {
        atomic_store(&p->down_until_ms, 0);
        atomic_store(&p->fails, 0);
    }
}

bool
wsg_peer_checked(const struct wsg_upstream_server *s, bool ok, unsigned fails,
                 unsigned passes)
{
    struct wsg_peer_state *p = s->state;

    if (p == NULL) {
        return false;
    }
    if (ok) {
        atomic_store(&p->check_fails, 0);
        if (atomic_load(&p->check_down) &&
            atomic_fetch_add(&p->check_passes, 1) + 1 >= passes) {
            atomic_store(&p->check_down, 0);
            atomic_store(&p->check_passes, 0);
            /* a server that passes its checks is given traffic at once */
            atomic_store(&p->down_until_ms, 0);
            return true;
        }
        return false;
    }
    atomic_store(&p->check_passes, 0);
    if (!atomic_load(&p->check_down) &&
        atomic_fetch_add(&p->check_fails, 1) + 1 >= fails) {
        atomic_store(&p->check_down, 1);
        atomic_store(&p->check_fails, 0);
        return true;
    }
    return false;
}
