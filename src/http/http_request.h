/*
 * Serving a connection's HTTP/1.1 request: reading the head within the
 * server's limits, choosing the server and the location, and either
 * answering (return, errors) or handing the connection to the WebSocket
 * session after a 101.
 */
#ifndef WSG_HTTP_REQUEST_H
#define WSG_HTTP_REQUEST_H

#include <stdbool.h>

#include "core/str.h"

struct wsg_conn;
struct wsg_http_addr;
struct wsg_http_srv_conf;
struct wsg_http_loc_conf;

struct wsg_str;

/*
 * Answers <c> with <status>, the body <body> of type <ctype> and the extra
 * header lines <extra> ("" for none), then closes it once sent.
 */
void wsg_http_respond(struct wsg_conn *c, int status, const char *ctype,
                      const char *extra, struct wsg_str body);

/*
 * Answers <c> with <status>, a short text body and the extra header lines
 * <extra> ("" for none), then closes it once sent.
 */
void wsg_http_respond_error(struct wsg_conn *c, int status, const char *extra);

/* Starts reading the request head of the new connection <c>. */
void wsg_http_request_start(struct wsg_conn *c);

/*
 * The server of <addr> for the Host value <host> (port and trailing dot
 * ignored, case-insensitive): an exact server_name, then the longest
 * "*.suffix" wildcard, then the longest "prefix.*" one, then the default
 * server. Never NULL.
 */
const struct wsg_http_srv_conf *
wsg_http_find_server(const struct wsg_http_addr *addr, struct wsg_str host);

/*
 * The location of <scf> for <path>: an exact ("=") match, else the longest
 * prefix match; NULL when none matches.
 */
const struct wsg_http_loc_conf *
wsg_http_find_location(const struct wsg_http_srv_conf *scf,
                       struct wsg_str path);

#endif
