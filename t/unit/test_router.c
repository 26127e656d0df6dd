/*
 * Tests of modules/router/route_expr.h, the router's pure part: compiling
 * expressions (and every refusal), following $json paths through objects
 * and arrays, and evaluating into a bounded buffer. Sources are copied to
 * exact-size heap blocks, so a read past a word's end is an ASan report.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "router/route_expr.h"
#include "tap.h"

/* Copies <s> into an exact-size heap block, so ASan flags a read past it. */
static char *
exact(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);

    if (p == NULL) {
        abort();
    }
    memcpy(p, s, len);
    return p;
}

static json_t *
parse(const char *text)
{
    json_t *j = json_loads(text, JSON_ALLOW_NUL, NULL);

    if (j == NULL) {
        abort();
    }
    return j;
}

/* ---- compiling ---- */

static void
compiles(const char *src, size_t nparts)
{
    struct wsg_route_expr e;
    size_t len = strlen(src);
    char *p = exact(src, len);

    is_str(wsg_route_expr_compile(&e, p, len), NULL, "\"%s\" compiles", src);
    is_uint(e.nparts, nparts, "\"%s\" has %zu parts", src, nparts);
    free(p);
}

static void
refused(const char *src, const char *why)
{
    struct wsg_route_expr e;
    size_t len = strlen(src);
    char *p = exact(src, len);

    is_str(wsg_route_expr_compile(&e, p, len), why, "\"%s\" is refused: %s",
           src, why);
    free(p);
}

static void
part_is(const struct wsg_route_expr *e, size_t i, enum wsg_route_part_kind kind,
        const char *text)
{
    ok(i < e->nparts && e->parts[i].kind == kind, "part %zu has kind %d", i,
       (int) kind);
    if (i < e->nparts) {
        is_mem(e->parts[i].text.p, e->parts[i].text.len, text, strlen(text),
               "part %zu is \"%s\"", i, text);
    }
}

static void
test_compile_parts(void)
{
    struct wsg_route_expr e;
    const char *src = "room-$json.a-b.c_d/${json.x y.0}:$user@$remote_addr";

    note("compiling: the parts and where each ends");
    is_str(wsg_route_expr_compile(&e, src, strlen(src)), NULL,
           "a mixed expression compiles");
    is_uint(e.nparts, 8, "it has 8 parts");
    part_is(&e, 0, WSG_ROUTE_LITERAL, "room-");
    part_is(&e, 1, WSG_ROUTE_JSON, "a-b.c_d");
    part_is(&e, 2, WSG_ROUTE_LITERAL, "/");
    part_is(&e, 3, WSG_ROUTE_JSON, "x y.0");
    part_is(&e, 4, WSG_ROUTE_LITERAL, ":");
    part_is(&e, 5, WSG_ROUTE_USER, "user");
    part_is(&e, 6, WSG_ROUTE_LITERAL, "@");
    part_is(&e, 7, WSG_ROUTE_REMOTE_ADDR, "remote_addr");
    ok(!wsg_route_expr_is_literal(&e), "it is not a literal");

    compiles("", 0);
    compiles("lobby", 1);
    compiles("$json.type", 1);
    compiles("${json.type}", 1);
    compiles("${user}", 1);
    compiles("$user$user", 2);
    compiles("$json.a$json.b", 2);
}

static void
test_compile_refusals(void)
{
    note("compiling: refusals");
    refused("$", "has a \"$\" without a variable name");
    refused("a$", "has a \"$\" without a variable name");
    refused("$-x", "has a \"$\" without a variable name");
    refused("$foo", "has an unknown variable");
    refused("$users", "has an unknown variable");
    refused("${}", "has a \"$\" without a variable name");
    refused("${foo}", "has an unknown variable");
    refused("$json", "needs a path after \"$json\"");
    refused("$json-x", "needs a path after \"$json\"");
    refused("${json}", "needs a path after \"$json\"");
    refused("$json.", "needs a path after \"$json\"");
    refused("${json.}", "needs a path after \"$json\"");
    refused("$json.a.", "has an empty key in a $json path");
    refused("$json..a", "has an empty key in a $json path");
    refused("${json.a..b}", "has an empty key in a $json path");
    refused("${json.a", "has a \"${\" without its \"}\"");
    refused("${user", "has a \"${\" without its \"}\"");
    refused("${user.x}", "has a path after a variable other than $json");
    refused("${remote_addr.x}", "has a path after a variable other than $json");

    char key[300];
    memcpy(key, "$json.", 6);
    memset(key + 6, 'k', 256);
    key[6 + 256] = '\0';
    refused(key, "has a $json key over 255 bytes");
    key[6 + 255] = '\0';
    compiles(key, 1);

    /* 16 parts fit, the 17th does not */
    compiles("a${user}a${user}a${user}a${user}"
             "a${user}a${user}a${user}a${user}",
             16);
    refused("a${user}a${user}a${user}a${user}"
            "a${user}a${user}a${user}a${user}a",
            "has too many variables and texts");
}

/* ---- $json paths ---- */

static void
found(json_t *root, const char *path, const char *expected)
{
    size_t len = strlen(path);
    char *p = exact(path, len);
    json_t *v = wsg_route_expr_lookup(root, p, len);

    if (expected == NULL) {
        ok(v == NULL, "path \"%s\" finds nothing", path);
    } else {
        char *text =
            v != NULL ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        is_str(text, expected, "path \"%s\" finds %s", path, expected);
        free(text);
    }
    free(p);
}

static void
test_lookup(void)
{
    json_t *root = parse("{\"type\":\"dm\",\"a\":{\"b\":{\"c\":7}},"
                         "\"list\":[\"x\",{\"y\":true}],\"\":1,"
                         "\"dot.key\":2,\"n\":null}");

    note("$json paths");
    found(root, "type", "\"dm\"");
    found(root, "a", "{\"b\":{\"c\":7}}");
    found(root, "a.b.c", "7");
    found(root, "list.0", "\"x\"");
    found(root, "list.1.y", "true");
    found(root, "n", "null");
    found(root, "missing", NULL);
    found(root, "a.missing", NULL);
    found(root, "a.b.c.d", NULL);
    found(root, "type.0", NULL);
    found(root, "list.2", NULL);
    found(root, "list.-1", NULL);
    found(root, "list.x", NULL);
    found(root, "list.1234567890", NULL);
    found(root, "list.00", "\"x\"");
    found(root, "", NULL);
    found(root, ".type", NULL);
    found(root, "type.", NULL);
    found(root, "dot.key", NULL);

    /* a key is compared whole, not as a prefix */
    found(root, "typ", NULL);
    found(root, "types", NULL);

    char key[300];
    memset(key, 'k', 256);
    key[256] = '\0';
    found(root, key, NULL);

    json_t *arr = parse("[[1,2],[3]]");
    found(arr, "1.0", "3");
    found(arr, "0", "[1,2]");
    json_decref(arr);
    json_decref(root);
}

/* ---- evaluation ---- */

static void
evaluates(const char *src, const struct wsg_route_vars *v, const char *expected)
{
    struct wsg_route_expr e;
    char buf[64];
    size_t len = 12345;

    if (wsg_route_expr_compile(&e, src, strlen(src)) != NULL) {
        ok(0, "\"%s\" compiles", src);
        return;
    }
    if (is_int(wsg_route_expr_eval(&e, v, buf, sizeof(buf), &len), 0,
               "\"%s\" has a value", src)) {
        is_mem(buf, len, expected, strlen(expected), "\"%s\" is \"%s\"", src,
               expected);
    }
}

static void
evaluates_to_error(const char *src, const struct wsg_route_vars *v, size_t cap,
                   int expected)
{
    struct wsg_route_expr e;
    char *buf = malloc(cap ? cap : 1);
    size_t len = 12345;

    if (buf == NULL) {
        abort();
    }
    if (wsg_route_expr_compile(&e, src, strlen(src)) != NULL) {
        ok(0, "\"%s\" compiles", src);
    } else {
        is_int(wsg_route_expr_eval(&e, v, buf, cap, &len), expected,
               "\"%s\" in %zu bytes gives %d", src, cap, expected);
        is_uint(len, 12345, "\"%s\" leaves the length alone", src);
    }
    free(buf);
}

static void
test_eval(void)
{
    json_t *msg =
        parse("{\"type\":\"say\",\"to\":\"bob\",\"room\":\"r1\",\"int\":42,"
              "\"neg\":-7,\"big\":9007199254740993,\"real\":1.5,\"tenth\":0.1,"
              "\"two\":2.0,\"third\":0.3333333333333333,\"t\":true,\"f\":false,"
              "\"null\":null,\"obj\":{},\"arr\":[],\"empty\":\"\","
              "\"nul\":\"a\\u0000b\",\"utf\":\"\\u00e9t\\u00e9\"}");
    struct wsg_route_vars v = {msg, {"alice", 5}, "127.0.0.1"};
    struct wsg_route_vars none = {NULL, {"", 0}, NULL};

    note("evaluation");
    evaluates("$json.type", &v, "say");
    evaluates("lobby", &v, "lobby");
    evaluates("", &v, "");
    evaluates("room-$json.room", &v, "room-r1");
    evaluates("${json.to}.x", &v, "bob.x");
    evaluates("$user@$remote_addr", &v, "alice@127.0.0.1");
    evaluates("$json.int", &v, "42");
    evaluates("$json.neg", &v, "-7");
    evaluates("$json.big", &v, "9007199254740993");
    evaluates("$json.real", &v, "1.5");
    evaluates("$json.tenth", &v, "0.1");
    evaluates("$json.two", &v, "2");
    evaluates("$json.third", &v, "0.3333333333333333");
    evaluates("$json.t", &v, "true");
    evaluates("$json.f", &v, "false");
    evaluates("$json.utf", &v, "\xc3\xa9t\xc3\xa9");

    struct wsg_route_expr e;
    char buf[8];
    size_t len = 0;
    const char *nul = "$json.nul";
    wsg_route_expr_compile(&e, nul, strlen(nul));
    is_int(wsg_route_expr_eval(&e, &v, buf, sizeof(buf), &len), 0,
           "a string with a NUL has a value");
    is_mem(buf, len, "a\0b", 3, "its three bytes, NUL included");

    note("no value");
    evaluates_to_error("$json.null", &v, 64, WSG_ROUTE_MISSING);
    evaluates_to_error("$json.obj", &v, 64, WSG_ROUTE_MISSING);
    evaluates_to_error("$json.arr", &v, 64, WSG_ROUTE_MISSING);
    evaluates_to_error("$json.empty", &v, 64, WSG_ROUTE_MISSING);
    evaluates_to_error("$json.missing", &v, 64, WSG_ROUTE_MISSING);
    evaluates_to_error("room-$json.missing", &v, 64, WSG_ROUTE_MISSING);
    evaluates_to_error("$json.type", &none, 64, WSG_ROUTE_MISSING);
    evaluates_to_error("$user", &none, 64, WSG_ROUTE_MISSING);
    evaluates_to_error("$remote_addr", &none, 64, WSG_ROUTE_MISSING);
    evaluates("literal", &none, "literal");

    note("bounds: a value fits its buffer exactly or is refused");
    evaluates_to_error("room-$json.room", &v, 6, WSG_ROUTE_TOO_LONG);
    evaluates_to_error("room-$json.room", &v, 4, WSG_ROUTE_TOO_LONG);
    evaluates_to_error("$json.int", &v, 1, WSG_ROUTE_TOO_LONG);
    evaluates_to_error("x", &v, 0, WSG_ROUTE_TOO_LONG);

    char *exact_buf = malloc(7);
    const char *src = "room-$json.room";
    wsg_route_expr_compile(&e, src, strlen(src));
    is_int(wsg_route_expr_eval(&e, &v, exact_buf, 7, &len), 0,
           "a value of exactly the buffer's size fits");
    is_mem(exact_buf, len, "room-r1", 7, "and is whole");
    free(exact_buf);
    json_decref(msg);
}

int
main(void)
{
    test_compile_parts();
    test_compile_refusals();
    test_lookup();
    test_eval();
    return done_testing();
}
