/*
 * Variables of a request, for hash keys and (later) routing:
 * $remote_addr, $uri, $arg_NAME, $http_NAME, $cookie_NAME, mixed with
 * literal text ("$arg_room:$remote_addr").
 */
#ifndef WSG_HTTP_VAR_H
#define WSG_HTTP_VAR_H

#include <stddef.h>

struct wsg_http_request;

/*
 * Expands <expr> for request <r> from client address <remote> (no port)
 * into <out> (<outlen> bytes, NUL-terminated, cut to fit). An unknown
 * variable or an absent argument, header or cookie expands to nothing.
 * Returns the length written.
 */
size_t wsg_http_var_expand(const char *expr, const struct wsg_http_request *r,
                           const char *remote, char *out, size_t outlen);

#endif
