/*
 * Worker bus. The zone holds WSG_BUS_ROWS rows; the master gives each
 * worker process a row of its own. A row's ring carries records from
 * other workers (a lock serialises writers; the owner alone reads), its
 * eventfd wakes the owner, and its presence table (written by the owner
 * alone, read by everyone) says which users and rooms the owner holds, so
 * a sender writes only to rows that have a recipient. Presence is
 * eventually consistent: a reader may see an entry a moment late.
 * Records: kind, opcode, name length, payload length, name, payload,
 * padded to 8 bytes; a record that does not fit is dropped and counted.
 */
#include "config.h"

#include "bus/bus_worker.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/core.h"
#include "core/log.h"
#include "core/pidlock.h"
#include "core/stats.h"
#include "ws/session.h"
#include "ws/ws_frame.h"
#include "wsgate_module.h"

#define RING_SIZE      (1u << 20) /* bytes of one row's ring */
#define PRESENCE_SLOTS 4096       /* entries of one row's table */
#define KEY_MAX        192

enum { REC_USER = 1, REC_ROOM = 2 };

/* a largest message fills at most half a ring, so one slow reader still
 * leaves room for other workers' records */
_Static_assert(WSG_BUS_MESSAGE_MAX <= RING_SIZE / 2,
               "WSG_BUS_MESSAGE_MAX is at most half a ring");

/* A presence entry: "u:NAME" user, "R:ROOM" room, "m:ROOM\x1fUSER". */
struct entry {
    atomic_uint count; /* sessions behind it; 0: free or deleted */
    uint32_t hash;
    uint16_t len;
    bool used; /* ever used: probing goes on past it */
    char key[KEY_MAX];
};

struct row {
    atomic_int live;           /* the pid of its worker, 0 when none */
    atomic_int lock;           /* the pid of the writer holding the ring */
    atomic_uint_fast64_t head; /* bytes ever written */
    atomic_uint_fast64_t tail; /* bytes ever read */
    uint8_t ring[RING_SIZE];
    struct entry presence[PRESENCE_SLOTS];
};

struct zone {
    struct row rows[WSG_BUS_ROWS];
};

static struct zone *zone;
static int efds[WSG_BUS_ROWS];
static int self = -1; /* this worker's row */
static struct event *wake;

/* Sessions of this worker by user and by room (private memory). */
struct local {
    struct local *next;
    char *name; /* "u:..." or "R:..." */
    size_t len;
    struct wsg_session **members;
    size_t n, cap;
};

#define LOCAL_BUCKETS 4096
static struct local *locals[LOCAL_BUCKETS];

/* Per-session bus state, in the session's bus slot. */
struct member {
    char *rooms[WSG_BUS_ROOMS_MAX];
    size_t lens[WSG_BUS_ROOMS_MAX];
    size_t n;
};

static uint32_t
hash(const char *p, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t) p[i]) * 16777619u;
    }
    return h ? h : 1;
}

int
wsg_bus_init(void)
{
    if (zone != NULL) {
        return 0;
    }
    void *p = mmap(NULL, sizeof(struct zone), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return WSG_ERROR;
    }
    zone = p;
    for (size_t i = 0; i < WSG_BUS_ROWS; i++) {
        /* all made now: a worker can only wake fds it inherited */
        efds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (efds[i] == -1) {
            return WSG_ERROR;
        }
    }
    return 0;
}

/* ---- presence (a row's table; only its owner writes) ---- */

static struct entry *
find(struct row *r, const char *key, size_t len, bool for_insert)
{
    uint32_t h = hash(key, len);
    struct entry *free_slot = NULL;

    for (size_t i = 0; i < PRESENCE_SLOTS; i++) {
        struct entry *e = &r->presence[(h + i) & (PRESENCE_SLOTS - 1)];
        if (!e->used) {
            return for_insert ? (free_slot ? free_slot : e) : NULL;
        }
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0 &&
            atomic_load(&e->count) > 0) {
            return e;
        }
        if (atomic_load(&e->count) == 0 && free_slot == NULL) {
            free_slot = e;
        }
    }
    return for_insert ? free_slot : NULL;
}

static void
presence_add(const char *key, size_t len)
{
    struct row *r = &zone->rows[self];
    struct entry *e = find(r, key, len, false);

    if (e == NULL) {
        e = find(r, key, len, true);
        if (e == NULL) {
            wsg_log(WSG_LOG_WARN, wsg_log_main, 0,
                    "bus presence table full, \"%.*s\" not listed", (int) len,
                    key);
            return;
        }
        /* fill before the count makes it visible to readers */
        memcpy(e->key, key, len);
        e->len = (uint16_t) len;
        e->hash = hash(key, len);
        e->used = true;
    }
    atomic_fetch_add(&e->count, 1);
}

static void
presence_del(const char *key, size_t len)
{
    struct entry *e = find(&zone->rows[self], key, len, false);

    if (e != NULL) {
        atomic_fetch_sub(&e->count, 1);
    }
}

/* Whether row <i> (live) lists <key>. */
static bool
row_has(size_t i, const char *key, size_t len)
{
    struct row *r = &zone->rows[i];

    return atomic_load(&r->live) != 0 && find(r, key, len, false) != NULL;
}

/* Builds "<tag>:<a>[\x1f<b>]" into <out>; returns its length. */
static size_t
make_key(char *out, char tag, const char *a, size_t alen, const char *b,
         size_t blen)
{
    size_t n = 0;

    out[n++] = tag;
    out[n++] = ':';
    memcpy(out + n, a, alen);
    n += alen;
    if (b != NULL) {
        out[n++] = '\x1f';
        memcpy(out + n, b, blen);
        n += blen;
    }
    return n;
}

/* ---- this worker's sessions by name ---- */

static struct local **
local_slot(const char *key, size_t len)
{
    struct local **pp = &locals[hash(key, len) & (LOCAL_BUCKETS - 1)];

    while (*pp != NULL &&
           ((*pp)->len != len || memcmp((*pp)->name, key, len) != 0)) {
        pp = &(*pp)->next;
    }
    return pp;
}

static void
local_add(const char *key, size_t len, struct wsg_session *s)
{
    struct local **pp = local_slot(key, len);

    if (*pp == NULL) {
        struct local *l = wsg_calloc(1, sizeof(*l));
        l->name = wsg_strndup(key, len);
        l->len = len;
        *pp = l;
    }
    struct local *l = *pp;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->members = wsg_realloc(l->members, l->cap * sizeof(*l->members));
    }
    l->members[l->n++] = s;
}

static void
local_del(const char *key, size_t len, const struct wsg_session *s)
{
    struct local **pp = local_slot(key, len);
    struct local *l = *pp;

    if (l == NULL) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->members[i] == s) {
            l->members[i] = l->members[--l->n];
            break;
        }
    }
    if (l->n == 0) {
        *pp = l->next;
        free(l->members);
        free(l->name);
        free(l);
    }
}

/* Sends to this worker's sessions under <key>; <except> is skipped. */
static void
local_send(const char *key, size_t len, uint8_t opcode, const void *data,
           size_t dlen, const struct wsg_session *except)
{
    struct local *l = *local_slot(key, len);

    for (size_t i = 0; l != NULL && i < l->n; i++) {
        /* sending may close a slow session, which leaves the list: walk
         * by index and re-read n */
        if (l->members[i] != except) {
            wsg_session_queue(l->members[i], opcode, (uint8_t *) data, dlen, 0);
        }
    }
}

/* ---- the rings ---- */

static void
ring_put(struct row *r, uint64_t at, const void *p, size_t len)
{
    size_t off = (size_t) (at % RING_SIZE), first = RING_SIZE - off;

    if (len <= first) {
        memcpy(r->ring + off, p, len);
    } else {
        memcpy(r->ring + off, p, first);
        memcpy(r->ring, (const uint8_t *) p + first, len - first);
    }
}

static void
ring_get(const struct row *r, uint64_t at, void *p, size_t len)
{
    size_t off = (size_t) (at % RING_SIZE), first = RING_SIZE - off;

    if (len <= first) {
        memcpy(p, r->ring + off, len);
    } else {
        memcpy(p, r->ring + off, first);
        memcpy((uint8_t *) p + first, r->ring, len - first);
    }
}

struct rec {
    uint8_t kind;
    uint8_t opcode;
    uint16_t namelen;
    uint32_t len;
};

static size_t
padded(size_t n)
{
    return (n + 7) & ~(size_t) 7;
}

/* Writes one record to row <i>; false when it did not fit (dropped). */
static bool
send_row(size_t i, const struct rec *h, const char *name, const void *data)
{
    struct row *r = &zone->rows[i];
    size_t total = padded(sizeof(*h) + h->namelen + h->len);

    wsg_pidlock_acquire(&r->lock);
    uint64_t head = atomic_load(&r->head);
    bool fits = head - atomic_load(&r->tail) + total <= RING_SIZE;
    if (fits) {
        ring_put(r, head, h, sizeof(*h));
        ring_put(r, head + sizeof(*h), name, h->namelen);
        ring_put(r, head + sizeof(*h) + h->namelen, data, h->len);
        atomic_store(&r->head, head + total);
    }
    wsg_pidlock_release(&r->lock);
    if (!fits) {
        atomic_fetch_add_explicit(&wsg_stats->bus_dropped, 1,
                                  memory_order_relaxed);
        return false;
    }
    uint64_t one = 1;
    if (write(efds[i], &one, sizeof(one)) == -1) {
        /* EAGAIN: the counter is saturated, the reader is awake anyway */
    }
    return true;
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct row *r = &zone->rows[self];
    uint64_t n;
    static uint8_t *buf;
    static size_t cap;

    (void) what;
    (void) arg;
    if (read(fd, &n, sizeof(n)) == -1) {
        /* EAGAIN: a wake-up already consumed; the ring is read anyway */
    }
    uint64_t tail = atomic_load(&r->tail), head = atomic_load(&r->head);
    while (tail < head) {
        struct rec h;
        ring_get(r, tail, &h, sizeof(h));
        size_t body = (size_t) h.namelen + h.len;
        if (body > cap) {
            cap = body;
            buf = wsg_realloc(buf, cap);
        }
        ring_get(r, tail + sizeof(h), buf, body);
        tail += padded(sizeof(h) + body);
        /* free the space first: delivering may take a while */
        atomic_store(&r->tail, tail);
        local_send((const char *) buf, h.namelen, h.opcode, buf + h.namelen,
                   h.len, NULL);
    }
}

int
wsg_bus_attach(unsigned row, struct event_base *base)
{
    if (zone == NULL || row >= WSG_BUS_ROWS) {
        return 0;
    }
    self = (int) row;
    struct row *r = &zone->rows[row];
    atomic_store(&r->tail, atomic_load(&r->head));
    atomic_store(&r->live, (int) getpid());
    wake = event_new(base, efds[row], EV_READ | EV_PERSIST, on_wake, NULL);
    return wake != NULL && event_add(wake, NULL) == 0 ? 0 : WSG_ERROR;
}

void
wsg_bus_row_gone(unsigned row)
{
    if (zone == NULL || row >= WSG_BUS_ROWS) {
        return;
    }
    struct row *r = &zone->rows[row];
    atomic_store(&r->live, 0);
    /* its sessions are gone: so is what it listed */
    memset(r->presence, 0, sizeof(r->presence));
    atomic_store(&r->lock, 0);
}

/* Sends a record to every other live row listing <key>; returns how many. */
static int
broadcast(const char *key, size_t klen, uint8_t opcode, const void *data,
          size_t len)
{
    /* the key says user or room: the reader looks it up the same way */
    struct rec h = {key[0] == 'u' ? REC_USER : REC_ROOM, opcode,
                    (uint16_t) klen, (uint32_t) len};
    int n = 0;

    if (len > WSG_BUS_MESSAGE_MAX) {
        atomic_fetch_add_explicit(&wsg_stats->bus_dropped, 1,
                                  memory_order_relaxed);
        return 0;
    }
    for (size_t i = 0; i < WSG_BUS_ROWS; i++) {
        if ((int) i != self && row_has(i, key, klen)) {
            n += send_row(i, &h, key, data) ? 1 : 0;
        }
    }
    return n;
}

static bool
anywhere(const char *key, size_t klen)
{
    for (size_t i = 0; i < WSG_BUS_ROWS; i++) {
        if (row_has(i, key, klen)) {
            return true;
        }
    }
    return false;
}

static uint8_t
opcode_of(int type)
{
    return type == WSG_MSG_BINARY ? WSG_WS_BINARY : WSG_WS_TEXT;
}

/*
 * Delivers to the sessions under <key> (a user or a room): here at once,
 * elsewhere through the rings. Returns the workers reached, or -1 when no
 * worker lists the key.
 */
static int
send_key(const char *key, size_t k, int type, const void *data, size_t len,
         const struct wsg_session *except)
{
    if (!anywhere(key, k)) {
        return -1;
    }
    int here = *local_slot(key, k) != NULL;
    local_send(key, k, opcode_of(type), data, len, except);
    return here + broadcast(key, k, opcode_of(type), data, len);
}

int
wsg_user_send(const char *user, size_t ulen, int type, const void *data,
              size_t len)
{
    char key[KEY_MAX];

    if (zone == NULL || ulen == 0 || ulen > WSG_BUS_USER_MAX ||
        len > WSG_BUS_MESSAGE_MAX) {
        return -1;
    }
    size_t k = make_key(key, 'u', user, ulen, NULL, 0);
    return send_key(key, k, type, data, len, NULL);
}

int
wsg_room_publish(const char *room, size_t rlen, int type, const void *data,
                 size_t len, const struct wsg_session *except)
{
    char key[KEY_MAX];

    if (zone == NULL || rlen == 0 || rlen > WSG_BUS_ROOM_MAX ||
        len > WSG_BUS_MESSAGE_MAX) {
        return -1;
    }
    size_t k = make_key(key, 'R', room, rlen, NULL, 0);
    return send_key(key, k, type, data, len, except);
}

bool
wsg_user_online(const char *user, size_t ulen)
{
    char key[KEY_MAX];

    if (zone == NULL || ulen == 0 || ulen > WSG_BUS_USER_MAX) {
        return false;
    }
    return anywhere(key, make_key(key, 'u', user, ulen, NULL, 0));
}

json_t *
wsg_room_members(const char *room, size_t rlen, size_t max)
{
    json_t *seen = json_object(), *out = json_array();
    char prefix[KEY_MAX];

    if (zone == NULL || rlen == 0 || rlen > WSG_BUS_ROOM_MAX) {
        json_decref(seen);
        return out;
    }
    size_t p = make_key(prefix, 'm', room, rlen, "", 0);
    for (size_t i = 0; i < WSG_BUS_ROWS && json_array_size(out) < max; i++) {
        struct row *r = &zone->rows[i];
        if (atomic_load(&r->live) == 0) {
            continue;
        }
        for (size_t k = 0; k < PRESENCE_SLOTS; k++) {
            const struct entry *e = &r->presence[k];
            if (atomic_load(&e->count) == 0 || e->len <= p ||
                memcmp(e->key, prefix, p) != 0) {
                continue;
            }
            json_t *name = json_stringn(e->key + p, e->len - p);
            const char *s = json_string_value(name);
            if (s != NULL && json_object_get(seen, s) == NULL &&
                json_array_size(out) < max) {
                json_object_set(seen, s, json_true());
                json_array_append(out, name);
            }
            json_decref(name);
        }
    }
    json_decref(seen);
    return out;
}

/* ---- sessions joining and leaving ---- */

static struct member *
member_of(struct wsg_session *s)
{
    void **slot = wsg_session_bus(s);

    if (*slot == NULL) {
        *slot = wsg_calloc(1, sizeof(struct member));
    }
    return *slot;
}

/* Lists or unlists <s>'s user as a member of room <i>. */
static void
membership(struct wsg_session *s, const char *room, size_t rlen, bool add)
{
    struct wsg_str u = wsg_session_user(s);
    char key[KEY_MAX];

    if (u.len == 0) {
        return;
    }
    size_t k = make_key(key, 'm', room, rlen, u.p, u.len);
    if (add) {
        presence_add(key, k);
    } else {
        presence_del(key, k);
    }
}

int
wsg_session_join(struct wsg_session *s, const char *room, size_t rlen)
{
    char key[KEY_MAX];

    if (zone == NULL || self < 0 || rlen == 0 || rlen > WSG_BUS_ROOM_MAX) {
        return -1;
    }
    struct member *m = member_of(s);
    for (size_t i = 0; i < m->n; i++) {
        if (m->lens[i] == rlen && memcmp(m->rooms[i], room, rlen) == 0) {
            return 0;
        }
    }
    if (m->n == WSG_BUS_ROOMS_MAX) {
        return -1;
    }
    m->rooms[m->n] = wsg_strndup(room, rlen);
    m->lens[m->n++] = rlen;
    size_t k = make_key(key, 'R', room, rlen, NULL, 0);
    local_add(key, k, s);
    presence_add(key, k);
    membership(s, room, rlen, true);
    return 0;
}

static void
leave_at(struct wsg_session *s, struct member *m, size_t i)
{
    char key[KEY_MAX];
    size_t k = make_key(key, 'R', m->rooms[i], m->lens[i], NULL, 0);

    local_del(key, k, s);
    presence_del(key, k);
    membership(s, m->rooms[i], m->lens[i], false);
    free(m->rooms[i]);
    m->rooms[i] = m->rooms[m->n - 1];
    m->lens[i] = m->lens[m->n - 1];
    m->n--;
}

void
wsg_session_leave(struct wsg_session *s, const char *room, size_t rlen)
{
    struct member *m = *wsg_session_bus(s);

    for (size_t i = 0; m != NULL && i < m->n; i++) {
        if (m->lens[i] == rlen && memcmp(m->rooms[i], room, rlen) == 0) {
            leave_at(s, m, i);
            return;
        }
    }
}

void
wsg_bus_user_changed(struct wsg_session *s, const char *old, size_t oldlen)
{
    struct wsg_str u = wsg_session_user(s);
    struct member *m = *wsg_session_bus(s);
    char key[KEY_MAX];

    if (zone == NULL || self < 0) {
        return;
    }
    if (oldlen > 0 && oldlen <= WSG_BUS_USER_MAX) {
        size_t k = make_key(key, 'u', old, oldlen, NULL, 0);
        local_del(key, k, s);
        presence_del(key, k);
        for (size_t i = 0; m != NULL && i < m->n; i++) {
            k = make_key(key, 'm', m->rooms[i], m->lens[i], old, oldlen);
            presence_del(key, k);
        }
    }
    if (u.len > 0 && u.len <= WSG_BUS_USER_MAX) {
        size_t k = make_key(key, 'u', u.p, u.len, NULL, 0);
        local_add(key, k, s);
        presence_add(key, k);
        for (size_t i = 0; m != NULL && i < m->n; i++) {
            membership(s, m->rooms[i], m->lens[i], true);
        }
    }
}

void
wsg_bus_session_gone(struct wsg_session *s)
{
    struct wsg_str u = wsg_session_user(s);
    struct member *m = *wsg_session_bus(s);
    char key[KEY_MAX];

    if (zone == NULL || self < 0) {
        free(m);
        return;
    }
    while (m != NULL && m->n > 0) {
        leave_at(s, m, m->n - 1);
    }
    if (u.len > 0 && u.len <= WSG_BUS_USER_MAX) {
        size_t k = make_key(key, 'u', u.p, u.len, NULL, 0);
        local_del(key, k, s);
        presence_del(key, k);
    }
    free(m);
    *wsg_session_bus(s) = NULL;
}
