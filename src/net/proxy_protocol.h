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
 * Writes a PROXY header (<version> 1 or 2) for a TCP connection from <src>
 * to <dst> into <out> (WSG_PROXY_HEADER_MAX bytes). Mixed families are
 * written as "UNKNOWN" (v1) or LOCAL (v2). Returns its length.
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
 */
int wsg_proxy_protocol_read(const uint8_t *p, size_t len,
                            struct sockaddr_storage *src, const char **why);

#endif
