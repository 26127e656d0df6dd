/*
 * The HTTP/1.1 phase of a connection: one request head, read under an
 * absolute deadline (a byte every few seconds does not keep a slowloris
 * client alive) and a size cap, then a response or the switch to
 * WebSocket. Bytes after the head stay in the input buffer: a client may
 * send its first frames right behind the handshake.
 */
#include "config.h"

#include "http/http_request.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/core.h"
#include "http/http_conf.h"
#include "http/http_parse.h"
#include "net/conn.h"
#include "net/tls.h"
#include "process/worker.h"
#include "upstream/upstream.h"
#include "upstream/upstream_conf.h"
#include "ws/session.h"
#include "ws/ws_conf.h"
#include "ws/ws_handshake.h"

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 300 ? "OK" : "Error";
    }
}

/* Queues a complete response; the connection closes once it is sent. */
void
wsg_http_respond(struct wsg_conn *c, int status, const char *ctype,
                 const char *extra, struct wsg_str body)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t before = evbuffer_get_length(out);

    c->status = status;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Server: wsgate\r\n"
                        "Content-Type: %s\r\n"
                        "Content-Length: %zu\r\n"
                        "%s"
                        "Connection: close\r\n\r\n",
                        status, reason(status), ctype, body.len, extra);
    evbuffer_add(out, body.p, body.len);
    c->bytes_out += evbuffer_get_length(out) - before;
    wsg_conn_close_after_flush(c, "sending response to client");
}

static void
respond(struct wsg_conn *c, int status, const char *extra, struct wsg_str body)
{
    wsg_http_respond(c, status, "text/plain", extra, body);
}

void
wsg_http_respond_error(struct wsg_conn *c, int status, const char *extra)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));
    struct wsg_str b = {body, n > 0 ? (size_t) n : 0};

    respond(c, status, extra, b);
}

static void
on_header_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct wsg_conn *c = arg;

    (void) fd;
    (void) what;
    wsg_log(WSG_LOG_INFO, &c->log, 0, "client timed out");
    /* no 408: a client this slow is most likely not listening */
    wsg_conn_free(c);
}

void
wsg_http_request_start(struct wsg_conn *c)
{
    const struct wsg_http_srv_conf *scf = c->addr->default_server;
    uint64_t ms = scf->header_timeout_ms;
    struct timeval tv = {(time_t) (ms / 1000),
                         (suseconds_t) ((ms % 1000) * 1000)};

    c->log.action = "reading client request";
    evtimer_assign(&c->timer, c->w->base, on_header_timeout, c);
    /* one deadline covers TLS and the request head */
    evtimer_add(&c->timer, &tv);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    /* never read more than a head can be, plus one byte to tell */
    bufferevent_set_max_single_read(c->bev, (size_t) scf->max_header_size + 1);
    bufferevent_enable(c->bev, EV_READ);
}

static bool
name_matches(struct wsg_str name, struct wsg_str host)
{
    if (name.len > 2 && name.p[0] == '*' && name.p[1] == '.') {
        /* "*.example.com": any subdomain, not the bare domain */
        size_t n = name.len - 1;
        return host.len > n &&
               wsg_str_caseeq((struct wsg_str){host.p + host.len - n, n},
                              name.p + 1);
    }
    if (name.len > 2 && name.p[name.len - 1] == '*' &&
        name.p[name.len - 2] == '.') {
        size_t n = name.len - 1;
        return host.len > n && strncasecmp(host.p, name.p, n) == 0;
    }
    return wsg_str_caseeq(host, name.p);
}

const struct wsg_http_srv_conf *
wsg_http_find_server(const struct wsg_http_addr *addr, struct wsg_str host)
{
    const struct wsg_http_srv_conf *best = NULL;
    size_t best_rank = 0;

    /* drop ":port" (not inside an IPv6 literal) and a trailing dot */
    const char *colon = memchr(host.p, ':', host.len);
    if (colon != NULL && host.p[0] != '[') {
        host.len = (size_t) (colon - host.p);
    }
    if (host.len > 0 && host.p[host.len - 1] == '.') {
        host.len--;
    }
    for (size_t i = 0; i < addr->nservers; i++) {
        const struct wsg_http_srv_conf *s = addr->servers[i];
        for (size_t k = 0; k < s->nnames; k++) {
            struct wsg_str n = s->names[k];
            if (!name_matches(n, host)) {
                continue;
            }
            /* exact beats wildcards; a longer wildcard beats a shorter */
            bool wild = n.p[0] == '*' || n.p[n.len - 1] == '*';
            size_t rank = wild ? n.len : SIZE_MAX;
            if (rank > best_rank) {
                best = s;
                best_rank = rank;
            }
        }
    }
    return best != NULL ? best : addr->default_server;
}

const struct wsg_http_loc_conf *
wsg_http_find_location(const struct wsg_http_srv_conf *scf, struct wsg_str path)
{
    const struct wsg_http_loc_conf *best = NULL;
    size_t best_len = 0;

    for (size_t i = 0; i < scf->nlocations; i++) {
        const struct wsg_http_loc_conf *l = scf->locations[i];
        size_t n = strlen(l->name);
        if (l->exact) {
            if (n == path.len && memcmp(l->name, path.p, n) == 0) {
                return l;
            }
        } else if (n <= path.len && memcmp(l->name, path.p, n) == 0 &&
                   (best == NULL || n > best_len)) {
            best = l;
            best_len = n;
        }
    }
    return best;
}

static void
upgrade(struct wsg_conn *c, const struct wsg_http_request *r,
        const struct wsg_ws_loc_conf *wcf, size_t head_len)
{
    struct wsg_ws_handshake h;
    const char *why = "refused by a module";
    int status = wsg_ws_handshake_check(r, wcf, &h, &why);

    if (status == 0) {
        /* modules (auth, limits) see the request before any 101 */
        status = wsg_session_handshake(wsg_session_new(c, wcf), r);
    }

    if (status != 0) {
        wsg_log(WSG_LOG_INFO, &c->log, 0, "handshake refused with %d: %s",
                status, why);
        evbuffer_drain(bufferevent_get_input(c->bev), head_len);
        wsg_http_respond_error(c, status,
                               status == 426 ? "Upgrade: websocket\r\n"
                                               "Sec-WebSocket-Version: 13\r\n"
                                             : "");
        return;
    }
    evtimer_del(&c->timer);
    const struct wsg_upstream_loc_conf *ulcf =
        wsg_upstream_loc_conf(c->loc_conf);
    if (ulcf->upstream != NULL) {
        /* it copies what it needs of the head, which goes right after */
        wsg_upstream_start(c, wcf, ulcf, &h, r);
        evbuffer_drain(bufferevent_get_input(c->bev), head_len);
        return;
    }
    char resp[1024];
    size_t n = wsg_ws_handshake_response(&h, resp, sizeof(resp));
    /* the response quotes the key from the head: write it, then drain */
    evbuffer_add(bufferevent_get_output(c->bev), resp, n);
    evbuffer_drain(bufferevent_get_input(c->bev), head_len);
    c->bytes_out += n;
    c->status = 101;
    evtimer_del(&c->timer);
    wsg_session_start(c, wcf, h.deflate ? &h.deflate_params : NULL, NULL, NULL);
}

/* Answers the parsed request <r> whose head is <head_len> bytes. */
static void
serve(struct wsg_conn *c, const struct wsg_http_request *r, size_t head_len)
{
    size_t from = 0;
    const struct wsg_http_header *host = wsg_http_find_header(r, "Host", &from);
    struct wsg_str name = {"", 0};
    /* an absolute-form target's authority overrides Host (RFC 9112 3.2.2) */
    if (r->authority.len > 0) {
        name = r->authority;
    } else if (host != NULL) {
        name = host->value;
    }
    const struct wsg_http_srv_conf *scf = wsg_http_find_server(c->addr, name);
    const struct wsg_http_loc_conf *lcf = wsg_http_find_location(scf, r->path);

    /* one block: method, NUL, path, NUL */
    c->method = wsg_malloc(r->method.len + r->target.len + 2);
    memcpy(c->method, r->method.p, r->method.len);
    c->method[r->method.len] = '\0';
    c->path = c->method + r->method.len + 1;
    memcpy(c->path, r->target.p, r->target.len);
    c->path[r->target.len] = '\0';
    c->loc_conf =
        lcf ? lcf->loc_conf : wsg_http_loc_conf(scf->ctx->loc_conf)->loc_conf;
    const struct wsg_http_loc_conf *eff = wsg_http_loc_conf(c->loc_conf);
    if (eff->return_status != WSG_CONF_UNSET_I64) {
        evbuffer_drain(bufferevent_get_input(c->bev), head_len);
        respond(c, (int) eff->return_status, "", eff->return_text);
        return;
    }
    const struct wsg_ws_loc_conf *wcf = wsg_ws_loc_conf(c->loc_conf);
    const struct wsg_upstream_loc_conf *ulcf =
        wsg_upstream_loc_conf(c->loc_conf);
    bool endpoint = wsg_ws_is_endpoint(wcf) || ulcf->upstream != NULL;
    if (lcf != NULL && !endpoint &&
        wsg_session_http(wsg_session_new(c, wcf), r)) {
        /* a module answered (status, metrics); its response is queued */
        evbuffer_drain(bufferevent_get_input(c->bev), head_len);
        return;
    }
    if (lcf == NULL || !endpoint) {
        evbuffer_drain(bufferevent_get_input(c->bev), head_len);
        wsg_http_respond_error(c, 404, "");
        return;
    }
    upgrade(c, r, wcf, head_len);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct wsg_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    const struct wsg_http_srv_conf *scf = c->addr->default_server;
    struct wsg_http_limits limits = {(size_t) scf->max_header_size,
                                     (size_t) scf->max_headers};
    struct wsg_http_request r;
    struct wsg_http_error err;
    size_t len = evbuffer_get_length(in);

    if (len > (size_t) scf->max_header_size + 1) {
        len = (size_t) scf->max_header_size + 1;
    }
    const char *buf = (const char *) evbuffer_pullup(in, (ev_ssize_t) len);
    int n = wsg_http_parse_request(buf, len, &limits, &r, &err);
    if (n == WSG_AGAIN) {
        return;
    }
    if (n < 0) {
        wsg_log(WSG_LOG_INFO, &c->log, 0, "client sent invalid request: %s",
                err.why);
        c->bytes_in += len;
        evbuffer_drain(in, len);
        wsg_http_respond_error(c, err.status, "");
        return;
    }
    c->bytes_in += (size_t) n;
    /* r's slices point into <in>: everything below drains only at the end */
    serve(c, &r, (size_t) n);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct wsg_conn *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        /* the TLS handshake is done; the request head comes next */
        return;
    }
    if (what & BEV_EVENT_EOF) {
        wsg_log(WSG_LOG_INFO, &c->log, 0, "client closed connection");
    } else if ((what & BEV_EVENT_ERROR) && c->addr->ssl) {
        char errs[512];
        wsg_log(WSG_LOG_INFO, &c->log, 0, "TLS error: %s",
                wsg_tls_errors(bev, errs, sizeof(errs)));
    } else if (what & BEV_EVENT_ERROR) {
        wsg_log(WSG_LOG_INFO, &c->log, EVUTIL_SOCKET_ERROR(), "recv() failed");
    }
    wsg_conn_free(c);
}
