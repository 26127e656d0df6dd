/*
 * Tests of src/net/proxy_protocol.h: exact v1 and v2 headers for IPv4,
 * IPv6 and unknown families, round trips, and reading (every vector whole,
 * at every split and from a copy that ends at a PROT_NONE page): UNKNOWN,
 * LOCAL, TLVs, the size limits, and input that is no PROXY header at all,
 * refused on the first byte that shows it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/core.h"
#include "net/proxy_protocol.h"
#include "tap.h"

/* Expands a string literal to its bytes and length, NULs included. */
#define LIT(s) (const uint8_t *) (s), sizeof(s) - 1

/* The v2 signature, as a string literal. */
#define SIG "\r\n\r\n\0\r\nQUIT\n"

/* The longest vector the guard buffer holds. */
#define GUARD_MAX 1024

#include "guard.h"

static struct sockaddr_storage
addr4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};

    if (inet_pton(AF_INET, ip, &in.sin_addr) != 1) {
        abort();
    }
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, &in, sizeof(in));
    return ss;
}

static struct sockaddr_storage
addr6(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6,
                               .sin6_port = htons(port)};

    if (inet_pton(AF_INET6, ip, &in6.sin6_addr) != 1) {
        abort();
    }
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, &in6, sizeof(in6));
    return ss;
}

/* "ip port" of <ss>, or "unspec", for messages and comparisons. */
static const char *
show(const struct sockaddr_storage *ss)
{
    static char buf[80];
    char ip[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, ss, sizeof(in));
        inet_ntop(AF_INET, &in.sin_addr, ip, sizeof(ip));
        snprintf(buf, sizeof(buf), "%s %u", ip, ntohs(in.sin_port));
    } else if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, ss, sizeof(in6));
        inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof(ip));
        snprintf(buf, sizeof(buf), "%s %u", ip, ntohs(in6.sin6_port));
    } else {
        snprintf(buf, sizeof(buf), "family %d", ss->ss_family);
    }
    return buf;
}

/* One read: its result, reason and source. */
struct outcome {
    int rc;
    const char *why;
    struct sockaddr_storage src;
};

static void
outcome_of(const void *in, size_t len, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->rc = wsg_proxy_protocol_read(guarded(in, len), len, &o->src, &o->why);
    if (o->rc != WSG_ERROR) {
        o->why = NULL;
    }
    if (o->rc <= 0) {
        memset(&o->src, 0, sizeof(o->src));
    }
}

static bool
same(const struct outcome *a, const struct outcome *b)
{
    return a->rc == b->rc && a->why == b->why &&
           memcmp(&a->src, &b->src, sizeof(a->src)) == 0;
}

/* As in the other decoders' tests: wait, or fail the same way early. */
static bool
prefix_agrees(const struct outcome *w, const struct outcome *o, size_t k)
{
    if (w->rc == WSG_AGAIN || (w->rc > 0 && k < (size_t) w->rc)) {
        return o->rc == WSG_AGAIN;
    }
    if (w->rc == WSG_ERROR) {
        return o->rc == WSG_AGAIN || same(o, w);
    }
    return same(o, w);
}

static struct outcome got; /* the last whole read */

/*
 * Reads <in>/<len> whole, then each shorter prefix followed by the whole,
 * checking they agree. Leaves the whole read in <got>; returns its result.
 */
static int
read_vec(const char *name, const void *in, size_t len)
{
    struct outcome o;
    size_t bad = 0;

    outcome_of(in, len, &got);
    for (size_t k = 0; k < len; k++) {
        outcome_of(in, k, &o);
        bool agree = prefix_agrees(&got, &o, k);
        outcome_of(in, len, &o);
        if ((!agree || !same(&o, &got)) && bad++ == 0) {
            note("%s: split at %zu disagrees", name, k);
        }
    }
    ok(bad == 0, "%s: every split agrees", name);
    if (got.rc == WSG_ERROR) {
        ok(got.why != NULL && got.why[0] != '\0', "%s: the error says why",
           name);
    }
    return got.rc;
}

/* Checks <in> is a header of <want> bytes from source <src> ("unspec"). */
static void
header_is(const char *name, const void *in, size_t len, int want,
          const char *src)
{
    if (is_int(read_vec(name, in, len), want, "%s: %d bytes", name, want)) {
        is_str(show(&got.src), strcmp(src, "unspec") == 0 ? "family 0" : src,
               "%s: source %s", name, src);
    }
}

static void
refused(const char *name, const void *in, size_t len, const char *why)
{
    if (is_int(read_vec(name, in, len), WSG_ERROR, "%s: refused", name)) {
        is_str(got.why, why, "%s: \"%s\"", name, why);
    }
}

/* Checks how many leading bytes of <in> it takes to refuse it. */
static void
refused_after(const char *name, const void *in, size_t len, size_t k)
{
    struct outcome o;

    outcome_of(in, k - 1, &o);
    is_int(o.rc, WSG_AGAIN, "%s: %zu bytes wait", name, k - 1);
    outcome_of(in, k, &o);
    is_int(o.rc, WSG_ERROR, "%s: refused after %zu bytes", name, k);
    (void) len;
}

/* Writes a header for <src>, <dst>; checks it is <want> and reads back. */
static void
write_is(const char *name, int version, const struct sockaddr_storage *src,
         const struct sockaddr_storage *dst, const void *want, size_t n)
{
    uint8_t out[WSG_PROXY_HEADER_MAX];
    size_t len =
        wsg_proxy_protocol_write(out, version, (const struct sockaddr *) src,
                                 (const struct sockaddr *) dst);

    is_mem(out, len, want, n, "%s: written", name);
    if (is_int(read_vec(name, out, len), (int) len, "%s: reads back", name)) {
        bool mixed = src == NULL || dst == NULL ||
                     src->ss_family != dst->ss_family ||
                     (src->ss_family != AF_INET && src->ss_family != AF_INET6);
        ok(mixed ? got.src.ss_family == AF_UNSPEC
                 : memcmp(&got.src, src, sizeof(*src)) == 0,
           "%s: the same source", name);
    }
}

static void
test_write(void)
{
    note("writing");
    struct sockaddr_storage s4 = addr4("192.0.2.1", 56324);
    struct sockaddr_storage d4 = addr4("198.51.100.2", 443);
    struct sockaddr_storage s6 = addr6("2001:db8::1", 1);
    struct sockaddr_storage d6 = addr6("2001:db8::ff", 65535);
    struct sockaddr_storage w6 =
        addr6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    struct sockaddr_storage z4 = addr4("0.0.0.0", 0);
    struct sockaddr_storage m6 = addr6("::ffff:10.1.2.3", 8080);
    struct sockaddr_storage un;
    memset(&un, 0, sizeof(un));
    un.ss_family = AF_UNIX;

    write_is("v1 TCP4", 1, &s4, &d4,
             LIT("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"));
    write_is("v1 TCP4 zeros", 1, &z4, &z4,
             LIT("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"));
    write_is("v1 TCP6", 1, &s6, &d6,
             LIT("PROXY TCP6 2001:db8::1 2001:db8::ff 1 65535\r\n"));
    write_is("v1 TCP6 longest", 1, &w6, &w6,
             LIT("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"));
    write_is("v1 TCP6 mapped IPv4", 1, &m6, &s6,
             LIT("PROXY TCP6 ::ffff:10.1.2.3 2001:db8::1 8080 1\r\n"));
    write_is("v1 mixed families", 1, &s4, &d6, LIT("PROXY UNKNOWN\r\n"));
    write_is("v1 AF_UNIX", 1, &un, &un, LIT("PROXY UNKNOWN\r\n"));
    write_is("v1 no destination", 1, &s4, NULL, LIT("PROXY UNKNOWN\r\n"));

    write_is("v2 TCP4", 2, &s4, &d4,
             LIT(SIG "\x21\x11\x00\x0c"
                     "\xc0\x00\x02\x01\xc6\x33\x64\x02\xdc\x04\x01\xbb"));
    write_is("v2 TCP6", 2, &s6, &d6,
             LIT(SIG "\x21\x21\x00\x24"
                     "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
                     "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\xff"
                     "\x00\x01\xff\xff"));
    write_is("v2 mixed families: LOCAL", 2, &s6, &d4,
             LIT(SIG "\x20\x00\x00\x00"));
    write_is("v2 AF_UNIX: LOCAL", 2, &un, &un, LIT(SIG "\x20\x00\x00\x00"));
    write_is("v2 no source: LOCAL", 2, NULL, &d4, LIT(SIG "\x20\x00\x00\x00"));
}

static void
test_read_v1(void)
{
    char line[200];

    note("reading v1");
    header_is("TCP4", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n"), 38,
              "1.2.3.4 1111");
    header_is("TCP6", LIT("PROXY TCP6 ::1 fe80::2 65535 0\r\n"), 32,
              "::1 65535");
    header_is("UNKNOWN", LIT("PROXY UNKNOWN\r\n"), 15, "unspec");
    header_is("UNKNOWN with addresses",
              LIT("PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\n"), 47,
              "unspec");
    header_is("data after the header",
              LIT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n"), 32,
              "1.2.3.4 1");
    header_is("leading zeros in a port",
              LIT("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), 34, "1.2.3.4 80");

    /* 107 bytes exactly, the limit: UNKNOWN with filler */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 105, "\r\n", 2);
    header_is("a 107-byte line", line, 107, 107, "unspec");
    memcpy(line + 105, "x\r\n", 3);
    refused("a 108-byte line", line, 108, "v1 header over 107 bytes");
    refused("107 bytes without CRLF", line, 107, "v1 header over 107 bytes");
    is_int(read_vec("106 bytes without CRLF", line, 106), WSG_AGAIN,
           "106 bytes without CRLF: waits");
}

static void
test_read_v1_refused(void)
{
    note("v1 headers refused");
    refused("LF without CR", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
            "v1 header not ended by CRLF");
    refused("CR inside", LIT("PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"),
            "malformed v1 header");
    refused("TCP5", LIT("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"),
            "unsupported v1 protocol");
    refused("UDP4", LIT("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            "unsupported v1 protocol");
    refused("nothing", LIT("PROXY \r\n"), "unsupported v1 protocol");
    refused("UNKNOWNX", LIT("PROXY UNKNOWNX\r\n"), "unsupported v1 protocol");
    refused("lower case", LIT("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"),
            "unsupported v1 protocol");
    refused("no ports", LIT("PROXY TCP4 1.2.3.4 5.6.7.8\r\n"),
            "malformed v1 header");
    refused("one port", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
            "malformed v1 header");
    refused("a field too many", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
            "malformed v1 header");
    refused("a trailing space", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
            "malformed v1 header");
    refused("two spaces", LIT("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
            "malformed v1 header");
    refused("port 65536", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
            "malformed v1 header");
    refused("port -1", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"),
            "malformed v1 header");
    refused("port +1", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
            "malformed v1 header");
    refused("bad destination port", LIT("PROXY TCP4 1.2.3.4 5.6.7.8 1 x\r\n"),
            "malformed v1 header");
    refused("three-part IPv4", LIT("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"),
            "malformed v1 header");
    refused("IPv4 octet 256", LIT("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"),
            "malformed v1 header");
    refused("IPv6 under TCP4", LIT("PROXY TCP4 ::1 ::2 1 2\r\n"),
            "malformed v1 header");
    refused("IPv4 under TCP6", LIT("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"),
            "malformed v1 header");
    refused("bad destination", LIT("PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n"),
            "malformed v1 header");
    struct sockaddr_storage keep, before;
    const char *why = NULL;
    memset(&keep, 0x5a, sizeof(keep));
    before = keep;
    static const char bad_dst[] = "PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n";
    is_int(wsg_proxy_protocol_read(guarded(bad_dst, sizeof(bad_dst) - 1),
                                   sizeof(bad_dst) - 1, &keep, &why),
           WSG_ERROR, "a bad destination after a good source: refused");
    ok(memcmp(&keep, &before, sizeof(keep)) == 0,
       "a refused header leaves the source untouched");
    refused("a long address",
            LIT("PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0000:0000 "
                "::1 1 2\r\n"),
            "malformed v1 header");
}

static void
test_read_v2(void)
{
    note("reading v2");
    header_is("TCP4",
              LIT(SIG "\x21\x11\x00\x0c"
                      "\x01\x02\x03\x04\x05\x06\x07\x08\x04\x57\x08\xae"),
              28, "1.2.3.4 1111");
    header_is("TCP6",
              LIT(SIG "\x21\x21\x00\x24"
                      "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"
                      "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x02"
                      "\xff\xff\x00\x01"),
              52, "::1 65535");
    header_is("LOCAL", LIT(SIG "\x20\x00\x00\x00"), 16, "unspec");
    header_is("LOCAL with TCP4 addresses, skipped",
              LIT(SIG "\x20\x11\x00\x0c"
                      "abcdefghijkl"),
              28, "unspec");
    header_is("LOCAL with an unknown family, skipped",
              LIT(SIG "\x20\x31\x00\x03"
                      "abc"),
              19, "unspec");
    header_is("PROXY with AF_UNSPEC",
              LIT(SIG "\x21\x00\x00\x02"
                      "zz"),
              18, "unspec");
    header_is("TCP4 with TLVs",
              LIT(SIG "\x21\x11\x00\x1a"
                      "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"
                      "\x04\x00\x03xyz"     /* PP2_TYPE_NOOP */
                      "\x02\x00\x05hello"), /* PP2_TYPE_AUTHORITY */
              42, "1.2.3.4 1");
    header_is("TCP4 with an empty TLV",
              LIT(SIG "\x21\x11\x00\x0f"
                      "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"
                      "\x04\x00\x00"),
              31, "1.2.3.4 1");
    header_is("data after the header", LIT(SIG "\x20\x00\x00\x00\x16\x03\x01"),
              16, "unspec");

    refused("a TLV cut in its header",
            LIT(SIG "\x21\x11\x00\x0e"
                    "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"
                    "\x04\x00"),
            "malformed v2 TLV");
    refused("a TLV longer than the block",
            LIT(SIG "\x21\x11\x00\x10"
                    "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"
                    "\x04\x00\x02x"),
            "malformed v2 TLV");
    refused("version 1", LIT(SIG "\x11\x11\x00\x0c"), "unsupported v2 version");
    refused("version 3", LIT(SIG "\x31\x11\x00\x0c"), "unsupported v2 version");
    refused("command 2", LIT(SIG "\x22\x11\x00\x0c"), "unsupported v2 command");
    refused("command 15", LIT(SIG "\x2f\x11\x00\x0c"),
            "unsupported v2 command");
    refused("UDP4", LIT(SIG "\x21\x12\x00\x0c"),
            "unsupported v2 address family");
    refused("UDP6", LIT(SIG "\x21\x22\x00\x24"),
            "unsupported v2 address family");
    refused("AF_UNIX stream", LIT(SIG "\x21\x31\x00\xd8"),
            "unsupported v2 address family");
    refused("family 0x41", LIT(SIG "\x21\x41\x00\x00"),
            "unsupported v2 address family");
    refused("TCP4 block of 11 bytes", LIT(SIG "\x21\x11\x00\x0b"),
            "v2 address block too short");
    refused("TCP6 block of 12 bytes", LIT(SIG "\x21\x21\x00\x0c"),
            "v2 address block too short");
    refused_after("version 1, on its byte", LIT(SIG "\x11\x11\x00\x0c"), 13);
    refused_after("UDP4, on its byte", LIT(SIG "\x21\x12\x00\x0c"), 14);
}

/* The size limit: 36 address bytes plus 512 of TLVs, whatever the family. */
static void
test_read_v2_limits(void)
{
    static uint8_t in[700];

    note("v2 size limits");
    memcpy(in, SIG "\x21\x21\x02\x24", 16);
    memset(in + 16, 0, 36);
    in[16 + 36] = 0x04;
    in[16 + 37] = 0x01;
    in[16 + 38] = 0xfd; /* 509 bytes of value */
    memset(in + 16 + 39, 'v', 509);
    header_is("TCP6 with 512 bytes of TLVs", in, 16 + 548, 16 + 548, ":: 0");
    in[15] = 0x25;
    refused("a block of 549 bytes", in, 16 + 549,
            "v2 header over its size limit");
    refused("over the limit, on the header", in, 16,
            "v2 header over its size limit");
    memcpy(in, SIG "\x21\x11\x02\x24", 16);
    in[16 + 12] = 0x04;
    in[16 + 13] = 0x02;
    in[16 + 14] = 0x15; /* 533 bytes of value */
    header_is("TCP4 with 536 bytes of TLVs", in, 16 + 548, 16 + 548,
              "0.0.0.0 0");
    memcpy(in, SIG "\x20\x00\xff\xff", 16);
    refused("LOCAL of 64 KiB", in, 16, "v2 header over its size limit");
    is_int(read_vec("a header alone waits for its block",
                    LIT(SIG "\x21\x11\x00\x0c")),
           WSG_AGAIN, "waits for the address block");
}

static void
test_not_proxy(void)
{
    note("input that is no PROXY header");
    refused("HTTP", LIT("GET / HTTP/1.1\r\n\r\n"), "not a PROXY header");
    refused("TLS", LIT("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            "not a PROXY header");
    refused("a NUL", LIT("\0"), "not a PROXY header");
    refused("lower case proxy", LIT("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            "not a PROXY header");
    refused("PROXY without its space", LIT("PROXYTCP4 1.2.3.4\r\n"),
            "not a PROXY header");
    refused("PROXZ", LIT("PROXZ"), "not a PROXY header");
    refused("v2 signature, one byte wrong", LIT("\r\n\r\n\0\r\nQUIX\n\x21"),
            "not a PROXY header");
    refused("CRLF CRLF then text", LIT("\r\n\r\nGET"), "not a PROXY header");
    refused_after("HTTP, on the first byte", LIT("GET /"), 1);
    refused_after("PROXZ, on the Z", LIT("PROXZ"), 5);
    refused_after("QUIX, on the X", LIT("\r\n\r\n\0\r\nQUIX\n"), 11);

    is_int(read_vec("nothing yet", "", 0), WSG_AGAIN, "no bytes: waits");
    is_int(read_vec("PRO", LIT("PRO")), WSG_AGAIN, "PRO: waits");
    is_int(read_vec("PROXY and a space", LIT("PROXY ")), WSG_AGAIN,
           "PROXY and a space: waits");
    is_int(read_vec("a v2 signature", LIT(SIG)), WSG_AGAIN,
           "the v2 signature: waits");
    is_int(read_vec("a CR", LIT("\r")), WSG_AGAIN, "a CR: waits");
}

int
main(void)
{
    guard_init();
    test_write();
    test_read_v1();
    test_read_v1_refused();
    test_read_v2();
    test_read_v2_limits();
    test_not_proxy();
    return done_testing();
}
