/*
 * Client connections. Until the WebSocket layer takes over a connection,
 * it reads one HTTP/1.1 request head (bounded in size and time) and
 * answers it: /healthz gets 200, any other GET 426 (this port speaks
 * WebSocket), other methods 405, anything malformed 400. The response
 * carries "Connection: close"; the connection is freed once it is flushed.
 */
#include "config.h"

#include "net/conn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/core.h"
#include "core/cycle.h"
#include "http/access_log.h"
#include "http/http_conf.h"
#include "process/process.h"
#include "process/worker.h"

/* Until the request parser of the WebSocket layer brings its directives. */
#define HEADER_MAX       8192
#define HEADER_TIMEOUT_S 60
#define SEND_TIMEOUT_S   60

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static size_t
log_context(const struct wsg_log *log, char *buf, size_t len)
{
    const struct wsg_conn *c = log->data;
    int n = snprintf(buf, len, ", client: %s, server: %s", c->peer,
                     c->addr->opt.text);

    return n < 0 ? 0 : ((size_t) n >= len ? len - 1 : (size_t) n);
}

void
wsg_conn_accept(struct wsg_worker *w, int fd, const struct sockaddr *peer,
                const struct wsg_http_addr *addr)
{
    struct wsg_conn *c = wsg_calloc(1, sizeof(*c));
    int one = 1;

    c->w = w;
    c->id = ++w->next_conn_id;
    c->addr = addr;
    wsg_listen_addr_text(peer, c->peer, sizeof(c->peer));
    c->log = w->cycle->log;
    c->log.conn_id = c->id;
    c->log.handler = log_context;
    c->log.data = c;
    gettimeofday(&c->start, NULL);
    c->start_ms = wsg_process_now_ms();

    if (peer->sa_family != AF_UNIX &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1) {
        wsg_log(WSG_LOG_INFO, &c->log, errno, "setsockopt(TCP_NODELAY) failed");
    }
    c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        wsg_log(WSG_LOG_ALERT, &w->cycle->log, 0,
                "bufferevent_socket_new() failed");
        close(fd);
        free(c);
        return;
    }
    TAILQ_INSERT_TAIL(&w->conns, c, link);
    w->nconns++;

    struct timeval rt = {HEADER_TIMEOUT_S, 0}, wt = {SEND_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->bev, &rt, &wt);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    /* a request head larger than this is refused, so never read more */
    bufferevent_setwatermark(c->bev, EV_READ, 0, HEADER_MAX + 1);
    bufferevent_enable(c->bev, EV_READ);
    c->log.action = "reading client request";
    wsg_log(WSG_LOG_DEBUG, &c->log, 0, "accepted");
}

void
wsg_conn_free(struct wsg_conn *c)
{
    struct wsg_worker *w = c->w;

    wsg_access_log_write(c);
    TAILQ_REMOVE(&w->conns, c, link);
    w->nconns--;
    bufferevent_free(c->bev);
    c->bev = NULL;
    free(c->method);
    free(c->path);
    free(c);
    wsg_worker_conn_gone(w);
}

void
wsg_conn_shutdown(struct wsg_conn *c)
{
    /* nothing idle to close yet: every connection here is mid-request */
    (void) c;
}

static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Error";
    }
}

/* Queues a complete response and arranges the close once it is sent. */
static void
respond(struct wsg_conn *c, int status, const char *extra, const char *body)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t before = evbuffer_get_length(out);

    c->status = status;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Server: wsgate\r\n"
                        "Content-Type: text/plain\r\n"
                        "Content-Length: %zu\r\n"
                        "%s"
                        "Connection: close\r\n\r\n%s",
                        status, reason(status), strlen(body), extra, body);
    c->bytes_out += evbuffer_get_length(out) - before;
    c->closing = true;
    c->log.action = "sending response to client";
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_WRITE);
}

/* Answers the request line <line>/<len> (no CRLF). */
static void
handle_request(struct wsg_conn *c, const char *line, size_t len)
{
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 =
        sp1 ? memchr(sp1 + 1, ' ', len - (size_t) (sp1 + 1 - line)) : NULL;

    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 ||
        (size_t) (line + len - (sp2 + 1)) != 8 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1[1] != '/') {
        respond(c, 400, "", "bad request\n");
        return;
    }
    c->method = wsg_strndup(line, (size_t) (sp1 - line));
    c->path = wsg_strndup(sp1 + 1, (size_t) (sp2 - sp1 - 1));
    if (strcmp(c->method, "GET") != 0) {
        respond(c, 405, "Allow: GET\r\n", "method not allowed\n");
    } else if (strcmp(c->path, "/healthz") == 0) {
        respond(c, 200, "", "ok\n");
    } else {
        respond(c, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                "this endpoint speaks WebSocket\n");
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct wsg_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);

    if (end.pos == -1) {
        if (len > HEADER_MAX) {
            c->bytes_in += len;
            evbuffer_drain(in, len);
            respond(c, 431, "", "request header too large\n");
        }
        return;
    }
    struct evbuffer_ptr eol =
        evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF_STRICT);
    size_t line_len = (size_t) eol.pos;
    const char *line = (const char *) evbuffer_pullup(in, (ssize_t) line_len);
    c->bytes_in += (size_t) end.pos + 4;
    handle_request(c, line, line_len);
    /* the request head is consumed whole; the pullup pointer dies here */
    evbuffer_drain(in, (size_t) end.pos + 4);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    struct wsg_conn *c = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        wsg_conn_free(c);
    }
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct wsg_conn *c = arg;

    (void) bev;
    if (what & BEV_EVENT_TIMEOUT) {
        wsg_log(WSG_LOG_INFO, &c->log, 0, "client timed out");
    } else if (what & BEV_EVENT_EOF) {
        wsg_log(WSG_LOG_INFO, &c->log, 0, "client closed connection");
    } else if (what & BEV_EVENT_ERROR) {
        wsg_log(WSG_LOG_INFO, &c->log, EVUTIL_SOCKET_ERROR(),
                "connection error");
    }
    wsg_conn_free(c);
}
