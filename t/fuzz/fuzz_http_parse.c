/*
 * Fuzz target for src/http/http_parse.h: parses the input as a request
 * head with generous limits and aborts when a result breaks the header's
 * contract: a length past the input, a slice outside the head, a refusal
 * without a listed status, a shorter read that does not wait, or a limit
 * that disagrees with the head's length at its edge.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/core.h"
#include "http/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
inside(struct wsg_str s, const char *buf, size_t len)
{
    return s.p != NULL && s.p >= buf && s.len <= len &&
           (size_t) (s.p - buf) <= len - s.len;
}

static void
check_request(const struct wsg_http_request *r, const char *buf, size_t len)
{
    /* an absolute-form target without a path gets a static "/" */
    if (!inside(r->method, buf, len) || !inside(r->target, buf, len) ||
        !inside(r->authority, buf, len) || !inside(r->query, buf, len) ||
        !(inside(r->path, buf, len) || wsg_str_eq(r->path, "/")) ||
        r->method.len == 0 || r->method.len > 32 || r->minor < 0 ||
        r->minor > 9 || r->nheaders > WSG_HTTP_MAX_HEADERS) {
        abort();
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct wsg_http_header *h = &r->headers[i];

        if (!inside(h->name, buf, len) || !inside(h->value, buf, len) ||
            h->name.len == 0) {
            abort();
        }
        (void) wsg_http_list_has(h->value, "upgrade");
    }
    /* visit duplicates the way the handshake does */
    const struct wsg_http_header *h;
    size_t from = 0, seen = 0;
    while ((h = wsg_http_find_header(r, "connection", &from)) != NULL) {
        if (from > r->nheaders || ++seen > r->nheaders) {
            abort();
        }
    }
}

static void
check_error(const struct wsg_http_error *err)
{
    switch (err->status) {
    case 400:
    case 414:
    case 431:
    case 501:
    case 505:
        break;
    default:
        abort();
    }
    if (err->why == NULL || err->why[0] == '\0') {
        abort();
    }
}

/* A head of <rc> bytes: the limit and the length must agree at the edge. */
static void
check_limits(const char *buf, size_t size, int rc)
{
    static struct wsg_http_request r;
    struct wsg_http_limits limits = {
        .max_head = (size_t) rc,
        .max_headers = WSG_HTTP_MAX_HEADERS,
    };
    struct wsg_http_error err;

    if (wsg_http_parse_request(buf, (size_t) rc - 1, &limits, &r, &err) !=
            WSG_AGAIN ||
        wsg_http_parse_request(buf, size, &limits, &r, &err) != rc) {
        abort();
    }
    limits.max_head--;
    if (wsg_http_parse_request(buf, size, &limits, &r, &err) != WSG_ERROR ||
        (err.status != 414 && err.status != 431)) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct wsg_http_request r;
    struct wsg_http_limits limits = {
        .max_head = 64 * 1024,
        .max_headers = WSG_HTTP_MAX_HEADERS,
    };
    struct wsg_http_error err = {0, NULL};
    const char *buf = (const char *) data;
    int rc = wsg_http_parse_request(buf, size, &limits, &r, &err);

    if (rc == WSG_ERROR) {
        check_error(&err);
    } else if (rc > 0) {
        if ((size_t) rc > size) {
            abort();
        }
        check_request(&r, buf, (size_t) rc);
        check_limits(buf, size, rc);
    } else if (rc != WSG_AGAIN) {
        abort();
    }
    return 0;
}
