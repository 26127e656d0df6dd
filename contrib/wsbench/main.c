/*
 * wsbench: a WebSocket (RFC 6455) load generator, in the manner of wrk and
 * h2load. Threads each run an event loop over their share of the
 * connections; main() sets them up, waits for them and prints the merged
 * report. See wsbench -h for the modes.
 */
/* config.h defines _GNU_SOURCE in the automake build; a direct build
 * passes -D_GNU_SOURCE */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "options.h"
#include "report.h"
#include "worker.h"

/* descriptors past the connections: stdio, the event bases' epoll and
 * signal fds, OpenSSL's files */
#define SPARE_FDS 64

static void
raise_nofile(unsigned conns)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < (rlim_t) conns + SPARE_FDS) {
        fprintf(stderr,
                "wsbench: warning: the open-files limit (%llu) is below "
                "%u connections plus %d\n",
                (unsigned long long) rl.rlim_cur, conns, SPARE_FDS);
    }
}

static int
make_ssl_ctx(struct wsb_config *cf)
{
    cf->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (cf->ssl_ctx == NULL) {
        goto fail;
    }
    SSL_CTX_set_min_proto_version(cf->ssl_ctx, TLS1_2_VERSION);
    if (cf->insecure) {
        SSL_CTX_set_verify(cf->ssl_ctx, SSL_VERIFY_NONE, NULL);
        return 0;
    }
    SSL_CTX_set_verify(cf->ssl_ctx, SSL_VERIFY_PEER, NULL);
    int ok = cf->cacert != NULL
                 ? SSL_CTX_load_verify_locations(cf->ssl_ctx, cf->cacert, NULL)
                 : SSL_CTX_set_default_verify_paths(cf->ssl_ctx);
    if (ok == 1) {
        return 0;
    }

fail:;
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    ERR_clear_error();
    fprintf(stderr, "wsbench: cannot set up TLS: %s\n", buf);
    return -1;
}

/* Runs every worker in its own thread and waits for all of them. */
static int
run(struct wsb_worker *workers, unsigned n)
{
    unsigned started = 0;
    int rc = 0;

    for (; started < n; started++) {
        int err = pthread_create(&workers[started].thread, NULL,
                                 wsb_worker_main, &workers[started]);
        if (err != 0) {
            fprintf(stderr, "wsbench: pthread_create() failed: %s\n",
                    strerror(err));
            rc = -1;
            break;
        }
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
    }
    return rc;
}

static uint64_t
real_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

int
main(int argc, char **argv)
{
    struct wsb_config cf;
    struct wsb_worker *workers = NULL;
    int status = 1;

    int rc = wsb_options_parse(&cf, argc, argv);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    /* a server that resets while we write must not kill the run */
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(cf.conns);
    if (cf.tls && make_ssl_ctx(&cf) != 0) {
        return 1;
    }

    workers = calloc(cf.threads, sizeof(*workers));
    uint64_t *seeds = calloc(cf.threads, sizeof(*seeds));
    if (workers == NULL || seeds == NULL ||
        RAND_bytes((unsigned char *) seeds,
                   (int) (cf.threads * sizeof(*seeds))) != 1) {
        fprintf(stderr, "wsbench: cannot set up threads\n");
        goto done;
    }
    for (unsigned i = 0; i < cf.threads; i++) {
        if (wsb_worker_init(&workers[i], &cf, i, seeds[i]) != 0) {
            goto done;
        }
    }
    /* the clock starts once the payload patterns are made: a 64 MiB one
     * takes a while */
    uint64_t t0 = wsb_now_ns();
    uint64_t t0_real = real_ns();
    for (unsigned i = 0; i < cf.threads; i++) {
        if (wsb_worker_arm(&workers[i], t0, t0_real) != 0) {
            goto done;
        }
    }
    if (run(workers, cf.threads) != 0) {
        goto done;
    }

    struct wsb_stats total;
    wsb_stats_init(&total);
    for (unsigned i = 0; i < cf.threads; i++) {
        wsb_stats_merge(&total, &workers[i].st);
    }
    wsb_report_print(&cf, &total, t0);
    status = 0;

done:
    if (workers != NULL) {
        for (unsigned i = 0; i < cf.threads; i++) {
            wsb_worker_fini(&workers[i]);
        }
    }
    free(workers);
    free(seeds);
    SSL_CTX_free(cf.ssl_ctx);
    return status;
}
