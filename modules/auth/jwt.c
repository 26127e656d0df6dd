/*
 * JWT verification for the auth module (jwt.h): split, decode, check the
 * header, check the signature, and only then parse and check the claims,
 * so unauthenticated bytes reach no more than one small JSON object.
 * Everything decoded lives in one stack buffer bounded by AUTH_JWT_MAX.
 */
#include "jwt.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

/* NumericDates are clamped to +-2^62 s, so adding a leeway cannot wrap. */
#define TIME_MAX (INT64_C(1) << 62)

#define HS256_LEN 32 /* bytes of an HMAC-SHA256 */

enum alg {
    ALG_HS256,
    ALG_RS256,
};

/* One base64url character's value, or -1. */
static int
b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

int
auth_jwt_b64url_decode(const char *in, size_t len, unsigned char *out,
                       size_t *outlen)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;

    /* 4k+1 characters would end with 6 bits: no whole byte */
    if (len % 4 == 1) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char) in[i]);
        if (v < 0) {
            return -1;
        }
        /* only the low 14 bits matter; older ones shift out harmlessly */
        acc = (acc << 6) | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char) (acc >> bits);
        }
    }
    /* the last character's spare bits must be zero: one encoding each */
    if ((acc & ((UINT32_C(1) << bits) - 1)) != 0) {
        return -1;
    }
    *outlen = n;
    return 0;
}

bool
auth_jwt_user_valid(const char *p, size_t len)
{
    if (len == 0 || len > AUTH_JWT_USER_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) p[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

/*
 * Parses <len> bytes at <p> as one JSON object. Returns a new reference,
 * or NULL when it is not exactly one object or repeats a key.
 */
static json_t *
load_object(const unsigned char *p, size_t len)
{
    json_error_t err;
    json_t *v = json_loadb((const char *) p, len, JSON_REJECT_DUPLICATES, &err);

    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Whether the JSON string <v> is exactly <s>. */
static bool
string_is(const json_t *v, const char *s)
{
    return json_is_string(v) && strlen(s) == json_string_length(v) &&
           memcmp(json_string_value(v), s, json_string_length(v)) == 0;
}

/* Picks the algorithm from the header <h>; AUTH_JWT_OK or a verdict. */
static int
check_header(const struct auth_jwt_conf *jc, const json_t *h, enum alg *alg)
{
    const json_t *a = json_object_get(h, "alg");

    if (!json_is_string(a)) {
        return AUTH_JWT_MALFORMED;
    }
    /* extensions we must understand, and understand none (RFC 7515
     * 4.1.11) */
    if (json_object_get(h, "crit") != NULL) {
        return AUTH_JWT_MALFORMED;
    }
    /* the key's kind decides, never the token: an HS256 token is checked
     * with the HMAC secret only, so an RSA public key can't be one */
    if (string_is(a, "HS256") && jc->secret != NULL) {
        *alg = ALG_HS256;
        return AUTH_JWT_OK;
    }
    if (string_is(a, "RS256") && jc->rsa_key != NULL) {
        *alg = ALG_RS256;
        return AUTH_JWT_OK;
    }
    return AUTH_JWT_BAD_ALG;
}

static int
check_hs256(const struct auth_jwt_conf *jc, const char *data, size_t len,
            const unsigned char *sig, size_t siglen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;

    if (siglen != HS256_LEN) {
        return AUTH_JWT_BAD_SIGNATURE;
    }
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, jc->secret,
                  jc->secret_len, (const unsigned char *) data, len, mac,
                  sizeof(mac), &maclen) == NULL ||
        maclen != HS256_LEN) {
        ERR_clear_error();
        return AUTH_JWT_INTERNAL;
    }
    /* constant time: a timing must not reveal how much of a forgery is
     * right */
    return CRYPTO_memcmp(mac, sig, HS256_LEN) == 0 ? AUTH_JWT_OK
                                                   : AUTH_JWT_BAD_SIGNATURE;
}

static int
check_rs256(const struct auth_jwt_conf *jc, const char *data, size_t len,
            const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = AUTH_JWT_INTERNAL;

    /* an RSA key's default padding is PKCS #1 v1.5, what RS256 means */
    if (ctx != NULL &&
        EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, jc->rsa_key) == 1) {
        rc = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *) data,
                              len) == 1
                 ? AUTH_JWT_OK
                 : AUTH_JWT_BAD_SIGNATURE;
    }
    EVP_MD_CTX_free(ctx);
    /* a failed verification queues errors a later TLS call would misread */
    ERR_clear_error();
    return rc;
}

/*
 * Reads the NumericDate <v> (RFC 7519 2: seconds, maybe fractional) into
 * *<t>, clamped to +-TIME_MAX. Returns 0, or -1 when <v> is not a number.
 */
static int
numeric_date(const json_t *v, int64_t *t)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        *t = i > TIME_MAX ? TIME_MAX : i < -TIME_MAX ? -TIME_MAX : i;
        return 0;
    }
    if (json_is_real(v)) {
        /* jansson refuses NaN and infinities, so the comparisons hold */
        double d = json_real_value(v);
        *t = d >= (double) TIME_MAX    ? TIME_MAX
             : d <= -(double) TIME_MAX ? -TIME_MAX
                                       : (int64_t) d;
        return 0;
    }
    return -1;
}

static int
check_times(const struct auth_jwt_conf *jc, const json_t *claims, int64_t now)
{
    const json_t *exp = json_object_get(claims, "exp");
    const json_t *nbf = json_object_get(claims, "nbf");
    int64_t t;

    if (exp == NULL) {
        return AUTH_JWT_NO_EXPIRY;
    }
    if (numeric_date(exp, &t) != 0) {
        return AUTH_JWT_MALFORMED;
    }
    /* valid while now < exp (RFC 7519 4.1.4), give or take the leeway */
    if (now - jc->leeway_s >= t) {
        return AUTH_JWT_EXPIRED;
    }
    if (nbf == NULL) {
        return AUTH_JWT_OK;
    }
    if (numeric_date(nbf, &t) != 0) {
        return AUTH_JWT_MALFORMED;
    }
    return now + jc->leeway_s < t ? AUTH_JWT_NOT_YET_VALID : AUTH_JWT_OK;
}

static int
check_audience(const struct auth_jwt_conf *jc, const json_t *claims)
{
    const json_t *aud = json_object_get(claims, "aud");

    if (jc->audience == NULL) {
        /* a token meant for someone must be refused by everyone else
         * (RFC 7519 4.1.3) */
        return aud == NULL ? AUTH_JWT_OK : AUTH_JWT_BAD_AUDIENCE;
    }
    if (string_is(aud, jc->audience)) {
        return AUTH_JWT_OK;
    }
    if (json_is_array(aud)) {
        size_t i;
        const json_t *v;
        json_array_foreach(aud, i, v)
        {
            if (string_is(v, jc->audience)) {
                return AUTH_JWT_OK;
            }
        }
    }
    return AUTH_JWT_BAD_AUDIENCE;
}

static int
take_user(const struct auth_jwt_conf *jc, const json_t *claims,
          struct auth_jwt_user *user)
{
    const json_t *v = json_object_get(claims, jc->user_claim);

    if (json_is_integer(v)) {
        int n = snprintf(user->id, sizeof(user->id), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        user->len = n > 0 ? (size_t) n : 0;
        return AUTH_JWT_OK;
    }
    if (!json_is_string(v) ||
        !auth_jwt_user_valid(json_string_value(v), json_string_length(v))) {
        return AUTH_JWT_NO_USER;
    }
    user->len = json_string_length(v);
    memcpy(user->id, json_string_value(v), user->len);
    user->id[user->len] = '\0';
    return AUTH_JWT_OK;
}

static int
check_claims(const struct auth_jwt_conf *jc, const json_t *claims, int64_t now,
             struct auth_jwt_user *user)
{
    int rc = check_times(jc, claims, now);

    if (rc != AUTH_JWT_OK) {
        return rc;
    }
    if (jc->issuer != NULL &&
        !string_is(json_object_get(claims, "iss"), jc->issuer)) {
        return AUTH_JWT_BAD_ISSUER;
    }
    rc = check_audience(jc, claims);
    if (rc != AUTH_JWT_OK) {
        return rc;
    }
    return take_user(jc, claims, user);
}

/* A token's three parts, split at its two dots. */
struct parts {
    const char *p[3];
    size_t len[3];
};

static int
split(const char *token, size_t len, struct parts *pt)
{
    const char *end = token + len;
    const char *p = token;

    for (int i = 0; i < 3; i++) {
        const char *dot = memchr(p, '.', (size_t) (end - p));
        if ((dot != NULL) != (i < 2)) {
            return -1;
        }
        pt->p[i] = p;
        pt->len[i] = (size_t) ((dot != NULL ? dot : end) - p);
        if (pt->len[i] == 0) {
            return -1;
        }
        p = dot != NULL ? dot + 1 : end;
    }
    return 0;
}

int
auth_jwt_verify(const struct auth_jwt_conf *jc, const char *token, size_t len,
                int64_t now, struct auth_jwt_user *user)
{
    /* the three decoded parts together are shorter than the token */
    unsigned char buf[AUTH_JWT_B64_DECODED_MAX(AUTH_JWT_MAX)];
    unsigned char *dec[3];
    size_t declen[3];
    struct parts pt;
    enum alg alg = ALG_HS256;

    if (len > AUTH_JWT_MAX) {
        return AUTH_JWT_TOO_LONG;
    }
    if (split(token, len, &pt) != 0) {
        return AUTH_JWT_MALFORMED;
    }
    unsigned char *out = buf;
    for (int i = 0; i < 3; i++) {
        dec[i] = out;
        if (auth_jwt_b64url_decode(pt.p[i], pt.len[i], out, &declen[i]) != 0) {
            return AUTH_JWT_MALFORMED;
        }
        out += declen[i];
    }

    json_t *header = load_object(dec[0], declen[0]);
    if (header == NULL) {
        return AUTH_JWT_MALFORMED;
    }
    int rc = check_header(jc, header, &alg);
    json_decref(header);
    if (rc != AUTH_JWT_OK) {
        return rc;
    }

    /* the signature covers "header.payload" as sent */
    size_t signed_len = pt.len[0] + 1 + pt.len[1];
    rc = alg == ALG_HS256
             ? check_hs256(jc, token, signed_len, dec[2], declen[2])
             : check_rs256(jc, token, signed_len, dec[2], declen[2]);
    if (rc != AUTH_JWT_OK) {
        return rc;
    }

    json_t *claims = load_object(dec[1], declen[1]);
    if (claims == NULL) {
        return AUTH_JWT_MALFORMED;
    }
    rc = check_claims(jc, claims, now, user);
    json_decref(claims);
    return rc;
}

const char *
auth_jwt_strerror(int rc)
{
    switch (rc) {
    case AUTH_JWT_OK:
        return "valid";
    case AUTH_JWT_TOO_LONG:
        return "token too long";
    case AUTH_JWT_MALFORMED:
        return "malformed token";
    case AUTH_JWT_BAD_ALG:
        return "algorithm not accepted";
    case AUTH_JWT_BAD_SIGNATURE:
        return "bad signature";
    case AUTH_JWT_NO_EXPIRY:
        return "no expiry";
    case AUTH_JWT_EXPIRED:
        return "expired";
    case AUTH_JWT_NOT_YET_VALID:
        return "not valid yet";
    case AUTH_JWT_BAD_ISSUER:
        return "wrong issuer";
    case AUTH_JWT_BAD_AUDIENCE:
        return "wrong audience";
    case AUTH_JWT_NO_USER:
        return "no usable user claim";
    case AUTH_JWT_INTERNAL:
        return "internal error";
    default:
        return "unknown verdict";
    }
}
