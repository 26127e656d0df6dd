/*
 * Tests of src/ws/deflate.h, permessage-deflate (RFC 7692): the offer
 * table of §7.1 with exact responses, round trips with and without context
 * takeover, the §7.2.3 example bytes, window limits, a decompression bomb
 * and corrupt data. Inputs end at a PROT_NONE page, so reading one byte
 * past them faults even without a sanitizer.
 */
#include "config.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"
#include "ws/deflate.h"
#include "tap.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* Room for the largest input: 1 MiB of random bytes, compressed. */
#define GUARD_DATA_SIZE (2 * MIB)

/* deflate.c grows inflate output by at least this much (INFLATE_CHUNK). */
#define INFLATE_CHUNK 16384

static uint8_t *guard_data; /* GUARD_DATA_SIZE bytes, then PROT_NONE */

static void
guard_init(void)
{
    long page = sysconf(_SC_PAGESIZE);

    if (page <= 0 || GUARD_DATA_SIZE % (size_t) page != 0) {
        abort();
    }
    uint8_t *m =
        mmap(NULL, GUARD_DATA_SIZE + (size_t) page, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    if (mprotect(m + GUARD_DATA_SIZE, (size_t) page, PROT_NONE) == -1) {
        perror("mprotect");
        abort();
    }
    guard_data = m;
}

/* Copies <len> bytes of <s> so that they end at the guard page. */
static const uint8_t *
guarded(const void *s, size_t len)
{
    if (len > GUARD_DATA_SIZE) {
        abort();
    }
    uint8_t *p = guard_data + GUARD_DATA_SIZE - len;
    if (len > 0) {
        memcpy(p, s, len);
    }
    return p;
}

static struct wsg_deflate_conf
conf_default(void)
{
    return (struct wsg_deflate_conf){
        .enabled = true,
        .server_max_window_bits = 15,
        .client_max_window_bits = 15,
        .level = 6,
        .mem_level = 8,
    };
}

/* ---- negotiation ---- */

/* The knobs of a conf that a case changes; 0 bits mean 15. */
struct knobs {
    bool snct;
    bool cnct;
    int sbits;
    int cbits;
};

struct neg_case {
    const char *offer;
    struct knobs conf;
    int rc;
    const char *resp;            /* when rc is 1 */
    struct wsg_deflate_params p; /* when rc is 1 */
};

#define PMD "permessage-deflate"
#define P(snct, cnct, sb, cb)                                                  \
    {                                                                          \
        (snct), (cnct), (sb), (cb)                                             \
    }
#define DEFAULT_P P(false, false, 15, 15)

static const struct neg_case neg_cases[] = {
    /* plain offers */
    {PMD, {0}, 1, PMD, DEFAULT_P},
    {"Permessage-Deflate", {0}, 1, PMD, DEFAULT_P},
    {PMD "; client_max_window_bits", {0}, 1, PMD, DEFAULT_P},
    /* client_max_window_bits: only when offered (§7.1.2.2) */
    {PMD, {.cbits = 10}, 1, PMD, DEFAULT_P},
    {PMD "; client_max_window_bits",
     {.cbits = 10},
     1,
     PMD "; client_max_window_bits=10",
     P(false, false, 15, 10)},
    {PMD "; client_max_window_bits=12",
     {.cbits = 10},
     1,
     PMD "; client_max_window_bits=10",
     P(false, false, 15, 10)},
    {PMD "; client_max_window_bits=9",
     {.cbits = 10},
     1,
     PMD "; client_max_window_bits=9",
     P(false, false, 15, 9)},
    {PMD "; client_max_window_bits=12",
     {0},
     1,
     PMD "; client_max_window_bits=12",
     P(false, false, 15, 12)},
    {PMD "; client_max_window_bits",
     {.cbits = 8},
     1,
     PMD "; client_max_window_bits=8",
     P(false, false, 15, 8)},
    /* server_max_window_bits: echoed, never above the offer */
    {PMD "; server_max_window_bits=10",
     {0},
     1,
     PMD "; server_max_window_bits=10",
     P(false, false, 10, 15)},
    {PMD "; server_max_window_bits=15",
     {0},
     1,
     PMD "; server_max_window_bits=15",
     DEFAULT_P},
    {PMD "; server_max_window_bits=12",
     {.sbits = 10},
     1,
     PMD "; server_max_window_bits=10",
     P(false, false, 10, 15)},
    {PMD,
     {.sbits = 11},
     1,
     PMD "; server_max_window_bits=11",
     P(false, false, 11, 15)},
    {PMD,
     {.sbits = 8},
     1,
     PMD "; server_max_window_bits=9",
     P(false, false, 9, 15)},
    {PMD "; server_max_window_bits=9",
     {.sbits = 8},
     1,
     PMD "; server_max_window_bits=9",
     P(false, false, 9, 15)},
    /* zlib cannot hold itself to 2^8: declined, the next offer wins */
    {PMD "; server_max_window_bits=8", {0}, 0, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=8, " PMD, {0}, 1, PMD, DEFAULT_P},
    /* context takeover */
    {PMD "; server_no_context_takeover",
     {0},
     1,
     PMD "; server_no_context_takeover",
     P(true, false, 15, 15)},
    {PMD,
     {.snct = true},
     1,
     PMD "; server_no_context_takeover",
     P(true, false, 15, 15)},
    {PMD "; client_no_context_takeover",
     {0},
     1,
     PMD "; client_no_context_takeover",
     P(false, true, 15, 15)},
    {PMD,
     {.cnct = true},
     1,
     PMD "; client_no_context_takeover",
     P(false, true, 15, 15)},
    {PMD "; client_max_window_bits",
     {.snct = true, .cbits = 10},
     1,
     PMD "; server_no_context_takeover; client_max_window_bits=10",
     P(true, false, 15, 10)},
    /* everything: the longest response */
    {PMD "; server_no_context_takeover; client_no_context_takeover; "
         "server_max_window_bits=10; client_max_window_bits=11",
     {.cbits = 12},
     1,
     PMD "; server_no_context_takeover; client_no_context_takeover; "
         "server_max_window_bits=10; client_max_window_bits=11",
     P(true, true, 10, 11)},
    /* the §7.1.3 example: the first offer is taken */
    {PMD "; client_max_window_bits; server_max_window_bits=10, " PMD
         "; client_max_window_bits",
     {0},
     1,
     PMD "; server_max_window_bits=10",
     P(false, false, 10, 15)},
    /* whitespace and quoted values */
    {" " PMD " ;\tserver_max_window_bits = 10 ; client_max_window_bits ",
     {.cbits = 9},
     1,
     PMD "; server_max_window_bits=10; client_max_window_bits=9",
     P(false, false, 10, 9)},
    {PMD "; server_max_window_bits=\"10\"",
     {0},
     1,
     PMD "; server_max_window_bits=10",
     P(false, false, 10, 15)},
    {PMD "; server_max_window_bits=\"1\\0\"",
     {0},
     1,
     PMD "; server_max_window_bits=10",
     P(false, false, 10, 15)},
    {PMD "; client_max_window_bits=\"9\"",
     {.cbits = 10},
     1,
     PMD "; client_max_window_bits=9",
     P(false, false, 15, 9)},
    /* other extensions and empty list elements */
    {"x-webkit-deflate-frame, " PMD, {0}, 1, PMD, DEFAULT_P},
    {"foo; bar=\"a,b;c\"; baz, " PMD, {0}, 1, PMD, DEFAULT_P},
    {", ," PMD ",, ", {0}, 1, PMD, DEFAULT_P},
    {"foo", {0}, 0, NULL, DEFAULT_P},
    {"", {0}, 0, NULL, DEFAULT_P},
    {" , ", {0}, 0, NULL, DEFAULT_P},
    {"permessage-deflatex", {0}, 0, NULL, DEFAULT_P},
    /* bad parameters decline the offer (see deflate.c) */
    {PMD "; foo", {0}, 0, NULL, DEFAULT_P},
    {PMD "; foo=1, " PMD "; server_no_context_takeover",
     {0},
     1,
     PMD "; server_no_context_takeover",
     P(true, false, 15, 15)},
    {PMD "; server_no_context_takeover; server_no_context_takeover",
     {0},
     0,
     NULL,
     DEFAULT_P},
    {PMD "; client_max_window_bits; client_max_window_bits=10",
     {0},
     0,
     NULL,
     DEFAULT_P},
    {PMD "; server_no_context_takeover=1", {0}, 0, NULL, DEFAULT_P},
    {PMD "; client_no_context_takeover=\"\"", {0}, 0, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits", {0}, 0, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=16", {0}, 0, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=7", {0}, 0, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=010", {0}, 0, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=09", {0}, 0, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=ten", {0}, 0, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=\"\"", {0}, 0, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=\"10 \"", {0}, 0, NULL, DEFAULT_P},
    {PMD "; client_max_window_bits=0", {0}, 0, NULL, DEFAULT_P},
    {PMD "; client_max_window_bits=99999999999999999999",
     {0},
     0,
     NULL,
     DEFAULT_P},
    /* a broken grammar refuses the handshake, wherever it is */
    {"; " PMD, {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD ";", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD "; ; server_no_context_takeover", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD "; =10", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=\"10", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=\"10\\\"", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=\"1\x01\"", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=1 0", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD "; server_max_window_bits=\"10\"x", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {"per message-deflate", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD " x", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD ", foo bar", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD ", foo; a=\"", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {PMD "\r\n", {0}, WSG_ERROR, NULL, DEFAULT_P},
    {"\"" PMD "\"", {0}, WSG_ERROR, NULL, DEFAULT_P},
};

static struct wsg_deflate_conf
conf_with(const struct knobs *k)
{
    struct wsg_deflate_conf conf = conf_default();

    conf.server_no_context_takeover = k->snct;
    conf.client_no_context_takeover = k->cnct;
    conf.server_max_window_bits = k->sbits ? k->sbits : 15;
    conf.client_max_window_bits = k->cbits ? k->cbits : 15;
    return conf;
}

static void
check_neg_case(const struct neg_case *c)
{
    struct wsg_deflate_conf conf = conf_with(&c->conf);
    size_t len = strlen(c->offer);
    struct wsg_str v = {(const char *) guarded(c->offer, len), len};
    struct wsg_deflate_params p = {0};
    char resp[WSG_DEFLATE_RESP_MAX] = "";

    int rc = wsg_deflate_negotiate(&conf, &v, 1, &p, resp, sizeof(resp));
    if (!is_int(rc, c->rc, "negotiate \"%s\"", c->offer) || rc != 1) {
        return;
    }
    is_str(resp, c->resp, "  response");
    ok(p.server_no_context_takeover == c->p.server_no_context_takeover &&
           p.client_no_context_takeover == c->p.client_no_context_takeover &&
           p.server_max_window_bits == c->p.server_max_window_bits &&
           p.client_max_window_bits == c->p.client_max_window_bits,
       "  params %d %d %d %d", p.server_no_context_takeover,
       p.client_no_context_takeover, p.server_max_window_bits,
       p.client_max_window_bits);
}

static void
test_negotiate_table(void)
{
    note("negotiation table");
    for (size_t i = 0; i < WSG_NELEMS(neg_cases); i++) {
        check_neg_case(&neg_cases[i]);
    }
}

static void
test_negotiate_api(void)
{
    struct wsg_deflate_conf conf = conf_default();
    struct wsg_deflate_params p;
    char resp[WSG_DEFLATE_RESP_MAX];
    struct wsg_str two[2] = {WSG_STR("foo, bar; x=1"), WSG_STR(PMD)};
    struct wsg_str bad_later[2] = {WSG_STR(PMD), WSG_STR("a;")};

    note("negotiation: several values, limits");
    is_int(wsg_deflate_negotiate(&conf, NULL, 0, &p, resp, sizeof(resp)), 0,
           "no header: no deflate");
    is_int(wsg_deflate_negotiate(&conf, two, 2, &p, resp, sizeof(resp)), 1,
           "the offer may be in a later header");
    is_int(wsg_deflate_negotiate(&conf, bad_later, 2, &p, resp, sizeof(resp)),
           WSG_ERROR, "a broken later header refuses the handshake");
    is_int(wsg_deflate_negotiate(&conf, two, 2, &p, resp, strlen(PMD)), 0,
           "a response that does not fit: no deflate");
    is_int(wsg_deflate_negotiate(&conf, two, 2, &p, resp, strlen(PMD) + 1), 1,
           "a response that just fits");
    conf.enabled = false;
    is_int(wsg_deflate_negotiate(&conf, bad_later, 2, &p, resp, sizeof(resp)),
           0, "disabled: nothing is read");
}

/* ---- compression ---- */

/* A compressor and, for the other side, an inflater with mirrored params. */
struct pair {
    struct wsg_deflate *tx;
    struct wsg_deflate *rx;
};

static struct pair
pair_new(bool nct, int bits, int level)
{
    struct wsg_deflate_conf conf = conf_default();
    struct wsg_deflate_params tx = {nct, false, bits, 15};
    struct wsg_deflate_params rx = {false, nct, 15, bits};

    conf.level = level;
    struct pair pr = {wsg_deflate_new(&tx, &conf), wsg_deflate_new(&rx, &conf)};
    if (pr.tx == NULL || pr.rx == NULL) {
        abort();
    }
    return pr;
}

static void
pair_free(struct pair *pr)
{
    wsg_deflate_free(pr->tx);
    wsg_deflate_free(pr->rx);
}

/* An inflater for the client's messages under <p>. */
static struct wsg_deflate *
rx_new(bool nct, int bits)
{
    struct wsg_deflate_conf conf = conf_default();
    struct wsg_deflate_params p = {false, nct, 15, bits};
    struct wsg_deflate *d = wsg_deflate_new(&p, &conf);

    if (d == NULL) {
        abort();
    }
    return d;
}

/* xorshift64: the same bytes on every run */
static void
fill_random(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15u + 1;

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t) x;
    }
}

/* Text-like bytes: words from a small set, so they compress well. */
static void
fill_text(uint8_t *p, size_t len, uint64_t seed)
{
    static const char *const words[] = {
        "hello ",    "world ",   "{\"id\":", "42, ",
        "\"msg\": ", "deflate ", "socket\n", "the "};
    uint8_t r[1];
    size_t i = 0;

    while (i < len) {
        fill_random(r, 1, seed + i);
        const char *w = words[r[0] % WSG_NELEMS(words)];
        for (size_t k = 0; w[k] != '\0' && i < len; k++) {
            p[i++] = (uint8_t) w[k];
        }
    }
}

/* Inflates <z>/<zlen> as one message; returns the result code. */
static int
inflate_all(struct wsg_deflate *d, const uint8_t *z, size_t zlen, size_t max,
            uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    return wsg_deflate_inflate(d, guarded(z, zlen), zlen, true, max, out,
                               outlen);
}

/* Sends <msg> through <pr>; <what> names it. Returns the compressed size. */
static size_t
round_trip(struct pair *pr, const uint8_t *msg, size_t len, const char *what)
{
    uint8_t *z = NULL;
    size_t zlen = 0;
    uint8_t *out;
    size_t outlen;

    int rc = wsg_deflate_compress(pr->tx, msg, len, &z, &zlen);
    if (!is_int(rc, 0, "%s: compress", what)) {
        return 0;
    }
    ok(zlen < 4 || memcmp(z + zlen - 4, "\x00\x00\xff\xff", 4) != 0,
       "%s: no 00 00 ff ff tail (%zu bytes)", what, zlen);
    rc = inflate_all(pr->rx, z, zlen, len, &out, &outlen);
    is_int(rc, 0, "%s: inflate with max = its size", what);
    ok(rc == 0 && outlen == len && memcmp(out, msg, len) == 0,
       "%s: same bytes back", what);
    free(out);
    free(z);
    return zlen;
}

static void
round_trip_sizes(bool nct, bool text)
{
    static const size_t sizes[] = {0, 1, 125, 64 * KIB, MIB};

    for (size_t i = 0; i < WSG_NELEMS(sizes); i++) {
        size_t len = sizes[i];
        uint8_t *msg = malloc(len + 1);
        char what[96];
        struct pair pr = pair_new(nct, 15, 6);
        (text ? fill_text : fill_random)(msg, len, i);
        snprintf(what, sizeof(what), "%s %zu bytes, %s takeover",
                 text ? "text" : "random", len, nct ? "no" : "with");
        size_t first = round_trip(&pr, msg, len, what);
        size_t second = round_trip(&pr, msg, len, what);
        if (nct) {
            is_uint(second, first, "%s: a repeat costs the same", what);
        } else if (len >= 125 && (text || len <= 16 * KIB)) {
            /* random data only repeats within the 32 KiB window */
            ok(second < first, "%s: a repeat costs less (%zu < %zu)", what,
               second, first);
        }
        pair_free(&pr);
        free(msg);
    }
}

static void
test_round_trips(void)
{
    note("round trips, two messages in a row");
    round_trip_sizes(false, true);
    round_trip_sizes(true, true);
    round_trip_sizes(false, false);
    round_trip_sizes(true, false);
}

/* ---- RFC 7692 §7.2.3 ---- */

static const uint8_t hello_z[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
static const uint8_t hello_again_z[] = {0xf2, 0x00, 0x11, 0x00, 0x00};

/* Inflates <z> as one message of <d> and expects "Hello". */
static void
expect_hello(struct wsg_deflate *d, const uint8_t *z, size_t zlen,
             const char *what)
{
    uint8_t *out;
    size_t outlen;
    int rc = inflate_all(d, z, zlen, 1000, &out, &outlen);

    is_int(rc, 0, "%s: inflates", what);
    is_mem(out, outlen, "Hello", 5, "%s: is \"Hello\"", what);
    free(out);
}

static void
test_rfc_inflate(void)
{
    static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                     0x65, 0x6c, 0x6c, 0x6f, 0x00};
    static const uint8_t bfinal[] = {0xf3, 0x48, 0xcd, 0xc9,
                                     0xc9, 0x07, 0x00, 0x00};
    static const uint8_t two_blocks[] = {0xf2, 0x48, 0x05, 0x00, 0x00,
                                         0x00, 0xff, 0xff, 0xca, 0xc9,
                                         0xc9, 0x07, 0x00};
    struct wsg_deflate *d = rx_new(false, 15);

    note("RFC 7692 section 7.2.3 examples");
    expect_hello(d, hello_z, sizeof(hello_z), "7.2.3.1 compressed");
    expect_hello(d, hello_again_z, sizeof(hello_again_z),
                 "7.2.3.2 second message, window shared");
    expect_hello(d, stored, sizeof(stored), "7.2.3.3 stored block");
    expect_hello(d, bfinal, sizeof(bfinal), "7.2.3.4 BFINAL set");
    expect_hello(d, hello_again_z, sizeof(hello_again_z),
                 "window kept across a BFINAL block");
    expect_hello(d, bfinal, sizeof(bfinal) - 1, "BFINAL with nothing after");
    expect_hello(d, two_blocks, sizeof(two_blocks), "7.2.3.5 two blocks");
    wsg_deflate_free(d);

    d = rx_new(true, 15);
    uint8_t *out;
    size_t outlen;
    expect_hello(d, hello_z, sizeof(hello_z), "no takeover: first");
    is_int(inflate_all(d, hello_again_z, sizeof(hello_again_z), 1000, &out,
                       &outlen),
           WSG_ERROR, "no takeover: a reference to the last message fails");
    ok(out == NULL && outlen == 0, "  and leaves no output");
    expect_hello(d, hello_z, sizeof(hello_z), "no takeover: usable after");
    wsg_deflate_free(d);
}

/*
 * Compresses "Hello" (or nothing) with <pr>, expects <exp> unless NULL,
 * and passes it to the peer. Returns the compressed size.
 */
static size_t
send_hello(struct pair *pr, size_t len, const uint8_t *exp, size_t explen,
           const char *what)
{
    uint8_t *z, *out;
    size_t zlen, outlen;

    wsg_deflate_compress(pr->tx, (const uint8_t *) "Hello", len, &z, &zlen);
    if (exp != NULL) {
        is_mem(z, zlen, exp, explen, "%s", what);
    }
    inflate_all(pr->rx, z, zlen, 5, &out, &outlen);
    is_mem(out, outlen, "Hello", len, "%s: the peer reads it", what);
    free(out);
    free(z);
    return zlen;
}

static void
test_rfc_compress(void)
{
    struct pair pr = pair_new(false, 15, 6);
    struct pair nct = pair_new(true, 15, 6);

    note("our compressor reproduces section 7.2.3.1 and 7.2.3.2");
    send_hello(&pr, 5, hello_z, sizeof(hello_z), "first \"Hello\"");
    send_hello(&pr, 5, hello_again_z, sizeof(hello_again_z),
               "second \"Hello\" refers back");
    send_hello(&pr, 0, (const uint8_t *) "\x00", 1, "an empty message is 00");
    size_t zlen = send_hello(&pr, 5, NULL, 0, "after an empty message");
    ok(zlen < sizeof(hello_z), "  it still refers back (%zu bytes)", zlen);
    send_hello(&nct, 5, hello_z, sizeof(hello_z), "no takeover: first");
    send_hello(&nct, 5, hello_z, sizeof(hello_z),
               "no takeover: the second stands alone");
    pair_free(&pr);
    pair_free(&nct);
}

static void
test_empty_messages(void)
{
    struct wsg_deflate *d = rx_new(false, 15);
    uint8_t *out;
    size_t outlen;

    note("empty messages");
    is_int(inflate_all(d, (const uint8_t *) "\x00", 1, 0, &out, &outlen), 0,
           "00 inflates with max 0");
    ok(out != NULL && outlen == 0, "  to nothing");
    free(out);
    is_int(inflate_all(d, NULL, 0, 0, &out, &outlen), 0,
           "no bytes at all inflate");
    ok(out != NULL && outlen == 0, "  to nothing");
    free(out);
    expect_hello(d, hello_z, sizeof(hello_z), "then a message");
    expect_hello(d, hello_again_z, sizeof(hello_again_z),
                 "and the window is intact");
    wsg_deflate_free(d);
}

/* ---- pieces ---- */

/*
 * Inflates <z>/<zlen> with a fresh inflater, cut in two at <cut>, after
 * <pre> messages of context (hello_z); returns whether <exp> came out.
 */
static bool
inflate_cut(const uint8_t *z, size_t zlen, size_t cut, bool pre,
            const uint8_t *exp, size_t explen)
{
    struct wsg_deflate *d = rx_new(false, 15);
    uint8_t *out = NULL;
    size_t outlen = 0;

    if (pre) {
        expect_hello(d, hello_z, sizeof(hello_z), "context");
    }
    int rc = wsg_deflate_inflate(d, guarded(z, cut), cut, false, explen, &out,
                                 &outlen);
    if (rc == 0) {
        rc = wsg_deflate_inflate(d, guarded(z + cut, zlen - cut), zlen - cut,
                                 true, explen, &out, &outlen);
    }
    bool same = rc == 0 && outlen == explen && memcmp(out, exp, explen) == 0;
    free(out);
    wsg_deflate_free(d);
    return same;
}

/* Feeds <z> byte by byte with an empty piece after each, then ends. */
static bool
inflate_bytewise(const uint8_t *z, size_t zlen, const uint8_t *exp,
                 size_t explen, int bits)
{
    struct wsg_deflate *d = rx_new(false, bits);
    uint8_t *out = NULL;
    size_t outlen = 0;
    int rc = 0;

    for (size_t i = 0; i < zlen && rc == 0; i++) {
        rc = wsg_deflate_inflate(d, guarded(z + i, 1), 1, false, explen, &out,
                                 &outlen);
        if (rc == 0) {
            rc = wsg_deflate_inflate(d, guarded(z, 0), 0, false, explen, &out,
                                     &outlen);
        }
    }
    if (rc == 0) {
        rc = wsg_deflate_inflate(d, NULL, 0, true, explen, &out, &outlen);
    }
    bool same = rc == 0 && outlen == explen && memcmp(out, exp, explen) == 0;
    free(out);
    wsg_deflate_free(d);
    return same;
}

/* Cuts <z> at every byte, and feeds it byte by byte. */
static void
check_pieces(const uint8_t *z, size_t zlen, bool pre, const uint8_t *exp,
             size_t explen, const char *what)
{
    size_t good = 0;

    for (size_t cut = 0; cut <= zlen; cut++) {
        good += inflate_cut(z, zlen, cut, pre, exp, explen);
    }
    is_uint(good, zlen + 1, "%s: cut at each of %zu places", what, zlen + 1);
    if (!pre) {
        ok(inflate_bytewise(z, zlen, exp, explen, 15), "%s: byte by byte",
           what);
    }
}

/* Compresses <len> bytes made by <fill> and checks them in pieces. */
static void
check_pieces_of(size_t len, void (*fill)(uint8_t *, size_t, uint64_t),
                bool every_cut, const char *what)
{
    struct pair pr = pair_new(false, 15, 6);
    uint8_t *msg = malloc(len);
    uint8_t *z;
    size_t zlen;

    fill(msg, len, 7);
    wsg_deflate_compress(pr.tx, msg, len, &z, &zlen);
    if (every_cut) {
        check_pieces(z, zlen, false, msg, len, what);
    } else {
        ok(inflate_bytewise(z, zlen, msg, len, 15), "%s: byte by byte", what);
    }
    free(z);
    free(msg);
    pair_free(&pr);
}

static void
test_pieces(void)
{
    static const uint8_t bfinal[] = {0xf3, 0x48, 0xcd, 0xc9,
                                     0xc9, 0x07, 0x00, 0x00};
    const uint8_t *hello = (const uint8_t *) "Hello";

    note("inflation in pieces");
    check_pieces(hello_z, sizeof(hello_z), false, hello, 5, "7.2.3.1");
    check_pieces(hello_again_z, sizeof(hello_again_z), true, hello, 5,
                 "7.2.3.2");
    check_pieces(bfinal, sizeof(bfinal), false, hello, 5, "7.2.3.4");
    check_pieces_of(2000, fill_text, true, "2000 text bytes");
    check_pieces_of(64 * KIB, fill_random, false, "64 KiB random");
    check_pieces_of(MIB, fill_text, false, "1 MiB text");
}

/* ---- windows, limits, corrupt data ---- */

/*
 * A message whose matches are all 2000 bytes back, compressed with a
 * <bits> window and read by a peer with the same window: whole, byte by
 * byte (so that most references cross inflate calls and meet the window
 * check), and as two messages where the second repeats the first.
 */
static void
check_window(const uint8_t *msg, size_t len, int bits)
{
    struct pair pr = pair_new(false, bits, 6);
    uint8_t *z;
    size_t zlen;
    char what[64];

    snprintf(what, sizeof(what), "%d-bit window", bits);
    zlen = round_trip(&pr, msg, len, what);
    if (bits >= 12) {
        /* zlib reaches back 2^bits - 262 bytes (MAX_DIST) */
        ok(zlen < 4000, "%s: matches reach 2000 back", what);
    }
    round_trip(&pr, msg, 2000, what);
    round_trip(&pr, msg, 2000, what);
    pair_free(&pr);
    /* a fresh compressor: inflate_bytewise() has no earlier messages */
    pr = pair_new(false, bits, 6);
    wsg_deflate_compress(pr.tx, msg, len, &z, &zlen);
    ok(inflate_bytewise(z, zlen, msg, len, bits), "%s: byte by byte", what);
    free(z);
    pair_free(&pr);
}

static void
test_windows(void)
{
    size_t len = 16000;
    uint8_t *msg = malloc(len);
    uint8_t *z;
    size_t zlen;

    note("window sizes");
    fill_random(msg, 2000, 3);
    for (size_t i = 2000; i < len; i++) {
        msg[i] = msg[i - 2000];
    }
    for (int bits = 9; bits <= 15; bits++) {
        check_window(msg, len, bits);
    }
    struct pair wide = pair_new(false, 15, 6);
    wsg_deflate_compress(wide.tx, msg, len, &z, &zlen);
    ok(!inflate_bytewise(z, zlen, msg, len, 9),
       "a 9-bit inflater refuses 2000-byte distances");
    free(z);
    pair_free(&wide);

    /* the second of two 300-byte messages refers 300 bytes back */
    struct wsg_deflate *eight = rx_new(false, 8);
    struct wsg_deflate *nine = rx_new(false, 9);
    struct pair pr = pair_new(false, 15, 6);
    uint8_t *z2, *out;
    size_t z2len, outlen;
    wsg_deflate_compress(pr.tx, msg, 300, &z, &zlen);
    wsg_deflate_compress(pr.tx, msg, 300, &z2, &z2len);
    is_int(inflate_all(eight, z, zlen, 300, &out, &outlen), 0, "8 bits: one");
    free(out);
    is_int(inflate_all(eight, z2, z2len, 300, &out, &outlen), WSG_ERROR,
           "8 bits: a reference 300 back is refused");
    is_int(inflate_all(nine, z, zlen, 300, &out, &outlen), 0, "9 bits: one");
    free(out);
    is_int(inflate_all(nine, z2, z2len, 300, &out, &outlen), 0,
           "9 bits: a reference 300 back is fine");
    free(out);
    free(z);
    free(z2);
    pair_free(&pr);
    wsg_deflate_free(eight);
    wsg_deflate_free(nine);
    free(msg);
}

/* Inflates <z> in 1 KiB pieces against <max>; returns the final code. */
static int
inflate_kib_pieces(struct wsg_deflate *d, const uint8_t *z, size_t zlen,
                   size_t max, size_t *peak)
{
    uint8_t *out = NULL;
    size_t outlen = 0;
    int rc = 0;

    *peak = 0;
    for (size_t off = 0; off < zlen && rc == 0; off += KIB) {
        size_t n = zlen - off < KIB ? zlen - off : KIB;
        bool last = off + n == zlen;
        rc = wsg_deflate_inflate(d, guarded(z + off, n), n, last, max, &out,
                                 &outlen);
        if (rc == 0 && out != NULL && malloc_usable_size(out) > *peak) {
            *peak = malloc_usable_size(out);
        }
    }
    if (rc != 0 && (out != NULL || outlen != 0)) {
        rc = 99; /* an error must leave nothing behind */
    }
    free(out);
    return rc;
}

static void
test_bomb(void)
{
    size_t len = 10 * MIB;
    uint8_t *zeros = calloc(len, 1);
    struct pair pr = pair_new(false, 15, 9);
    uint8_t *z, *out;
    size_t zlen, outlen, peak;

    note("a decompression bomb and the exact limit");
    wsg_deflate_compress(pr.tx, zeros, len, &z, &zlen);
    ok(zlen < 16 * KIB, "10 MiB of zeros compress to %zu bytes", zlen);
    is_int(inflate_all(pr.rx, z, zlen, MIB, &out, &outlen), WSG_DEFLATE_TOO_BIG,
           "one piece, max 1 MiB: too big");
    ok(out == NULL && outlen == 0, "  output freed");
    is_int(inflate_kib_pieces(pr.rx, z, zlen, MIB, &peak), WSG_DEFLATE_TOO_BIG,
           "1 KiB pieces: too big");
    ok(peak <= MIB + INFLATE_CHUNK, "  output never held over max + %u (%zu)",
       INFLATE_CHUNK, peak);
    expect_hello(pr.rx, hello_z, sizeof(hello_z), "after a bomb, a message");
    free(z);
    pair_free(&pr);

    pr = pair_new(false, 15, 9);
    wsg_deflate_compress(pr.tx, zeros, MIB, &z, &zlen);
    is_int(inflate_all(pr.rx, z, zlen, MIB - 1, &out, &outlen),
           WSG_DEFLATE_TOO_BIG, "1 MiB with max 1 MiB - 1: too big");
    is_int(inflate_all(pr.rx, z, zlen, MIB, &out, &outlen), 0,
           "1 MiB with max 1 MiB: fits");
    is_uint(outlen, MIB, "  all of it");
    free(out);
    is_int(inflate_kib_pieces(pr.rx, z, zlen, MIB, &peak), 0,
           "in pieces: fits");
    free(z);
    pair_free(&pr);
    free(zeros);
}

static void
test_corrupt(void)
{
    static const struct {
        const char *what;
        const char *z;
        size_t len;
    } bad[] = {
        {"reserved block type", "\xff", 1},
        {"reserved block type, not final", "\x06\x00", 2},
        {"stored block with a bad NLEN", "\x00\x05\x00\x00\x00Hello", 10},
        {"stored block cut short", "\x00\x05\x00\xfa\xffHel", 8},
        {"reference before the start", "\xf2\x00\x11\x00\x00", 5},
        {"compressed block cut short", "\xf2\x48\xcd", 3},
        {"bad code lengths", "\x05\xff\xff\xff\xff", 5},
    };
    struct wsg_deflate *d = rx_new(false, 15);
    uint8_t *out;
    size_t outlen;

    note("corrupt data");
    for (size_t i = 0; i < WSG_NELEMS(bad); i++) {
        int rc = inflate_all(d, (const uint8_t *) bad[i].z, bad[i].len, MIB,
                             &out, &outlen);
        is_int(rc, WSG_ERROR, "%s", bad[i].what);
        ok(out == NULL && outlen == 0, "  no output left");
        free(out);
    }
    out = NULL;
    outlen = 0;
    is_int(wsg_deflate_inflate(d, guarded(hello_z, 3), 3, false, MIB, &out,
                               &outlen),
           0, "a good first piece");
    is_int(wsg_deflate_inflate(d, guarded("\xff\xff", 2), 2, true, MIB, &out,
                               &outlen),
           WSG_ERROR, "a corrupt last piece");
    ok(out == NULL && outlen == 0, "  frees the first piece's output");
    expect_hello(d, hello_z, sizeof(hello_z), "and the next message inflates");
    wsg_deflate_free(d);
}

static void
test_new(void)
{
    struct wsg_deflate_conf conf = conf_default();
    struct wsg_deflate_params p = {false, false, 15, 15};
    struct wsg_deflate *d;

    note("wsg_deflate_new limits");
    p.server_max_window_bits = 8;
    ok(wsg_deflate_new(&p, &conf) == NULL, "server window 8 is refused");
    p.server_max_window_bits = 16;
    ok(wsg_deflate_new(&p, &conf) == NULL, "server window 16 is refused");
    p.server_max_window_bits = 9;
    p.client_max_window_bits = 7;
    ok(wsg_deflate_new(&p, &conf) == NULL, "client window 7 is refused");
    p.client_max_window_bits = 8;
    d = wsg_deflate_new(&p, &conf);
    ok(d != NULL, "windows 9 and 8 are taken");
    wsg_deflate_free(d);
    conf.level = 10;
    ok(wsg_deflate_new(&p, &conf) == NULL, "level 10 is refused");
    conf.level = 6;
    conf.mem_level = 0;
    ok(wsg_deflate_new(&p, &conf) == NULL, "memLevel 0 is refused");
    wsg_deflate_free(NULL);
    ok(1, "freeing NULL is a no-op");
}

int
main(void)
{
    guard_init();
    test_negotiate_table();
    test_negotiate_api();
    test_round_trips();
    test_rfc_inflate();
    test_rfc_compress();
    test_empty_messages();
    test_pieces();
    test_windows();
    test_bomb();
    test_corrupt();
    test_new();
    return done_testing();
}
