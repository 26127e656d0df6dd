/*
 * The reverse module, an example built out of tree against the installed
 * wsgate_module.h and loaded with "load_module". "reverse on;" makes a
 * location a WebSocket endpoint that answers every text message with its
 * text reversed by code points, and answers "count" with the number of
 * messages the session has sent so far, kept as per-session data. A
 * handshake to such a location carrying X-Reverse-Deny is refused with 403.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsgate_module.h"

struct reverse_loc_conf {
    int enabled; /* flag */
};

/* Per session, in the module's wsg_session_data() slot; freed in on_close. */
struct reverse_session {
    uint64_t messages; /* received from the client, the current one too */
};

/* The one symbol the loader looks for; default visibility in any build. */
extern WSG_API const struct wsg_module wsg_module;

static const char *
set_reverse(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    const char *rv = wsg_conf_set_flag(cf, d, conf);
    const struct reverse_loc_conf *rlcf = conf;

    if (rv == NULL && rlcf->enabled == 1) {
        wsg_conf_websocket_endpoint(cf);
    }
    return rv;
}

static const struct wsg_directive reverse_directives[] = {
    {"reverse", WSG_CTX_LOCATION, 1, 1, set_reverse,
     offsetof(struct reverse_loc_conf, enabled), NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
reverse_create_loc_conf(struct wsg_conf *cf)
{
    struct reverse_loc_conf *rlcf = wsg_conf_alloc(cf, sizeof(*rlcf));

    rlcf->enabled = WSG_CONF_UNSET;
    return rlcf;
}

static const char *
reverse_merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    struct reverse_loc_conf *rlcf = child;

    (void) cf;
    (void) parent;
    /* only the location that says so is an endpoint: nothing is inherited */
    if (rlcf->enabled == WSG_CONF_UNSET) {
        rlcf->enabled = 0;
    }
    return NULL;
}

/* Hooks run for every session of every location: each starts here. */
static bool
enabled(const struct wsg_session *s)
{
    const struct reverse_loc_conf *rlcf = wsg_session_loc_conf(s, &wsg_module);

    return rlcf != NULL && rlcf->enabled == 1;
}

static int
reverse_on_handshake(struct wsg_session *s)
{
    if (!enabled(s)) {
        return WSG_NEXT;
    }
    /* any value counts, an empty one too: p is NULL only when absent */
    if (wsg_session_header(s, "X-Reverse-Deny").p != NULL) {
        wsg_session_reject(s, 403);
        return WSG_STOP;
    }
    return WSG_NEXT;
}

/*
 * Writes the <len> bytes of UTF-8 at <in> to <out> with their code points
 * in reverse order; each code point keeps its bytes in order. The core has
 * checked the text, so a lead byte is followed by its continuation bytes.
 */
static void
reverse_utf8(const unsigned char *in, size_t len, unsigned char *out)
{
    size_t i = 0;

    while (i < len) {
        size_t n = 1;
        while (i + n < len && (in[i + n] & 0xc0) == 0x80) {
            n++;
        }
        memcpy(out + len - i - n, in + i, n);
        i += n;
    }
}

static int
send_reversed(struct wsg_session *s, const void *data, size_t len)
{
    if (len == 0) {
        wsg_session_send(s, WSG_MSG_TEXT, "", 0);
        return WSG_STOP;
    }
    unsigned char *out = malloc(len);
    if (out == NULL) {
        return WSG_ABORT;
    }
    reverse_utf8(data, len, out);
    /* copied by the call: the buffer is ours to free at once; a -1 means
     * the session is closing, which the core handles */
    wsg_session_send(s, WSG_MSG_TEXT, out, len);
    free(out);
    return WSG_STOP;
}

static int
reverse_on_message(struct wsg_session *s, struct wsg_msg *m)
{
    if (!enabled(s)) {
        return WSG_NEXT;
    }

    void **slot = wsg_session_data(s, &wsg_module);
    struct reverse_session *rs = *slot;
    if (rs == NULL) {
        rs = calloc(1, sizeof(*rs));
        if (rs == NULL) {
            return WSG_ABORT;
        }
        *slot = rs;
    }
    rs->messages++;

    if (!wsg_msg_is_text(m)) {
        /* counted, not answered: a later module may take it */
        return WSG_NEXT;
    }
    size_t len;
    const void *data = wsg_msg_data(m, &len);
    if (len == 5 && memcmp(data, "count", 5) == 0) {
        char n[24];
        int k =
            snprintf(n, sizeof(n), "%llu", (unsigned long long) rs->messages);
        wsg_session_send(s, WSG_MSG_TEXT, n, (size_t) k);
        return WSG_STOP;
    }
    return send_reversed(s, data, len);
}

static void
reverse_on_close(struct wsg_session *s, uint16_t code)
{
    (void) code;
    /* a session elsewhere has no data of ours: do not touch its slots */
    if (!enabled(s)) {
        return;
    }
    void **slot = wsg_session_data(s, &wsg_module);
    free(*slot);
    *slot = NULL;
}

const struct wsg_module wsg_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "reverse",
    .directives = reverse_directives,
    .create_loc_conf = reverse_create_loc_conf,
    .merge_loc_conf = reverse_merge_loc_conf,
    .on_handshake = reverse_on_handshake,
    .on_message = reverse_on_message,
    .on_close = reverse_on_close,
};
