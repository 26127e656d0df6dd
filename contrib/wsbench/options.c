/*
 * Command line parsing for wsbench. Every value is checked against its
 * bounds here so the threads never meet a nonsensical configuration.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "options.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_WARMUP = 256,
    OPT_BINARY,
    OPT_PIPELINE,
    OPT_RATE,
    OPT_INSECURE,
    OPT_SNI,
    OPT_CACERT,
    OPT_JSON,
    OPT_IDLE,
    OPT_HOLD,
    OPT_SOURCES,
    OPT_CONNECT_RATE,
    OPT_ROOM,
    OPT_MEMBERS,
    OPT_INTERVAL,
    OPT_JOIN,
    OPT_TIMEOUT,
    OPT_CONCURRENCY,
};

static const struct option long_options[] = {
    {"connections", required_argument, NULL, 'c'},
    {"duration", required_argument, NULL, 'd'},
    {"size", required_argument, NULL, 's'},
    {"threads", required_argument, NULL, 't'},
    {"header", required_argument, NULL, 'H'},
    {"help", no_argument, NULL, 'h'},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"binary", no_argument, NULL, OPT_BINARY},
    {"pipeline", required_argument, NULL, OPT_PIPELINE},
    {"rate", required_argument, NULL, OPT_RATE},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"sni", required_argument, NULL, OPT_SNI},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"json", no_argument, NULL, OPT_JSON},
    {"idle", required_argument, NULL, OPT_IDLE},
    {"hold", required_argument, NULL, OPT_HOLD},
    {"source-addresses", required_argument, NULL, OPT_SOURCES},
    {"connect-rate", no_argument, NULL, OPT_CONNECT_RATE},
    {"room", required_argument, NULL, OPT_ROOM},
    {"members", required_argument, NULL, OPT_MEMBERS},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"join", no_argument, NULL, OPT_JOIN},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"connect-concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {NULL, 0, NULL, 0},
};

static const char usage_text[] =
    "usage: wsbench [options] ws://HOST[:PORT][/PATH] | wss://...\n"
    "  -c, --connections N     connections (default 10)\n"
    "  -d, --duration SECONDS  measured time (default 10)\n"
    "      --warmup SECONDS    unmeasured time before it (default 1)\n"
    "  -s, --size BYTES        message size, k/m suffixes (default 64)\n"
    "      --binary            binary messages (default: ASCII text)\n"
    "      --pipeline N        closed loop: messages in flight per "
    "connection\n"
    "      --rate R            open loop: R messages/s in all; latency "
    "counts\n"
    "                          from each message's intended send time\n"
    "  -t, --threads N         threads, one event loop each (default 1)\n"
    "  -H, --header 'N: V'     extra request header (repeatable)\n"
    "      --timeout SECONDS   connect, handshake and echo timeout (10)\n"
    "      --connect-concurrency N  handshakes under way per thread (128)\n"
    "      --insecure          do not verify the server's certificate\n"
    "      --cacert FILE       trust these CA certificates\n"
    "      --sni NAME          TLS server name (default: the URL's host)\n"
    "      --json              print one JSON object on stdout\n"
    "modes (default: echo every message and verify it byte for byte):\n"
    "      --idle N --hold T   open N connections, hold them T seconds\n"
    "                          (default: -d), send nothing\n"
    "      --source-addresses A,B,...  bind connections to these in turn\n"
    "      --connect-rate      connect, upgrade, one echo, close, repeat\n"
    "      --room R --members M [--interval SECONDS]\n"
    "                          M members; member 0 says its send time to\n"
    "                          room R every interval (default 0.1)\n"
    "      --join              room members first send {\"type\":\"hello\","
    "\n"
    "                          \"user\":\"mN\"} and {\"type\":\"join\",...}"
    "\n"
    "                          (wsgate's chat); the sender starts after\n"
    "                          one interval\n";

static int
bad(const char *what, const char *value)
{
    fprintf(stderr, "wsbench: invalid %s \"%s\" (see wsbench -h)\n", what,
            value);
    return -1;
}

static int
parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    if (*s == '\0' || *s == '-' || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = (unsigned) v;
    return 0;
}

static int
parse_seconds(const char *s, double min, double *out)
{
    char *end;
    double v = strtod(s, &end);

    if (*s == '\0' || *end != '\0' || !(v >= min) || v > 1e7) {
        return -1;
    }
    *out = v;
    return 0;
}

static int
parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);

    if (*s == '\0' || *s == '-' || end == s) {
        return -1;
    }
    if (*end == 'k' || *end == 'K') {
        v *= 1024;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        v *= 1024 * 1024;
        end++;
    }
    if (*end != '\0' || v > WSB_MAX_MSG) {
        return -1;
    }
    *out = (size_t) v;
    return 0;
}

/* Splits "A,B,..." into bindable addresses with port 0. */
static int
parse_sources(struct wsb_config *cf, const char *list)
{
    char buf[64];
    const char *p = list;

    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof(buf) || cf->nsources == WSB_MAX_SOURCES) {
            return -1;
        }
        memcpy(buf, p, n);
        buf[n] = '\0';
        struct sockaddr_storage *ss = &cf->sources[cf->nsources++];
        struct sockaddr_in *sin = (struct sockaddr_in *) ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;
        memset(ss, 0, sizeof(*ss));
        if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
        } else if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
        } else {
            return -1;
        }
        p += n + (p[n] == ',');
    }
    return cf->nsources > 0 ? 0 : -1;
}

static bool
valid_room(const char *s)
{
    size_t n = strlen(s);

    /* the name goes into JSON text unescaped */
    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_.:-") == n;
}

static int
resolve(struct wsb_config *cf, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res;

    int rc = getaddrinfo(cf->host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "wsbench: cannot resolve \"%s\": %s\n", cf->host,
                gai_strerror(rc));
        return -1;
    }
    memcpy(&cf->addr, res->ai_addr, res->ai_addrlen);
    cf->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Splits ws[s]://HOST[:PORT][/PATH] and resolves HOST. */
static int
parse_url(struct wsb_config *cf, const char *url)
{
    const char *p;

    if (strncmp(url, "ws://", 5) == 0) {
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        p = url + 6;
        cf->tls = true;
    } else {
        return bad("URL (not ws:// or wss://)", url);
    }
    size_t alen = strcspn(p, "/?#");
    const char *path = p + alen;
    if (alen == 0 || alen >= sizeof(cf->host_header) ||
        strlen(path) >= sizeof(cf->path) || path[0] == '#') {
        return bad("URL", url);
    }
    memcpy(cf->host_header, p, alen);
    cf->host_header[alen] = '\0';
    snprintf(cf->path, sizeof(cf->path), "%s%s", path[0] == '?' ? "/" : "",
             path[0] == '\0' ? "/" : path);

    char *h = cf->host_header;
    const char *port = cf->tls ? "443" : "80";
    char *colon;
    size_t hlen;
    if (h[0] == '[') {
        char *close = strchr(h, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            return bad("URL", url);
        }
        hlen = (size_t) (close - h - 1);
        memcpy(cf->host, h + 1, hlen);
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strchr(h, ':');
        hlen = colon != NULL ? (size_t) (colon - h) : alen;
        memcpy(cf->host, h, hlen);
    }
    cf->host[hlen] = '\0';
    if (colon != NULL) {
        unsigned n;
        if (parse_uint(colon + 1, 1, 65535, &n) != 0) {
            return bad("URL port", url);
        }
        port = colon + 1;
    }
    return hlen == 0 ? bad("URL host", url) : resolve(cf, port);
}

static void
set_defaults(struct wsb_config *cf)
{
    memset(cf, 0, sizeof(*cf));
    cf->mode = WSB_MODE_ECHO;
    cf->conns = 10;
    cf->threads = 1;
    cf->pipeline = 1;
    cf->connect_concurrency = 128;
    cf->duration_s = 10;
    cf->warmup_s = 1;
    cf->hold_s = -1;
    cf->timeout_s = 10;
    cf->interval_s = 0.1;
    cf->msg_size = 64;
}

static int
set_mode(struct wsb_config *cf, enum wsb_mode mode)
{
    if (cf->mode != WSB_MODE_ECHO && cf->mode != mode) {
        fprintf(stderr, "wsbench: --idle, --connect-rate and --room "
                        "exclude each other\n");
        return -1;
    }
    cf->mode = mode;
    return 0;
}

/* Handles the options that take no value or only a string. */
static int
parse_flag(struct wsb_config *cf, int opt, const char *arg)
{
    switch (opt) {
    case OPT_BINARY:
        cf->binary = true;
        return 0;
    case OPT_INSECURE:
        cf->insecure = true;
        return 0;
    case OPT_JSON:
        cf->json = true;
        return 0;
    case OPT_SNI:
        cf->sni = arg;
        return 0;
    case OPT_CACERT:
        cf->cacert = arg;
        return 0;
    case OPT_CONNECT_RATE:
        return set_mode(cf, WSB_MODE_CONNECT_RATE);
    case OPT_ROOM:
        cf->room = arg;
        return valid_room(arg) ? set_mode(cf, WSB_MODE_ROOM)
                               : bad("room name", arg);
    case OPT_SOURCES:
        return parse_sources(cf, arg) == 0 ? 0 : bad("address list", arg);
    case 'H':
        if (cf->nheaders == WSB_MAX_HEADERS || strchr(arg, ':') == NULL ||
            strpbrk(arg, "\r\n") != NULL) {
            return bad("header", arg);
        }
        cf->headers[cf->nheaders++] = arg;
        return 0;
    default:
        fputs(usage_text, stderr);
        return -1;
    }
}

/* Handles the options that take a number. */
static int
parse_number(struct wsb_config *cf, int opt, const char *arg)
{
    switch (opt) {
    case 'c':
        return parse_uint(arg, 1, 1000000, &cf->conns) ? bad("-c", arg) : 0;
    case 'd':
        return parse_seconds(arg, 0.01, &cf->duration_s) ? bad("-d", arg) : 0;
    case 's':
        return parse_size(arg, &cf->msg_size) ? bad("-s", arg) : 0;
    case 't':
        return parse_uint(arg, 1, 256, &cf->threads) ? bad("-t", arg) : 0;
    case OPT_WARMUP:
        return parse_seconds(arg, 0, &cf->warmup_s) ? bad("--warmup", arg) : 0;
    case OPT_PIPELINE:
        return parse_uint(arg, 1, 65536, &cf->pipeline) ? bad("--pipeline", arg)
                                                        : 0;
    case OPT_RATE:
        return parse_seconds(arg, 0.001, &cf->rate) ? bad("--rate", arg) : 0;
    case OPT_HOLD:
        return parse_seconds(arg, 0, &cf->hold_s) ? bad("--hold", arg) : 0;
    case OPT_TIMEOUT:
        return parse_seconds(arg, 0.01, &cf->timeout_s) ? bad("--timeout", arg)
                                                        : 0;
    case OPT_JOIN:
        cf->join = 1;
        return 0;
    case OPT_INTERVAL:
        return parse_seconds(arg, 0.0001, &cf->interval_s)
                   ? bad("--interval", arg)
                   : 0;
    case OPT_CONCURRENCY:
        return parse_uint(arg, 1, 1000000, &cf->connect_concurrency)
                   ? bad("--connect-concurrency", arg)
                   : 0;
    case OPT_IDLE:
        if (parse_uint(arg, 1, 1000000, &cf->conns) != 0) {
            return bad("--idle", arg);
        }
        return set_mode(cf, WSB_MODE_IDLE);
    case OPT_MEMBERS:
        return parse_uint(arg, 1, 1000000, &cf->conns) ? bad("--members", arg)
                                                       : 0;
    default:
        return parse_flag(cf, opt, arg);
    }
}

static int
check(struct wsb_config *cf, bool pipeline_set, bool members_set)
{
    if (cf->rate > 0 && (cf->mode != WSB_MODE_ECHO || pipeline_set)) {
        fprintf(stderr, "wsbench: --rate is an echo mode without "
                        "--pipeline\n");
        return -1;
    }
    if (members_set != (cf->mode == WSB_MODE_ROOM)) {
        fprintf(stderr, "wsbench: --room and --members go together\n");
        return -1;
    }
    if (cf->nsources > 0 && cf->addr.ss_family != cf->sources[0].ss_family) {
        fprintf(stderr, "wsbench: --source-addresses and the URL's host "
                        "are not the same address family\n");
        return -1;
    }
    if (cf->hold_s < 0) {
        cf->hold_s = cf->duration_s;
    }
    if (cf->threads > cf->conns) {
        cf->threads = cf->conns;
    }
    return 0;
}

int
wsb_options_parse(struct wsb_config *cf, int argc, char **argv)
{
    bool pipeline_set = false;
    bool members_set = false;
    int opt;

    set_defaults(cf);
    while ((opt = getopt_long(argc, argv, "c:d:s:t:H:h", long_options, NULL)) !=
           -1) {
        if (opt == 'h') {
            fputs(usage_text, stdout);
            return 1;
        }
        pipeline_set |= opt == OPT_PIPELINE;
        members_set |= opt == OPT_MEMBERS;
        if (parse_number(cf, opt, optarg) != 0) {
            return -1;
        }
    }
    if (optind != argc - 1) {
        fputs(usage_text, stderr);
        return -1;
    }
    cf->url = argv[optind];
    if (parse_url(cf, cf->url) != 0) {
        return -1;
    }
    return check(cf, pipeline_set, members_set);
}
