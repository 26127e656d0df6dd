/*
 * Listening sockets: address parsing, opening, and the reconcile step of a
 * reload. Reconcile is all-or-nothing: a new config whose address cannot be
 * bound leaves the running listeners exactly as they were.
 */
#include "config.h"

#include "net/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/core.h"
#include "core/log.h"
#include "core/str.h"

void
wsg_listen_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];

    /* copies, not casts: a struct sockaddr need not be aligned for the
     * wider family structs */
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof(s6));
        inet_ntop(AF_INET6, &s6.sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(s6.sin6_port));
    } else if (sa->sa_family == AF_INET) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof(s4));
        inet_ntop(AF_INET, &s4.sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(s4.sin_port));
    } else {
        snprintf(buf, len, "unix:");
    }
}

static int
parse_port(const char *s, size_t len, unsigned *port)
{
    uint64_t v;

    if (wsg_str_parse_uint(s, len, 65535, &v) != 0 || v == 0) {
        return WSG_ERROR;
    }
    *port = (unsigned) v;
    return 0;
}

static void
fill(struct wsg_listen_opt *o, const struct sockaddr *sa, socklen_t len)
{
    memset(o, 0, sizeof(*o));
    memcpy(&o->addr, sa, len);
    o->addrlen = len;
    o->backlog = -1;
    o->ipv6only = -1;
    wsg_listen_addr_text(sa, o->text, sizeof(o->text));
}

int
wsg_listen_parse_addr(const char *text, struct wsg_listen_opt *out, size_t max,
                      const char **why)
{
    const char *host = NULL, *colon;
    size_t hostlen = 0;
    unsigned port;

    if (text[0] == '[') {
        const char *rb = strchr(text, ']');
        if (rb == NULL || rb[1] != ':') {
            *why = "expecting \"[IPV6]:PORT\"";
            return WSG_ERROR;
        }
        host = text + 1;
        hostlen = (size_t) (rb - host);
        colon = rb + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon != NULL) {
            host = text;
            hostlen = (size_t) (colon - text);
        }
    }
    const char *ps = colon ? colon + 1 : text;
    if (parse_port(ps, strlen(ps), &port) != 0) {
        *why = "has an invalid port, expecting 1 to 65535";
        return WSG_ERROR;
    }

    if (host == NULL || (hostlen == 1 && host[0] == '*')) {
        struct sockaddr_in s4 = {0};
        s4.sin_family = AF_INET;
        s4.sin_port = htons((uint16_t) port);
        s4.sin_addr.s_addr = htonl(INADDR_ANY);
        fill(&out[0], (struct sockaddr *) &s4, sizeof(s4));
        return 1;
    }
    if (hostlen == 0 || hostlen >= 256) {
        *why = "has an invalid host";
        return WSG_ERROR;
    }

    char name[256];
    memcpy(name, host, hostlen);
    name[hostlen] = '\0';
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portbuf[8];
    snprintf(portbuf, sizeof(portbuf), "%u", port);
    if (getaddrinfo(name, portbuf, &hints, &res) != 0) {
        *why = "names a host that does not resolve";
        return WSG_ERROR;
    }
    int n = 0;
    bool have4 = false, have6 = false;
    for (struct addrinfo *ai = res; ai != NULL && (size_t) n < max;
         ai = ai->ai_next) {
        bool *have = ai->ai_family == AF_INET6 ? &have6 : &have4;
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || *have) {
            continue;
        }
        *have = true;
        fill(&out[n++], ai->ai_addr, ai->ai_addrlen);
    }
    freeaddrinfo(res);
    if (n == 0) {
        *why = "names a host with no IPv4 or IPv6 address";
        return WSG_ERROR;
    }
    return n;
}

int
wsg_listen_open(const struct wsg_listen_opt *opt, const struct wsg_log *log)
{
    const struct sockaddr *sa = (const struct sockaddr *) &opt->addr;
    int one = 1;
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "socket() for %s failed", opt->text);
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "setsockopt(SO_REUSEADDR) %s failed",
                opt->text);
        goto fail;
    }
    if (opt->reuseport &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "setsockopt(SO_REUSEPORT) %s failed",
                opt->text);
        goto fail;
    }
    if (sa->sa_family == AF_INET6 && opt->ipv6only != -1 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &opt->ipv6only,
                   sizeof(opt->ipv6only)) == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "setsockopt(IPV6_V6ONLY) %s failed",
                opt->text);
        goto fail;
    }
    if (bind(fd, sa, opt->addrlen) == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "bind() to %s failed", opt->text);
        goto fail;
    }
    if (listen(fd, opt->backlog) == -1) {
        wsg_log(WSG_LOG_EMERG, log, errno, "listen() to %s failed", opt->text);
        goto fail;
    }
    return fd;

fail:
    close(fd);
    return -1;
}

static bool
same_socket(const struct wsg_listen_opt *a, const struct wsg_listen_opt *b)
{
    return a->addrlen == b->addrlen &&
           memcmp(&a->addr, &b->addr, a->addrlen) == 0 &&
           a->reuseport == b->reuseport && a->ipv6only == b->ipv6only;
}

static void
close_fds(int *fds, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (fds[i] != -1) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
}

/* A listener being built: the old one it keeps (or NULL) and its fds. */
struct plan {
    struct wsg_listener *old;
    int *fds;
    size_t nfds;
    size_t kept; /* fds taken over from <old> */
};

static void
plan_undo(struct plan *plans, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        close_fds(plans[i].fds, plans[i].kept, plans[i].nfds);
        free(plans[i].fds);
        if (plans[i].old != NULL) {
            plans[i].old->used = false;
        }
    }
    free(plans);
}

int
wsg_listen_reconcile(struct wsg_listener **head,
                     const struct wsg_listen_opt *const *opts,
                     void *const *confs, size_t n, unsigned nworkers,
                     const struct wsg_log *log)
{
    struct plan *plans = wsg_calloc(n ? n : 1, sizeof(*plans));

    for (struct wsg_listener *l = *head; l != NULL; l = l->next) {
        l->used = false;
    }
    for (size_t i = 0; i < n; i++) {
        struct plan *p = &plans[i];
        for (struct wsg_listener *l = *head; l != NULL; l = l->next) {
            if (!l->used && same_socket(&l->opt, opts[i])) {
                p->old = l;
                l->used = true;
                break;
            }
        }
        /* reuseport sockets are never dropped when the worker count falls:
         * the connections queued on one would be reset; the workers left
         * serve the extra sockets instead */
        p->nfds = opts[i]->reuseport ? nworkers : 1;
        if (p->old != NULL && opts[i]->reuseport && p->old->nfds > p->nfds) {
            p->nfds = p->old->nfds;
        }
        p->fds = wsg_malloc(p->nfds * sizeof(int));
        for (size_t k = 0; k < p->nfds; k++) {
            p->fds[k] = -1;
        }
        if (p->old != NULL) {
            p->kept = p->old->nfds < p->nfds ? p->old->nfds : p->nfds;
            memcpy(p->fds, p->old->fds, p->kept * sizeof(int));
        }
        for (size_t k = p->kept; k < p->nfds; k++) {
            p->fds[k] = wsg_listen_open(opts[i], log);
            if (p->fds[k] == -1) {
                plan_undo(plans, i + 1);
                return WSG_ERROR;
            }
        }
    }

    /* commit: nothing below can fail; drop the old sockets first, before
     * the kept listeners are relinked into the new list */
    for (struct wsg_listener *l = *head, *next; l != NULL; l = next) {
        next = l->next;
        if (!l->used) {
            close_fds(l->fds, 0, l->nfds);
            free(l->fds);
            free(l);
        }
    }
    struct wsg_listener *list = NULL, **tail = &list;
    for (size_t i = 0; i < n; i++) {
        struct plan *p = &plans[i];
        struct wsg_listener *l = p->old;
        if (l == NULL) {
            l = wsg_calloc(1, sizeof(*l));
        } else {
            close_fds(l->fds, p->kept, l->nfds);
            free(l->fds);
            if (l->opt.backlog != opts[i]->backlog) {
                /* listen() again only resizes the queue of a bound socket */
                for (size_t k = 0; k < p->nfds; k++) {
                    if (listen(p->fds[k], opts[i]->backlog) == -1) {
                        wsg_log(WSG_LOG_ALERT, log, errno,
                                "listen() to %s failed", opts[i]->text);
                    }
                }
            }
        }
        l->opt = *opts[i];
        l->fds = p->fds;
        l->nfds = p->nfds;
        l->conf = confs[i];
        *tail = l;
        tail = &l->next;
    }
    for (struct wsg_listener *l = list; l != NULL; l = l->next) {
        l->used = false;
    }
    *tail = NULL;
    *head = list;
    free(plans);
    return 0;
}

void
wsg_listen_close_all(struct wsg_listener **head)
{
    struct wsg_listener *l = *head;

    while (l != NULL) {
        struct wsg_listener *next = l->next;
        close_fds(l->fds, 0, l->nfds);
        free(l->fds);
        free(l);
        l = next;
    }
    *head = NULL;
}
