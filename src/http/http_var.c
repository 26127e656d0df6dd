/*
 * Request variables. Names follow nginx: $http_NAME reads a header with
 * '_' for '-' (case-insensitive), $arg_NAME a query argument, $cookie_NAME
 * a cookie; values are taken as sent (no percent-decoding).
 */
#include "config.h"

#include "http/http_var.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "http/http_parse.h"

/* The value of <name> in a "k=v<sep>k=v" list; len 0 when absent. */
static struct wsg_str
pair_value(struct wsg_str list, const char *name, size_t nlen, char sep)
{
    const char *p = list.p, *end = list.p + list.len;
    struct wsg_str none = {"", 0};

    while (p < end) {
        while (p < end && (*p == ' ' || *p == sep)) {
            p++;
        }
        const char *e = memchr(p, sep, (size_t) (end - p));
        e = e ? e : end;
        const char *eq = memchr(p, '=', (size_t) (e - p));
        if (eq != NULL && (size_t) (eq - p) == nlen &&
            memcmp(p, name, nlen) == 0) {
            return (struct wsg_str){eq + 1, (size_t) (e - eq - 1)};
        }
        p = e;
    }
    return none;
}

static struct wsg_str
header_value(const struct wsg_http_request *r, const char *name, size_t nlen)
{
    struct wsg_str none = {"", 0};

    for (size_t i = 0; i < r->nheaders; i++) {
        const struct wsg_str h = r->headers[i].name;
        if (h.len != nlen) {
            continue;
        }
        size_t k = 0;
        while (k < nlen) {
            char want = name[k] == '_' ? '-' : name[k];
            if (tolower((unsigned char) h.p[k]) != want) {
                break;
            }
            k++;
        }
        if (k == nlen) {
            return r->headers[i].value;
        }
    }
    return none;
}

/* Looks up variable <name>/<nlen> (without '$'). */
static struct wsg_str
lookup(const char *name, size_t nlen, const struct wsg_http_request *r,
       const char *remote)
{
    struct wsg_str none = {"", 0};

    if (nlen == 11 && memcmp(name, "remote_addr", 11) == 0) {
        return (struct wsg_str){remote, strlen(remote)};
    }
    if (nlen == 3 && memcmp(name, "uri", 3) == 0) {
        return r->path;
    }
    if (nlen > 4 && memcmp(name, "arg_", 4) == 0) {
        return pair_value(r->query, name + 4, nlen - 4, '&');
    }
    if (nlen > 5 && memcmp(name, "http_", 5) == 0) {
        return header_value(r, name + 5, nlen - 5);
    }
    if (nlen > 7 && memcmp(name, "cookie_", 7) == 0) {
        struct wsg_str c = header_value(r, "cookie", 6);
        return pair_value(c, name + 7, nlen - 7, ';');
    }
    return none;
}

size_t
wsg_http_var_expand(const char *expr, const struct wsg_http_request *r,
                    const char *remote, char *out, size_t outlen)
{
    size_t n = 0;

    if (outlen == 0) {
        return 0;
    }
    for (const char *p = expr; *p != '\0' && n + 1 < outlen;) {
        if (*p != '$') {
            out[n++] = *p++;
            continue;
        }
        const char *name = ++p;
        while (isalnum((unsigned char) *p) || *p == '_') {
            p++;
        }
        struct wsg_str v = lookup(name, (size_t) (p - name), r, remote);
        size_t k = v.len < outlen - 1 - n ? v.len : outlen - 1 - n;
        memcpy(out + n, v.p, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}
