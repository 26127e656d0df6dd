/*
 * Tests of src/core/str.h: the number, size and time parsers the
 * directives use, and case-insensitive comparison. Every input is given
 * with its exact length and no terminating NUL is relied on.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/str.h"
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

static void
uint_ok(const char *s, uint64_t max, uint64_t expected)
{
    size_t len = strlen(s);
    char *p = exact(s, len);
    uint64_t v = 12345;

    if (is_int(wsg_str_parse_uint(p, len, max, &v), 0, "uint \"%s\" parses",
               s)) {
        is_uint(v, expected, "uint \"%s\" is %llu", s,
                (unsigned long long) expected);
    }
    free(p);
}

static void
uint_bad(const char *s, uint64_t max)
{
    size_t len = strlen(s);
    char *p = exact(s, len);
    uint64_t v = 12345;

    is_int(wsg_str_parse_uint(p, len, max, &v), WSG_ERROR,
           "uint \"%s\" (max %llu) is refused", s, (unsigned long long) max);
    is_uint(v, 12345, "a refused uint \"%s\" leaves the output alone", s);
    free(p);
}

static void
test_uint(void)
{
    uint_ok("0", 10, 0);
    uint_ok("7", 10, 7);
    uint_ok("10", 10, 10);
    uint_ok("007", 10, 7);
    uint_ok("18446744073709551615", UINT64_MAX, UINT64_MAX);
    uint_bad("11", 10);
    uint_bad("18446744073709551616", UINT64_MAX);
    uint_bad("99999999999999999999999", UINT64_MAX);
    uint_bad("", UINT64_MAX);
    uint_bad("-1", UINT64_MAX);
    uint_bad("+1", UINT64_MAX);
    uint_bad(" 1", UINT64_MAX);
    uint_bad("1 ", UINT64_MAX);
    uint_bad("1a", UINT64_MAX);
    uint_bad("0x10", UINT64_MAX);

    /* the length bounds the parse: digits beyond it are not read */
    uint64_t v = 0;
    is_int(wsg_str_parse_uint("123456", 3, 1000, &v), 0,
           "uint reads only <len> bytes");
    is_uint(v, 123, "uint of the first 3 bytes of \"123456\" is 123");
}

static void
size_ok(const char *s, uint64_t expected)
{
    size_t len = strlen(s);
    char *p = exact(s, len);
    uint64_t v = 12345;

    if (is_int(wsg_str_parse_size(p, len, &v), 0, "size \"%s\" parses", s)) {
        is_uint(v, expected, "size \"%s\" is %llu", s,
                (unsigned long long) expected);
    }
    free(p);
}

static void
size_bad(const char *s)
{
    size_t len = strlen(s);
    char *p = exact(s, len);
    uint64_t v = 12345;

    is_int(wsg_str_parse_size(p, len, &v), WSG_ERROR, "size \"%s\" is refused",
           s);
    is_uint(v, 12345, "a refused size \"%s\" leaves the output alone", s);
    free(p);
}

static void
test_size(void)
{
    size_ok("0", 0);
    size_ok("512", 512);
    size_ok("64k", 64 * 1024);
    size_ok("64K", 64 * 1024);
    size_ok("1m", 1024 * 1024);
    size_ok("1M", 1024 * 1024);
    size_ok("1g", 1024 * 1024 * 1024);
    size_ok("3G", UINT64_C(3) * 1024 * 1024 * 1024);
    size_ok("0k", 0);
    _Static_assert(SIZE_MAX == UINT64_MAX, "these vectors assume LP64");
    size_ok("18446744073709551615", UINT64_MAX);
    size_ok("18014398509481983k", UINT64_MAX - 1023);
    size_ok("17179869183g", UINT64_MAX - (UINT64_C(1) << 30) + 1);

    size_bad("18446744073709551616");
    size_bad("18014398509481984k");
    size_bad("17592186044416m");
    size_bad("17179869184g");
    size_bad("");
    size_bad("k");
    size_bad("1kb");
    size_bad("1kk");
    size_bad("1t");
    size_bad("1b");
    size_bad(" 1");
    size_bad("1 ");
    size_bad("1 k");
    size_bad("-1");
    size_bad("+1");
    size_bad("1.5m");
}

static void
msec_ok(const char *s, uint64_t expected)
{
    size_t len = strlen(s);
    char *p = exact(s, len);
    uint64_t v = 12345;

    if (is_int(wsg_str_parse_msec(p, len, &v), 0, "time \"%s\" parses", s)) {
        is_uint(v, expected, "time \"%s\" is %llu ms", s,
                (unsigned long long) expected);
    }
    free(p);
}

static void
msec_bad(const char *s)
{
    size_t len = strlen(s);
    char *p = exact(s, len);
    uint64_t v = 12345;

    is_int(wsg_str_parse_msec(p, len, &v), WSG_ERROR, "time \"%s\" is refused",
           s);
    is_uint(v, 12345, "a refused time \"%s\" leaves the output alone", s);
    free(p);
}

static void
test_msec(void)
{
    msec_ok("250ms", 250);
    msec_ok("0ms", 0);
    msec_ok("30s", 30 * 1000);
    msec_ok("5m", 5 * 60 * 1000);
    msec_ok("1h", 60 * 60 * 1000);
    msec_ok("1d", 24 * 60 * 60 * 1000);
    msec_ok("30", 30 * 1000);
    msec_ok("0", 0);
    msec_ok("1m30s", 90 * 1000);
    msec_ok("1d2h3m4s5ms", ((((1 * 24 + 2) * 60 + 3) * 60 + 4) * 1000) + 5);
    msec_ok("1h500ms", 60 * 60 * 1000 + 500);
    msec_ok("18446744073709551615ms", UINT64_MAX);
    msec_ok("18446744073709551s615ms", UINT64_MAX);

    msec_bad("30s1m");
    msec_bad("1s1s");
    msec_bad("1ms1ms");
    msec_bad("500ms1s");
    msec_bad("1m30");
    msec_bad("");
    msec_bad("ms");
    msec_bad("s");
    msec_bad("1x");
    msec_bad("1S");
    msec_bad("1 s");
    msec_bad(" 1s");
    msec_bad("1s ");
    msec_bad("-1s");
    msec_bad("1.5s");
    msec_bad("1mss");
    msec_bad("18446744073709551616ms");
    msec_bad("18446744073709552s");
    msec_bad("18446744073709551s616ms");
    msec_bad("213503982335d");
}

static void
test_caseeq(void)
{
    struct wsg_str s = WSG_STR("Upgrade");

    ok(wsg_str_caseeq(s, "upgrade"), "caseeq: \"Upgrade\" == \"upgrade\"");
    ok(wsg_str_caseeq(s, "UPGRADE"), "caseeq: \"Upgrade\" == \"UPGRADE\"");
    ok(wsg_str_caseeq(s, "Upgrade"), "caseeq: \"Upgrade\" == \"Upgrade\"");
    ok(!wsg_str_caseeq(s, "upgrad"), "caseeq: a shorter literal differs");
    ok(!wsg_str_caseeq(s, "upgrades"), "caseeq: a longer literal differs");
    ok(!wsg_str_caseeq(s, "upgradf"), "caseeq: one letter differs");
    ok(wsg_str_caseeq(WSG_STR(""), ""), "caseeq: empty equals empty");
    ok(!wsg_str_caseeq(WSG_STR(""), "a"), "caseeq: empty differs from \"a\"");
    /* '@' and '`' sit beside the letters; folding must not pair them */
    ok(!wsg_str_caseeq(WSG_STR("@"), "`"), "caseeq: \"@\" differs from \"`\"");

    /* a slice is compared by its length, not up to a NUL */
    struct wsg_str slice = {"websocketX", 9};
    ok(wsg_str_caseeq(slice, "WebSocket"), "caseeq: a slice of 9 bytes");
    ok(!wsg_str_caseeq(slice, "WebSocketX"), "caseeq: bytes past the slice");
}

int
main(void)
{
    test_uint();
    test_size();
    test_msec();
    test_caseeq();
    return done_testing();
}
