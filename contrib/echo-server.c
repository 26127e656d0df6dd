/*
 * A minimal TCP echo server for smoke tests and benchmarks: every byte read
 * on a connection is written back on it, in order. The mux protocol is
 * symmetric (docs/backend-protocol.md), so this is also a valid mux echo
 * backend. Invariant: a connection's unsent data never grows much past
 * ECHO_PENDING_MAX; beyond it the connection is not read until its output
 * drains below ECHO_RESUME_BELOW.
 *
 *   echo-server -l HOST:PORT
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

/* Unsent bytes past which a connection is no longer read. One read adds at
 * most libevent's single-read cap (16 KiB) on top. */
#define ECHO_PENDING_MAX     (1024 * 1024)
/* Reading resumes once the output has fallen to this, not to zero, so the
 * socket never runs dry while the peer still has data for us. */
#define ECHO_RESUME_BELOW    (256 * 1024)
#define ECHO_BACKLOG         1024
/* Pause after an accept() failure such as EMFILE: the listening socket
 * stays readable, and retrying at once would spin. */
#define ECHO_ACCEPT_RETRY_MS 100

struct echo_conn {
    struct bufferevent *bev; /* owned; closes the socket when freed */
    struct echo_server *server;
    struct echo_conn *prev; /* in server->conns */
    struct echo_conn *next;
    bool eof; /* the peer shut its side: close once output is flushed */
};

struct echo_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *retry;     /* re-enables the listener after a failure */
    struct echo_conn *conns; /* every open connection, freed at exit */
};

static void echo_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
echo_log(const char *fmt, ...)
{
    va_list ap;

    fputs("echo-server: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
echo_conn_free(struct echo_conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->server->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    bufferevent_free(c->bev);
    free(c);
}

static void
echo_read_cb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *out = bufferevent_get_output(bev);

    (void) arg;
    /* moves the chains, copies nothing */
    evbuffer_add_buffer(out, bufferevent_get_input(bev));
    if (evbuffer_get_length(out) > ECHO_PENDING_MAX) {
        bufferevent_disable(bev, EV_READ);
    }
}

/* Runs when the output has drained to the write low watermark:
 * ECHO_RESUME_BELOW while the connection is open, 0 after the peer's EOF. */
static void
echo_write_cb(struct bufferevent *bev, void *arg)
{
    struct echo_conn *c = arg;

    if (c->eof) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            echo_conn_free(c);
        }
        return;
    }
    if (!(bufferevent_get_enabled(bev) & EV_READ)) {
        bufferevent_enable(bev, EV_READ);
    }
}

static void
echo_event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct echo_conn *c = arg;

    if (events & BEV_EVENT_ERROR) {
        echo_conn_free(c);
        return;
    }
    if (events & BEV_EVENT_EOF) {
        /* everything read before the EOF is already in the output: send
         * it all, then close */
        c->eof = true;
        bufferevent_disable(bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            echo_conn_free(c);
            return;
        }
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    }
}

static void
echo_accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
               struct sockaddr *addr, int socklen, void *arg)
{
    struct echo_server *server = arg;
    int one = 1;

    (void) listener;
    (void) addr;
    (void) socklen;
    /* small messages go out at once: this server is timed by benchmarks */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1) {
        echo_log("setsockopt(TCP_NODELAY) failed (%d: %s)", errno,
                 strerror(errno));
    }
    struct bufferevent *bev =
        bufferevent_socket_new(server->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        echo_log("bufferevent_socket_new() failed");
        evutil_closesocket(fd);
        return;
    }
    struct echo_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        echo_log("out of memory for a connection");
        bufferevent_free(bev);
        return;
    }
    c->bev = bev;
    c->server = server;
    c->next = server->conns;
    if (c->next != NULL) {
        c->next->prev = c;
    }
    server->conns = c;
    bufferevent_setcb(bev, echo_read_cb, echo_write_cb, echo_event_cb, c);
    bufferevent_setwatermark(bev, EV_WRITE, ECHO_RESUME_BELOW, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
echo_retry_cb(evutil_socket_t fd, short events, void *arg)
{
    struct echo_server *server = arg;

    (void) fd;
    (void) events;
    evconnlistener_enable(server->listener);
}

static void
echo_accept_error_cb(struct evconnlistener *listener, void *arg)
{
    struct echo_server *server = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval delay = {0, ECHO_ACCEPT_RETRY_MS * 1000};

    echo_log("accept() failed (%d: %s), retrying in %d ms", err,
             evutil_socket_error_to_string(err), ECHO_ACCEPT_RETRY_MS);
    evconnlistener_disable(listener);
    evtimer_add(server->retry, &delay);
}

static void
echo_signal_cb(evutil_socket_t signo, short events, void *arg)
{
    struct echo_server *server = arg;

    (void) signo;
    (void) events;
    event_base_loopexit(server->base, NULL);
}

/* Lets the process hold as many connections as the hard limit allows. */
static void
echo_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            echo_log("setrlimit(RLIMIT_NOFILE) failed (%d: %s)", errno,
                     strerror(errno));
        }
    }
}

/* Prints the address the listener is bound to (the real port when the
 * command line asked for port 0). */
static void
echo_log_listening(struct evconnlistener *listener)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    evutil_socket_t fd = evconnlistener_get_fd(listener);

    if (getsockname(fd, (struct sockaddr *) &ss, &len) == -1) {
        echo_log("getsockname() failed (%d: %s)", errno, strerror(errno));
        return;
    }
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
        evutil_inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
        evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        port = ntohs(sin6->sin6_port);
    }
    echo_log("listening on %s%s%s:%d", ss.ss_family == AF_INET6 ? "[" : "",
             host, ss.ss_family == AF_INET6 ? "]" : "", port);
}

static int
echo_usage(const char *prog)
{
    fprintf(stderr, "usage: %s -l HOST:PORT\n", prog);
    return 2;
}

static void
echo_server_free(struct echo_server *server)
{
    while (server->conns != NULL) {
        echo_conn_free(server->conns);
    }
    if (server->listener != NULL) {
        evconnlistener_free(server->listener);
    }
    if (server->retry != NULL) {
        event_free(server->retry);
    }
    if (server->base != NULL) {
        event_base_free(server->base);
    }
}

int
main(int argc, char **argv)
{
    const char *listen_on = NULL;
    int opt;

    while ((opt = getopt(argc, argv, "l:h")) != -1) {
        if (opt != 'l') {
            return echo_usage(argv[0]);
        }
        listen_on = optarg;
    }
    if (listen_on == NULL || optind != argc) {
        return echo_usage(argv[0]);
    }

    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(listen_on, (struct sockaddr *) &ss,
                                   &sslen) != 0) {
        echo_log("invalid address \"%s\", expected HOST:PORT", listen_on);
        return 2;
    }

    /* a peer that resets while we write must not kill the process */
    signal(SIGPIPE, SIG_IGN);
    echo_raise_nofile();

    struct echo_server server = {0};
    struct event *sigint = NULL;
    struct event *sigterm = NULL;
    int status = 1;

    server.base = event_base_new();
    if (server.base == NULL) {
        echo_log("event_base_new() failed");
        goto fail;
    }
    server.listener = evconnlistener_new_bind(
        server.base, echo_accept_cb, &server,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        ECHO_BACKLOG, (struct sockaddr *) &ss, sslen);
    if (server.listener == NULL) {
        int err = EVUTIL_SOCKET_ERROR();
        echo_log("cannot listen on %s (%d: %s)", listen_on, err,
                 evutil_socket_error_to_string(err));
        goto fail;
    }
    evconnlistener_set_error_cb(server.listener, echo_accept_error_cb);
    server.retry = evtimer_new(server.base, echo_retry_cb, &server);
    sigint = evsignal_new(server.base, SIGINT, echo_signal_cb, &server);
    sigterm = evsignal_new(server.base, SIGTERM, echo_signal_cb, &server);
    if (server.retry == NULL || sigint == NULL || sigterm == NULL ||
        evsignal_add(sigint, NULL) != 0 || evsignal_add(sigterm, NULL) != 0) {
        echo_log("cannot create events");
        goto fail;
    }

    echo_log_listening(server.listener);
    if (event_base_dispatch(server.base) == -1) {
        echo_log("event_base_dispatch() failed");
        goto fail;
    }
    status = 0;

fail:
    if (sigterm != NULL) {
        event_free(sigterm);
    }
    if (sigint != NULL) {
        event_free(sigint);
    }
    echo_server_free(&server);
    return status;
}
