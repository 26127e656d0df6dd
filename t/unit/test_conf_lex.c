/*
 * Tests of src/core/conf_lex.h, the directives file tokenizer: words,
 * punctuation, comments, quotes and escapes, line numbers, and every error.
 * Each input ends exactly at a PROT_NONE page, so reading one byte past
 * the end faults even without a sanitizer.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/conf_lex.h"
#include "tap.h"

/* Room for the longest input: a word of WSG_CONF_WORD_MAX escaped bytes. */
#define GUARD_DATA_PAGES 4

/* Tokens lexed before a run is declared endless. */
#define TOKENS_MAX 10000

static char *guard_data; /* GUARD_DATA_PAGES pages, then a PROT_NONE page */
static size_t guard_size;

static void
guard_init(void)
{
    long page = sysconf(_SC_PAGESIZE);

    if (page <= 0) {
        abort();
    }
    guard_size = (size_t) page * GUARD_DATA_PAGES;
    char *m = mmap(NULL, guard_size + (size_t) page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    if (mprotect(m + guard_size, (size_t) page, PROT_NONE) == -1) {
        perror("mprotect");
        abort();
    }
    guard_data = m;
}

/* Copies <len> bytes of <s> so that they end at the guard page. */
static const char *
guarded(const char *s, size_t len)
{
    if (len > guard_size) {
        abort();
    }
    char *p = guard_data + guard_size - len;
    memcpy(p, s, len);
    return p;
}

static void
lex_init(struct wsg_conf_lexer *lx, const char *s, size_t len)
{
    wsg_conf_lex_init(lx, guarded(s, len), len);
}

/* Appends to <out> (NUL-terminated, <size> bytes), cutting at its end. */
static void appendf(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
appendf(char *out, size_t size, const char *fmt, ...)
{
    size_t n = strlen(out);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out + n, size - n, fmt, ap);
    va_end(ap);
}

/*
 * Lexes all of <s>/<len> and describes the tokens, space separated, as
 * LINE:KIND where KIND is <word> (q<word> when quoted, control bytes as
 * \xNN), ";", "{", "}", EOF or !why for an error.
 */
static const char *
lex_len(const char *s, size_t len)
{
    static char out[4096];
    struct wsg_conf_lexer lx;
    struct wsg_conf_token t;

    out[0] = '\0';
    lex_init(&lx, s, len);
    for (int i = 0; i < TOKENS_MAX; i++) {
        wsg_conf_lex_next(&lx, &t);
        appendf(out, sizeof(out), "%s%u:", i ? " " : "", t.line);
        switch (t.type) {
        case WSG_TOK_WORD:
            appendf(out, sizeof(out), "%s<", t.quoted ? "q" : "");
            for (size_t k = 0; k < t.len; k++) {
                unsigned char c = (unsigned char) t.p[k];
                if (c < 0x20 || c >= 0x7f) {
                    appendf(out, sizeof(out), "\\x%02x", c);
                } else {
                    appendf(out, sizeof(out), "%c", c);
                }
            }
            appendf(out, sizeof(out), ">");
            break;
        case WSG_TOK_SEMI:
            appendf(out, sizeof(out), ";");
            break;
        case WSG_TOK_LBRACE:
            appendf(out, sizeof(out), "{");
            break;
        case WSG_TOK_RBRACE:
            appendf(out, sizeof(out), "}");
            break;
        case WSG_TOK_EOF:
            appendf(out, sizeof(out), "EOF");
            return out;
        case WSG_TOK_ERROR:
            appendf(out, sizeof(out), "!%s", lx.why);
            return out;
        }
    }
    return "endless";
}

static const char *
lex(const char *s)
{
    return lex_len(s, strlen(s));
}

static void
test_tokens(void)
{
    is_str(lex(""), "1:EOF", "empty input is EOF");
    is_str(lex(" \t\r\n"), "2:EOF", "blanks only: EOF on the last line");
    is_str(lex("worker_processes 4;"), "1:<worker_processes> 1:<4> 1:; 1:EOF",
           "a directive: words and \";\"");
    is_str(lex("a{b}c;"), "1:<a> 1:{ 1:<b> 1:} 1:<c> 1:; 1:EOF",
           "\";\", \"{\" and \"}\" end a word and stand alone");
    is_str(lex(";;{{}}"), "1:; 1:; 1:{ 1:{ 1:} 1:} 1:EOF",
           "punctuation runs give one token each");
    is_str(lex("a\tb\rc  d"), "1:<a> 1:<b> 1:<c> 1:<d> 1:EOF",
           "tab, CR and spaces separate words");
    is_str(lex("a b"), "1:<a> 1:<b> 1:EOF", "a word may end the input");
    is_str(lex("/p/*.conf ~^/x$ a=b:c,d"),
           "1:</p/*.conf> 1:<~^/x$> 1:<a=b:c,d> 1:EOF",
           "any other byte belongs to the word");
    is_str(lex("caf\xc3\xa9;"), "1:<caf\\xc3\\xa9> 1:; 1:EOF",
           "bytes above 0x7f are word bytes");
}

static void
test_comments_and_lines(void)
{
    is_str(lex("# only a comment"), "1:EOF", "a comment to the end of input");
    is_str(lex("a; # note ; { }\nb;"), "1:<a> 1:; 2:<b> 2:; 2:EOF",
           "a comment hides \";\" \"{\" \"}\" up to the newline");
    is_str(lex("a#b\nc"), "1:<a> 2:<c> 2:EOF", "\"#\" ends a word");
    is_str(lex("#\n#\n\na\n\n  b\n"), "4:<a> 6:<b> 7:EOF",
           "lines are counted through comments and blank lines");
    is_str(lex("a\r\nb"), "1:<a> 2:<b> 2:EOF", "CRLF counts one line");
    is_str(lex("x {\n  y;\n}\n"), "1:<x> 1:{ 2:<y> 2:; 3:} 4:EOF",
           "each token carries the line it is on");
}

static void
test_quotes(void)
{
    is_str(lex("\"a b;{}#c\""), "1:q<a b;{}#c> 1:EOF",
           "a double-quoted string is one word whatever it holds");
    is_str(lex("'a \"b\"'"), "1:q<a \"b\"> 1:EOF",
           "single quotes hold double quotes");
    is_str(lex("\"it's\""), "1:q<it's> 1:EOF",
           "double quotes hold a single quote");
    is_str(lex("\"\" ''"), "1:q<> 1:q<> 1:EOF",
           "empty quoted strings are empty words");
    is_str(lex("a \"b\";"), "1:<a> 1:q<b> 1:; 1:EOF",
           "\";\" may follow a closing quote");
    is_str(lex("\"b\"{}"), "1:q<b> 1:{ 1:} 1:EOF",
           "\"{\" may follow a closing quote");
    is_str(lex("'b'}"), "1:q<b> 1:} 1:EOF", "\"}\" may follow a closing quote");
    is_str(lex("\"b\"#c"), "1:q<b> 1:EOF", "\"#\" may follow a closing quote");
    is_str(lex("\"b\"\n"), "1:q<b> 2:EOF",
           "a newline may follow a closing quote");
    is_str(lex("\"one\ntwo\nthree\" x"),
           "1:q<one\\x0atwo\\x0athree> 3:<x> 3:EOF",
           "a quoted string spans lines; it starts on its first line");
    is_str(lex("\"\\\"\" '\\''"), "1:q<\"> 1:q<'> 1:EOF",
           "an escaped quote does not close the string");
}

/* Lexes <in> and checks its one word is the <len> bytes at <want>. */
static void
word_is(const char *in, const char *want, size_t len, const char *name)
{
    struct wsg_conf_lexer lx;
    struct wsg_conf_token t;

    lex_init(&lx, in, strlen(in));
    wsg_conf_lex_next(&lx, &t);
    if (is_int(t.type, WSG_TOK_WORD, "%s: a word", name)) {
        is_mem(t.p, t.len, want, len, "%s: its bytes", name);
    }
}

static void
test_escapes(void)
{
    word_is("\"a\\\"b\"", "a\"b", 3, "\\\" in double quotes");
    word_is("'a\\'b'", "a'b", 3, "\\' in single quotes");
    word_is("\"a\\'b\"", "a'b", 3, "\\' in double quotes");
    word_is("'a\\\"b'", "a\"b", 3, "\\\" in single quotes");
    word_is("\"a\\\\b\"", "a\\b", 3, "\\\\ is one backslash");
    word_is("\"\\t\\n\\r\"", "\t\n\r", 3, "\\t \\n \\r are control bytes");
    word_is("a\\tb", "a\tb", 3, "escapes work outside quotes");
    word_is("a\\\"b", "a\"b", 3, "an escaped quote is allowed in a word");
    word_is("\"\\d+\"", "\\d+", 3, "\\d keeps both bytes");
    word_is("^/\\w\\.x$", "^/\\w\\.x$", 8, "regex escapes in a word are kept");
    word_is("\"\\x41\"", "\\x41", 4, "\\x is not an escape");
    word_is("\"\\\\\\\\\"", "\\\\", 2, "\\\\\\\\ is two backslashes");
    word_is("\"a\\\nb\"", "a\\\nb", 4,
            "a backslash before a newline is kept with it");
    word_is("a\\", "a\\", 2, "a backslash may end the input");

    /* the escaped newline still counts as a line */
    is_str(lex("\"a\\\nb\" c"), "1:q<a\\\\x0ab> 2:<c> 2:EOF",
           "backslash-newline counts its line");
    is_str(lex("\"\\n\" c"), "1:q<\\x0a> 1:<c> 1:EOF",
           "an escaped \\n is not a new line");
}

/* Checks that <in> lexes to an error <why> on <line> after <before>. */
static void
error_is(const char *in, size_t len, const char *before, unsigned line,
         const char *why, const char *name)
{
    struct wsg_conf_lexer lx;
    struct wsg_conf_token t;
    char got[256] = "";

    lex_init(&lx, in, len);
    for (int i = 0; i < TOKENS_MAX; i++) {
        wsg_conf_lex_next(&lx, &t);
        if (t.type == WSG_TOK_ERROR || t.type == WSG_TOK_EOF) {
            break;
        }
        if (t.type == WSG_TOK_WORD) {
            appendf(got, sizeof(got), "%s%.*s", i ? " " : "", (int) t.len, t.p);
        } else {
            appendf(got, sizeof(got), "%s%s", i ? " " : "",
                    t.type == WSG_TOK_SEMI     ? ";"
                    : t.type == WSG_TOK_LBRACE ? "{"
                                               : "}");
        }
    }
    is_str(got, before, "%s: tokens before the error", name);
    if (!is_int(t.type, WSG_TOK_ERROR, "%s: an error", name)) {
        return;
    }
    is_str(lx.why, why, "%s: says why", name);
    is_int(t.line, line, "%s: on line %u", name, line);

    /* sticky: later calls repeat the error and never read on */
    wsg_conf_lex_next(&lx, &t);
    is_int(t.type, WSG_TOK_ERROR, "%s: the next call errs again", name);
    wsg_conf_lex_next(&lx, &t);
    is_int(t.type, WSG_TOK_ERROR, "%s: and the one after", name);
    is_str(lx.why, why, "%s: with the same reason", name);
}

static void
test_errors(void)
{
    static const char dq[] = "unexpected end of file, expecting \"";
    static const char sq[] = "unexpected end of file, expecting '";
    static const char after[] = "unexpected character after a quoted string";
    static const char inword[] = "unexpected quote inside a word";
    static const char nul[] = "unexpected NUL byte";

    error_is("a \"bc", 5, "a", 1, dq, "unterminated double quote");
    error_is("'bc", 3, "", 1, sq, "unterminated single quote");
    error_is("\"", 1, "", 1, dq, "a lone double quote");
    error_is("x;\n\"a\nb\nc", 9, "x ;", 2, dq,
             "an unterminated quote is reported where it opened");
    error_is("\"abc\\\"", 6, "", 1, dq, "an escaped quote does not close");
    error_is("\"abc\\", 5, "", 1, dq, "a trailing backslash does not close");
    error_is("\"a\"b", 4, "", 1, after, "a byte right after a closing quote");
    error_is("'a'\"b\"", 6, "", 1, after, "a quote right after a closing one");
    error_is("ab\"c\"", 5, "", 1, inword, "a double quote inside a word");
    error_is("x;\nab'c'", 8, "x ;", 2, inword, "a single quote inside a word");
    error_is("a\0b", 3, "", 1, nul, "a NUL inside a word");
    error_is("a;\0", 3, "a ;", 1, nul, "a NUL starting a token");
    error_is("\"a\0\"", 4, "", 1, nul, "a NUL inside quotes");
    error_is("a\\\0", 3, "", 1, nul, "a NUL after a backslash");
}

static void
test_word_max(void)
{
    char *buf = malloc(2 * WSG_CONF_WORD_MAX + 4);
    struct wsg_conf_lexer lx;
    struct wsg_conf_token t;

    if (buf == NULL) {
        abort();
    }
    memset(buf, 'w', WSG_CONF_WORD_MAX + 1);
    lex_init(&lx, buf, WSG_CONF_WORD_MAX);
    wsg_conf_lex_next(&lx, &t);
    is_int(t.type, WSG_TOK_WORD, "a word of WSG_CONF_WORD_MAX bytes is fine");
    is_int(t.len, WSG_CONF_WORD_MAX, "and whole");

    error_is(buf, WSG_CONF_WORD_MAX + 1, "", 1, "too long parameter",
             "a word of WSG_CONF_WORD_MAX + 1 bytes");

    /* the limit counts unescaped bytes: 2 * MAX input bytes fit */
    buf[0] = '"';
    for (size_t i = 0; i < WSG_CONF_WORD_MAX; i++) {
        buf[1 + 2 * i] = '\\';
        buf[2 + 2 * i] = 't';
    }
    buf[1 + 2 * WSG_CONF_WORD_MAX] = '"';
    lex_init(&lx, buf, 2 * WSG_CONF_WORD_MAX + 2);
    wsg_conf_lex_next(&lx, &t);
    is_int(t.type, WSG_TOK_WORD, "MAX escaped bytes in quotes are fine");
    ok(t.len == WSG_CONF_WORD_MAX && t.p[0] == '\t' &&
           t.p[WSG_CONF_WORD_MAX - 1] == '\t',
       "and unescaped to MAX tabs");

    memmove(buf + 3, buf + 1, 2 * WSG_CONF_WORD_MAX + 1);
    buf[1] = '\\';
    buf[2] = 't';
    error_is(buf, 2 * WSG_CONF_WORD_MAX + 4, "", 1, "too long parameter",
             "MAX + 1 escaped bytes in quotes");
    free(buf);
}

static void
test_token_fields(void)
{
    struct wsg_conf_lexer lx;
    struct wsg_conf_token t;

    lex_init(&lx, "\n\n'q' w", 7);
    wsg_conf_lex_next(&lx, &t);
    ok(t.type == WSG_TOK_WORD && t.quoted && t.line == 3,
       "a quoted word is marked quoted, with its line");
    wsg_conf_lex_next(&lx, &t);
    ok(t.type == WSG_TOK_WORD && !t.quoted && t.len == 1 && t.p[0] == 'w',
       "a bare word is not marked quoted");
    wsg_conf_lex_next(&lx, &t);
    is_int(t.type, WSG_TOK_EOF, "then EOF");
    wsg_conf_lex_next(&lx, &t);
    is_int(t.type, WSG_TOK_EOF, "EOF repeats");
    ok(lx.why == NULL, "EOF is not an error");
}

/*
 * Every prefix of each input lexes to EOF or an error in bounded steps,
 * with the prefix ending at the guard page: no cut reads past the end.
 */
static void
test_prefixes(void)
{
    static const char *const inputs[] = {
        ("server {\n    listen 127.0.0.1:8080 default_server;\n"
         "    location = /ws { access_log \"logs/a b.log\" json; }\n}\n"),
        "a \"q\\\"u\\\\o\\t\" 'x\\'y' \\d # c\n;",
        "\"a\\\nb\" 'c\nd' e\\",
    };

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        size_t len = strlen(inputs[i]);
        size_t ended = 0;
        for (size_t n = 0; n <= len; n++) {
            const char *r = lex_len(inputs[i], n);
            if (strstr(r, "EOF") != NULL || strchr(r, '!') != NULL) {
                ended++;
            }
        }
        is_int(ended, len + 1, "input %zu: each of its %zu prefixes ends", i,
               len + 1);
    }
}

int
main(void)
{
    guard_init();
    test_tokens();
    test_comments_and_lines();
    test_quotes();
    test_escapes();
    test_errors();
    test_word_max();
    test_token_fields();
    test_prefixes();
    return done_testing();
}
