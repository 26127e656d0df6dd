/*
 * Router expressions: compiled once per configuration word into slices of
 * that word, then evaluated per message into the caller's buffer, so a
 * message costs no allocation. A variable without a value makes the whole
 * expression valueless: "room-$json.id" never routes to "room-".
 */
#include "route_expr.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

static bool
is_path_char(char c)
{
    return is_name_char(c) || c == '-' || c == '.';
}

static bool
str_is(const char *p, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(p, lit, len) == 0;
}

static const char *
add(struct wsg_route_expr *e, enum wsg_route_part_kind kind, const char *p,
    size_t len)
{
    if (e->nparts == WSG_ROUTE_EXPR_PARTS_MAX) {
        return "has too many variables and texts";
    }
    e->parts[e->nparts].kind = kind;
    e->parts[e->nparts].text.p = p;
    e->parts[e->nparts].text.len = len;
    e->nparts++;
    return NULL;
}

/* Checks that the dotted <path>/<len> has keys of 1 to KEY_MAX bytes. */
static const char *
check_path(const char *path, size_t len)
{
    const char *p = path, *end = path + len;

    if (len == 0) {
        return "needs a path after \"$json\"";
    }
    for (;;) {
        const char *dot = memchr(p, '.', (size_t) (end - p));
        const char *stop = dot != NULL ? dot : end;
        if (stop == p) {
            return "has an empty key in a $json path";
        }
        if ((size_t) (stop - p) > WSG_ROUTE_KEY_MAX) {
            return "has a $json key over 255 bytes";
        }
        if (dot == NULL) {
            return NULL;
        }
        p = dot + 1;
    }
}

/*
 * Compiles the variable <name>/<nlen> whose path (after "json") is
 * <rest>/<rlen>, <has_rest> when a "." followed the name.
 */
static const char *
add_variable(struct wsg_route_expr *e, const char *name, size_t nlen,
             const char *rest, size_t rlen, bool has_rest)
{
    if (str_is(name, nlen, "json")) {
        if (!has_rest) {
            return "needs a path after \"$json\"";
        }
        const char *why = check_path(rest, rlen);
        return why != NULL ? why : add(e, WSG_ROUTE_JSON, rest, rlen);
    }
    if (has_rest) {
        return "has a path after a variable other than $json";
    }
    if (str_is(name, nlen, "user")) {
        return add(e, WSG_ROUTE_USER, name, nlen);
    }
    if (str_is(name, nlen, "remote_addr")) {
        return add(e, WSG_ROUTE_REMOTE_ADDR, name, nlen);
    }
    return nlen == 0 ? "has a \"$\" without a variable name"
                     : "has an unknown variable";
}

/* "${name.path}": <*pp> is just past the "{". */
static const char *
braced(struct wsg_route_expr *e, const char **pp, const char *end)
{
    const char *p = *pp;
    const char *close = memchr(p, '}', (size_t) (end - p));

    if (close == NULL) {
        return "has a \"${\" without its \"}\"";
    }
    const char *dot = memchr(p, '.', (size_t) (close - p));
    const char *name_end = dot != NULL ? dot : close;
    *pp = close + 1;
    return add_variable(
        e, p, (size_t) (name_end - p), dot != NULL ? dot + 1 : close,
        dot != NULL ? (size_t) (close - dot - 1) : 0, dot != NULL);
}

/* "$name" or "$json.a.b": <*pp> is just past the "$". */
static const char *
bare(struct wsg_route_expr *e, const char **pp, const char *end)
{
    const char *p = *pp, *q = p;

    while (q < end && is_name_char(*q)) {
        q++;
    }
    const char *name = p;
    size_t nlen = (size_t) (q - p);
    if (str_is(name, nlen, "json") && q < end && *q == '.') {
        const char *path = q + 1;
        q = path;
        while (q < end && is_path_char(*q)) {
            q++;
        }
        *pp = q;
        return add_variable(e, name, nlen, path, (size_t) (q - path), true);
    }
    *pp = q;
    return add_variable(e, name, nlen, NULL, 0, false);
}

const char *
wsg_route_expr_compile(struct wsg_route_expr *e, const char *src, size_t len)
{
    const char *p = src, *end = src + len;

    e->nparts = 0;
    while (p < end) {
        const char *why;
        if (*p != '$') {
            const char *dollar = memchr(p, '$', (size_t) (end - p));
            const char *stop = dollar != NULL ? dollar : end;
            why = add(e, WSG_ROUTE_LITERAL, p, (size_t) (stop - p));
            p = stop;
        } else if (p + 1 < end && p[1] == '{') {
            p += 2;
            why = braced(e, &p, end);
        } else {
            p++;
            why = bare(e, &p, end);
        }
        if (why != NULL) {
            return why;
        }
    }
    return NULL;
}

bool
wsg_route_expr_is_literal(const struct wsg_route_expr *e)
{
    for (size_t i = 0; i < e->nparts; i++) {
        if (e->parts[i].kind != WSG_ROUTE_LITERAL) {
            return false;
        }
    }
    return true;
}

/* One step: key <p>/<n> of an object, or index of an array. */
static json_t *
step(json_t *v, const char *p, size_t n)
{
    if (n == 0 || n > WSG_ROUTE_KEY_MAX) {
        return NULL;
    }
    if (json_is_object(v)) {
        char key[WSG_ROUTE_KEY_MAX + 1];
        memcpy(key, p, n);
        key[n] = '\0';
        return json_object_get(v, key);
    }
    if (!json_is_array(v) || n > 9) {
        return NULL;
    }
    size_t index = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return NULL;
        }
        index = index * 10 + (size_t) (p[i] - '0');
    }
    return json_array_get(v, index);
}

json_t *
wsg_route_expr_lookup(json_t *root, const char *path, size_t len)
{
    const char *p = path, *end = path + len;
    json_t *v = root;

    if (len == 0) {
        return NULL;
    }
    while (v != NULL) {
        const char *dot = memchr(p, '.', (size_t) (end - p));
        const char *stop = dot != NULL ? dot : end;
        v = step(v, p, (size_t) (stop - p));
        if (dot == NULL) {
            return v;
        }
        p = dot + 1;
    }
    return NULL;
}

/*
 * The text of a scalar <v>: a string's bytes, or a number or boolean
 * printed into <num> (32 bytes). Returns false when <v> has none.
 */
static bool
scalar(const json_t *v, char *num, const char **p, size_t *len)
{
    int n = 0;

    switch (json_typeof(v)) {
    case JSON_STRING:
        *p = json_string_value(v);
        *len = json_string_length(v);
        return true;
    case JSON_INTEGER:
        n = snprintf(num, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        /* the fewest digits that read back the same: 0.1, not
         * 0.10000000000000001 */
        double d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(num, 32, "%.*g", prec, d);
            if (strtod(num, NULL) == d) {
                break;
            }
        }
        break;
    }
    case JSON_TRUE:
        n = snprintf(num, 32, "true");
        break;
    case JSON_FALSE:
        n = snprintf(num, 32, "false");
        break;
    default:
        return false;
    }
    *p = num;
    *len = (size_t) n;
    return n > 0 && n < 32;
}

int
wsg_route_expr_eval(const struct wsg_route_expr *e,
                    const struct wsg_route_vars *v, char *buf, size_t cap,
                    size_t *len)
{
    size_t n = 0;

    for (size_t i = 0; i < e->nparts; i++) {
        const struct wsg_route_part *part = &e->parts[i];
        const char *p = part->text.p;
        size_t plen = part->text.len;
        char num[32];
        json_t *j;

        switch (part->kind) {
        case WSG_ROUTE_LITERAL:
            break;
        case WSG_ROUTE_USER:
            p = v->user.p;
            plen = v->user.len;
            break;
        case WSG_ROUTE_REMOTE_ADDR:
            p = v->remote_addr;
            plen = p != NULL ? strlen(p) : 0;
            break;
        case WSG_ROUTE_JSON:
            j = v->json != NULL ? wsg_route_expr_lookup(v->json, p, plen)
                                : NULL;
            if (j == NULL || !scalar(j, num, &p, &plen)) {
                return WSG_ROUTE_MISSING;
            }
            break;
        }
        if (part->kind != WSG_ROUTE_LITERAL && plen == 0) {
            return WSG_ROUTE_MISSING;
        }
        if (plen > cap - n) {
            return WSG_ROUTE_TOO_LONG;
        }
        if (plen > 0) {
            memcpy(buf + n, p, plen);
            n += plen;
        }
    }
    *len = n;
    return 0;
}
