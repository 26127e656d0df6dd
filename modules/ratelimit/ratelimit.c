/*
 * The ratelimit module: token buckets on the messages and bytes a client
 * sends, per session or per client address (node-wide, whichever worker
 * holds the address's connections), and a cap on concurrent sessions per
 * address. Over a limit a message is dropped or the session closed with
 * 1008, as configured; refusals and drops are counted and logged at most
 * once a second per worker.
 */
/* clock_gettime: modules see only the standard and the module API */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsgate_module.h"

enum { PER_SESSION, PER_ADDRESS };
enum { ACTION_DROP, ACTION_CLOSE };

struct limit {
    double rate; /* per second; 0: no limit */
    double burst;
    int per;
};

struct rl_loc_conf {
    struct limit messages;
    struct limit bytes;
    int64_t connections; /* per address; unset or 0: none */
    int action;
    int messages_set, bytes_set;
};

/* A session's own buckets and whether it holds a connection slot. */
struct rl_session {
    double msg_tokens, byte_tokens;
    uint64_t last_us;
    int counted; /* counted in its address's connections */
};

extern const struct wsg_module wsg_ratelimit_module;

static const struct wsg_conf_enum actions[] = {
    {"drop", ACTION_DROP},
    {"close", ACTION_CLOSE},
    {NULL, 0},
};

/* "10/s", "600/m", "64k/s": a count (or size, for bytes) per unit. */
static const char *
parse_rate(const char *v, int sizes, double *rate)
{
    char num[32];
    const char *slash = strchr(v, '/');
    size_t n = slash ? (size_t) (slash - v) : strlen(v);
    double scale = 1;

    if (n == 0 || n >= sizeof(num)) {
        return "invalid rate";
    }
    memcpy(num, v, n);
    num[n] = '\0';
    char *end;
    double x = strtod(num, &end);
    if (sizes && (*end == 'k' || *end == 'K')) {
        x *= 1024;
        end++;
    } else if (sizes && (*end == 'm' || *end == 'M')) {
        x *= 1024 * 1024;
        end++;
    }
    if (*end != '\0' || x <= 0) {
        return "invalid rate";
    }
    if (slash != NULL && strcmp(slash, "/m") == 0) {
        scale = 1.0 / 60;
    } else if (slash != NULL && strcmp(slash, "/s") != 0) {
        return "invalid rate unit, expecting /s or /m";
    }
    *rate = x * scale;
    return NULL;
}

static const char *
set_limit(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct rl_loc_conf *rl = conf;
    int bytes = strcmp(d->name, "ratelimit_bytes") == 0;
    struct limit *l = bytes ? &rl->bytes : &rl->messages;
    int *set = bytes ? &rl->bytes_set : &rl->messages_set;
    struct wsg_str a = wsg_conf_arg(cf, 1);

    if (*set) {
        return "is duplicate";
    }
    const char *why = parse_rate(a.p, bytes, &l->rate);
    if (why != NULL) {
        return wsg_conf_phrase(cf, "%s \"%s\"", why, a.p);
    }
    l->burst = l->rate < 1 ? 1 : l->rate;
    l->per = PER_SESSION;
    for (size_t i = 2; i < wsg_conf_nargs(cf); i++) {
        a = wsg_conf_arg(cf, i);
        if (strncmp(a.p, "burst=", 6) == 0) {
            double b;
            if (parse_rate(a.p + 6, bytes, &b) != NULL) {
                return wsg_conf_phrase(cf, "invalid burst \"%s\"", a.p + 6);
            }
            l->burst = b;
        } else if (strcmp(a.p, "per=session") == 0) {
            l->per = PER_SESSION;
        } else if (strcmp(a.p, "per=address") == 0) {
            l->per = PER_ADDRESS;
        } else {
            return wsg_conf_phrase(cf,
                                   "invalid parameter \"%s\", expecting "
                                   "burst=N, per=session or per=address",
                                   a.p);
        }
    }
    *set = 1;
    return NULL;
}

static const struct wsg_conf_bounds conn_bounds = {1, 1000000};

static const struct wsg_directive rl_directives[] = {
    {"ratelimit_messages", WSG_CTX_LOCATION, 1, 3, set_limit, 0, NULL},
    {"ratelimit_bytes", WSG_CTX_LOCATION, 1, 3, set_limit, 0, NULL},
    {"ratelimit_connections", WSG_CTX_LOCATION, 1, 1, wsg_conf_set_num,
     offsetof(struct rl_loc_conf, connections), &conn_bounds},
    {"ratelimit_action", WSG_CTX_LOCATION, 1, 1, wsg_conf_set_enum,
     offsetof(struct rl_loc_conf, action), actions},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
rl_create_loc_conf(struct wsg_conf *cf)
{
    struct rl_loc_conf *rl = wsg_conf_alloc(cf, sizeof(*rl));

    rl->connections = WSG_CONF_UNSET_I64;
    rl->action = WSG_CONF_UNSET;
    return rl;
}

static const char *
rl_merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    struct rl_loc_conf *rl = child;

    (void) cf;
    (void) parent;
    if (rl->connections == WSG_CONF_UNSET_I64) {
        rl->connections = 0;
    }
    if (rl->action == WSG_CONF_UNSET) {
        rl->action = ACTION_DROP;
    }
    return NULL;
}

static const struct rl_loc_conf *
conf_of(const struct wsg_session *s)
{
    return wsg_session_loc_conf(s, &wsg_ratelimit_module);
}

/* "<what>:<address>@<location>", so locations do not share buckets. */
static size_t
key(char *out, size_t len, char what, const struct wsg_session *s)
{
    int n = snprintf(out, len, "rl%c:%s@%p", what, wsg_session_remote(s),
                     (const void *) conf_of(s));

    return n > 0 && (size_t) n < len ? (size_t) n : 0;
}

static int
rl_on_handshake(struct wsg_session *s)
{
    const struct rl_loc_conf *rl = conf_of(s);
    char k[96];

    if (rl == NULL || rl->connections <= 0) {
        return WSG_NEXT;
    }
    size_t n = key(k, sizeof(k), 'c', s);
    long v = wsg_counter_add(k, n, 1);
    if (v == LONG_MIN) {
        return WSG_NEXT; /* no room to count: let the client through */
    }
    if (v > rl->connections) {
        wsg_counter_add(k, n, -1);
        wsg_session_log(s, &wsg_ratelimit_module, WSG_LOG_LEVEL_INFO,
                        "%s has %ld sessions, over ratelimit_connections %lld",
                        wsg_session_remote(s), v - 1,
                        (long long) rl->connections);
        wsg_session_reject(s, 429);
        return WSG_STOP;
    }
    struct rl_session *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        wsg_counter_add(k, n, -1);
        return WSG_ABORT;
    }
    st->counted = 1;
    *wsg_session_data(s, &wsg_ratelimit_module) = st;
    return WSG_NEXT;
}

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* A session bucket: refill, then take <amount>; false when short. */
static int
take_local(double *tokens, const struct limit *l, double elapsed_s,
           double amount)
{
    *tokens += l->rate * elapsed_s;
    if (*tokens > l->burst) {
        *tokens = l->burst;
    }
    if (*tokens < amount) {
        return 0;
    }
    *tokens -= amount;
    return 1;
}

static int
allowed(struct wsg_session *s, const struct rl_loc_conf *rl, size_t len)
{
    void **slot = wsg_session_data(s, &wsg_ratelimit_module);
    struct rl_session *st = *slot;
    char k[96];
    int ok = 1;

    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL) {
            return 1;
        }
        *slot = st;
    }
    if (st->last_us == 0) {
        /* buckets start full */
        st->msg_tokens = rl->messages.burst;
        st->byte_tokens = rl->bytes.burst;
        st->last_us = now_us();
    }
    uint64_t t = now_us();
    double elapsed = (double) (t - st->last_us) / 1e6;
    st->last_us = t;
    const struct limit *m = &rl->messages, *b = &rl->bytes;
    if (rl->messages_set && m->per == PER_SESSION) {
        ok = ok && take_local(&st->msg_tokens, m, elapsed, 1);
    }
    if (rl->bytes_set && b->per == PER_SESSION) {
        ok = ok && take_local(&st->byte_tokens, b, elapsed, (double) len);
    }
    if (ok && rl->messages_set && m->per == PER_ADDRESS) {
        size_t n = key(k, sizeof(k), 'm', s);
        ok = wsg_counter_take(k, n, m->rate, m->burst, 1);
    }
    if (ok && rl->bytes_set && b->per == PER_ADDRESS) {
        size_t n = key(k, sizeof(k), 'b', s);
        ok = wsg_counter_take(k, n, b->rate, b->burst, (double) len);
    }
    return ok;
}

static int
rl_on_message(struct wsg_session *s, struct wsg_msg *m)
{
    static uint64_t dropped, last_log_us;
    const struct rl_loc_conf *rl = conf_of(s);
    size_t len;

    if (rl == NULL || (!rl->messages_set && !rl->bytes_set)) {
        return WSG_NEXT;
    }
    wsg_msg_data(m, &len);
    if (allowed(s, rl, len)) {
        return WSG_NEXT;
    }
    dropped++;
    wsg_counter_add("ratelimit.over", 15, 1);
    uint64_t t = now_us();
    if (t - last_log_us >= 1000000) {
        wsg_session_log(s, &wsg_ratelimit_module, WSG_LOG_LEVEL_INFO,
                        "%llu messages over the rate limit (%s)",
                        (unsigned long long) dropped,
                        rl->action == ACTION_CLOSE ? "closed" : "dropped");
        last_log_us = t;
        dropped = 0;
    }
    if (rl->action == ACTION_CLOSE) {
        wsg_session_end(s, 1008, "rate limit");
    }
    return WSG_STOP;
}

static void
rl_on_close(struct wsg_session *s, uint16_t code)
{
    void **slot = wsg_session_data(s, &wsg_ratelimit_module);
    struct rl_session *st = *slot;
    char k[96];

    (void) code;
    if (st != NULL && st->counted) {
        wsg_counter_add(k, key(k, sizeof(k), 'c', s), -1);
    }
    free(st);
    *slot = NULL;
}

const struct wsg_module wsg_ratelimit_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "ratelimit",
    .directives = rl_directives,
    .create_loc_conf = rl_create_loc_conf,
    .merge_loc_conf = rl_merge_loc_conf,
    .on_handshake = rl_on_handshake,
    .on_message = rl_on_message,
    .on_close = rl_on_close,
};
