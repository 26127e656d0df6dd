/*
 * Directives file tokenizer. Whitespace and comments separate words;
 * ";", "{" and "}" end a word and are tokens of their own. A quoted string
 * is one word whatever it holds, and must be followed by a separator.
 */
#include "config.h"

#include "core/conf_lex.h"

void
wsg_conf_lex_init(struct wsg_conf_lexer *lx, const char *buf, size_t len)
{
    lx->p = buf;
    lx->end = buf + len;
    lx->line = 1;
    lx->why = NULL;
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_separator(char c)
{
    return is_space(c) || c == ';' || c == '{' || c == '}' || c == '#';
}

static void
fail(struct wsg_conf_lexer *lx, struct wsg_conf_token *t, const char *why)
{
    /* sticky: every later call returns this error again */
    lx->why = why;
    t->type = WSG_TOK_ERROR;
}

/* Skips blanks and comments; counts lines. */
static void
skip_blank(struct wsg_conf_lexer *lx)
{
    while (lx->p < lx->end) {
        char c = *lx->p;
        if (c == '\n') {
            lx->line++;
            lx->p++;
        } else if (is_space(c)) {
            lx->p++;
        } else if (c == '#') {
            while (lx->p < lx->end && *lx->p != '\n') {
                lx->p++;
            }
        } else {
            return;
        }
    }
}

/* Maps the character after a backslash; returns 0 to keep both bytes. */
static char
unescape(char c)
{
    switch (c) {
    case '"':
    case '\'':
    case '\\':
        return c;
    case 't':
        return '\t';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    default:
        return 0;
    }
}

static bool
put(struct wsg_conf_lexer *lx, size_t *n, char c)
{
    if (*n >= WSG_CONF_WORD_MAX) {
        return false;
    }
    lx->word[(*n)++] = c;
    return true;
}

void
wsg_conf_lex_next(struct wsg_conf_lexer *lx, struct wsg_conf_token *t)
{
    if (lx->why != NULL) {
        t->type = WSG_TOK_ERROR;
        t->line = lx->line;
        return;
    }
    skip_blank(lx);
    t->line = lx->line;
    t->p = NULL;
    t->len = 0;
    t->quoted = false;
    if (lx->p == lx->end) {
        t->type = WSG_TOK_EOF;
        return;
    }

    char c = *lx->p;
    switch (c) {
    case ';':
        lx->p++;
        t->type = WSG_TOK_SEMI;
        return;
    case '{':
        lx->p++;
        t->type = WSG_TOK_LBRACE;
        return;
    case '}':
        lx->p++;
        t->type = WSG_TOK_RBRACE;
        return;
    default:
        break;
    }

    char quote = 0;
    if (c == '"' || c == '\'') {
        quote = c;
        lx->p++;
        t->quoted = true;
    }

    size_t n = 0;
    for (;;) {
        if (lx->p == lx->end) {
            if (quote) {
                fail(lx, t,
                     quote == '"' ? "unexpected end of file, expecting \""
                                  : "unexpected end of file, expecting '");
                return;
            }
            break;
        }
        c = *lx->p;
        if (c == '\0') {
            fail(lx, t, "unexpected NUL byte");
            return;
        }
        if (quote && c == quote) {
            lx->p++;
            if (lx->p < lx->end && !is_separator(*lx->p)) {
                fail(lx, t, "unexpected character after a quoted string");
                return;
            }
            break;
        }
        if (!quote && is_separator(c)) {
            break;
        }
        if (!quote && (c == '"' || c == '\'')) {
            fail(lx, t, "unexpected quote inside a word");
            return;
        }
        if (c == '\n') {
            lx->line++;
        }
        if (c == '\\' && lx->p + 1 < lx->end) {
            char e = unescape(lx->p[1]);
            if (e != 0) {
                c = e;
                lx->p++;
            } else if (lx->p[1] == '\n') {
                /* keep the count right for a backslash before a newline */
                if (!put(lx, &n, '\\')) {
                    goto too_long;
                }
                c = '\n';
                lx->p++;
                lx->line++;
            }
        }
        if (!put(lx, &n, c)) {
            goto too_long;
        }
        lx->p++;
    }

    t->type = WSG_TOK_WORD;
    t->p = lx->word;
    t->len = n;
    return;

too_long:
    fail(lx, t, "too long parameter");
}
