/*
 * Fuzz target for src/net/proxy_protocol.h. The input is what a client
 * sent before anything else. The reader must refuse at once what cannot
 * start a signature, make every prefix of a header it accepts wait, give
 * a length that matches the header's own framing, and a source that the
 * writer turns back into the same source in both versions. The input's
 * bytes are also used as addresses for a write and read round trip.
 */
#include "config.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/core.h"
#include "net/proxy_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The longest header the reader takes: 16 + 36 + 512 bytes of TLVs. */
#define READ_MAX 564

static void
require(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_proxy_protocol: %s\n", what);
        abort();
    }
}

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Checks that the accepted header <p>/<rc> is framed as the spec says. */
static void
framing_checked(const uint8_t *p, int rc)
{
    size_t n = (size_t) rc;

    if (p[0] == 'P') {
        require(n <= 107 && memcmp(p, "PROXY ", 6) == 0,
                "a v1 header over 107 bytes or without PROXY");
        require(p[n - 2] == '\r' && p[n - 1] == '\n' &&
                    memchr(p, '\n', n - 1) == NULL,
                "a v1 header not ending at its first CRLF");
        return;
    }
    require(n >= 16 && memcmp(p, v2_sig, 12) == 0, "a v2 header too short");
    require(n == 16 + (size_t) (p[14] << 8 | p[15]),
            "a v2 header of another length than it says");
    require(n <= READ_MAX, "a v2 header over its limit");
    require(p[12] == 0x20 || p[12] == 0x21, "a v2 header of another command");
}

/* Writes <src> as both ends in <version> and reads it back. */
static void
write_checked(const struct sockaddr_storage *src, int version)
{
    uint8_t out[WSG_PROXY_HEADER_MAX];
    struct sockaddr_storage back;
    const char *why = NULL;

    size_t n =
        wsg_proxy_protocol_write(out, version, (const struct sockaddr *) src,
                                 (const struct sockaddr *) src);
    require(n > 0 && n <= (version == 2 ? 52u : 107u),
            "a written header of odd length");
    int rc = wsg_proxy_protocol_read(out, n, &back, &why);
    require(rc == (int) n, "a written header does not read back");
    require(memcmp(&back, src, sizeof(back)) == 0,
            "a written source reads back otherwise");
}

/* Builds an address of the family chosen by <data> from its bytes. */
static void
address_from(const uint8_t *data, size_t size, struct sockaddr_storage *ss)
{
    uint8_t b[19] = {0};

    memcpy(b, data, size < sizeof(b) ? size : sizeof(b));
    memset(ss, 0, sizeof(*ss));
    if (b[0] & 1) {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        memcpy(&in6.sin6_addr, b + 1, 16);
        memcpy(&in6.sin6_port, b + 17, 2);
        memcpy(ss, &in6, sizeof(in6));
    } else {
        struct sockaddr_in in = {.sin_family = AF_INET};
        memcpy(&in.sin_addr, b + 1, 4);
        memcpy(&in.sin_port, b + 5, 2);
        memcpy(ss, &in, sizeof(in));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_storage src, ss;
    const char *why = NULL;

    /* an exact-size copy, so reading past the input is caught */
    uint8_t *in = malloc(size ? size : 1);
    require(in != NULL, "malloc failed");
    memcpy(in, data, size);

    memset(&src, 0, sizeof(src));
    int rc = wsg_proxy_protocol_read(in, size, &src, &why);
    if (size > 0 && in[0] != 'P' && in[0] != '\r') {
        require(rc == WSG_ERROR, "a header that cannot start was not refused");
    }
    if (size == 0) {
        require(rc == WSG_AGAIN, "nothing did not wait");
    }
    require(rc != WSG_ERROR || (why != NULL && why[0] != '\0'),
            "an error without why");
    if (rc > 0) {
        framing_checked(in, rc);
        for (size_t k = 0; k < (size_t) rc; k++) {
            struct sockaddr_storage s;
            require(wsg_proxy_protocol_read(in, k, &s, &why) == WSG_AGAIN,
                    "a prefix of a header did not wait");
        }
        require(src.ss_family == AF_UNSPEC || src.ss_family == AF_INET ||
                    src.ss_family == AF_INET6,
                "a source of another family");
        if (src.ss_family != AF_UNSPEC) {
            write_checked(&src, 1);
            write_checked(&src, 2);
        }
    }
    if (rc == WSG_AGAIN) {
        require(size < READ_MAX, "waiting past the longest header");
    }

    address_from(data, size, &ss);
    write_checked(&ss, 1);
    write_checked(&ss, 2);
    free(in);
    return 0;
}
