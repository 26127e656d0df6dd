/*
 * HTTP/1.1 request-head parser (RFC 9110, RFC 9112 §2-§5). Pure: it reads
 * a caller's buffer, allocates nothing, and returns slices of that buffer.
 * The caller calls it again with more bytes until it stops saying
 * WSG_AGAIN; a head is never assumed to arrive in one read.
 */
#ifndef WSG_HTTP_PARSE_H
#define WSG_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

/* The most headers a request may carry; more is refused with 431. */
#define WSG_HTTP_MAX_HEADERS 100

struct wsg_http_header {
    struct wsg_str name;  /* as sent; compare case-insensitively */
    struct wsg_str value; /* leading and trailing blanks removed */
};

/*
 * Every slice points into the parsed buffer, except <path> of an
 * absolute-form target without one ("http://host"), which is a static "/"
 * (RFC 9110 §4.2.3: an empty path means "/").
 */
struct wsg_http_request {
    struct wsg_str method;
    struct wsg_str target;    /* request-target as sent */
    struct wsg_str authority; /* host[:port] of an absolute-form target
                                 (RFC 9112 §3.2.2: it overrides Host);
                                 len 0 for origin and asterisk forms */
    struct wsg_str path;      /* target up to '?'; for absolute-form, the
                                 part after the authority; "*" as sent */
    struct wsg_str query;     /* after '?', without it; len 0 if none */
    int minor;                /* HTTP/1.<minor> */
    struct wsg_http_header headers[WSG_HTTP_MAX_HEADERS];
    size_t nheaders;
};

/* Limits the caller applies; both are checked before anything is kept. */
struct wsg_http_limits {
    size_t max_head;    /* bytes of request line + headers + final CRLF;
                           above INT_MAX counts as INT_MAX */
    size_t max_headers; /* <= WSG_HTTP_MAX_HEADERS; more counts as that */
};

/* Why a request was refused: the status to answer and a static reason. */
struct wsg_http_error {
    int status;      /* 400, 414, 431, 501, 505 */
    const char *why; /* "invalid header name", ... for the info log */
};

/*
 * Parses the request head at <buf>/<len> into <r>.
 * Returns the head's length in bytes (> 0; the bytes after it belong to the
 * next protocol: the client's first WebSocket frames may follow at once),
 * WSG_AGAIN when the head is not complete yet and within the limits, or
 * WSG_ERROR with <err> filled: 400 malformed (bad request line, bad header
 * name or value, obs-fold, bare CR, missing Host is NOT checked here), 414
 * request line longer than <max_head>, 431 head longer than <max_head> or
 * more headers than allowed, 505 a version other than HTTP/1.x, 501 an
 * overlong method (over 32 bytes).
 * Line ends are CRLF, or LF alone (RFC 9112 §2.2). Empty lines before the
 * request line are skipped (RFC 9112 §2.2) and count in the length and
 * against <max_head>. The request-target may be origin-form, absolute-form
 * with an http or https scheme and no userinfo, or "*" with OPTIONS only;
 * anything else is 400. <r> is meaningful only when a length is returned.
 */
int wsg_http_parse_request(const char *buf, size_t len,
                           const struct wsg_http_limits *limits,
                           struct wsg_http_request *r,
                           struct wsg_http_error *err);

/*
 * Returns the first header named <name> (case-insensitive) at or after
 * index <*from>, and sets <*from> past it for the next call; NULL when
 * there is none. Lets callers visit duplicates. <from> may be NULL to get
 * the first one only.
 */
const struct wsg_http_header *
wsg_http_find_header(const struct wsg_http_request *r, const char *name,
                     size_t *from);

/*
 * Whether the comma-separated header list <value> holds <token>
 * (case-insensitive, blanks around items ignored): "keep-alive, Upgrade"
 * holds "upgrade". Items match whole: "upgrade2" and "x-upgrade" do not
 * hold "upgrade", and empty items ("a, ,b") match nothing.
 */
bool wsg_http_list_has(struct wsg_str value, const char *token);

#endif
