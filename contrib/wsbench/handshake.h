/*
 * The client's half of the RFC 6455 §4 opening handshake: the key, the
 * accept value it implies, and the check of the server's response head.
 * Pure code, no I/O.
 */
#ifndef WSB_HANDSHAKE_H
#define WSB_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#define WSB_KEY_LEN    24 /* base64 of 16 bytes */
#define WSB_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */
/* a response head longer than this is refused rather than buffered */
#define WSB_HEAD_MAX   16384

/* Writes the Sec-WebSocket-Key for the 16 random bytes <nonce> to <key>
 * (NUL-terminated). */
void wsb_handshake_key(const uint8_t nonce[16], char key[WSB_KEY_LEN + 1]);

/* Writes the Sec-WebSocket-Accept a server must answer to <key> (§4.2.2),
 * NUL-terminated, to <accept>. */
void wsb_handshake_accept(const char *key, char accept[WSB_ACCEPT_LEN + 1]);

/*
 * Checks the response head <head> (<len> bytes, through the blank line) for
 * a 101 with "Upgrade: websocket", a Connection header holding "upgrade",
 * the Sec-WebSocket-Accept <accept> and no extension (none was offered).
 * Returns 0, or -1 with a static reason in <why>.
 */
int wsb_handshake_check(const char *head, size_t len, const char *accept,
                        const char **why);

#endif
