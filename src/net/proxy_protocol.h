/*
 * The PROXY protocol (HAProxy's spec, versions 1 and 2): writing the header
 * that tells a backend the client's real address, and reading one from a
 * trusted load balancer in front of the gateway.
 */
#ifndef WSG_PROXY_PROTOCOL_H
#define WSG_PROXY_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A v1 header is at most 107 bytes; a v2 one for TCP/IPv6 is 52. */
#define WSG_PROXY_HEADER_MAX 232

/*
 * The longest header wsg_proxy_protocol_read() accepts: a v2 header of 16
 * bytes, a TCP/IPv6 address block of 36 and 512 bytes of TLVs. A reader
 * that peeks this many bytes always gets a verdict other than WSG_AGAIN.
 */
#define WSG_PROXY_READ_MAX (16 + 36 + 512)

/*
 * Writes a PROXY header (<version> 1 or 2) for a TCP connection from <src>
 * to <dst> into <out> (WSG_PROXY_HEADER_MAX bytes). Mixed families are
 * written as "UNKNOWN" (v1) or LOCAL (v2). Returns its length.
 * Any <version> but 2 writes v1. So do families other than AF_INET and
 * AF_INET6, and a NULL <src> or <dst>: "PROXY UNKNOWN\r\n" (15 bytes) or
 * a LOCAL header (16 bytes). Addresses are written as inet_ntop() spells
 * them ("::ffff:10.0.0.1" for a mapped IPv4 address under TCP6).
 */
size_t wsg_proxy_protocol_write(uint8_t *out, int version,
                                const struct sockaddr *src,
                                const struct sockaddr *dst);

/*
 * Reads a PROXY header (v1 or v2, detected) at the start of <p>/<len>.
 * Returns the header's length (> 0) with the source address in <src>
 * (family AF_UNSPEC for v1 UNKNOWN and v2 LOCAL: keep the socket's own
 * peer), WSG_AGAIN when more bytes are needed, or WSG_ERROR with a static
 * reason in *<why> (not a PROXY header, malformed, over its size limit,
 * unsupported family or command).
 *
 * In detail: input that can no longer start "PROXY " or the v2 signature
 * is refused on the byte that shows it (an 'H' of HTTP or a TLS record's
 * first byte at once). v1: the line must end in CRLF within 107 bytes;
 * TCP4 and TCP6 need exactly two addresses of that family and two ports
 * (0..65535) separated by single spaces; after UNKNOWN the line is not
 * read. v2: version 2; command LOCAL (its block is skipped, whatever the
 * family) or PROXY with TCP over IPv4 or IPv6, or AF_UNSPEC (AF_UNSPEC in
 * <src>); UDP and AF_UNIX are refused. The version, command and family
 * are judged on their own bytes and the length on the 16th byte: a block
 * over WSG_PROXY_READ_MAX - 16 bytes or shorter than the family's
 * addresses is refused before it is awaited. TLVs after the addresses are
 * skipped but must fill the block exactly. <src> is written only on
 * success, zeroed but for the family, address and port.
 */
int wsg_proxy_protocol_read(const uint8_t *p, size_t len,
                            struct sockaddr_storage *src, const char **why);

#endif
