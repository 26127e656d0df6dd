/*
 * Printing the summary. Rates divide by the measured window (-d), except
 * handshakes/s outside --connect-rate: there every connection upgrades once,
 * so the rate is taken over the span from the start to the last upgrade.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "report.h"

#include <stdio.h>
#include <string.h>

static const char *const err_names[WSB_ERR_COUNT] = {
    "connect", "handshake", "protocol", "closed", "mismatch", "timeout",
};

static const char *const mode_names[] = {
    [WSB_MODE_ECHO] = "echo",
    [WSB_MODE_IDLE] = "idle",
    [WSB_MODE_CONNECT_RATE] = "connect-rate",
    [WSB_MODE_ROOM] = "room",
};

/* what the latency histogram measured, by mode */
static const char *const latency_of[] = {
    [WSB_MODE_ECHO] = "echo",
    [WSB_MODE_IDLE] = "none",
    [WSB_MODE_CONNECT_RATE] = "handshake",
    [WSB_MODE_ROOM] = "delivery",
};

void
wsb_stats_init(struct wsb_stats *st)
{
    memset(st, 0, sizeof(*st));
    wsb_hist_init(&st->lat);
}

void
wsb_stats_merge(struct wsb_stats *to, const struct wsb_stats *from)
{
    to->handshakes += from->handshakes;
    to->handshakes_win += from->handshakes_win;
    if (from->hs_last_ns > to->hs_last_ns) {
        to->hs_last_ns = from->hs_last_ns;
    }
    to->sent += from->sent;
    to->sent_bytes += from->sent_bytes;
    to->messages += from->messages;
    to->bytes += from->bytes;
    to->unsent += from->unsent;
    to->established += from->established;
    to->held += from->held;
    for (int i = 0; i < WSB_ERR_COUNT; i++) {
        to->errors[i] += from->errors[i];
    }
    if (to->first_error[0] == '\0') {
        memcpy(to->first_error, from->first_error, sizeof(to->first_error));
    }
    wsb_hist_merge(&to->lat, &from->lat);
}

static uint64_t
errors_total(const struct wsb_stats *st)
{
    uint64_t n = 0;

    for (int i = 0; i < WSB_ERR_COUNT; i++) {
        n += st->errors[i];
    }
    return n;
}

static double
handshake_rate(const struct wsb_config *cf, const struct wsb_stats *st,
               uint64_t t0_ns)
{
    if (cf->mode == WSB_MODE_CONNECT_RATE) {
        return (double) st->handshakes_win / cf->duration_s;
    }
    if (st->handshakes == 0 || st->hs_last_ns <= t0_ns) {
        return 0;
    }
    return (double) st->handshakes / ((double) (st->hs_last_ns - t0_ns) / 1e9);
}

/* A duration for people: 850ns, 12.3us, 4.56ms, 1.23s. */
static const char *
fmt_ns(char *buf, size_t size, uint64_t ns)
{
    if (ns < 1000) {
        snprintf(buf, size, "%lluns", (unsigned long long) ns);
    } else if (ns < 1000000) {
        snprintf(buf, size, "%.1fus", (double) ns / 1e3);
    } else if (ns < 1000000000) {
        snprintf(buf, size, "%.2fms", (double) ns / 1e6);
    } else {
        snprintf(buf, size, "%.2fs", (double) ns / 1e9);
    }
    return buf;
}

static void
print_latency_human(const struct wsb_hist *h)
{
    static const double ps[] = {50, 90, 99, 99.9};
    static const char *const names[] = {"p50", "p90", "p99", "p99.9"};
    char buf[32];

    if (h->total == 0) {
        printf("  latency      no samples\n");
        return;
    }
    printf("  latency     ");
    for (int i = 0; i < 4; i++) {
        printf(" %s %s", names[i],
               fmt_ns(buf, sizeof(buf), wsb_hist_percentile(h, ps[i])));
    }
    printf("  max %s", fmt_ns(buf, sizeof(buf), h->max_ns));
    printf("  (mean %s)\n", fmt_ns(buf, sizeof(buf), h->sum_ns / h->total));
}

static void
print_errors_human(const struct wsb_stats *st)
{
    printf("  errors      ");
    if (errors_total(st) == 0) {
        printf(" none\n");
        return;
    }
    for (int i = 0; i < WSB_ERR_COUNT; i++) {
        if (st->errors[i] > 0) {
            printf(" %s %llu", err_names[i],
                   (unsigned long long) st->errors[i]);
        }
    }
    printf("\n  first error  %s\n", st->first_error);
}

static void
print_traffic_human(const struct wsb_config *cf, const struct wsb_stats *st)
{
    double secs = cf->duration_s;

    if (cf->mode == WSB_MODE_ROOM) {
        double expect = (double) st->sent * cf->conns;
        printf("  room         %llu sent to %u members, %llu deliveries "
               "(%.1f%%), %.1f/s\n",
               (unsigned long long) st->sent, cf->conns,
               (unsigned long long) st->messages,
               expect > 0 ? 100.0 * (double) st->messages / expect : 0.0,
               (double) st->messages / secs);
        return;
    }
    printf("  messages     %llu  %.1f/s  %.2f MB/s received  (sent %llu",
           (unsigned long long) st->messages, (double) st->messages / secs,
           (double) st->bytes / secs / 1e6, (unsigned long long) st->sent);
    if (st->unsent > 0) {
        printf(", %llu found no connection", (unsigned long long) st->unsent);
    }
    printf(")\n");
}

static void
print_human(const struct wsb_config *cf, const struct wsb_stats *st,
            uint64_t t0_ns)
{
    printf("wsbench: %s %s\n  %u connection%s, %u thread%s",
           mode_names[cf->mode], cf->url, cf->conns, cf->conns == 1 ? "" : "s",
           cf->threads, cf->threads == 1 ? "" : "s");
    if (cf->mode == WSB_MODE_IDLE) {
        printf(", held %.2f s\n\n", cf->hold_s);
        printf("  idle         %u requested, %llu established, %llu held\n",
               cf->conns, (unsigned long long) st->established,
               (unsigned long long) st->held);
        printf("  handshakes   %llu  %.1f/s\n",
               (unsigned long long) st->handshakes,
               handshake_rate(cf, st, t0_ns));
        print_errors_human(st);
        return;
    }
    if (cf->mode == WSB_MODE_ROOM) {
        printf(", room %s: member 0 says the time every %.3f s\n", cf->room,
               cf->interval_s);
    } else {
        printf(", %zu-byte %s messages, ", cf->msg_size,
               cf->binary ? "binary" : "text");
    }
    if (cf->mode == WSB_MODE_CONNECT_RATE) {
        printf("one echo per connection\n");
    } else if (cf->rate > 0) {
        printf("open loop at %.1f/s\n", cf->rate);
    } else if (cf->mode == WSB_MODE_ECHO) {
        printf("pipeline %u\n", cf->pipeline);
    }
    printf("  %.2f s measured after %.2f s of warm-up\n\n", cf->duration_s,
           cf->warmup_s);
    printf("  handshakes   %llu  %.1f/s\n", (unsigned long long) st->handshakes,
           handshake_rate(cf, st, t0_ns));
    print_traffic_human(cf, st);
    if (cf->mode != WSB_MODE_ECHO) {
        printf("  latency of   %s\n", latency_of[cf->mode]);
    }
    print_latency_human(&st->lat);
    print_errors_human(st);
}

static void
print_latency_json(const struct wsb_hist *h)
{
    printf("\"latency_us\":{\"samples\":%llu", (unsigned long long) h->total);
    if (h->total > 0) {
        printf(",\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,"
               "\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f",
               (double) h->min_ns / 1e3,
               (double) h->sum_ns / (double) h->total / 1e3,
               (double) wsb_hist_percentile(h, 50) / 1e3,
               (double) wsb_hist_percentile(h, 90) / 1e3,
               (double) wsb_hist_percentile(h, 99) / 1e3,
               (double) wsb_hist_percentile(h, 99.9) / 1e3,
               (double) h->max_ns / 1e3);
    }
    printf("}");
}

/* The URL comes from argv: it may hold quotes, backslashes or controls. */
static void
print_json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *) s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

static void
print_json(const struct wsb_config *cf, const struct wsb_stats *st,
           uint64_t t0_ns)
{
    double secs = cf->duration_s;

    printf("{\"mode\":\"%s\",\"url\":", mode_names[cf->mode]);
    print_json_string(cf->url);
    printf(",\"connections\":%u,\"threads\":%u,\"duration_s\":%.3f,"
           "\"warmup_s\":%.3f,\"message_size\":%zu,\"binary\":%s,"
           "\"pipeline\":%u,\"rate\":%.3f,",
           cf->conns, cf->threads, cf->duration_s, cf->warmup_s, cf->msg_size,
           cf->binary ? "true" : "false", cf->pipeline, cf->rate);
    printf("\"handshakes\":%llu,\"handshakes_per_s\":%.1f,",
           (unsigned long long) st->handshakes, handshake_rate(cf, st, t0_ns));
    printf("\"messages\":%llu,\"messages_per_s\":%.1f,\"bytes\":%llu,"
           "\"mb_per_s\":%.3f,\"sent\":%llu,\"sent_bytes\":%llu,"
           "\"unsent\":%llu,",
           (unsigned long long) st->messages, (double) st->messages / secs,
           (unsigned long long) st->bytes, (double) st->bytes / secs / 1e6,
           (unsigned long long) st->sent, (unsigned long long) st->sent_bytes,
           (unsigned long long) st->unsent);
    printf("\"latency_of\":\"%s\",", latency_of[cf->mode]);
    print_latency_json(&st->lat);
    printf(",\"errors\":{\"total\":%llu",
           (unsigned long long) errors_total(st));
    for (int i = 0; i < WSB_ERR_COUNT; i++) {
        printf(",\"%s\":%llu", err_names[i],
               (unsigned long long) st->errors[i]);
    }
    printf("}");
    if (cf->mode == WSB_MODE_IDLE) {
        printf(",\"idle\":{\"requested\":%u,\"established\":%llu,"
               "\"held\":%llu,\"hold_s\":%.3f}",
               cf->conns, (unsigned long long) st->established,
               (unsigned long long) st->held, cf->hold_s);
    }
    if (cf->mode == WSB_MODE_ROOM) {
        printf(",\"room\":{\"name\":\"%s\",\"members\":%u,\"sent\":%llu,"
               "\"deliveries\":%llu,\"deliveries_per_s\":%.1f}",
               cf->room, cf->conns, (unsigned long long) st->sent,
               (unsigned long long) st->messages, (double) st->messages / secs);
    }
    printf("}\n");
}

void
wsb_report_print(const struct wsb_config *cf, const struct wsb_stats *st,
                 uint64_t t0_ns)
{
    if (cf->json) {
        print_json(cf, st, t0_ns);
        if (st->first_error[0] != '\0') {
            fprintf(stderr, "wsbench: first error: %s\n", st->first_error);
        }
    } else {
        print_human(cf, st, t0_ns);
    }
    fflush(stdout);
}
