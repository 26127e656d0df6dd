/*
 * TLS termination with OpenSSL 3: one SSL_CTX per server that has a
 * certificate, chosen per connection by SNI among the servers of the
 * listen address; ALPN answers http/1.1; session tickets resume across
 * workers (the ticket keys are made once, before the workers fork).
 */
#ifndef WSG_TLS_H
#define WSG_TLS_H

#include "core/conf.h"

struct bufferevent;
struct event_base;
struct wsg_http_addr;
struct wsg_http_srv_conf;
struct wsg_log;

/* The TLS 1.2 cipher list unless ssl_ciphers says otherwise. */
#define WSG_TLS_DEFAULT_CIPHERS "HIGH:!aNULL:!MD5:!RC4:!3DES"

/* ssl_protocols bits */
#define WSG_TLS_V1_2 0x1
#define WSG_TLS_V1_3 0x2

/* The ssl_protocols directive's handler (needs its own parsing). */
const char *wsg_tls_set_protocols(struct wsg_conf *cf,
                                  const struct wsg_directive *d, void *conf);

/*
 * Builds the SSL_CTX of <scf> from its ssl_* settings, loading the
 * certificate chain and key now, so a bad file is a configuration error.
 * Returns NULL, or an error phrase naming the file and OpenSSL's reason.
 */
const char *wsg_tls_init_server(struct wsg_conf *cf,
                                struct wsg_http_srv_conf *scf);

/*
 * Wraps the accepted socket <fd> on the TLS address <addr> in an accepting
 * OpenSSL bufferevent that owns both the SSL and the fd. Returns NULL on
 * failure (logged to <log>); the caller closes <fd> then.
 */
struct bufferevent *wsg_tls_bev_new(struct event_base *base, int fd,
                                    const struct wsg_http_addr *addr,
                                    const struct wsg_log *log);

/*
 * Formats OpenSSL's errors queued on <bev> (or the thread's queue) into
 * <buf> as "reason; reason", emptying the queue. Returns <buf>.
 */
const char *wsg_tls_errors(struct bufferevent *bev, char *buf, size_t len);

#endif
