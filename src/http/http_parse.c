/*
 * HTTP/1.1 request-head parser: line ends (RFC 9112 §2.2), request line
 * (§3, §3.2 target forms), version (§2.3), header fields (§5, with names
 * and values per RFC 9110 §5.1, §5.5) and lists (RFC 9110 §5.6.1).
 * Each line is found with memchr() inside min(<len>, <max_head>) bytes and
 * checked once, as soon as it is complete; nothing past <len> is read.
 */
#include "config.h"

#include "http/http_parse.h"

#include <limits.h>
#include <string.h>

#include "core/core.h"

/* RFC 9110 §5.6.2 tchar; bytes 0x80 and up stay 0. */
static const unsigned char tchar[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, /*  !"#$%&'()*+,-./ */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0-9 :;<=>? */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* @A-O */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, /* P-Z [\]^_ */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* `a-o */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, /* p-z {|}~ DEL */
};

/* RFC 9112 §3.1 has no limit; 32 bytes is far above any real method. */
#define METHOD_MAX 32

static bool
is_tchar(char c)
{
    return tchar[(unsigned char) c] != 0;
}

/* Visible ASCII, 0x21-0x7E: what a request-target may hold. */
static bool
is_vchar(char c)
{
    unsigned char u = (unsigned char) c;

    return u >= 0x21 && u <= 0x7e;
}

/* RFC 9110 §5.5: field-vchar, SP, HTAB and obs-text; no other CTL. */
static bool
is_field_char(char c)
{
    unsigned char u = (unsigned char) c;

    return u >= 0x20 ? u != 0x7f : u == '\t';
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int
fail(struct wsg_http_error *err, int status, const char *why)
{
    err->status = status;
    err->why = why;
    return WSG_ERROR;
}

/* A CR inside a line is never allowed (RFC 9112 §2.2); say so by name. */
static int
bad_char(struct wsg_http_error *err, char c, const char *why)
{
    return fail(err, 400, c == '\r' ? "bare CR" : why);
}

/*
 * Finds the line at <p>: sets <*eol> to the end of its content, before
 * CRLF or a lone LF, and returns the start of the next line; NULL when no
 * LF lies before <end>.
 */
static const char *
find_eol(const char *p, const char *end, const char **eol)
{
    const char *lf = memchr(p, '\n', (size_t) (end - p));

    if (lf == NULL) {
        return NULL;
    }
    *eol = lf > p && lf[-1] == '\r' ? lf - 1 : lf;
    return lf + 1;
}

static struct wsg_str
slice(const char *p, const char *end)
{
    return (struct wsg_str){p, (size_t) (end - p)};
}

/* Sets path and query from the bytes <p>..<end> of the target. */
static void
split_query(struct wsg_http_request *r, const char *p, const char *end)
{
    const char *q = memchr(p, '?', (size_t) (end - p));

    if (q == NULL) {
        r->path = slice(p, end);
        r->query = slice(end, end);
        return;
    }
    r->path = slice(p, q);
    r->query = slice(q + 1, end);
}

/* Length of "http://" or "https://" (any case) opening <t>, or 0. */
static size_t
scheme_len(struct wsg_str t)
{
    if (t.len >= 7 && wsg_str_caseeq(slice(t.p, t.p + 7), "http://")) {
        return 7;
    }
    if (t.len >= 8 && wsg_str_caseeq(slice(t.p, t.p + 8), "https://")) {
        return 8;
    }
    return 0;
}

/* RFC 9112 §3.2.2; the authority must be a host (RFC 9110 §4.2.1, §4.2.4). */
static int
parse_absolute(struct wsg_http_request *r, struct wsg_http_error *err)
{
    const char *end = r->target.p + r->target.len;
    size_t n = scheme_len(r->target);
    const char *a = r->target.p + n, *p = a;

    if (n == 0) {
        return fail(err, 400, "invalid request target");
    }
    while (p < end && *p != '/' && *p != '?') {
        p++;
    }
    if (p == a || memchr(a, '@', (size_t) (p - a)) != NULL) {
        return fail(err, 400, "invalid authority in request target");
    }
    r->authority = slice(a, p);
    split_query(r, p, end);
    if (r->path.len == 0) {
        r->path = WSG_STR("/");
    }
    return WSG_OK;
}

/* Sorts the target into its form (RFC 9112 §3.2); authority-form is 400. */
static int
parse_target(struct wsg_http_request *r, struct wsg_http_error *err)
{
    struct wsg_str t = r->target;

    r->authority = slice(t.p, t.p);
    if (t.p[0] == '/') {
        split_query(r, t.p, t.p + t.len);
        return WSG_OK;
    }
    if (wsg_str_eq(t, "*")) {
        /* §3.2.4: the asterisk form is for a server-wide OPTIONS only */
        if (!wsg_str_eq(r->method, "OPTIONS")) {
            return fail(err, 400, "asterisk target without OPTIONS");
        }
        r->path = t;
        r->query = slice(t.p + 1, t.p + 1);
        return WSG_OK;
    }
    return parse_absolute(r, err);
}

/* RFC 9112 §2.3: "HTTP/" DIGIT "." DIGIT, case-sensitive, nothing more. */
static int
parse_version(const char *p, const char *eol, struct wsg_http_request *r,
              struct wsg_http_error *err)
{
    if (eol - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' ||
        p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9') {
        return fail(err, 400, "invalid HTTP version");
    }
    if (p[5] != '1') {
        return fail(err, 505, "unsupported HTTP version");
    }
    r->minor = p[7] - '0';
    return WSG_OK;
}

/*
 * RFC 9112 §3: method SP request-target SP HTTP-version, each separated by
 * exactly one SP (the MAY of §3 to split on any whitespace is not taken).
 */
static int
parse_request_line(const char *p, const char *eol, struct wsg_http_request *r,
                   struct wsg_http_error *err)
{
    const char *m = p, *t;

    while (p < eol && is_tchar(*p)) {
        p++;
    }
    if (p == eol || *p != ' ' || p == m) {
        return bad_char(err, p < eol ? *p : '\0', "invalid method");
    }
    if (p - m > METHOD_MAX) {
        return fail(err, 501, "method too long");
    }
    r->method = slice(m, p);
    t = ++p;
    while (p < eol && is_vchar(*p)) {
        p++;
    }
    if (p == eol && p > t) {
        return fail(err, 400, "no HTTP version");
    }
    if (p == eol || *p != ' ' || p == t) {
        return bad_char(err, p < eol ? *p : '\0', "invalid request target");
    }
    r->target = slice(t, p);
    if (parse_target(r, err) != WSG_OK) {
        return WSG_ERROR;
    }
    return parse_version(p + 1, eol, r, err);
}

/* RFC 9112 §5: field-name ":" OWS field-value OWS, on a non-empty line. */
static int
parse_header(const char *p, const char *eol, struct wsg_http_header *h,
             struct wsg_http_error *err)
{
    const char *name = p, *v;

    /* §5.2 lets a server refuse obs-fold rather than unfold it */
    if (is_blank(*p)) {
        return fail(err, 400, "obs-fold or whitespace before header");
    }
    while (p < eol && is_tchar(*p)) {
        p++;
    }
    if (p < eol && is_blank(*p)) {
        /* §5.1: MUST be refused, else it smuggles a different name */
        return fail(err, 400, "whitespace in header name");
    }
    if (p == eol || *p != ':' || p == name) {
        return bad_char(err, p < eol ? *p : '\0', "invalid header name");
    }
    h->name = slice(name, p);
    p++;
    while (p < eol && is_blank(*p)) {
        p++;
    }
    for (v = p; p < eol; p++) {
        if (!is_field_char(*p)) {
            return bad_char(err, *p, "invalid header value");
        }
    }
    while (eol > v && is_blank(eol[-1])) {
        eol--;
    }
    h->value = slice(v, eol);
    return WSG_OK;
}

/* The head is cut short: wait for more, or refuse if the window is full. */
static int
incomplete(bool full, int status, const char *why, struct wsg_http_error *err)
{
    return full ? fail(err, status, why) : WSG_AGAIN;
}

int
wsg_http_parse_request(const char *buf, size_t len,
                       const struct wsg_http_limits *limits,
                       struct wsg_http_request *r, struct wsg_http_error *err)
{
    /* the result is an int, so no head may be longer than INT_MAX */
    size_t max = limits->max_head < INT_MAX ? limits->max_head : INT_MAX;
    size_t max_headers = limits->max_headers < WSG_HTTP_MAX_HEADERS
                             ? limits->max_headers
                             : WSG_HTTP_MAX_HEADERS;
    const char *p = buf, *end = buf + (len < max ? len : max), *eol, *next;

    /* §2.2: a client may send CRLF after a previous body; skip those */
    while ((next = find_eol(p, end, &eol)) != NULL && eol == p) {
        p = next;
    }
    if (next == NULL) {
        return incomplete(len > max, 414, "request line too long", err);
    }
    if (parse_request_line(p, eol, r, err) != WSG_OK) {
        return WSG_ERROR;
    }
    r->nheaders = 0;
    for (p = next; (next = find_eol(p, end, &eol)) != NULL; p = next) {
        if (eol == p) {
            return (int) (next - buf);
        }
        if (r->nheaders == max_headers) {
            return fail(err, 431, "too many headers");
        }
        if (parse_header(p, eol, &r->headers[r->nheaders], err) != WSG_OK) {
            return WSG_ERROR;
        }
        r->nheaders++;
    }
    return incomplete(len > max, 431, "request head too large", err);
}

const struct wsg_http_header *
wsg_http_find_header(const struct wsg_http_request *r, const char *name,
                     size_t *from)
{
    for (size_t i = from != NULL ? *from : 0; i < r->nheaders; i++) {
        if (wsg_str_caseeq(r->headers[i].name, name)) {
            if (from != NULL) {
                *from = i + 1;
            }
            return &r->headers[i];
        }
    }
    if (from != NULL) {
        *from = r->nheaders;
    }
    return NULL;
}

bool
wsg_http_list_has(struct wsg_str value, const char *token)
{
    const char *p = value.p, *end;

    /* an empty slice may carry a NULL pointer, where even +0 is undefined */
    if (value.len == 0) {
        return false;
    }
    end = p + value.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t) (end - p));
        const char *e = comma != NULL ? comma : end;

        while (p < e && is_blank(*p)) {
            p++;
        }
        while (e > p && is_blank(e[-1])) {
            e--;
        }
        /* "a, ,b" has an empty item (§5.6.1 allows them); it holds nothing */
        if (e > p && wsg_str_caseeq(slice(p, e), token)) {
            return true;
        }
        p = comma != NULL ? comma + 1 : end;
    }
    return false;
}
