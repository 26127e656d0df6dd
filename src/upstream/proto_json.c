/*
 * The json backend protocol (docs/backend-protocol.md, "json envelopes"):
 * one compact JSON object per line. jansson parses and prints (its strings
 * are always UTF-8, and it escapes control characters, so a line never
 * holds a raw newline); binary payloads are RFC 4648 base64 with padding.
 */
#include "config.h"

#include "upstream/proto_json.h"

#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/core.h"
#include "upstream/proto_mux.h"
#include "ws/ws_frame.h"

/* Ids are JSON numbers: above this, a double-based parser loses digits. */
#define ID_LIMIT (UINT64_C(1) << 53)

/* Bytes per EVP_EncodeBlock/EVP_DecodeBlock call, which take an int; a
 * multiple of 3 (and of 4 for base64 text) so chunks join without padding */
#define B64_RAW_CHUNK  (3u * 1024 * 1024)
#define B64_TEXT_CHUNK (4u * 1024 * 1024)

static const char *const kind_names[] = {
    [WSG_ENV_OPEN] = "open",     [WSG_ENV_MESSAGE] = "message",
    [WSG_ENV_CLOSE] = "close",   [WSG_ENV_PING] = "ping",
    [WSG_ENV_PONG] = "pong",     [WSG_ENV_PAUSE] = "pause",
    [WSG_ENV_RESUME] = "resume",
};

/* A new JSON string of <p>/<len> in base64 with padding. */
static json_t *
base64_string(const uint8_t *p, size_t len)
{
    if (len > SIZE_MAX / 4) {
        abort(); /* more than memory holds: a caller's bug */
    }
    size_t n = (len + 2) / 3 * 4;
    unsigned char *b = wsg_malloc(n + 1); /* EVP_EncodeBlock adds a NUL */
    size_t out = 0;

    for (size_t i = 0; i < len; i += B64_RAW_CHUNK) {
        size_t k = len - i < B64_RAW_CHUNK ? len - i : B64_RAW_CHUNK;
        out += (size_t) EVP_EncodeBlock(b + out, p + i, (int) k);
    }
    json_t *s = wsg_mux_json_need(json_stringn_nocheck((const char *) b, out));
    free(b);
    return s;
}

/* The members after "kind" and "id" of <env>, by kind. */
static void
set_body(json_t *j, const struct wsg_envelope *env,
         const struct wsg_env_open *o)
{
    static const struct wsg_env_open none;

    switch (env->kind) {
    case WSG_ENV_OPEN:
        wsg_mux_open_members(j, o != NULL ? o : &none);
        break;
    case WSG_ENV_MESSAGE:
        if (env->binary) {
            wsg_mux_json_set(j, "binary", base64_string(env->data, env->len));
        } else {
            wsg_mux_json_set(
                j, "text",
                wsg_mux_json_string((const char *) env->data, env->len));
        }
        break;
    case WSG_ENV_CLOSE:
        /* no code on the wire (mux: an empty payload) means no member */
        if (env->code != WSG_WS_NO_STATUS) {
            wsg_mux_json_set(j, "code", json_integer(env->code));
            wsg_mux_json_set(
                j, "reason",
                wsg_mux_json_string(env->reason.p, env->reason.len));
        }
        break;
    case WSG_ENV_PING:
    case WSG_ENV_PONG:
        wsg_mux_json_set(
            j, "data", wsg_mux_json_string((const char *) env->data, env->len));
        break;
    default:
        break;
    }
}

char *
wsg_json_encode(const struct wsg_envelope *env, const struct wsg_env_open *o,
                size_t *len)
{
    if (env->kind < WSG_ENV_OPEN || env->kind > WSG_ENV_RESUME) {
        abort(); /* the caller's bug: kinds come from this module's enum */
    }
    json_t *j = wsg_mux_json_need(json_object());

    /* jansson keeps insertion order: "kind" first reads well in a log */
    wsg_mux_json_set(j, "kind", json_string(kind_names[env->kind]));
    if (env->kind != WSG_ENV_PING && env->kind != WSG_ENV_PONG) {
        wsg_mux_json_set(j, "id", json_integer((json_int_t) env->id));
    }
    set_body(j, env, o);
    char *s = wsg_mux_json_dump(j, true, len);
    json_decref(j);
    return s;
}

int
wsg_json_line_end(const uint8_t *p, size_t len, size_t max_line)
{
    if (len == 0) {
        return WSG_AGAIN;
    }
    if (max_line > INT_MAX - 1) {
        max_line = INT_MAX - 1;
    }
    /* the '\n' may come right after <max_line> bytes, not later */
    size_t n = len <= max_line ? len : max_line + 1;
    const uint8_t *nl = memchr(p, '\n', n);

    if (nl != NULL) {
        return (int) (nl - p + 1);
    }
    return len > max_line ? WSG_ERROR : WSG_AGAIN;
}

/* A member's value, or NULL when it is absent or null. */
static const json_t *
member(const json_t *j, const char *name)
{
    const json_t *v = json_object_get(j, name);

    return json_is_null(v) ? NULL : v;
}

/* A malloc'd copy of string <s>'s bytes (NULs included). */
static uint8_t *
copy_string(const json_t *s, size_t *len)
{
    *len = json_string_length(s);
    uint8_t *p = wsg_malloc(*len);
    memcpy(p, json_string_value(s), *len);
    return p;
}

static int
decode_id(const json_t *j, uint64_t *id, const char **why)
{
    const json_t *v = member(j, "id");

    if (!json_is_integer(v)) {
        *why = "id missing or not an integer";
        return WSG_ERROR;
    }
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t) n >= ID_LIMIT) {
        *why = "id out of range";
        return WSG_ERROR;
    }
    *id = (uint64_t) n;
    return 0;
}

/* The value of base64 character <c>, or -1. */
static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/*
 * Checks <s>/<n> as RFC 4648 base64 with padding and sets *<len> to the
 * bytes it encodes. EVP_DecodeBlock alone would skip leading and trailing
 * whitespace, take '=' anywhere as zero bits and count padding as bytes.
 */
static int
base64_check(const unsigned char *s, size_t n, size_t *len)
{
    if (n % 4 != 0) {
        return WSG_ERROR;
    }
    size_t pad = n > 0 && s[n - 1] == '=' ? 1 + (s[n - 2] == '=') : 0;
    for (size_t i = 0; i < n - pad; i++) {
        if (b64_value(s[i]) < 0) {
            return WSG_ERROR;
        }
    }
    /* the bits past the last byte must be zero (canonical, §3.5) */
    if ((pad == 2 && (b64_value(s[n - 3]) & 0x0F) != 0) ||
        (pad == 1 && (b64_value(s[n - 2]) & 0x03) != 0)) {
        return WSG_ERROR;
    }
    *len = n / 4 * 3 - pad;
    return 0;
}

/* Decodes member <b> (a string) into a malloc'd *<out> of *<len> bytes. */
static int
decode_base64(const json_t *b, uint8_t **out, size_t *len)
{
    const unsigned char *s = (const unsigned char *) json_string_value(b);
    size_t n = json_string_length(b);

    if (base64_check(s, n, len) != 0) {
        return WSG_ERROR;
    }
    /* padding decodes to zero bytes, so room for whole groups */
    uint8_t *p = wsg_malloc(n / 4 * 3);
    for (size_t i = 0; i < n; i += B64_TEXT_CHUNK) {
        size_t k = n - i < B64_TEXT_CHUNK ? n - i : B64_TEXT_CHUNK;
        if (EVP_DecodeBlock(p + i / 4 * 3, s + i, (int) k) != (int) k / 4 * 3) {
            free(p);
            return WSG_ERROR;
        }
    }
    *out = p;
    return 0;
}

static int
decode_message(const json_t *j, struct wsg_envelope *env, uint8_t **owned,
               const char **why)
{
    const json_t *t = member(j, "text");
    const json_t *b = member(j, "binary");

    if ((t == NULL) == (b == NULL)) {
        *why = "a message needs exactly one of text and binary";
        return WSG_ERROR;
    }
    if (t != NULL) {
        if (!json_is_string(t)) {
            *why = "text not a string";
            return WSG_ERROR;
        }
        *owned = copy_string(t, &env->len);
    } else {
        if (!json_is_string(b)) {
            *why = "binary not a string";
            return WSG_ERROR;
        }
        if (decode_base64(b, owned, &env->len) != 0) {
            *why = "binary not base64";
            return WSG_ERROR;
        }
        env->binary = true;
    }
    env->data = *owned;
    return 0;
}

/* The close code member <c> (present): see wsg_mux_close_code_ok(). */
static int
decode_code(const json_t *c, uint16_t *code, const char **why)
{
    if (!json_is_integer(c)) {
        *why = "code not an integer";
        return WSG_ERROR;
    }
    json_int_t v = json_integer_value(c);
    if (v < 0 || v > UINT16_MAX || !wsg_mux_close_code_ok((uint16_t) v)) {
        *why = "close code that may not be sent";
        return WSG_ERROR;
    }
    *code = (uint16_t) v;
    return 0;
}

static int
decode_close(const json_t *j, struct wsg_envelope *env, uint8_t **owned,
             const char **why)
{
    const json_t *c = member(j, "code");
    const json_t *r = member(j, "reason");

    if (r != NULL && !json_is_string(r)) {
        *why = "reason not a string";
        return WSG_ERROR;
    }
    size_t rlen = r != NULL ? json_string_length(r) : 0;
    if (c == NULL) {
        if (rlen != 0) {
            *why = "close reason without a code";
            return WSG_ERROR;
        }
        env->code = WSG_WS_NO_STATUS;
        return 0;
    }
    if (decode_code(c, &env->code, why) != 0) {
        return WSG_ERROR;
    }
    /* the client gets it in a close frame: 125 bytes with the code */
    if (rlen > WSG_WS_MAX_CONTROL - 2) {
        *why = "close reason over 123 bytes";
        return WSG_ERROR;
    }
    uint8_t *p = wsg_malloc(2 + rlen);
    p[0] = (uint8_t) (env->code >> 8);
    p[1] = (uint8_t) env->code;
    if (rlen > 0) {
        memcpy(p + 2, json_string_value(r), rlen);
    }
    *owned = p;
    env->data = p;
    env->len = 2 + rlen;
    env->reason.p = (const char *) p + 2;
    env->reason.len = rlen;
    return 0;
}

static int
decode_data(const json_t *j, struct wsg_envelope *env, uint8_t **owned,
            const char **why)
{
    const json_t *d = member(j, "data");

    if (d == NULL) {
        return 0;
    }
    if (!json_is_string(d)) {
        *why = "data not a string";
        return WSG_ERROR;
    }
    if (json_string_length(d) > WSG_WS_MAX_CONTROL) {
        *why = "ping or pong data over 125 bytes";
        return WSG_ERROR;
    }
    if (json_string_length(d) > 0) {
        *owned = copy_string(d, &env->len);
        env->data = *owned;
    }
    return 0;
}

/* The kind named by member "kind" of <j>, or 0. */
static uint8_t
decode_kind(const json_t *j)
{
    const json_t *k = member(j, "kind");

    if (!json_is_string(k)) {
        return 0;
    }
    const char *s = json_string_value(k);
    size_t n = json_string_length(k);
    for (uint8_t i = WSG_ENV_OPEN; i <= WSG_ENV_RESUME; i++) {
        if (strlen(kind_names[i]) == n && memcmp(kind_names[i], s, n) == 0) {
            return i;
        }
    }
    return 0;
}

static int
decode_object(const json_t *j, struct wsg_envelope *env, uint8_t **owned,
              const char **why)
{
    if (!json_is_object(j)) {
        *why = "not a JSON object";
        return WSG_ERROR;
    }
    env->kind = decode_kind(j);
    if (env->kind == 0) {
        *why = json_is_string(member(j, "kind"))
                   ? "unknown kind"
                   : "kind missing or not a string";
        return WSG_ERROR;
    }
    if (env->kind != WSG_ENV_PING && env->kind != WSG_ENV_PONG &&
        decode_id(j, &env->id, why) != 0) {
        return WSG_ERROR;
    }
    switch (env->kind) {
    case WSG_ENV_MESSAGE:
        return decode_message(j, env, owned, why);
    case WSG_ENV_CLOSE:
        return decode_close(j, env, owned, why);
    case WSG_ENV_PING:
    case WSG_ENV_PONG:
        return decode_data(j, env, owned, why);
    default:
        return 0;
    }
}

int
wsg_json_decode(const uint8_t *line, size_t len, struct wsg_envelope *env,
                uint8_t **owned, const char **why)
{
    *owned = NULL;
    memset(env, 0, sizeof(*env));
    if (len > 0 && line[len - 1] == '\n') {
        len--;
    }
    if (len > 0 && memchr(line, '\n', len) != NULL) {
        *why = "a newline inside the line";
        return WSG_ERROR;
    }
    /* NULs are allowed inside strings (a text message may hold U+0000);
     * JSON_DECODE_ANY so that a lone scalar is "not an object" */
    json_error_t err;
    json_t *j = json_loadb(
        (const char *) line, len,
        JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (j == NULL) {
        *why = "not JSON";
        return WSG_ERROR;
    }
    int rc = decode_object(j, env, owned, why);
    json_decref(j);
    if (rc != 0) {
        free(*owned);
        *owned = NULL;
        return WSG_ERROR;
    }
    if (env->kind == WSG_ENV_OPEN) {
        env->data = line;
        env->len = len;
    }
    return 0;
}
