/*
 * RFC 6455 §4.1 client handshake: the key is base64 of 16 random bytes and
 * the server proves it read the request by answering
 * base64(SHA-1(key + GUID)) in Sec-WebSocket-Accept (§4.2.2, step 5.4).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "handshake.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void
wsb_handshake_key(const uint8_t nonce[16], char key[WSB_KEY_LEN + 1])
{
    EVP_EncodeBlock((unsigned char *) key, nonce, 16);
}

void
wsb_handshake_accept(const char *key, char accept[WSB_ACCEPT_LEN + 1])
{
    char buf[WSB_KEY_LEN + sizeof(WS_GUID)];
    size_t klen = strnlen(key, WSB_KEY_LEN);
    uint8_t md[SHA_DIGEST_LENGTH];

    memcpy(buf, key, klen);
    memcpy(buf + klen, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1((const unsigned char *) buf, klen + sizeof(WS_GUID) - 1, md);
    EVP_EncodeBlock((unsigned char *) accept, md, SHA_DIGEST_LENGTH);
}

/* True when the comma-separated list <v> (<len> bytes) holds <token>,
 * compared without case. */
static bool
has_token(const char *v, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    const char *end = v + len;

    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ',')) {
            v++;
        }
        const char *t = v;
        while (v < end && *v != ',') {
            v++;
        }
        const char *e = v;
        while (e > t && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if ((size_t) (e - t) == tlen && strncasecmp(t, token, tlen) == 0) {
            return true;
        }
    }
    return false;
}

static bool
is_status_101(const char *line, size_t len)
{
    /* "HTTP/1.x 101", the reason phrase is free text */
    return len >= 12 && memcmp(line, "HTTP/1.", 7) == 0 && line[8] == ' ' &&
           memcmp(line + 9, "101", 3) == 0 && (len == 12 || line[12] == ' ');
}

/* Records what one header line says about the handshake in <seen>: bit 0
 * Upgrade, bit 1 Connection, bit 2 Accept; bit 3 an extension. */
static void
check_header(const char *line, size_t len, const char *accept, unsigned *seen)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL) {
        return;
    }
    size_t nlen = (size_t) (colon - line);
    const char *v = colon + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    size_t vlen = (size_t) (end - v);

    if (nlen == 7 && strncasecmp(line, "upgrade", 7) == 0 &&
        has_token(v, vlen, "websocket")) {
        *seen |= 1;
    } else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0 &&
               has_token(v, vlen, "upgrade")) {
        *seen |= 2;
    } else if (nlen == 20 &&
               strncasecmp(line, "sec-websocket-accept", 20) == 0 &&
               vlen == WSB_ACCEPT_LEN && memcmp(v, accept, vlen) == 0) {
        *seen |= 4;
    } else if (nlen == 24 &&
               strncasecmp(line, "sec-websocket-extensions", 24) == 0) {
        *seen |= 8;
    }
}

int
wsb_handshake_check(const char *head, size_t len, const char *accept,
                    const char **why)
{
    const char *p = head;
    const char *end = head + len;
    unsigned seen = 0;
    bool first = true;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }
        size_t n = (size_t) (eol - p);
        if (n > 0 && p[n - 1] == '\r') {
            n--;
        }
        if (first) {
            if (!is_status_101(p, n)) {
                *why = "status is not 101";
                return -1;
            }
            first = false;
        } else if (n > 0) {
            check_header(p, n, accept, &seen);
        }
        p = eol + 1;
    }
    if (first) {
        *why = "empty response";
        return -1;
    }
    if ((seen & 3) != 3) {
        *why = "no Upgrade: websocket or Connection: upgrade";
        return -1;
    }
    if (!(seen & 4)) {
        *why = "missing or wrong Sec-WebSocket-Accept";
        return -1;
    }
    if (seen & 8) {
        *why = "an extension nobody offered";
        return -1;
    }
    return 0;
}
