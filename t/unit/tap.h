/*
 * A header-only TAP producer for the unit tests, in the picotest vein: each
 * check prints "ok N - name" or "not ok N - name" plus "#" diagnostics
 * (file:line, got, expected), and done_testing() prints the plan last.
 */
#ifndef WSG_TAP_H
#define WSG_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Bytes of a buffer shown in a diagnostic before it is cut with "...". */
#define TAP_SHOW_MAX 96

struct tap_state {
    unsigned run;    /* checks so far */
    unsigned failed; /* of which failed */
};

static inline struct tap_state *
tap_state(void)
{
    static struct tap_state st;

    return &st;
}

static inline bool tap_vreport(bool pass, const char *file, int line,
                               const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/*
 * Prints the "ok"/"not ok" line named by <fmt> and, on failure, where the
 * check sits.
 */
static inline bool
tap_vreport(bool pass, const char *file, int line, const char *fmt, va_list ap)
{
    struct tap_state *st = tap_state();

    st->run++;
    if (!pass) {
        st->failed++;
    }
    char name[512];
    vsnprintf(name, sizeof(name), fmt, ap);
    printf("%sok %u - ", pass ? "" : "not ", st->run);
    /* "#" would start a TAP directive, and a newline would end the line */
    for (const char *p = name; *p != '\0'; p++) {
        if (*p == '#') {
            printf("\\#");
        } else {
            putchar(*p == '\n' ? ' ' : *p);
        }
    }
    printf("\n");
    if (!pass) {
        printf("#   at %s:%d\n", file, line);
    }
    fflush(stdout);
    return pass;
}

static inline bool tap_ok_at(const char *file, int line, bool pass,
                             const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline bool
tap_ok_at(const char *file, int line, bool pass, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tap_vreport(pass, file, line, fmt, ap);
    va_end(ap);
    return pass;
}

static inline bool tap_is_int_at(const char *file, int line, long long got,
                                 long long expected, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static inline bool
tap_is_int_at(const char *file, int line, long long got, long long expected,
              const char *fmt, ...)
{
    bool pass = got == expected;
    va_list ap;

    va_start(ap, fmt);
    tap_vreport(pass, file, line, fmt, ap);
    va_end(ap);
    if (!pass) {
        printf("#      got: %lld\n# expected: %lld\n", got, expected);
    }
    return pass;
}

static inline bool tap_is_uint_at(const char *file, int line, uint64_t got,
                                  uint64_t expected, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static inline bool
tap_is_uint_at(const char *file, int line, uint64_t got, uint64_t expected,
               const char *fmt, ...)
{
    bool pass = got == expected;
    va_list ap;

    va_start(ap, fmt);
    tap_vreport(pass, file, line, fmt, ap);
    va_end(ap);
    if (!pass) {
        printf("#      got: %llu\n# expected: %llu\n", (unsigned long long) got,
               (unsigned long long) expected);
    }
    return pass;
}

/* Prints <len> bytes of <p> quoted, escaping what a terminal would eat. */
static inline void
tap_show(const char *label, const void *p, size_t len)
{
    const unsigned char *s = p;

    printf("# %8s: ", label);
    if (s == NULL) {
        printf("NULL\n");
        return;
    }
    printf("\"");
    for (size_t i = 0; i < len && i < TAP_SHOW_MAX; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            printf("\\%c", s[i]);
        } else if (s[i] >= 0x20 && s[i] < 0x7f) {
            printf("%c", s[i]);
        } else {
            printf("\\x%02x", s[i]);
        }
    }
    printf("\"%s (%zu bytes)\n", len > TAP_SHOW_MAX ? "..." : "", len);
}

static inline bool tap_is_str_at(const char *file, int line, const char *got,
                                 const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* NULL equals only NULL. */
static inline bool
tap_is_str_at(const char *file, int line, const char *got, const char *expected,
              const char *fmt, ...)
{
    bool pass = got == expected ||
                (got != NULL && expected != NULL && strcmp(got, expected) == 0);
    va_list ap;

    va_start(ap, fmt);
    tap_vreport(pass, file, line, fmt, ap);
    va_end(ap);
    if (!pass) {
        tap_show("got", got, got ? strlen(got) : 0);
        tap_show("expected", expected, expected ? strlen(expected) : 0);
    }
    return pass;
}

static inline bool tap_is_mem_at(const char *file, int line, const void *got,
                                 size_t gotlen, const void *expected,
                                 size_t explen, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* A NULL buffer equals only a NULL one; lengths must match exactly. */
static inline bool
tap_is_mem_at(const char *file, int line, const void *got, size_t gotlen,
              const void *expected, size_t explen, const char *fmt, ...)
{
    bool pass;
    va_list ap;

    if (got == NULL || expected == NULL) {
        pass = got == expected && gotlen == explen;
    } else {
        pass = gotlen == explen && memcmp(got, expected, gotlen) == 0;
    }
    va_start(ap, fmt);
    tap_vreport(pass, file, line, fmt, ap);
    va_end(ap);
    if (!pass) {
        tap_show("got", got, gotlen);
        tap_show("expected", expected, explen);
    }
    return pass;
}

/*
 * The checks. They are macros only to pass the caller's __FILE__ and
 * __LINE__, and keep the lower-case names every TAP library uses (Perl's
 * Test::More, picotest) so a test reads the same as elsewhere. Each takes
 * a printf format and its arguments as the test's name, and evaluates to
 * true when the check passed.
 */
#define ok(cond, ...) tap_ok_at(__FILE__, __LINE__, (cond) ? 1 : 0, __VA_ARGS__)
#define is_int(got, expected, ...)                                             \
    tap_is_int_at(__FILE__, __LINE__, (long long) (got),                       \
                  (long long) (expected), __VA_ARGS__)
#define is_uint(got, expected, ...)                                            \
    tap_is_uint_at(__FILE__, __LINE__, (uint64_t) (got),                       \
                   (uint64_t) (expected), __VA_ARGS__)
#define is_str(got, expected, ...)                                             \
    tap_is_str_at(__FILE__, __LINE__, (got), (expected), __VA_ARGS__)
#define is_mem(got, gotlen, expected, explen, ...)                             \
    tap_is_mem_at(__FILE__, __LINE__, (got), (gotlen), (expected), (explen),   \
                  __VA_ARGS__)

/* Prints a "#" comment line, for context around a group of checks. */
static inline void note(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static inline void
note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

/*
 * Prints the plan "1..N" for the N checks run; returns the exit status:
 * 0 when every check passed (and at least one ran), 1 otherwise.
 */
static inline int
done_testing(void)
{
    const struct tap_state *st = tap_state();

    printf("1..%u\n", st->run);
    if (st->failed != 0) {
        printf("# failed %u of %u checks\n", st->failed, st->run);
    }
    fflush(stdout);
    return st->failed == 0 && st->run > 0 ? 0 : 1;
}

#endif
