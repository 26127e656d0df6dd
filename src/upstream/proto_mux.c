/*
 * The mux backend protocol (docs/backend-protocol.md, "mux envelopes"): a
 * 14-byte header of kind, flags, connection id and payload length, then
 * the payload. Every length is judged on the header, against its kind's
 * bound, before a payload byte is awaited or anything is allocated.
 */
#include "config.h"

#include "upstream/proto_mux.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/core.h"
#include "ws/utf8.h"
#include "ws/ws_frame.h"

/* Room a compact dump starts with: an open payload is usually smaller. */
#define DUMP_START 256

size_t
wsg_mux_header(uint8_t *out, uint8_t kind, uint8_t flags, uint64_t id,
               uint32_t len)
{
    out[0] = kind;
    out[1] = flags;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t) (id >> (56 - 8 * i));
    }
    for (int i = 0; i < 4; i++) {
        out[10 + i] = (uint8_t) (len >> (24 - 8 * i));
    }
    return WSG_MUX_HEADER;
}

static uint64_t
get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* The payload bound of <kind>, and the reason given when it is passed. */
static size_t
payload_max(uint8_t kind, size_t max_message, const char **why)
{
    switch (kind) {
    case WSG_ENV_MESSAGE:
        *why = "message over its size limit";
        /* the envelope's total length is returned as an int */
        return max_message < INT_MAX - WSG_MUX_HEADER
                   ? max_message
                   : INT_MAX - WSG_MUX_HEADER;
    case WSG_ENV_OPEN:
        *why = "open payload over 16 MiB";
        return WSG_ENV_CONTROL_MAX;
    case WSG_ENV_CLOSE:
    case WSG_ENV_PING:
    case WSG_ENV_PONG:
        /* they become (or answer) WebSocket control frames */
        *why = "close, ping or pong payload over 125 bytes";
        return WSG_WS_MAX_CONTROL;
    default:
        *why = "pause or resume with a payload";
        return 0;
    }
}

/* Reads env->data as a close payload: a client's rules, but for 1006. */
static int
close_payload(struct wsg_envelope *env, const char **why)
{
    if (env->len == 0) {
        env->code = WSG_WS_NO_STATUS;
        return 0;
    }
    if (env->len == 1) {
        *why = "close payload of 1 byte";
        return WSG_ERROR;
    }
    env->code = (uint16_t) (env->data[0] << 8 | env->data[1]);
    if (!wsg_mux_close_code_ok(env->code)) {
        *why = "close code that may not be sent";
        return WSG_ERROR;
    }
    if (!wsg_utf8_valid(env->data + 2, env->len - 2)) {
        *why = "close reason not UTF-8";
        return WSG_ERROR;
    }
    env->reason.p = (const char *) env->data + 2;
    env->reason.len = env->len - 2;
    return 0;
}

bool
wsg_mux_close_code_ok(uint16_t code)
{
    /* the gateway's own code for a client that dropped its connection:
     * an echo backend sends it back, which must not cost the link */
    return code == WSG_WS_ABNORMAL || wsg_ws_close_code_valid(code);
}

int
wsg_mux_decode(const uint8_t *p, size_t len, size_t max_message,
               struct wsg_envelope *env, const char **why)
{
    if (len == 0) {
        return WSG_AGAIN;
    }
    if (p[0] < WSG_ENV_OPEN || p[0] > WSG_ENV_RESUME) {
        *why = "unknown kind";
        return WSG_ERROR;
    }
    if (len < 2) {
        return WSG_AGAIN;
    }
    if ((p[1] & ~WSG_MUX_FLAG_BINARY) != 0) {
        *why = "unknown flags";
        return WSG_ERROR;
    }
    if (len < WSG_MUX_HEADER) {
        return WSG_AGAIN;
    }
    uint64_t n = get_be(p + 10, 4);
    const char *over;
    if (n > payload_max(p[0], max_message, &over)) {
        *why = over;
        return WSG_ERROR;
    }
    if (len - WSG_MUX_HEADER < n) {
        return WSG_AGAIN;
    }

    memset(env, 0, sizeof(*env));
    env->kind = p[0];
    env->binary = p[0] == WSG_ENV_MESSAGE && (p[1] & WSG_MUX_FLAG_BINARY);
    if (p[0] != WSG_ENV_PING && p[0] != WSG_ENV_PONG) {
        env->id = get_be(p + 2, 8);
    }
    env->data = p + WSG_MUX_HEADER;
    env->len = (size_t) n;
    if (p[0] == WSG_ENV_CLOSE && close_payload(env, why) != 0) {
        return WSG_ERROR;
    }
    return (int) (WSG_MUX_HEADER + n);
}

bool
wsg_mux_check_text(const struct wsg_envelope *env)
{
    if (env->kind != WSG_ENV_MESSAGE || env->binary) {
        return true;
    }
    return wsg_utf8_valid(env->data, env->len);
}

/* jansson fails only on OOM once its inputs are checked: die like
 * wsg_malloc does */
json_t *
wsg_mux_json_need(json_t *j)
{
    if (j == NULL) {
        abort();
    }
    return j;
}

void
wsg_mux_json_set(json_t *obj, const char *key, json_t *value)
{
    if (json_object_set_new(obj, key, wsg_mux_json_need(value)) != 0) {
        abort();
    }
}

json_t *
wsg_mux_json_string(const char *p, size_t len)
{
    if (len == 0) {
        return wsg_mux_json_need(json_string(""));
    }
    if (wsg_utf8_valid((const uint8_t *) p, len)) {
        return wsg_mux_json_need(json_stringn_nocheck(p, len));
    }
    /* U+0080..U+00FF take two bytes each */
    char *u = wsg_malloc(2 * len);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) p[i];
        if (c < 0x80) {
            u[n++] = (char) c;
        } else {
            u[n++] = (char) (0xC0 | c >> 6);
            u[n++] = (char) (0x80 | (c & 0x3F));
        }
    }
    json_t *s = wsg_mux_json_need(json_stringn_nocheck(u, n));
    free(u);
    return s;
}

/* A string member, or null for a "none" slice (p == NULL). */
static json_t *
string_or_null(struct wsg_str s)
{
    return s.p == NULL ? json_null() : wsg_mux_json_string(s.p, s.len);
}

/*
 * Adds header <name>: <value> to <headers>. A repeated name gets its
 * values joined with ", ", as HTTP allows for repeated fields.
 */
static void
add_header(json_t *headers, struct wsg_str name, struct wsg_str value)
{
    json_t *k = wsg_mux_json_string(name.p, name.len);
    /* a key is a C string: a name is a token, so it holds no NUL */
    const char *key = json_string_value(k);
    const json_t *old = json_object_get(headers, key);

    if (old == NULL) {
        wsg_mux_json_set(headers, key, wsg_mux_json_string(value.p, value.len));
        json_decref(k);
        return;
    }
    json_t *v = wsg_mux_json_string(value.p, value.len);
    size_t olen = json_string_length(old), vlen = json_string_length(v);
    char *joined = wsg_malloc(olen + 2 + vlen);
    memcpy(joined, json_string_value(old), olen);
    memcpy(joined + olen, ", ", 2);
    memcpy(joined + olen + 2, json_string_value(v), vlen);
    wsg_mux_json_set(headers, key,
                     json_stringn_nocheck(joined, olen + 2 + vlen));
    free(joined);
    json_decref(v);
    json_decref(k);
}

void
wsg_mux_open_members(json_t *obj, const struct wsg_env_open *o)
{
    wsg_mux_json_set(obj, "path", wsg_mux_json_string(o->path.p, o->path.len));
    wsg_mux_json_set(obj, "query",
                     wsg_mux_json_string(o->query.p, o->query.len));
    wsg_mux_json_set(obj, "remote",
                     wsg_mux_json_string(o->remote.p, o->remote.len));
    wsg_mux_json_set(obj, "subprotocol", string_or_null(o->subprotocol));
    wsg_mux_json_set(obj, "user", string_or_null(o->user));
    json_t *headers = wsg_mux_json_need(json_object());
    for (size_t i = 0; i < o->nheaders; i++) {
        add_header(headers, o->headers[2 * i], o->headers[2 * i + 1]);
    }
    wsg_mux_json_set(obj, "headers", headers);
}

struct dump {
    char *p;
    size_t len;
    size_t cap;
};

/* Appends one piece of jansson's output; room is kept for "\n\0". */
static int
on_dump(const char *buf, size_t size, void *data)
{
    struct dump *d = data;

    if (size > SIZE_MAX / 2 - d->len - 2) {
        return -1;
    }
    size_t want = d->len + size + 2;
    if (want > d->cap) {
        d->cap = want > 2 * d->cap ? want : 2 * d->cap;
        d->p = wsg_realloc(d->p, d->cap);
    }
    memcpy(d->p + d->len, buf, size);
    d->len += size;
    return 0;
}

char *
wsg_mux_json_dump(const json_t *j, bool newline, size_t *len)
{
    struct dump d = {wsg_malloc(DUMP_START), 0, DUMP_START};

    if (json_dump_callback(j, on_dump, &d, JSON_COMPACT) != 0) {
        abort();
    }
    if (newline) {
        d.p[d.len++] = '\n';
    }
    d.p[d.len] = '\0';
    *len = d.len;
    return d.p;
}

char *
wsg_mux_open_payload(const struct wsg_env_open *o, size_t *len)
{
    json_t *obj = wsg_mux_json_need(json_object());

    wsg_mux_open_members(obj, o);
    char *s = wsg_mux_json_dump(obj, false, len);
    json_decref(obj);
    /* kept for the binding's life: no slack */
    return wsg_realloc(s, *len + 1);
}
