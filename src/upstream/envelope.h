/*
 * Envelopes of the shared-pool backend protocols (docs/backend-protocol.md):
 * mux (binary) and json (one object per line). Pure codecs: bytes in,
 * envelopes out, and back; the pool glue does the I/O. Both protocols carry
 * the same kinds, so the glue handles one struct wsg_envelope.
 */
#ifndef WSG_ENVELOPE_H
#define WSG_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

enum wsg_env_kind {
    WSG_ENV_OPEN = 0x01,
    WSG_ENV_MESSAGE = 0x02,
    WSG_ENV_CLOSE = 0x03,
    WSG_ENV_PING = 0x04,
    WSG_ENV_PONG = 0x05,
    WSG_ENV_PAUSE = 0x06,
    WSG_ENV_RESUME = 0x07,
};

#define WSG_MUX_HEADER      14
#define WSG_MUX_FLAG_BINARY 0x01
/* Payload limit of envelopes other than message. */
#define WSG_ENV_CONTROL_MAX (16u * 1024 * 1024)

struct wsg_envelope {
    uint8_t kind;        /* enum wsg_env_kind */
    bool binary;         /* message: binary, else text */
    uint64_t id;         /* connection id; 0 for ping/pong */
    const uint8_t *data; /* payload: message bytes, open JSON, ping data */
    size_t len;
    uint16_t code;         /* close: the code, 1005 when none */
    struct wsg_str reason; /* close: the reason (UTF-8) */
};

/*
 * Fields of an open envelope. Strings are slices; <subprotocol> and <user>
 * may have p == NULL for "none" (JSON null). Headers are name/value pairs,
 * names already lower-case.
 */
struct wsg_env_open {
    struct wsg_str path;
    struct wsg_str query;
    struct wsg_str remote;
    struct wsg_str subprotocol;
    struct wsg_str user;
    const struct wsg_str *headers; /* 2 * nheaders: name, value, ... */
    size_t nheaders;
};

#endif
