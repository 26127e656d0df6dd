/*
 * The counters zone. A worker adds to its own entry with relaxed atomics;
 * the sums a reader takes are a moment's picture, not a transaction.
 */
#include "config.h"

#include "core/stats.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"
#include "core/cycle.h"
#include "process/process.h"
#include "upstream/peer_state.h"
#include "upstream/upstream_conf.h"
#include "ws/session.h"

_Static_assert(sizeof(atomic_uint_fast64_t) == sizeof(uint64_t) &&
                   sizeof(struct wsg_stats) % sizeof(uint64_t) == 0,
               "wsg_stats is read as an array of 64-bit fields");

static struct wsg_stats dummy;
static uint64_t started_ms; /* when the zone was made: the node's start */
static struct wsg_stats *zone;

struct wsg_stats *wsg_stats = &dummy;

int
wsg_stats_init(void)
{
    if (zone != NULL) {
        return 0;
    }
    void *p = mmap(NULL, WSG_STATS_ENTRIES * sizeof(struct wsg_stats),
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return WSG_ERROR;
    }
    zone = p;
    started_ms = wsg_process_now_ms();
    return 0;
}

void
wsg_stats_attach(unsigned index)
{
    if (zone != NULL && index < WSG_STATS_ENTRIES) {
        wsg_stats = &zone[index];
    }
}

void
wsg_stats_worker_gone(unsigned index)
{
    if (zone != NULL && index < WSG_STATS_ENTRIES) {
        atomic_store(&zone[index].connections, 0);
    }
}

void
wsg_stats_close_code(uint16_t code)
{
    if (code >= 1000 && code < 1000 + WSG_STATS_CODES) {
        atomic_fetch_add_explicit(&wsg_stats->close_codes[code - 1000], 1,
                                  memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&wsg_stats->close_other, 1,
                                  memory_order_relaxed);
    }
}

void
wsg_stats_sum(uint64_t *fields, size_t nfields)
{
    memset(fields, 0, nfields * sizeof(uint64_t));
    if (zone == NULL) {
        return;
    }
    for (size_t e = 0; e < WSG_STATS_ENTRIES; e++) {
        const atomic_uint_fast64_t *f =
            (const atomic_uint_fast64_t *) (const void *) &zone[e];
        for (size_t i = 0; i < nfields && i < WSG_STATS_FIELDS; i++) {
            fields[i] += atomic_load_explicit(&f[i], memory_order_relaxed);
        }
    }
}

/* The fields of struct wsg_stats in order, as wsg_stats_sum() fills them. */
enum {
    F_ACCEPTED,
    F_REFUSED,
    F_HANDSHAKES,
    F_CONNECTIONS,
    F_MESSAGES_IN,
    F_MESSAGES_OUT,
    F_BYTES_IN,
    F_BYTES_OUT,
    F_CODES,
    F_OTHER = F_CODES + WSG_STATS_CODES,
    F_BUS_DROPPED,
};

_Static_assert(offsetof(struct wsg_stats, close_other) ==
                   F_OTHER * sizeof(uint64_t),
               "the field order above follows struct wsg_stats");

static json_t *
upstreams_json(const struct wsg_cycle *cycle)
{
    const struct wsg_upstream_main_conf *umcf =
        wsg_upstream_main_conf(cycle->main_conf);
    json_t *all = json_object();
    uint64_t now = wsg_process_now_ms();

    for (size_t i = 0; i < umcf->nupstreams; i++) {
        const struct wsg_upstream *u = umcf->upstreams[i];
        json_t *servers = json_array();
        for (size_t k = 0; k < u->nservers; k++) {
            const struct wsg_upstream_server *s = &u->servers[k];
            const struct wsg_peer_state *p = s->state;
            json_array_append_new(
                servers,
                json_pack(
                    "{s:s, s:b, s:I, s:I, s:I}", "address", s->text, "up",
                    wsg_peer_up(s, now), "connections",
                    (json_int_t) (p ? atomic_load(&p->conns) : 0), "dropped",
                    (json_int_t) (p ? atomic_load(&p->dropped) : 0),
                    "connect_fails",
                    (json_int_t) (p ? atomic_load(&p->connect_fails) : 0)));
        }
        json_object_set_new(all, u->name,
                            json_pack("{s:s, s:o}", "protocol",
                                      wsg_upstream_proto_name(u->protocol),
                                      "servers", servers));
    }
    return all;
}

json_t *
wsg_stats_json(const struct wsg_session *s)
{
    const struct wsg_cycle *cycle = wsg_session_cycle(s);
    uint64_t f[WSG_STATS_FIELDS];
    json_t *codes = json_object();

    wsg_stats_sum(f, WSG_STATS_FIELDS);
    for (unsigned i = 0; i < WSG_STATS_CODES; i++) {
        char name[8];
        snprintf(name, sizeof(name), "%u", 1000 + i);
        if (f[F_CODES + i] != 0) {
            json_object_set_new(codes, name,
                                json_integer((json_int_t) f[F_CODES + i]));
        }
    }
    json_object_set_new(codes, "other", json_integer((json_int_t) f[F_OTHER]));
    return json_pack(
        "{s:s, s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, "
        "s:o}",
        "version", PACKAGE_VERSION, "uptime_s",
        (json_int_t) ((wsg_process_now_ms() - started_ms) / 1000), "workers",
        (int) wsg_cycle_workers(cycle), "connections",
        (json_int_t) f[F_CONNECTIONS], "accepted", (json_int_t) f[F_ACCEPTED],
        "refused", (json_int_t) f[F_REFUSED], "handshakes",
        (json_int_t) f[F_HANDSHAKES], "messages_in",
        (json_int_t) f[F_MESSAGES_IN], "messages_out",
        (json_int_t) f[F_MESSAGES_OUT], "bytes_in", (json_int_t) f[F_BYTES_IN],
        "bytes_out", (json_int_t) f[F_BYTES_OUT], "bus_dropped",
        (json_int_t) f[F_BUS_DROPPED], "close_codes", codes, "upstreams",
        upstreams_json(cycle));
}
