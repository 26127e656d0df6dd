/*
 * The PROXY protocol, versions 1 (a text line) and 2 (binary), as HAProxy's
 * proxy-protocol.txt defines them. The reader refuses input as soon as its
 * first bytes can no longer start either signature, so a connection that
 * does not send a header is not kept waiting, and it bounds every length
 * before waiting for the bytes it announces.
 */
#include "config.h"

#include "net/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/str.h"

/* §2.1: "PROXY TCP6 " + two full IPv6 addresses + two ports + CRLF */
#define V1_MAX      107
#define V1_SIG      "PROXY "
/* The 16 bytes before a v2 header's address block. */
#define V2_HEADER   16
/* §2.2 allows 64 KiB of TLVs; a gateway needs none of them, so the block
 * after the header is capped at an IPv6 address block plus 512 bytes */
#define V2_BODY_MAX (WSG_PROXY_READ_MAX - V2_HEADER)

#define V2_LOCAL 0x20
#define V2_PROXY 0x21
#define V2_TCP4  0x11
#define V2_TCP6  0x21

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

_Static_assert(V1_MAX <= WSG_PROXY_HEADER_MAX, "a v1 line fits the buffer");
_Static_assert(V2_HEADER + 36 <= WSG_PROXY_HEADER_MAX,
               "a v2 TCP6 header fits the buffer");

/* The family both ends share, when v1 and v2 can carry it; else AF_UNSPEC. */
static int
shared_family(const struct sockaddr *src, const struct sockaddr *dst)
{
    if (src == NULL || dst == NULL || src->sa_family != dst->sa_family) {
        return AF_UNSPEC;
    }
    if (src->sa_family != AF_INET && src->sa_family != AF_INET6) {
        return AF_UNSPEC;
    }
    return src->sa_family;
}

/*
 * Copies the address (network order) of <sa> of family <family> into
 * <addr> (4 or 16 bytes) and its port into <port> (2 bytes); returns the
 * address's length. memcpy, because <sa> need not be aligned for its type.
 */
static size_t
addr_bytes(int family, const struct sockaddr *sa, uint8_t *addr, uint8_t *port)
{
    if (family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        memcpy(addr, &in.sin_addr, 4);
        memcpy(port, &in.sin_port, 2);
        return 4;
    }
    struct sockaddr_in6 in6;
    memcpy(&in6, sa, sizeof(in6));
    memcpy(addr, &in6.sin6_addr, 16);
    memcpy(port, &in6.sin6_port, 2);
    return 16;
}

static size_t
write_v1(uint8_t *out, int family, const struct sockaddr *src,
         const struct sockaddr *dst)
{
    if (family == AF_UNSPEC) {
        memcpy(out, "PROXY UNKNOWN\r\n", 15);
        return 15;
    }
    uint8_t a[16], b[16], sp[2], dp[2];
    char as[INET6_ADDRSTRLEN], bs[INET6_ADDRSTRLEN];
    addr_bytes(family, src, a, sp);
    addr_bytes(family, dst, b, dp);
    if (inet_ntop(family, a, as, sizeof(as)) == NULL ||
        inet_ntop(family, b, bs, sizeof(bs)) == NULL) {
        memcpy(out, "PROXY UNKNOWN\r\n", 15); /* cannot happen: sizes fit */
        return 15;
    }
    /* the longest, two full IPv6 addresses, is 104 bytes */
    int n = snprintf((char *) out, V1_MAX + 1, "PROXY %s %s %s %u %u\r\n",
                     family == AF_INET ? "TCP4" : "TCP6", as, bs,
                     (unsigned) (sp[0] << 8 | sp[1]),
                     (unsigned) (dp[0] << 8 | dp[1]));
    return (size_t) n;
}

static size_t
write_v2(uint8_t *out, int family, const struct sockaddr *src,
         const struct sockaddr *dst)
{
    memcpy(out, v2_sig, sizeof(v2_sig));
    if (family == AF_UNSPEC) {
        out[12] = V2_LOCAL;
        out[13] = 0x00;
        out[14] = 0;
        out[15] = 0;
        return V2_HEADER;
    }
    out[12] = V2_PROXY;
    out[13] = family == AF_INET ? V2_TCP4 : V2_TCP6;
    /* §2.2: source address, destination address, source port, dest port */
    uint8_t *p = out + V2_HEADER;
    uint8_t sp[2], dp[2];
    size_t alen = addr_bytes(family, src, p, sp);
    addr_bytes(family, dst, p + alen, dp);
    memcpy(p + 2 * alen, sp, 2);
    memcpy(p + 2 * alen + 2, dp, 2);
    size_t body = 2 * alen + 4;
    out[14] = 0;
    out[15] = (uint8_t) body;
    return V2_HEADER + body;
}

size_t
wsg_proxy_protocol_write(uint8_t *out, int version, const struct sockaddr *src,
                         const struct sockaddr *dst)
{
    int family = shared_family(src, dst);

    return version == 2 ? write_v2(out, family, src, dst)
                        : write_v1(out, family, src, dst);
}

/* Whether the <len> bytes at <p> can still start signature <sig>/<n>. */
static bool
starts(const uint8_t *p, size_t len, const void *sig, size_t n)
{
    return memcmp(p, sig, len < n ? len : n) == 0;
}

/* Parses the v1 address <s> of <family> and port <port> into <sa>. */
static int
v1_endpoint(int family, struct wsg_str s, struct wsg_str port,
            struct sockaddr_storage *sa)
{
    char buf[INET6_ADDRSTRLEN];
    uint64_t n;

    if (s.len >= sizeof(buf) ||
        wsg_str_parse_uint(port.p, port.len, 65535, &n) != 0) {
        return WSG_ERROR;
    }
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    memset(sa, 0, sizeof(*sa));
    if (family == AF_INET) {
        struct sockaddr_in in = {.sin_family = AF_INET};
        in.sin_port = htons((uint16_t) n);
        if (inet_pton(AF_INET, buf, &in.sin_addr) != 1) {
            return WSG_ERROR;
        }
        memcpy(sa, &in, sizeof(in));
        return 0;
    }
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    in6.sin6_port = htons((uint16_t) n);
    if (inet_pton(AF_INET6, buf, &in6.sin6_addr) != 1) {
        return WSG_ERROR;
    }
    memcpy(sa, &in6, sizeof(in6));
    return 0;
}

/*
 * Splits <s>/<len> at single spaces into at most <max> fields; returns
 * how many, or max + 1 when there are more. Empty fields are kept, and
 * fail later as addresses or ports.
 */
static size_t
split(const char *s, size_t len, struct wsg_str *f, size_t max)
{
    size_t n = 0;
    const char *end = s + len;

    for (;;) {
        const char *sp = memchr(s, ' ', (size_t) (end - s));
        if (n == max) {
            return max + 1;
        }
        f[n].p = s;
        f[n].len = (size_t) ((sp != NULL ? sp : end) - s);
        n++;
        if (sp == NULL) {
            return n;
        }
        s = sp + 1;
    }
}

/* Parses the v1 line <s>/<len>, after "PROXY " and before CRLF. */
static int
v1_fields(const char *s, size_t len, struct sockaddr_storage *src,
          const char **why)
{
    struct wsg_str f[5];
    struct sockaddr_storage from, to;

    /* §2.1: after UNKNOWN the receiver ignores the rest of the line */
    if (len >= 7 && memcmp(s, "UNKNOWN", 7) == 0 && (len == 7 || s[7] == ' ')) {
        memset(src, 0, sizeof(*src));
        src->ss_family = AF_UNSPEC;
        return 0;
    }
    if (split(s, len, f, 5) != 5) {
        *why = wsg_str_eq(f[0], "TCP4") || wsg_str_eq(f[0], "TCP6")
                   ? "malformed v1 header"
                   : "unsupported v1 protocol";
        return WSG_ERROR;
    }
    int family = wsg_str_eq(f[0], "TCP4")   ? AF_INET
                 : wsg_str_eq(f[0], "TCP6") ? AF_INET6
                                            : AF_UNSPEC;
    if (family == AF_UNSPEC) {
        *why = "unsupported v1 protocol";
        return WSG_ERROR;
    }
    if (v1_endpoint(family, f[1], f[3], &from) != 0 ||
        v1_endpoint(family, f[2], f[4], &to) != 0) {
        *why = "malformed v1 header";
        return WSG_ERROR;
    }
    *src = from;
    return 0;
}

static int
read_v1(const uint8_t *p, size_t len, struct sockaddr_storage *src,
        const char **why)
{
    size_t sig = sizeof(V1_SIG) - 1;

    if (len < sig) {
        return WSG_AGAIN;
    }
    const uint8_t *nl = memchr(p, '\n', len < V1_MAX ? len : V1_MAX);
    if (nl == NULL) {
        if (len >= V1_MAX) {
            *why = "v1 header over 107 bytes";
            return WSG_ERROR;
        }
        return WSG_AGAIN;
    }
    size_t end = (size_t) (nl - p) + 1;
    if (end < sig + 2 || p[end - 2] != '\r') {
        *why = "v1 header not ended by CRLF";
        return WSG_ERROR;
    }
    if (v1_fields((const char *) p + sig, end - sig - 2, src, why) != 0) {
        return WSG_ERROR;
    }
    return (int) end;
}

/*
 * Checks that the TLVs at <p>/<len> (type, 2-byte length, value) fill it
 * exactly; their contents are not needed.
 */
static int
v2_tlvs(const uint8_t *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (len - i < 3) {
            return WSG_ERROR;
        }
        size_t n = (size_t) (p[i + 1] << 8 | p[i + 2]);
        if (n > len - i - 3) {
            return WSG_ERROR;
        }
        i += 3 + n;
    }
    return 0;
}

/* Fills <src> from a PROXY command's address block <p> of <family>. */
static void
v2_source(uint8_t family, const uint8_t *p, struct sockaddr_storage *src)
{
    memset(src, 0, sizeof(*src));
    if (family == V2_TCP4) {
        struct sockaddr_in in = {.sin_family = AF_INET};
        memcpy(&in.sin_addr, p, 4);
        memcpy(&in.sin_port, p + 8, 2);
        memcpy(src, &in, sizeof(in));
    } else if (family == V2_TCP6) {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        memcpy(&in6.sin6_addr, p, 16);
        memcpy(&in6.sin6_port, p + 32, 2);
        memcpy(src, &in6, sizeof(in6));
    } else {
        src->ss_family = AF_UNSPEC;
    }
}

/*
 * The address block length of a v2 header: by family for PROXY (or -1
 * for a family a TCP listener cannot have received), 0 for LOCAL, whose
 * block is skipped whole (§2.2).
 */
static int
v2_addr_len(uint8_t cmd, uint8_t family)
{
    if (cmd == V2_LOCAL) {
        return 0;
    }
    switch (family) {
    case 0x00: /* AF_UNSPEC: keep the socket's own addresses */
        return 0;
    case V2_TCP4:
        return 12;
    case V2_TCP6:
        return 36;
    default:
        return -1;
    }
}

/* Judges the 16-byte v2 header as its bytes come in. */
static int
v2_header(const uint8_t *p, size_t len, int *alen, const char **why)
{
    if (len <= 12) {
        return WSG_AGAIN;
    }
    if ((p[12] & 0xF0) != 0x20) {
        *why = "unsupported v2 version";
        return WSG_ERROR;
    }
    if (p[12] != V2_LOCAL && p[12] != V2_PROXY) {
        *why = "unsupported v2 command";
        return WSG_ERROR;
    }
    if (len <= 13) {
        return WSG_AGAIN;
    }
    *alen = v2_addr_len(p[12], p[13]);
    if (*alen < 0) {
        *why = "unsupported v2 address family";
        return WSG_ERROR;
    }
    if (len < V2_HEADER) {
        return WSG_AGAIN;
    }
    size_t body = (size_t) (p[14] << 8 | p[15]);
    if (body > V2_BODY_MAX) {
        *why = "v2 header over its size limit";
        return WSG_ERROR;
    }
    if (body < (size_t) *alen) {
        *why = "v2 address block too short";
        return WSG_ERROR;
    }
    return (int) body;
}

static int
read_v2(const uint8_t *p, size_t len, struct sockaddr_storage *src,
        const char **why)
{
    int alen = 0;
    int body = v2_header(p, len, &alen, why);

    if (body < 0) {
        return body;
    }
    size_t total = V2_HEADER + (size_t) body;
    if (len < total) {
        return WSG_AGAIN;
    }
    /* with LOCAL or AF_UNSPEC the block is not ours to read (§2.2) */
    if (alen > 0 &&
        v2_tlvs(p + V2_HEADER + alen, (size_t) (body - alen)) != 0) {
        *why = "malformed v2 TLV";
        return WSG_ERROR;
    }
    if (p[12] == V2_PROXY) {
        v2_source(p[13], p + V2_HEADER, src);
    } else {
        memset(src, 0, sizeof(*src));
        src->ss_family = AF_UNSPEC;
    }
    return (int) total;
}

int
wsg_proxy_protocol_read(const uint8_t *p, size_t len,
                        struct sockaddr_storage *src, const char **why)
{
    if (len == 0) {
        return WSG_AGAIN;
    }
    if (starts(p, len, V1_SIG, sizeof(V1_SIG) - 1)) {
        return read_v1(p, len, src, why);
    }
    if (starts(p, len, v2_sig, sizeof(v2_sig))) {
        if (len < sizeof(v2_sig)) {
            return WSG_AGAIN;
        }
        return read_v2(p, len, src, why);
    }
    *why = "not a PROXY header";
    return WSG_ERROR;
}
