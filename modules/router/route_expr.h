/*
 * Expressions of the router's "route" blocks: literal text with variables
 * ($json.a.b, $user, $remote_addr, or ${...} to end a name). Pure: compiled
 * from a configuration word without allocating, evaluated against a message
 * into a caller's buffer, so it is tested on its own (t/unit/test_router).
 */
#ifndef WSG_ROUTE_EXPR_H
#define WSG_ROUTE_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include "wsgate_module.h"

/* Most parts (literal runs and variables) of one expression. */
#define WSG_ROUTE_EXPR_PARTS_MAX 16
/* Longest key of one $json path segment, in bytes. */
#define WSG_ROUTE_KEY_MAX        255

/* What wsg_route_expr_eval() returns besides 0. */
#define WSG_ROUTE_MISSING  (-1) /* a variable has no value */
#define WSG_ROUTE_TOO_LONG (-2) /* the value does not fit the buffer */

enum wsg_route_part_kind {
    WSG_ROUTE_LITERAL,     /* text: the bytes */
    WSG_ROUTE_JSON,        /* text: the dotted path after "json." */
    WSG_ROUTE_USER,        /* the session's user */
    WSG_ROUTE_REMOTE_ADDR, /* the client's address */
};

struct wsg_route_part {
    enum wsg_route_part_kind kind;
    struct wsg_str text; /* a slice of the compiled source */
};

struct wsg_route_expr {
    size_t nparts; /* 0: the empty string */
    struct wsg_route_part parts[WSG_ROUTE_EXPR_PARTS_MAX];
};

/* What an expression is evaluated against; everything is borrowed. */
struct wsg_route_vars {
    struct json_t *json;     /* the message; NULL when it has none */
    struct wsg_str user;     /* len 0: no user */
    const char *remote_addr; /* NULL: unknown */
};

/*
 * Compiles the <len> bytes at <src> into <e>. The parts point into <src>,
 * which must outlive <e> (a configuration word does). A "$" always starts
 * a variable: "$json.PATH", "$user", "$remote_addr", or the same names in
 * braces ("${json.a.b}"), which also allow any byte but "}" and "." in a
 * path's keys. A bare path's keys are letters, digits, "_" and "-".
 * Returns NULL, or a static phrase saying what is wrong ("unknown
 * variable", "empty key in a $json path", ...).
 */
const char *wsg_route_expr_compile(struct wsg_route_expr *e, const char *src,
                                   size_t len);

/* Whether <e> has no variable (its value is its text). */
bool wsg_route_expr_is_literal(const struct wsg_route_expr *e);

/*
 * Follows the dotted <path>/<len> ("a.b.0") from <root>: a key of an
 * object, or a decimal index of an array. Returns the value found (a
 * borrowed reference, owned by <root>), or NULL when a step is missing,
 * a key is longer than WSG_ROUTE_KEY_MAX, or <path> is empty.
 */
struct json_t *wsg_route_expr_lookup(struct json_t *root, const char *path,
                                     size_t len);

/*
 * Writes the value of <e> under <v> to <buf> (at most <cap> bytes, not
 * NUL-terminated) and its length to <*len>. A $json value that is a string
 * gives its bytes, a number its JSON text (42, 1.5), true and false their
 * names; null, objects, arrays and missing paths have no value, nor has an
 * empty $user or unknown $remote_addr. Returns 0, WSG_ROUTE_MISSING when a
 * variable has no value, or WSG_ROUTE_TOO_LONG.
 */
int wsg_route_expr_eval(const struct wsg_route_expr *e,
                        const struct wsg_route_vars *v, char *buf, size_t cap,
                        size_t *len);

#endif
