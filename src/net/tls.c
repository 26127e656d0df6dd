/*
 * TLS contexts and connections. Contexts are built while the configuration
 * loads (in the master), so certificate errors are configuration errors
 * with the file named, a reload picks up renewed certificates, and every
 * worker inherits the same session ticket keys.
 */
#include "config.h"

#include "net/tls.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/cycle.h"
#include "core/log.h"
#include "http/http_conf.h"
#include "http/http_request.h"

/* The index of the listen address in each SSL's ex_data, for SNI. */
static int addr_index = -1;

const char *
wsg_tls_set_protocols(struct wsg_conf *cf, const struct wsg_directive *d,
                      void *conf)
{
    struct wsg_http_srv_conf *scf = conf;

    (void) d;
    if (scf->ssl_protocols != WSG_CONF_UNSET) {
        return "is duplicate";
    }
    scf->ssl_protocols = 0;
    for (unsigned i = 1; i < cf->nargs; i++) {
        if (wsg_str_eq(cf->args[i], "TLSv1.2")) {
            scf->ssl_protocols |= WSG_TLS_V1_2;
        } else if (wsg_str_eq(cf->args[i], "TLSv1.3")) {
            scf->ssl_protocols |= WSG_TLS_V1_3;
        } else {
            return wsg_conf_phrase(cf,
                                   "has an unsupported protocol \"%s\", "
                                   "expecting TLSv1.2 or TLSv1.3",
                                   cf->args[i].p);
        }
    }
    return NULL;
}

const char *
wsg_tls_errors(struct bufferevent *bev, char *buf, size_t len)
{
    unsigned long e;
    size_t n = 0;

    buf[0] = '\0';
    while ((e = bev ? bufferevent_get_openssl_error(bev) : ERR_get_error())) {
        char one[256];
        if (ERR_GET_LIB(e) == 0) {
            /* libevent's own marker, not an OpenSSL reason */
            continue;
        }
        ERR_error_string_n(e, one, sizeof(one));
        int k = snprintf(buf + n, len - n, "%s%s", n ? "; " : "", one);
        if (k < 0 || (size_t) k >= len - n) {
            break;
        }
        n += (size_t) k;
    }
    if (bev != NULL) {
        /* errors OpenSSL queued outside the bufferevent's bookkeeping */
        while ((e = ERR_get_error()) != 0 && n + 3 < len) {
            char one[256];
            ERR_error_string_n(e, one, sizeof(one));
            int k = snprintf(buf + n, len - n, "%s%s", n ? "; " : "", one);
            n += k > 0 && (size_t) k < len - n ? (size_t) k : 0;
        }
    }
    return buf;
}

static void
ctx_free(void *data)
{
    SSL_CTX_free(data);
}

/* SNI: move the connection to the context of the server it names. */
static int
on_servername(SSL *ssl, int *alert, void *arg)
{
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const struct wsg_http_addr *addr = SSL_get_ex_data(ssl, addr_index);

    (void) alert;
    (void) arg;
    if (name == NULL || addr == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    struct wsg_str host = {name, strlen(name)};
    const struct wsg_http_srv_conf *scf = wsg_http_find_server(addr, host);
    if (scf->ssl_ctx != NULL && scf->ssl_ctx != SSL_get_SSL_CTX(ssl)) {
        SSL_set_SSL_CTX(ssl, scf->ssl_ctx);
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: this endpoint speaks HTTP/1.1 only (WebSocket needs it). */
static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
        const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *sel;

    (void) ssl;
    (void) arg;
    if (SSL_select_next_proto(&sel, outlen, http11, sizeof(http11) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED) {
        /* no overlap (h2 only): go on without ALPN rather than fail */
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static const char *
openssl_phrase(struct wsg_conf *cf, const char *what, const char *path)
{
    char errs[512];

    return wsg_conf_phrase(cf, "cannot load %s \"%s\": %s", what, path,
                           wsg_tls_errors(NULL, errs, sizeof(errs)));
}

static const char *
configure_ctx(struct wsg_conf *cf, struct wsg_http_srv_conf *scf, SSL_CTX *ctx)
{
    int protos = scf->ssl_protocols;

    SSL_CTX_set_min_proto_version(
        ctx, (protos & WSG_TLS_V1_2) ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(
        ctx, (protos & WSG_TLS_V1_3) ? TLS1_3_VERSION : TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, scf->ssl_ciphers) != 1) {
        char errs[512];
        return wsg_conf_phrase(cf, "invalid \"ssl_ciphers\" \"%s\": %s",
                               scf->ssl_ciphers,
                               wsg_tls_errors(NULL, errs, sizeof(errs)));
    }
    /* idle connections give their read and write buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!scf->ssl_session_tickets) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    return NULL;
}

const char *
wsg_tls_init_server(struct wsg_conf *cf, struct wsg_http_srv_conf *scf)
{
    if (addr_index == -1) {
        addr_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    if (scf->ssl_certificate == NULL) {
        return scf->ssl_certificate_key == NULL
                   ? NULL
                   : "\"ssl_certificate_key\" is given without "
                     "\"ssl_certificate\"";
    }
    if (scf->ssl_certificate_key == NULL) {
        return "\"ssl_certificate\" is given without \"ssl_certificate_key\"";
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        return openssl_phrase(cf, "TLS context for", scf->ssl_certificate);
    }
    wsg_cycle_add_cleanup(cf->cycle, ctx_free, ctx);
    if (SSL_CTX_use_certificate_chain_file(ctx, scf->ssl_certificate) != 1) {
        return openssl_phrase(cf, "certificate", scf->ssl_certificate);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, scf->ssl_certificate_key,
                                    SSL_FILETYPE_PEM) != 1) {
        return openssl_phrase(cf, "certificate key", scf->ssl_certificate_key);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        return wsg_conf_phrase(cf,
                               "certificate key \"%s\" does not match "
                               "certificate \"%s\"",
                               scf->ssl_certificate_key, scf->ssl_certificate);
    }
    const char *rv = configure_ctx(cf, scf, ctx);
    if (rv == NULL) {
        scf->ssl_ctx = ctx;
    }
    return rv;
}

static SSL *
ssl_new(const struct wsg_http_addr *addr, const struct wsg_log *log)
{
    ERR_clear_error();
    SSL *ssl = SSL_new(addr->default_server->ssl_ctx);
    if (ssl == NULL) {
        char errs[512];
        wsg_log(WSG_LOG_ALERT, log, 0, "SSL_new() failed: %s",
                wsg_tls_errors(NULL, errs, sizeof(errs)));
        return NULL;
    }
    SSL_set_ex_data(ssl, addr_index, (void *) addr);
    return ssl;
}

struct bufferevent *
wsg_tls_bev_new(struct event_base *base, int fd,
                const struct wsg_http_addr *addr, const struct wsg_log *log)
{
    SSL *ssl = ssl_new(addr, log);
    if (ssl == NULL) {
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        wsg_log(WSG_LOG_ALERT, log, 0,
                "bufferevent_openssl_socket_new() "
                "failed");
        return NULL;
    }
    /* a peer that drops TCP without close_notify is an EOF, not an error */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}
