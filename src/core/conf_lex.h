/*
 * Tokenizer of the directives file: words, quoted strings, ";", "{", "}",
 * "#" comments. Pure: it reads a buffer and never allocates beyond the
 * scratch it is given, so it fuzzes on its own.
 */
#ifndef WSG_CONF_LEX_H
#define WSG_CONF_LEX_H

#include <stdbool.h>
#include <stddef.h>

enum wsg_conf_tok {
    WSG_TOK_WORD,   /* a word or a quoted string; value in the token */
    WSG_TOK_SEMI,   /* ";" */
    WSG_TOK_LBRACE, /* "{" */
    WSG_TOK_RBRACE, /* "}" */
    WSG_TOK_EOF,
    WSG_TOK_ERROR, /* <why> in the lexer says what; <line> where */
};

/* Longest word after unescaping; a longer one is an error, not a cut. */
#define WSG_CONF_WORD_MAX 4096

struct wsg_conf_token {
    enum wsg_conf_tok type;
    const char *p; /* unescaped value (WORD only); valid until next call */
    size_t len;
    unsigned line; /* line the token starts on */
    bool quoted;   /* came from "..." or '...' */
};

struct wsg_conf_lexer {
    const char *p; /* cursor into the input */
    const char *end;
    unsigned line;
    const char *why; /* static message for WSG_TOK_ERROR */
    char word[WSG_CONF_WORD_MAX];
};

/* Starts lexing <len> bytes at <buf> (not NUL-terminated) on line 1. */
void wsg_conf_lex_init(struct wsg_conf_lexer *lx, const char *buf, size_t len);

/*
 * Reads the next token into <t>. Escapes: \" \' \\ \t \n \r become the
 * character; any other backslash is kept with what follows (so "\d" stays
 * two bytes, as regexes want). A quote inside a word, a word over
 * WSG_CONF_WORD_MAX, a NUL byte or an unterminated quote gives
 * WSG_TOK_ERROR. After WSG_TOK_EOF or WSG_TOK_ERROR every call returns the
 * same again.
 */
void wsg_conf_lex_next(struct wsg_conf_lexer *lx, struct wsg_conf_token *t);

#endif
