/*
 * wsbench's command line: what to run against which URL. Parsed once in
 * the main thread; every thread then reads the same struct wsb_config.
 */
#ifndef WSB_OPTIONS_H
#define WSB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#define WSB_MAX_HEADERS 16
#define WSB_MAX_SOURCES 64
#define WSB_MAX_MSG     (64 * 1024 * 1024)

enum wsb_mode {
    WSB_MODE_ECHO,         /* closed loop (pipeline) or open loop (rate) */
    WSB_MODE_IDLE,         /* connect, hold, send nothing */
    WSB_MODE_CONNECT_RATE, /* connect, upgrade, one echo, close, repeat */
    WSB_MODE_ROOM,         /* one sender, every member receives */
};

struct wsb_config {
    enum wsb_mode mode;
    const char *url;
    bool tls;
    char host[256];        /* from the URL, IPv6 without brackets */
    char host_header[300]; /* the Host: value */
    char path[2048];
    struct sockaddr_storage addr; /* the server, resolved once */
    socklen_t addr_len;
    struct sockaddr_storage sources[WSB_MAX_SOURCES]; /* bind() before
                                                         connect(), in turn */
    size_t nsources;
    unsigned conns;
    unsigned threads;
    unsigned pipeline;            /* closed loop: messages in flight */
    unsigned connect_concurrency; /* per thread: handshakes under way */
    double duration_s;
    double warmup_s;
    double hold_s;
    double timeout_s;
    double rate;       /* open loop: messages/s over all connections */
    double interval_s; /* room: between two messages of the sender */
    size_t msg_size;
    bool binary;
    bool insecure;
    bool json;
    const char *sni;    /* NULL: the URL's host unless it is an address */
    const char *cacert; /* NULL: the system's trust store */
    const char *room;
    int join; /* room: members say hello and join first (chat protocol) */
    const char *headers[WSB_MAX_HEADERS]; /* extra "Name: value" lines */
    size_t nheaders;
    SSL_CTX *ssl_ctx; /* owned by main(); NULL for ws:// */
};

/*
 * Fills <cf> from the command line and resolves the URL's host. Returns 0;
 * 1 after printing the help that -h asked for; -1 after printing what was
 * wrong to stderr.
 */
int wsb_options_parse(struct wsb_config *cf, int argc, char **argv);

#endif
