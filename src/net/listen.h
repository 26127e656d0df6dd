/*
 * Listening sockets. The master owns them across reloads: a socket whose
 * address and options are unchanged is kept (same fd, no gap in service),
 * added ones are opened, removed ones closed. With reuseport each worker
 * slot gets a socket of its own, so the kernel spreads connections; a
 * reload that lowers the worker count keeps the extra sockets, which the
 * remaining workers serve (worker i takes socket k when k % workers == i).
 */
#ifndef WSG_LISTEN_H
#define WSG_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct wsg_log;

#define WSG_ADDR_TEXT_MAX 64 /* "[ipv6]:port" */

/* The socket-level options of one listen address. */
struct wsg_listen_opt {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char text[WSG_ADDR_TEXT_MAX];
    int backlog;
    int ipv6only; /* -1: system default */
    bool reuseport;
};

/* A listening socket set, owned by the master. */
struct wsg_listener {
    struct wsg_listener *next;
    struct wsg_listen_opt opt;
    int *fds; /* one, or one per worker slot with reuseport */
    size_t nfds;
    bool used;  /* mark for reconciling against a new config */
    void *conf; /* the current cycle's per-address config (borrowed) */
};

/*
 * Parses a listen address: "PORT", "*:PORT", "IPV4:PORT", "[IPV6]:PORT" or
 * "HOST:PORT" (resolved now, at config load; the first address of each
 * family is taken). Fills up to <max> entries of <out> (addr, addrlen,
 * text); the caller sets the options. Returns the count (>= 1), or
 * WSG_ERROR with a static reason in *<why>.
 */
int wsg_listen_parse_addr(const char *text, struct wsg_listen_opt *out,
                          size_t max, const char **why);

/*
 * Opens, binds and listens a non-blocking, close-on-exec socket for <opt>.
 * Returns the fd, or -1 having logged the failed call to <log>.
 */
int wsg_listen_open(const struct wsg_listen_opt *opt,
                    const struct wsg_log *log);

/*
 * Makes the list at *<head> match <opts> (<n> entries, <conf> pointers
 * beside them) for <nworkers> worker slots: keeps matching sockets
 * (re-listening with a new backlog), opens new ones and closes the rest.
 * On failure leaves *<head> as it was (closing anything it opened) and
 * returns WSG_ERROR; returns 0 on success.
 */
int wsg_listen_reconcile(struct wsg_listener **head,
                         const struct wsg_listen_opt *const *opts,
                         void *const *confs, size_t n, unsigned nworkers,
                         const struct wsg_log *log);

/* Closes every socket and frees the list. */
void wsg_listen_close_all(struct wsg_listener **head);

/* Formats <sa> as "1.2.3.4:80" or "[::1]:80" into <buf>. */
void wsg_listen_addr_text(const struct sockaddr *sa, char *buf, size_t len);

#endif
