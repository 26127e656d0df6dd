/*
 * The auth module: a WebSocket handshake to a location with auth on must
 * carry a JWT (HS256 or RS256, jwt.h) or a static token, from a header, a
 * query argument, a cookie or a subprotocol (browsers cannot set
 * Authorization). A valid one names the session's user; anything else gets
 * 401 or 403 with nothing more. Keys and tokens load with the configuration.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "jwt.h"
#include "wsgate_module.h"

#define KEY_FILE_MAX    (64 * 1024)   /* secret and public key files */
#define TOKEN_FILE_MAX  (1024 * 1024) /* every handshake scans all of it */
#define DEFAULT_LEEWAY  30000         /* ms */
#define DIGEST_LEN      32            /* SHA-256 */
#define SOURCE_NAME_MAX 256

/* Where a credential may be found. */
enum from {
    FROM_HEADER,
    FROM_QUERY,
    FROM_COOKIE,
    FROM_SUBPROTOCOL,
};

struct auth_source {
    enum from from;
    const char *name; /* header, argument or cookie name; subprotocol
                         prefix; NUL-terminated */
    size_t name_len;
    bool bearer; /* Authorization: "Bearer" then the token */
};

/* A static token, kept as its SHA-256 so every comparison has one length. */
struct auth_token {
    unsigned char digest[DIGEST_LEN];
    const char *user; /* NUL-terminated */
    size_t user_len;
    unsigned line; /* in the tokens file, for messages */
};

/* All in configuration memory; a field unset here is inherited. */
struct auth_loc_conf {
    int enabled; /* flag, as set here or above; only explicit settings are
                    inherited, so a location's own key turns auth on */
    bool active; /* merged: the handshake hook checks credentials */

    char *secret_file; /* path; set means the secret is too */
    const unsigned char *secret;
    size_t secret_len;

    char *public_key_file;               /* path; set means the key is too */
    const unsigned char *public_key_der; /* SubjectPublicKeyInfo */
    size_t public_key_der_len;

    char *issuer;     /* NULL: any */
    char *audience;   /* NULL: tokens must have no "aud" */
    char *user_claim; /* default "sub" */
    uint64_t leeway_ms;

    char *tokens_file; /* path; set means the tokens are too */
    const struct auth_token *tokens;
    size_t ntokens;

    const struct auth_source *sources;
    size_t nsources;
};

/* The file's bytes, read whole; the caller frees <p>. */
struct file_bytes {
    unsigned char *p;
    size_t len;
};

/*
 * RS256 keys decoded in this worker, found by their DER bytes in the
 * configuration. Decoding a key costs more than a verification, so each is
 * decoded at its first handshake and kept until the worker exits (the
 * module API frees nothing with a configuration, so the configuration
 * keeps only bytes).
 */
struct key_cache {
    const unsigned char *der; /* borrowed from the configuration */
    EVP_PKEY *key;            /* owned */
    struct key_cache *next;
};

extern const struct wsg_module wsg_auth_module;

static struct key_cache *key_cache; /* per worker process */

/* The default sources: Authorization: Bearer, then ?access_token=. */
static const struct auth_source default_sources[] = {
    {FROM_HEADER, "Authorization", 13, true},
    {FROM_QUERY, "access_token", 12, false},
};

/* A field wsg_conf_set_str() fills is "char *": the default must be too. */
static char default_claim[] = "sub";

static const struct wsg_conf_bounds leeway_bounds = {0, 3600 * 1000};

/* ---- helpers ---- */

static bool
ascii_caseeq(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char) a[i], y = (unsigned char) b[i];
        if (x >= 'A' && x <= 'Z') {
            x = (unsigned char) (x - 'A' + 'a');
        }
        if (y >= 'A' && y <= 'Z') {
            y = (unsigned char) (y - 'A' + 'a');
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static struct wsg_str
trim(struct wsg_str v)
{
    while (v.len > 0 && is_blank(v.p[0])) {
        v.p++;
        v.len--;
    }
    while (v.len > 0 && is_blank(v.p[v.len - 1])) {
        v.len--;
    }
    return v;
}

/* An RFC 9110 tchar: what header names and subprotocols are made of. */
static bool
is_tchar(unsigned char c)
{
    /* strchr() finds the terminating NUL too: keep it out */
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
all_tchars(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_tchar((unsigned char) p[i])) {
            return false;
        }
    }
    return true;
}

/* No control characters: what a token from any source can hold. */
static bool
printable(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) p[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

/* The SHA-256 of <len> bytes at <p> into <md>; 0, or -1 when it failed. */
static int
digest(const void *p, size_t len, unsigned char md[DIGEST_LEN])
{
    unsigned int mdlen = 0;

    if (EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != DIGEST_LEN) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* The first OpenSSL error queued, for a message; clears the queue. */
static const char *
openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (e == 0) {
        snprintf(buf, len, "unknown error");
    } else {
        ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

/* ---- configuration ---- */

/*
 * Reads the file <path>, at most <max> bytes, into <f>. Returns NULL, or a
 * phrase naming the file.
 */
static const char *
read_file(struct wsg_conf *cf, const char *path, size_t max,
          struct file_bytes *f)
{
    /* "e": O_CLOEXEC, as every descriptor of the gateway */
    FILE *fp = fopen(path, "rbe");

    f->p = NULL;
    if (fp == NULL) {
        int err = errno;
        return wsg_conf_phrase(cf, "open() \"%s\" failed (%d: %s)", path, err,
                               strerror(err));
    }
    /* one byte more than allowed tells "too big" from "just fits" */
    f->p = malloc(max + 1);
    if (f->p == NULL) {
        fclose(fp);
        return wsg_conf_phrase(cf, "cannot read \"%s\": out of memory", path);
    }
    f->len = fread(f->p, 1, max + 1, fp);
    int failed = ferror(fp), err = errno;
    fclose(fp);
    if (failed) {
        free(f->p);
        f->p = NULL;
        return wsg_conf_phrase(cf, "read() \"%s\" failed (%d: %s)", path, err,
                               strerror(err));
    }
    if (f->len > max) {
        free(f->p);
        f->p = NULL;
        return wsg_conf_phrase(cf, "\"%s\" is larger than %zu bytes", path,
                               max);
    }
    return NULL;
}

static const char *
set_secret_file(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct auth_loc_conf *alcf = conf;
    struct file_bytes f;
    const char *rv = wsg_conf_set_path(cf, d, conf);

    if (rv == NULL) {
        rv = read_file(cf, alcf->secret_file, KEY_FILE_MAX, &f);
    }
    if (rv != NULL) {
        return rv;
    }
    /* editors end files with a newline that is no part of the secret */
    if (f.len > 0 && f.p[f.len - 1] == '\n') {
        f.len--;
        if (f.len > 0 && f.p[f.len - 1] == '\r') {
            f.len--;
        }
    }
    if (f.len < AUTH_JWT_HS256_MIN) {
        OPENSSL_cleanse(f.p, f.len);
        free(f.p);
        return wsg_conf_phrase(cf,
                               "secret \"%s\" is shorter than %d bytes, "
                               "the least HS256 allows",
                               alcf->secret_file, AUTH_JWT_HS256_MIN);
    }
    unsigned char *secret = wsg_conf_alloc(cf, f.len);
    memcpy(secret, f.p, f.len);
    OPENSSL_cleanse(f.p, f.len);
    free(f.p);
    alcf->secret = secret;
    alcf->secret_len = f.len;
    return NULL;
}

/*
 * Checks that <key> is an RSA key fit for RS256 and keeps its DER form in
 * <alcf>. Returns NULL or a phrase.
 */
static const char *
keep_public_key(struct wsg_conf *cf, struct auth_loc_conf *alcf, EVP_PKEY *key)
{
    const char *path = alcf->public_key_file;

    if (!EVP_PKEY_is_a(key, "RSA")) {
        return wsg_conf_phrase(cf, "public key \"%s\" is not an RSA key", path);
    }
    if (EVP_PKEY_get_bits(key) < AUTH_JWT_RSA_MIN) {
        return wsg_conf_phrase(cf,
                               "public key \"%s\" has %d bits, fewer than "
                               "the %d RS256 needs",
                               path, EVP_PKEY_get_bits(key), AUTH_JWT_RSA_MIN);
    }
    int n = i2d_PUBKEY(key, NULL);
    if (n <= 0) {
        char errs[256];
        return wsg_conf_phrase(cf, "cannot encode public key \"%s\": %s", path,
                               openssl_reason(errs, sizeof(errs)));
    }
    unsigned char *der = wsg_conf_alloc(cf, (size_t) n);
    unsigned char *p = der;
    i2d_PUBKEY(key, &p);
    alcf->public_key_der = der;
    alcf->public_key_der_len = (size_t) n;
    return NULL;
}

static const char *
set_public_key_file(struct wsg_conf *cf, const struct wsg_directive *d,
                    void *conf)
{
    struct auth_loc_conf *alcf = conf;
    struct file_bytes f;
    const char *rv = wsg_conf_set_path(cf, d, conf);

    if (rv == NULL) {
        rv = read_file(cf, alcf->public_key_file, KEY_FILE_MAX, &f);
    }
    if (rv != NULL) {
        return rv;
    }
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(f.p, (int) f.len);
    EVP_PKEY *key =
        bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    free(f.p);
    if (key == NULL) {
        char errs[256];
        return wsg_conf_phrase(cf, "cannot load public key \"%s\": %s",
                               alcf->public_key_file,
                               openssl_reason(errs, sizeof(errs)));
    }
    rv = keep_public_key(cf, alcf, key);
    EVP_PKEY_free(key);
    return rv;
}

/* One line of a tokens file: the token and the user id, or neither. */
struct token_line {
    struct wsg_str token;
    struct wsg_str user;
};

/* The next blank-separated word of <*rest>, which moves past it. */
static struct wsg_str
next_word(struct wsg_str *rest)
{
    struct wsg_str w = trim(*rest);
    size_t n = 0;

    while (n < w.len && !is_blank(w.p[n])) {
        n++;
    }
    rest->p = w.p + n;
    rest->len = w.len - n;
    w.len = n;
    return w;
}

/*
 * Parses the line <text> ("TOKEN USERID", blank, or a "#" comment).
 * Returns 1 with <tl> set, 0 for nothing, or -1 when malformed.
 */
static int
parse_token_line(struct wsg_str text, struct token_line *tl)
{
    if (text.len > 0 && text.p[text.len - 1] == '\r') {
        text.len--;
    }
    struct wsg_str rest = trim(text);
    if (rest.len == 0 || rest.p[0] == '#') {
        return 0;
    }
    tl->token = next_word(&rest);
    tl->user = next_word(&rest);
    if (tl->user.len == 0 || trim(rest).len != 0 ||
        tl->token.len > AUTH_JWT_MAX ||
        !printable(tl->token.p, tl->token.len) ||
        !auth_jwt_user_valid(tl->user.p, tl->user.len)) {
        return -1;
    }
    return 1;
}

/*
 * Reads the tokens of <f> into <out> (NULL: only counts them) and sets
 * *<n>. Returns NULL, or a phrase naming the file and line.
 */
static const char *
parse_tokens(struct wsg_conf *cf, const char *path, const struct file_bytes *f,
             struct auth_token *out, size_t *n)
{
    const char *p = (const char *) f->p, *end = p + f->len;
    unsigned line = 0;

    *n = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        struct wsg_str text = {p, (size_t) ((nl ? nl : end) - p)};
        struct token_line tl;
        line++;
        p = nl ? nl + 1 : end;
        int rc = parse_token_line(text, &tl);
        if (rc < 0 || memchr(text.p, '\0', text.len) != NULL) {
            return wsg_conf_phrase(cf,
                                   "invalid line %u in \"%s\", expecting "
                                   "\"TOKEN USERID\"",
                                   line, path);
        }
        if (rc == 0) {
            continue;
        }
        if (out != NULL) {
            struct auth_token *t = &out[*n];
            char *user = wsg_conf_alloc(cf, tl.user.len + 1);
            memcpy(user, tl.user.p, tl.user.len);
            t->user = user;
            t->user_len = tl.user.len;
            t->line = line;
            if (digest(tl.token.p, tl.token.len, t->digest) != 0) {
                return wsg_conf_phrase(cf, "cannot hash the tokens of \"%s\"",
                                       path);
            }
        }
        (*n)++;
    }
    return NULL;
}

static int
compare_tokens(const void *a, const void *b)
{
    const struct auth_token *x = a, *y = b;

    return memcmp(x->digest, y->digest, DIGEST_LEN);
}

static const char *
set_tokens_file(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct auth_loc_conf *alcf = conf;
    const char *path;
    struct file_bytes f;
    size_t n;
    const char *rv = wsg_conf_set_path(cf, d, conf);

    if (rv == NULL) {
        rv = read_file(cf, alcf->tokens_file, TOKEN_FILE_MAX, &f);
    }
    if (rv != NULL) {
        return rv;
    }
    path = alcf->tokens_file;
    /* count, then fill: the array is sized once, in configuration memory */
    rv = parse_tokens(cf, path, &f, NULL, &n);
    if (rv == NULL && n == 0) {
        rv = wsg_conf_phrase(cf, "\"%s\" holds no tokens", path);
    }
    struct auth_token *tokens = NULL;
    if (rv == NULL) {
        tokens = wsg_conf_alloc(cf, n * sizeof(*tokens));
        rv = parse_tokens(cf, path, &f, tokens, &n);
    }
    OPENSSL_cleanse(f.p, f.len);
    free(f.p);
    if (rv != NULL) {
        return rv;
    }
    /* sorted, a token given twice sits next to itself */
    qsort(tokens, n, sizeof(*tokens), compare_tokens);
    for (size_t i = 1; i < n; i++) {
        if (compare_tokens(&tokens[i - 1], &tokens[i]) == 0) {
            unsigned a = tokens[i - 1].line, b = tokens[i].line;
            return wsg_conf_phrase(cf,
                                   "\"%s\" has the same token on lines %u "
                                   "and %u",
                                   path, a < b ? a : b, a < b ? b : a);
        }
    }
    alcf->tokens = tokens;
    alcf->ntokens = n;
    return NULL;
}

/* Parses one word of auth_token_from ("query:token") into <src>. */
static const char *
parse_source(struct wsg_conf *cf, struct wsg_str a, struct auth_source *src)
{
    static const struct {
        const char *kind;
        enum from from;
        const char *name; /* the default */
    } kinds[] = {
        {"header", FROM_HEADER, "Authorization"},
        {"query", FROM_QUERY, "access_token"},
        {"cookie", FROM_COOKIE, "access_token"},
        {"subprotocol", FROM_SUBPROTOCOL, "access_token."},
    };
    const char *colon = memchr(a.p, ':', a.len);
    size_t klen = colon ? (size_t) (colon - a.p) : a.len;

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strlen(kinds[i].kind) != klen ||
            memcmp(kinds[i].kind, a.p, klen) != 0) {
            continue;
        }
        src->from = kinds[i].from;
        src->name = colon ? colon + 1 : kinds[i].name;
        src->name_len = strlen(src->name);
        /* a query argument's name may be anything a target holds */
        bool ok =
            src->name_len > 0 && src->name_len <= SOURCE_NAME_MAX &&
            (src->from == FROM_QUERY ? printable(src->name, src->name_len)
                                     : all_tchars(src->name, src->name_len));
        if (!ok) {
            return wsg_conf_phrase(cf, "invalid name in \"%s\"", a.p);
        }
        src->bearer = src->from == FROM_HEADER && src->name_len == 13 &&
                      ascii_caseeq(src->name, "Authorization", 13);
        return NULL;
    }
    return wsg_conf_phrase(cf,
                           "invalid source \"%s\", expecting header, query, "
                           "cookie or subprotocol, each with an optional "
                           "\":NAME\"",
                           a.p);
}

static const char *
set_token_from(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    struct auth_loc_conf *alcf = conf;
    size_t n = wsg_conf_nargs(cf) - 1;

    (void) d;
    if (alcf->sources != NULL) {
        return "is duplicate";
    }
    struct auth_source *sources = wsg_conf_alloc(cf, n * sizeof(*sources));
    for (size_t i = 0; i < n; i++) {
        const char *rv = parse_source(cf, wsg_conf_arg(cf, i + 1), &sources[i]);
        if (rv != NULL) {
            return rv;
        }
    }
    alcf->sources = sources;
    alcf->nsources = n;
    return NULL;
}

static const char *
set_nonempty_str(struct wsg_conf *cf, const struct wsg_directive *d, void *conf)
{
    if (wsg_conf_arg(cf, 1).len == 0) {
        return "needs a non-empty value";
    }
    return wsg_conf_set_str(cf, d, conf);
}

#define AUTH_CTX (WSG_CTX_MAIN | WSG_CTX_SERVER | WSG_CTX_LOCATION)

static const struct wsg_directive auth_directives[] = {
    {"auth", AUTH_CTX, 1, 1, wsg_conf_set_flag,
     offsetof(struct auth_loc_conf, enabled), NULL},
    {"auth_jwt_secret_file", AUTH_CTX, 1, 1, set_secret_file,
     offsetof(struct auth_loc_conf, secret_file), NULL},
    {"auth_jwt_public_key_file", AUTH_CTX, 1, 1, set_public_key_file,
     offsetof(struct auth_loc_conf, public_key_file), NULL},
    {"auth_jwt_issuer", AUTH_CTX, 1, 1, set_nonempty_str,
     offsetof(struct auth_loc_conf, issuer), NULL},
    {"auth_jwt_audience", AUTH_CTX, 1, 1, set_nonempty_str,
     offsetof(struct auth_loc_conf, audience), NULL},
    {"auth_jwt_user_claim", AUTH_CTX, 1, 1, set_nonempty_str,
     offsetof(struct auth_loc_conf, user_claim), NULL},
    {"auth_jwt_leeway", AUTH_CTX, 1, 1, wsg_conf_set_msec,
     offsetof(struct auth_loc_conf, leeway_ms), &leeway_bounds},
    {"auth_tokens_file", AUTH_CTX, 1, 1, set_tokens_file,
     offsetof(struct auth_loc_conf, tokens_file), NULL},
    {"auth_token_from", AUTH_CTX, 1, WSG_CONF_MAX_ARGS, set_token_from, 0,
     NULL},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static void *
auth_create_loc_conf(struct wsg_conf *cf)
{
    struct auth_loc_conf *alcf = wsg_conf_alloc(cf, sizeof(*alcf));

    /* zeroed: every pointer NULL, every count 0 */
    alcf->enabled = WSG_CONF_UNSET;
    alcf->leeway_ms = WSG_CONF_UNSET_U64;
    return alcf;
}

static const char *
auth_merge_loc_conf(struct wsg_conf *cf, void *parent, void *child)
{
    const struct auth_loc_conf *prev = parent;
    struct auth_loc_conf *alcf = child;

    (void) cf;
    /* a file and what was read from it go together */
    if (alcf->secret_file == NULL) {
        alcf->secret_file = prev->secret_file;
        alcf->secret = prev->secret;
        alcf->secret_len = prev->secret_len;
    }
    if (alcf->public_key_file == NULL) {
        alcf->public_key_file = prev->public_key_file;
        alcf->public_key_der = prev->public_key_der;
        alcf->public_key_der_len = prev->public_key_der_len;
    }
    if (alcf->tokens_file == NULL) {
        alcf->tokens_file = prev->tokens_file;
        alcf->tokens = prev->tokens;
        alcf->ntokens = prev->ntokens;
    }
    if (alcf->sources == NULL) {
        alcf->sources = prev->sources;
        alcf->nsources = prev->nsources;
    }
    if (alcf->sources == NULL) {
        alcf->sources = default_sources;
        alcf->nsources = sizeof(default_sources) / sizeof(default_sources[0]);
    }
    alcf->issuer = alcf->issuer ? alcf->issuer : prev->issuer;
    alcf->audience = alcf->audience ? alcf->audience : prev->audience;
    alcf->user_claim = alcf->user_claim ? alcf->user_claim : prev->user_claim;
    alcf->user_claim = alcf->user_claim ? alcf->user_claim : default_claim;
    if (alcf->leeway_ms == WSG_CONF_UNSET_U64) {
        alcf->leeway_ms = prev->leeway_ms;
    }
    if (alcf->leeway_ms == WSG_CONF_UNSET_U64) {
        alcf->leeway_ms = DEFAULT_LEEWAY;
    }

    bool credentials = alcf->secret != NULL || alcf->public_key_der != NULL ||
                       alcf->ntokens > 0;
    if (alcf->enabled == WSG_CONF_UNSET) {
        alcf->enabled = prev->enabled;
    }
    alcf->active =
        alcf->enabled == WSG_CONF_UNSET ? credentials : alcf->enabled == 1;
    if (alcf->active && !credentials) {
        return "\"auth\" is on but none of \"auth_jwt_secret_file\", "
               "\"auth_jwt_public_key_file\" or \"auth_tokens_file\" is set";
    }
    return NULL;
}

/* ---- per worker ---- */

/* The RS256 key of <alcf>, decoded once per worker; NULL when it failed. */
static EVP_PKEY *
rsa_key(const struct auth_loc_conf *alcf)
{
    for (const struct key_cache *kc = key_cache; kc != NULL; kc = kc->next) {
        if (kc->der == alcf->public_key_der) {
            return kc->key;
        }
    }
    const unsigned char *p = alcf->public_key_der;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long) alcf->public_key_der_len);
    struct key_cache *kc = malloc(sizeof(*kc));
    if (key == NULL || kc == NULL) {
        ERR_clear_error();
        EVP_PKEY_free(key);
        free(kc);
        return NULL;
    }
    kc->der = alcf->public_key_der;
    kc->key = key;
    kc->next = key_cache;
    key_cache = kc;
    return key;
}

static void
auth_exit_process(struct wsg_cycle *cycle)
{
    (void) cycle;
    while (key_cache != NULL) {
        struct key_cache *next = key_cache->next;
        EVP_PKEY_free(key_cache->key);
        free(key_cache);
        key_cache = next;
    }
}

/* ---- finding the credential ---- */

/*
 * Takes <v> as the token: 1 when it is one, 0 when empty (as if absent),
 * -1 when it cannot be one (too long, control characters).
 */
static int
take(struct wsg_str v, struct wsg_str *token)
{
    if (v.len == 0) {
        return 0;
    }
    if (v.len > AUTH_JWT_MAX || !printable(v.p, v.len)) {
        return -1;
    }
    *token = v;
    return 1;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*
 * Percent-decodes <v> into <buf> (AUTH_JWT_MAX bytes) and takes it as the
 * token, as take() does; a bad escape is -1. "+" stays "+": tokens hold
 * no spaces, while standard base64 holds "+".
 */
static int
take_decoded(struct wsg_str v, char *buf, struct wsg_str *token)
{
    size_t n = 0;

    for (size_t i = 0; i < v.len; i++) {
        int c = (unsigned char) v.p[i];
        if (c == '%') {
            int hi = i + 2 < v.len ? hex_value(v.p[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(v.p[i + 2]) : -1;
            if (lo < 0) {
                return -1;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        if (n == AUTH_JWT_MAX) {
            return -1;
        }
        buf[n++] = (char) c;
    }
    struct wsg_str d = {buf, n};
    return take(d, token);
}

static int
from_header(const struct wsg_session *s, const struct auth_source *src,
            struct wsg_str *token)
{
    struct wsg_str v = wsg_session_header(s, src->name);

    if (v.p == NULL) {
        return 0;
    }
    v = trim(v);
    if (src->bearer) {
        /* another scheme (Basic) is not ours: the next source may be */
        if (v.len < 7 || !ascii_caseeq(v.p, "Bearer", 6) || !is_blank(v.p[6])) {
            return 0;
        }
        v.p += 7;
        v.len -= 7;
        v = trim(v);
    }
    return take(v, token);
}

static int
from_query(const struct wsg_session *s, const struct auth_source *src,
           char *buf, struct wsg_str *token)
{
    struct wsg_str target = wsg_session_path(s);
    const char *q = memchr(target.p, '?', target.len);
    const char *end = target.p + target.len;

    for (const char *p = q ? q + 1 : end; p < end;) {
        const char *amp = memchr(p, '&', (size_t) (end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t) (e - p));
        /* the name is compared as sent, the value decoded */
        if (eq != NULL && (size_t) (eq - p) == src->name_len &&
            memcmp(p, src->name, src->name_len) == 0) {
            struct wsg_str v = {eq + 1, (size_t) (e - eq - 1)};
            return take_decoded(v, buf, token);
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

/* The value of the cookie src->name in the first Cookie header. */
static int
from_cookie(const struct wsg_session *s, const struct auth_source *src,
            struct wsg_str *token)
{
    struct wsg_str v = wsg_session_header(s, "Cookie");

    if (v.p == NULL) {
        return 0;
    }
    /* "a=1; b=2" (RFC 6265 4.2.1), a little more lenient on blanks */
    const char *end = v.p + v.len;
    for (const char *p = v.p; p < end;) {
        const char *semi = memchr(p, ';', (size_t) (end - p));
        const char *e = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t) (e - p));
        struct wsg_str name = {p, (size_t) ((eq ? eq : e) - p)};
        p = semi ? semi + 1 : end;
        name = trim(name);
        if (eq == NULL || name.len != src->name_len ||
            memcmp(name.p, src->name, name.len) != 0) {
            continue;
        }
        struct wsg_str value = {eq + 1, (size_t) (e - eq - 1)};
        value = trim(value);
        /* a cookie value may be quoted; the quotes are not part of it */
        if (value.len >= 2 && value.p[0] == '"' &&
            value.p[value.len - 1] == '"') {
            value.p++;
            value.len -= 2;
        }
        return take(value, token);
    }
    return 0;
}

static int
from_subprotocol(const struct wsg_session *s, const struct auth_source *src,
                 struct wsg_str *token)
{
    struct wsg_str v = wsg_session_header(s, "Sec-WebSocket-Protocol");

    if (v.p == NULL) {
        return 0;
    }
    const char *end = v.p + v.len;
    for (const char *p = v.p; p < end;) {
        const char *comma = memchr(p, ',', (size_t) (end - p));
        struct wsg_str item = {p, (size_t) ((comma ? comma : end) - p)};
        p = comma ? comma + 1 : end;
        item = trim(item);
        if (item.len > src->name_len &&
            memcmp(item.p, src->name, src->name_len) == 0) {
            item.p += src->name_len;
            item.len -= src->name_len;
            return take(item, token);
        }
    }
    return 0;
}

/*
 * Looks for the credential where <src> says. Returns 1 with <token> set
 * (pointing into the request or <buf>, AUTH_JWT_MAX bytes), 0 when there
 * is none there, or -1 when there is one that cannot be a token.
 */
static int
find_token(const struct wsg_session *s, const struct auth_source *src,
           char *buf, struct wsg_str *token)
{
    switch (src->from) {
    case FROM_HEADER:
        return from_header(s, src, token);
    case FROM_QUERY:
        return from_query(s, src, buf, token);
    case FROM_COOKIE:
        return from_cookie(s, src, token);
    case FROM_SUBPROTOCOL:
        return from_subprotocol(s, src, token);
    }
    return 0;
}

/* ---- checking it ---- */

/*
 * The static token equal to <token>, or NULL. Every entry is compared, in
 * constant time, so timing tells nothing about any of them; *<failed> is
 * set when hashing failed.
 */
static const struct auth_token *
find_static(const struct auth_loc_conf *alcf, struct wsg_str token,
            bool *failed)
{
    unsigned char md[DIGEST_LEN];
    const struct auth_token *found = NULL;

    *failed = digest(token.p, token.len, md) != 0;
    if (*failed) {
        return NULL;
    }
    for (size_t i = 0; i < alcf->ntokens; i++) {
        const struct auth_token *t = &alcf->tokens[i];
        if (CRYPTO_memcmp(t->digest, md, DIGEST_LEN) == 0) {
            found = t;
        }
    }
    return found;
}

/*
 * The HTTP status for a JWT verdict: 401 when the token proves nothing
 * (missing parts, bad signature, out of its time), 403 when it is genuine
 * but not for here (issuer, audience, no user), -1 for our own failure.
 */
static int
verdict_status(int rc)
{
    switch (rc) {
    case AUTH_JWT_OK:
        return 0;
    case AUTH_JWT_BAD_ISSUER:
    case AUTH_JWT_BAD_AUDIENCE:
    case AUTH_JWT_NO_USER:
        return 403;
    case AUTH_JWT_INTERNAL:
        return -1;
    default:
        return 401;
    }
}

/* A result of checking a credential: the status and why, for the log. */
struct verdict {
    int status; /* 0: accepted; 401, 403; -1: our own failure */
    const char *why;
};

/* Checks <token> as a JWT with the keys of <alcf>; on success sets the
 * session's user. */
static struct verdict
check_jwt(struct wsg_session *s, const struct auth_loc_conf *alcf,
          struct wsg_str token)
{
    struct verdict v = {-1, "the RS256 key could not be decoded"};
    struct auth_jwt_conf jc = {
        .secret = alcf->secret,
        .secret_len = alcf->secret_len,
        .issuer = alcf->issuer,
        .audience = alcf->audience,
        .user_claim = alcf->user_claim,
        .leeway_s = (int64_t) (alcf->leeway_ms / 1000),
    };
    struct auth_jwt_user user;

    if (alcf->public_key_der != NULL) {
        jc.rsa_key = rsa_key(alcf);
        if (jc.rsa_key == NULL) {
            return v;
        }
    }
    /* the wall clock: "exp" and "nbf" are dates, not durations */
    int rc =
        auth_jwt_verify(&jc, token.p, token.len, (int64_t) time(NULL), &user);
    if (rc == AUTH_JWT_OK) {
        wsg_session_set_user(s, user.id, user.len);
    }
    v.status = verdict_status(rc);
    v.why = auth_jwt_strerror(rc);
    return v;
}

/*
 * Checks <token> against the static tokens, then as a JWT; on success sets
 * the session's user.
 */
static struct verdict
check_token(struct wsg_session *s, const struct auth_loc_conf *alcf,
            struct wsg_str token)
{
    struct verdict v = {401, "unknown token"};
    bool jwt = alcf->secret != NULL || alcf->public_key_der != NULL;

    if (alcf->ntokens > 0) {
        bool failed;
        const struct auth_token *t = find_static(alcf, token, &failed);
        if (failed) {
            v.status = -1;
            v.why = "SHA-256 failed";
            return v;
        }
        if (t != NULL) {
            wsg_session_set_user(s, t->user, t->user_len);
            v.status = 0;
            return v;
        }
        /* no dot, no JWT: "unknown token" says more than "malformed" */
        if (memchr(token.p, '.', token.len) == NULL) {
            jwt = false;
        }
    }
    return jwt ? check_jwt(s, alcf, token) : v;
}

static const char *
source_kind(const struct auth_source *src)
{
    switch (src->from) {
    case FROM_HEADER:
        return "header";
    case FROM_QUERY:
        return "query argument";
    case FROM_COOKIE:
        return "cookie";
    case FROM_SUBPROTOCOL:
        return "subprotocol";
    }
    return "?";
}

static int
auth_on_handshake(struct wsg_session *s)
{
    const struct auth_loc_conf *alcf =
        wsg_session_loc_conf(s, &wsg_auth_module);
    char buf[AUTH_JWT_MAX];
    struct wsg_str token = {NULL, 0};
    const struct auth_source *src = NULL;
    int found = 0;

    if (alcf == NULL || !alcf->active) {
        return WSG_NEXT;
    }
    /* the first place holding a credential decides; a bad one there is
     * not excused by a good one further down the list */
    for (size_t i = 0; i < alcf->nsources && found == 0; i++) {
        src = &alcf->sources[i];
        found = find_token(s, src, buf, &token);
    }
    if (found == 0) {
        wsg_session_log(s, &wsg_auth_module, WSG_LOG_LEVEL_INFO,
                        "handshake refused with 401: no credential");
        wsg_session_reject(s, 401);
        return WSG_STOP;
    }
    struct verdict v = {401, "unusable credential"};
    if (found == 1) {
        v = check_token(s, alcf, token);
    }
    if (v.status == 0) {
        struct wsg_str user = wsg_session_user(s);
        wsg_session_log(s, &wsg_auth_module, WSG_LOG_LEVEL_DEBUG,
                        "user \"%.*s\" by the %s \"%s\"", (int) user.len,
                        user.p, source_kind(src), src->name);
        return WSG_NEXT;
    }
    if (v.status < 0) {
        wsg_session_log(s, &wsg_auth_module, WSG_LOG_LEVEL_ERR,
                        "handshake failed: %s", v.why);
        return WSG_ABORT;
    }
    /* never the token itself: logs are read by more people than secrets */
    wsg_session_log(s, &wsg_auth_module, WSG_LOG_LEVEL_INFO,
                    "handshake refused with %d: %s in the %s \"%s\"", v.status,
                    v.why, source_kind(src), src->name);
    /* the status is all the client learns: no reason in the body */
    wsg_session_reject(s, v.status);
    return WSG_STOP;
}

const struct wsg_module wsg_auth_module = {
    .abi = WSG_MODULE_ABI,
    .size = sizeof(struct wsg_module),
    .name = "auth",
    .directives = auth_directives,
    .create_loc_conf = auth_create_loc_conf,
    .merge_loc_conf = auth_merge_loc_conf,
    .exit_process = auth_exit_process,
    .on_handshake = auth_on_handshake,
};
