/*
 * permessage-deflate (RFC 7692): negotiation (§5, §7.1), compression
 * (§7.2.1) and bounded inflation (§7.2.2). Header values are parsed by the
 * extension grammar of RFC 6455 §9.1 with RFC 9110 §5.6 tokens and quoted
 * strings. Inflated output never grows past the caller's limit plus one
 * byte, which is how a message one byte too big is told apart.
 */
#include "config.h"

#include "ws/deflate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>

#include "core/alloc.h"
#include "core/core.h"

/*
 * What a bad offer costs. RFC 7692 §5 says a server declines an offer it
 * cannot accept, and an offer with an unknown or repeated parameter, a
 * value where none belongs (or none where one is required), or a window
 * size that is not 8..15 without leading zeros (§7.1.2) is only declined:
 * the next offer is tried, and with none left the handshake goes on
 * without compression. A header that breaks the grammar itself (an empty
 * or non-token extension or parameter name, an unbalanced or invalid
 * quoted string, a stray character where ";", "," or the end belong) is
 * refused whole with WSG_ERROR (400), wherever in the list it sits,
 * because we cannot know what the client meant. Empty list elements
 * (", ,") are skipped, as RFC 9110 §5.6.1 asks of recipients.
 *
 * A window of 2^8: zlib refuses raw deflate with windowBits 8 (older
 * versions silently used 9), so we cannot promise it through zlib's API
 * and an offer holding us to server_max_window_bits=8 is declined. A
 * configured 8 becomes 9, and the response says so. Inflating with 8 is
 * fine, so client_max_window_bits=8 is granted as configured.
 */

#define WBITS_MAX      15
#define WBITS_ZLIB_MIN 9
#define INFLATE_CHUNK  16384 /* first and smallest growth of inflate output */
#define DEFLATE_CHUNK  4096  /* smallest growth of compressed output */

/* The empty stored block a sync flush ends with (RFC 7692 §7.2.1). */
static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- negotiation ---- */

enum param_id {
    P_SERVER_NCT,
    P_CLIENT_NCT,
    P_SERVER_BITS,
    P_CLIENT_BITS,
    P_COUNT
};

static const char *const param_names[P_COUNT] = {
    [P_SERVER_NCT] = "server_no_context_takeover",
    [P_CLIENT_NCT] = "client_no_context_takeover",
    [P_SERVER_BITS] = "server_max_window_bits",
    [P_CLIENT_BITS] = "client_max_window_bits",
};

/* One extension of the list, as far as permessage-deflate cares. */
struct offer {
    bool is_deflate;
    bool declined; /* a parameter we cannot accept (see above) */
    unsigned seen; /* 1 << enum param_id, to catch repeats */
    bool server_nct;
    bool client_nct;
    int server_bits; /* 0: not offered */
    int client_bits; /* 15 when offered without a value */
    bool has_client_bits;
};

struct param {
    struct wsg_str name;
    struct wsg_str value; /* between the quotes, escapes left in */
    bool has_value;
};

struct cursor {
    const char *p;
    const char *end;
};

/* tchar of RFC 9110 §5.6.2, without the locale that isalnum() consults */
static bool
is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z')) {
        return true;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void
skip_ows(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) {
        c->p++;
    }
}

static bool
at(const struct cursor *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static struct wsg_str
token(struct cursor *c)
{
    const char *start = c->p;

    while (c->p < c->end && is_tchar((unsigned char) *c->p)) {
        c->p++;
    }
    return (struct wsg_str){start, (size_t) (c->p - start)};
}

/*
 * Reads a quoted-string whose opening quote is at the cursor (RFC 9110
 * §5.6.4: qdtext and quoted-pair; obs-text is allowed). Returns 0 with the
 * slice between the quotes, or WSG_ERROR.
 */
static int
quoted(struct cursor *c, struct wsg_str *out)
{
    const char *start = ++c->p;

    while (c->p < c->end) {
        unsigned char ch = (unsigned char) *c->p;
        if (ch == '"') {
            *out = (struct wsg_str){start, (size_t) (c->p - start)};
            c->p++;
            return WSG_OK;
        }
        if (ch == '\\') {
            if (++c->p == c->end) {
                break;
            }
            ch = (unsigned char) *c->p;
        }
        if (ch != '\t' && (ch < 0x20 || ch == 0x7f)) {
            return WSG_ERROR;
        }
        c->p++;
    }
    return WSG_ERROR;
}

/* Reads `name [ = token / quoted-string ]` after a ";". */
static int
read_param(struct cursor *c, struct param *prm)
{
    skip_ows(c);
    prm->name = token(c);
    prm->has_value = false;
    if (prm->name.len == 0) {
        return WSG_ERROR;
    }
    skip_ows(c);
    if (!at(c, '=')) {
        return WSG_OK;
    }
    c->p++;
    skip_ows(c);
    prm->has_value = true;
    if (at(c, '"')) {
        return quoted(c, &prm->value);
    }
    prm->value = token(c);
    return prm->value.len > 0 ? WSG_OK : WSG_ERROR;
}

/*
 * A window size: 8..15 in decimal without leading zeros (RFC 7692 §7.1.2),
 * after undoing quoted-pairs (§7.1: a quoted value must unescape to a
 * token). Returns the size, or 0 if the value is not one.
 */
static int
window_bits(const struct param *prm)
{
    char digits[2];
    size_t n = 0;

    if (!prm->has_value) {
        return 0;
    }
    for (size_t i = 0; i < prm->value.len; i++) {
        if (prm->value.p[i] == '\\') {
            i++; /* quoted() guarantees a byte follows */
        }
        if (n == sizeof(digits)) {
            return 0;
        }
        digits[n++] = prm->value.p[i];
    }
    uint64_t v;
    if (n == 0 || digits[0] == '0' ||
        wsg_str_parse_uint(digits, n, WBITS_MAX, &v) != WSG_OK || v < 8) {
        return 0;
    }
    return (int) v;
}

/* Records one parameter of a permessage-deflate offer. */
static void
apply_param(struct offer *o, const struct param *prm)
{
    size_t id = 0;
    bool good = false;

    while (id < P_COUNT && !wsg_str_caseeq(prm->name, param_names[id])) {
        id++;
    }
    if (id == P_COUNT || (o->seen & (1u << id)) != 0) {
        o->declined = true;
        return;
    }
    o->seen |= 1u << id;
    switch (id) {
    case P_SERVER_NCT:
        o->server_nct = true;
        good = !prm->has_value;
        break;
    case P_CLIENT_NCT:
        o->client_nct = true;
        good = !prm->has_value;
        break;
    case P_SERVER_BITS:
        o->server_bits = window_bits(prm);
        good = o->server_bits != 0;
        break;
    default:
        /* without a value the client only says it understands the param */
        o->has_client_bits = true;
        o->client_bits = prm->has_value ? window_bits(prm) : WBITS_MAX;
        good = o->client_bits != 0;
        break;
    }
    if (!good) {
        o->declined = true;
    }
}

/* Reads one list element `name *( ; param )`; the cursor is at its name. */
static int
read_offer(struct cursor *c, struct offer *o)
{
    struct wsg_str name = token(c);

    *o = (struct offer){0};
    if (name.len == 0) {
        return WSG_ERROR;
    }
    o->is_deflate = wsg_str_caseeq(name, "permessage-deflate");
    for (;;) {
        skip_ows(c);
        if (!at(c, ';')) {
            return WSG_OK;
        }
        c->p++;
        struct param prm;
        if (read_param(c, &prm) != WSG_OK) {
            return WSG_ERROR;
        }
        if (o->is_deflate) {
            apply_param(o, &prm);
        }
    }
}

static bool
acceptable(const struct offer *o)
{
    /* 8 bits is below what zlib can compress with (see the top) */
    return o->is_deflate && !o->declined && o->server_bits != 8;
}

/*
 * Checks the grammar of one header value and keeps the first acceptable
 * offer in <first> unless one was found before. Returns 0 or WSG_ERROR.
 */
static int
scan_value(struct wsg_str v, struct offer *first, bool *found)
{
    struct cursor c = {v.p, v.p + v.len};

    for (;;) {
        skip_ows(&c);
        if (c.p == c.end) {
            return WSG_OK;
        }
        if (at(&c, ',')) {
            c.p++;
            continue;
        }
        struct offer o;
        if (read_offer(&c, &o) != WSG_OK) {
            return WSG_ERROR;
        }
        if (!*found && acceptable(&o)) {
            *first = o;
            *found = true;
        }
        skip_ows(&c);
        if (c.p != c.end && !at(&c, ',')) {
            return WSG_ERROR;
        }
    }
}

static int
min_int(int a, int b)
{
    return a < b ? a : b;
}

/* Settles the parameters of an acceptable offer with <conf>. */
static void
agree(const struct wsg_deflate_conf *conf, const struct offer *o,
      struct wsg_deflate_params *p)
{
    int server_bits = conf->server_max_window_bits;

    if (o->server_bits != 0) {
        server_bits = min_int(server_bits, o->server_bits);
    }
    /* a configured 8 is our own cap, not a promise: 9 is the least zlib
       compresses with, and the response tells the client so */
    if (server_bits < WBITS_ZLIB_MIN) {
        server_bits = WBITS_ZLIB_MIN;
    }
    p->server_max_window_bits = server_bits;
    p->server_no_context_takeover =
        o->server_nct || conf->server_no_context_takeover;
    p->client_no_context_takeover =
        o->client_nct || conf->client_no_context_takeover;
    /* §7.1.2.2: without the param in the offer we must not send it, and
       the client keeps its 2^15 window */
    p->client_max_window_bits = WBITS_MAX;
    if (o->has_client_bits) {
        p->client_max_window_bits =
            min_int(conf->client_max_window_bits, o->client_bits);
    }
}

/*
 * Writes the response for <p>. server_max_window_bits is echoed whenever
 * the client offered it (§7.1.2.1: that is how the offer is accepted) and
 * otherwise only when it says something. Returns false if <resp> is short.
 */
static bool
write_response(const struct wsg_deflate_params *p, bool echo_server_bits,
               char *resp, size_t resplen)
{
    char sb[48] = "";
    char cb[48] = "";

    if (echo_server_bits || p->server_max_window_bits < WBITS_MAX) {
        snprintf(sb, sizeof(sb), "; server_max_window_bits=%d",
                 p->server_max_window_bits);
    }
    if (p->client_max_window_bits < WBITS_MAX) {
        snprintf(cb, sizeof(cb), "; client_max_window_bits=%d",
                 p->client_max_window_bits);
    }
    int n = snprintf(
        resp, resplen, "permessage-deflate%s%s%s%s",
        p->server_no_context_takeover ? "; server_no_context_takeover" : "",
        p->client_no_context_takeover ? "; client_no_context_takeover" : "", sb,
        cb);
    return n >= 0 && (size_t) n < resplen;
}

int
wsg_deflate_negotiate(const struct wsg_deflate_conf *conf,
                      const struct wsg_str *values, size_t n,
                      struct wsg_deflate_params *out, char *resp,
                      size_t resplen)
{
    struct offer first;
    bool found = false;

    if (!conf->enabled) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (scan_value(values[i], &first, &found) != WSG_OK) {
            return WSG_ERROR;
        }
    }
    if (!found) {
        return 0;
    }
    struct wsg_deflate_params p;
    agree(conf, &first, &p);
    if (!write_response(&p, first.server_bits != 0, resp, resplen)) {
        return 0;
    }
    *out = p;
    return 1;
}

/* ---- compression and inflation ---- */

/*
 * One per session, owned by it. inf's window bounds how far a client's
 * message may refer back across inflate() calls; within one call zlib
 * also reads back from the output buffer, so a client that overshoots its
 * window inside a message goes unnoticed, which costs nothing: the output
 * stays bounded.
 */
struct wsg_deflate {
    z_stream def;   /* our messages; set up on the first one, since
                       deflate state is ~256 KiB at 15 bits and memLevel
                       8 and many sessions never send compressed */
    z_stream inf;   /* the client's messages */
    bool def_ready; /* def is initialised */
    bool inf_ended; /* inf hit a BFINAL block and nothing followed */
    bool inf_fed;   /* the current message has had a byte */
    int inf_bits;   /* inf window, log2 */
    size_t inf_cap; /* bytes allocated at the caller's *out while a
                       message is inflated in pieces */
    struct wsg_deflate_params p;
    int level;     /* zlib level */
    int mem_level; /* zlib memLevel */
};

/* zlib allocates through us, so running out of memory aborts here too. */
static voidpf
zalloc(voidpf opaque, uInt items, uInt size)
{
    (void) opaque;
    return wsg_malloc((size_t) items * size);
}

static void
zfree(voidpf opaque, voidpf ptr)
{
    (void) opaque;
    free(ptr);
}

static bool
in_range(int v, int lo, int hi)
{
    return v >= lo && v <= hi;
}

struct wsg_deflate *
wsg_deflate_new(const struct wsg_deflate_params *p,
                const struct wsg_deflate_conf *conf)
{
    /* checked here so that the deferred deflateInit2() cannot fail on them */
    if (!in_range(p->server_max_window_bits, WBITS_ZLIB_MIN, WBITS_MAX) ||
        !in_range(p->client_max_window_bits, 8, WBITS_MAX) ||
        !in_range(conf->level, 0, 9) || !in_range(conf->mem_level, 1, 9)) {
        return NULL;
    }
    struct wsg_deflate *d = wsg_calloc(1, sizeof(*d));
    d->p = *p;
    d->level = conf->level;
    d->mem_level = conf->mem_level;
    d->inf_bits = p->client_max_window_bits;
    d->inf.zalloc = zalloc;
    d->inf.zfree = zfree;
    /* negative windowBits: raw deflate, no zlib header or checksum */
    if (inflateInit2(&d->inf, -d->inf_bits) != Z_OK) {
        free(d);
        return NULL;
    }
    return d;
}

void
wsg_deflate_free(struct wsg_deflate *d)
{
    if (d == NULL) {
        return;
    }
    if (d->def_ready) {
        deflateEnd(&d->def);
    }
    inflateEnd(&d->inf);
    free(d);
}

/* A growing output buffer: <p> holds <len> bytes in <cap>. */
struct outbuf {
    uint8_t *p;
    size_t len;
    size_t cap;
    size_t limit; /* cap never exceeds it */
};

/*
 * Makes room past <len>: doubles, starting at <chunk>, without passing
 * <limit>. Returns false when the buffer is full at its limit.
 */
static bool
reserve(struct outbuf *b, size_t chunk)
{
    if (b->len < b->cap) {
        return true;
    }
    if (b->len >= b->limit) {
        return false;
    }
    size_t grow = b->len < chunk ? chunk : b->len;
    size_t cap = b->limit - b->len < grow ? b->limit : b->len + grow;
    b->p = wsg_realloc(b->p, cap);
    b->cap = cap;
    return true;
}

static size_t
min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static int
start_deflate(struct wsg_deflate *d)
{
    d->def.zalloc = zalloc;
    d->def.zfree = zfree;
    if (deflateInit2(&d->def, d->level, Z_DEFLATED,
                     -d->p.server_max_window_bits, d->mem_level,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        return WSG_ERROR;
    }
    d->def_ready = true;
    return WSG_OK;
}

/* Compresses <in>/<len> onto <b> and sync-flushes. */
static int
deflate_all(z_stream *z, const uint8_t *in, size_t len, struct outbuf *b)
{
    size_t off = 0;

    z->next_in = in;
    z->avail_in = 0;
    do {
        /* avail_in is 32 bits: feed a longer message in slices */
        if (z->avail_in == 0 && off < len) {
            size_t n = min_size(len - off, UINT_MAX);
            z->next_in = in + off;
            z->avail_in = (uInt) n;
            off += n;
        }
        if (!reserve(b, DEFLATE_CHUNK)) {
            return WSG_ERROR;
        }
        size_t room = min_size(b->cap - b->len, UINT_MAX);
        z->next_out = b->p + b->len;
        z->avail_out = (uInt) room;
        int rc = deflate(z, off == len ? Z_SYNC_FLUSH : Z_NO_FLUSH);
        b->len += room - z->avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return WSG_ERROR;
        }
        /* a full output buffer may hide more of the flush (zlib.h) */
    } while (off < len || z->avail_in > 0 || z->avail_out == 0);
    return WSG_OK;
}

int
wsg_deflate_compress(struct wsg_deflate *d, const uint8_t *in, size_t len,
                     uint8_t **out, size_t *outlen)
{
    struct outbuf b = {NULL, 0, 0, SIZE_MAX};

    *out = NULL;
    *outlen = 0;
    if (len == 0) {
        /* An empty stored block, tail removed. zlib answers a second sync
           flush in a row without input with Z_BUF_ERROR and no bytes, and
           the block changes no compression state. */
        *out = wsg_calloc(1, 1);
        *outlen = 1;
        return WSG_OK;
    }
    if (!d->def_ready && start_deflate(d) != WSG_OK) {
        return WSG_ERROR;
    }
    if (deflate_all(&d->def, in, len, &b) != WSG_OK || b.len < sizeof(tail) ||
        memcmp(b.p + b.len - sizeof(tail), tail, sizeof(tail)) != 0) {
        /* the window may hold bytes the client never received */
        deflateReset(&d->def);
        free(b.p);
        return WSG_ERROR;
    }
    if (d->p.server_no_context_takeover) {
        deflateReset(&d->def);
    }
    b.len -= sizeof(tail);
    *out = wsg_realloc(b.p, b.len);
    *outlen = b.len;
    return WSG_OK;
}

/*
 * Inflates <in>/<len> onto <b>, setting <used> to the bytes taken.
 * Returns 1 if the deflate stream ended (a BFINAL block), 0 when <in> is
 * used up, WSG_DEFLATE_TOO_BIG or WSG_ERROR.
 */
static int
inflate_run(z_stream *z, const uint8_t *in, size_t len, struct outbuf *b,
            size_t *used)
{
    *used = 0;
    do {
        if (!reserve(b, INFLATE_CHUNK)) {
            return WSG_DEFLATE_TOO_BIG;
        }
        size_t n = min_size(len - *used, UINT_MAX);
        size_t room = min_size(b->cap - b->len, UINT_MAX);
        z->next_in = in + *used;
        z->avail_in = (uInt) n;
        z->next_out = b->p + b->len;
        z->avail_out = (uInt) room;
        int rc = inflate(z, Z_SYNC_FLUSH);
        *used += n - z->avail_in;
        b->len += room - z->avail_out;
        if (rc == Z_STREAM_END) {
            return 1;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return WSG_ERROR;
        }
        /* with the input used up, a full buffer may still hide the rest
           of a match */
    } while (*used < len || z->avail_out == 0);
    return 0;
}

/*
 * Starts a new deflate stream after a BFINAL block (RFC 7692 §7.2.3.4)
 * keeping the window, since later blocks may still refer back into it.
 */
static void
restart_inflate(struct wsg_deflate *d)
{
    uint8_t *dict = wsg_malloc((size_t) 1 << d->inf_bits);
    uInt n = 0;

    inflateGetDictionary(&d->inf, dict, &n);
    inflateReset(&d->inf);
    if (n > 0) {
        inflateSetDictionary(&d->inf, dict, n);
    }
    free(dict);
    d->inf_ended = false;
}

/* Inflates all of one piece; a BFINAL block may sit anywhere in it. */
static int
inflate_piece(struct wsg_deflate *d, const uint8_t *in, size_t len,
              struct outbuf *b)
{
    size_t off = 0;

    if (len > 0) {
        d->inf_fed = true;
    }
    while (off < len) {
        if (d->inf_ended) {
            restart_inflate(d);
        }
        size_t used;
        int rc = inflate_run(&d->inf, in + off, len - off, b, &used);
        if (rc < 0) {
            return rc;
        }
        off += used;
        d->inf_ended = rc == 1;
    }
    return WSG_OK;
}

/*
 * Ends a message: adds the 00 00 ff ff that the sender removed (§7.2.2),
 * unless its stream already ended, and checks that the data stopped
 * between blocks (zlib's data_type bit 128), which a truncated message
 * does not. A message of no bytes at all is taken as empty: a compressor
 * that skips a repeated flush (zlib's Z_BUF_ERROR) sends that, and adding
 * the tail to it would leave a stored block half read.
 */
static int
inflate_finish(struct wsg_deflate *d, struct outbuf *b)
{
    if (d->inf_fed && !d->inf_ended) {
        size_t used;
        int rc = inflate_run(&d->inf, tail, sizeof(tail), b, &used);
        if (rc < 0) {
            return rc;
        }
        d->inf_ended = rc == 1;
        if (!d->inf_ended && (d->inf.data_type & 128) == 0) {
            return WSG_ERROR;
        }
    }
    if (d->p.client_no_context_takeover) {
        inflateReset(&d->inf);
        d->inf_ended = false;
    } else if (d->inf_ended) {
        restart_inflate(d);
    }
    d->inf_fed = false;
    return WSG_OK;
}

int
wsg_deflate_inflate(struct wsg_deflate *d, const uint8_t *in, size_t len,
                    bool last, size_t max, uint8_t **out, size_t *outlen)
{
    struct outbuf b = {*out, *outlen, *out != NULL ? d->inf_cap : 0,
                       max < SIZE_MAX ? max + 1 : SIZE_MAX};

    /* one byte over <max> is what tells a message that is too big */
    if (b.cap < b.len) {
        b.cap = b.len;
    }
    int rc = b.len > max ? WSG_DEFLATE_TOO_BIG : inflate_piece(d, in, len, &b);
    if (rc == WSG_OK && last) {
        rc = inflate_finish(d, &b);
    }
    if (rc == WSG_OK && b.len > max) {
        rc = WSG_DEFLATE_TOO_BIG;
    }
    if (rc != WSG_OK) {
        /* the stream is mid-message garbage now; the session closes, but
           leave the object consistent anyway */
        free(b.p);
        inflateReset(&d->inf);
        d->inf_ended = false;
        d->inf_fed = false;
        d->inf_cap = 0;
        *out = NULL;
        *outlen = 0;
        return rc;
    }
    if (last) {
        b.p = wsg_realloc(b.p, b.len);
        b.cap = 0;
    }
    d->inf_cap = b.cap;
    *out = b.p;
    *outlen = b.len;
    return WSG_OK;
}
