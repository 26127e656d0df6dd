/*
 * The auth module's JSON Web Token verifier: compact JWS (RFC 7515) signed
 * with HS256 or RS256 (RFC 7518 3.2, 3.3), claims per RFC 7519. It is pure:
 * no I/O, no clock (the caller passes the time) and no state, so every
 * verdict can be tested on its own. Parsing is strict and bounded: a token
 * longer than AUTH_JWT_MAX is refused before anything is decoded.
 */
#ifndef AUTH_JWT_H
#define AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define AUTH_JWT_MAX       8192 /* longest token, bytes */
#define AUTH_JWT_USER_MAX  256  /* longest user id, bytes */
#define AUTH_JWT_HS256_MIN 32   /* shortest HS256 secret (RFC 7518 3.2) */
#define AUTH_JWT_RSA_MIN   2048 /* smallest RS256 modulus, bits */

/* Verdicts of auth_jwt_verify(): 0, or why the token is refused. */
#define AUTH_JWT_OK            0
#define AUTH_JWT_TOO_LONG      (-1) /* over AUTH_JWT_MAX */
#define AUTH_JWT_MALFORMED     (-2) /* not a JWS of two JSON objects */
#define AUTH_JWT_BAD_ALG       (-3) /* not HS256/RS256, or no key for it */
#define AUTH_JWT_BAD_SIGNATURE (-4)
#define AUTH_JWT_NO_EXPIRY     (-5) /* no "exp" claim */
#define AUTH_JWT_EXPIRED       (-6)
#define AUTH_JWT_NOT_YET_VALID (-7) /* "nbf" ahead of the clock */
#define AUTH_JWT_BAD_ISSUER    (-8)
#define AUTH_JWT_BAD_AUDIENCE  (-9)
#define AUTH_JWT_NO_USER       (-10) /* the user claim is missing or bad */
#define AUTH_JWT_INTERNAL      (-11) /* OpenSSL or jansson failed */

/* What a token must satisfy. Strings are NUL-terminated; all borrowed. */
struct auth_jwt_conf {
    const unsigned char *secret; /* HS256 key; NULL: HS256 is refused */
    size_t secret_len;
    EVP_PKEY *rsa_key;      /* RS256 public key; NULL: RS256 is refused */
    const char *issuer;     /* "iss" must equal it; NULL: any or none */
    const char *audience;   /* "aud" must hold it; NULL: no "aud" allowed */
    const char *user_claim; /* the claim naming the user ("sub") */
    int64_t leeway_s;       /* clock skew allowed on "exp" and "nbf" */
};

/* The user id a token names. */
struct auth_jwt_user {
    char id[AUTH_JWT_USER_MAX + 1]; /* NUL-terminated */
    size_t len;
};

/*
 * Verifies the <len> bytes of <token> against <jc> at <now> (seconds since
 * the epoch). The header must be a JSON object whose "alg" is exactly
 * "HS256" or "RS256" with a key of that kind in <jc> (so "none" and a
 * token signed with the RSA public key as an HMAC secret are refused) and
 * no "crit". The signature is checked before the payload is parsed. The
 * payload must be a JSON object with a numeric "exp" (required) and, when
 * present, "nbf", both within <jc>->leeway_s of <now>; then "iss" and
 * "aud" as <jc> says; then the user claim, a string of 1 to
 * AUTH_JWT_USER_MAX bytes without control characters or an integer, which
 * is copied to <user>. JSON with duplicate keys is malformed.
 *
 * Returns AUTH_JWT_OK with <user> filled in, or one of the negative
 * verdicts above (checked in that order), with <user> undefined.
 */
int auth_jwt_verify(const struct auth_jwt_conf *jc, const char *token,
                    size_t len, int64_t now, struct auth_jwt_user *user);

/* A short lower-case phrase for a verdict ("expired"), for logs. */
const char *auth_jwt_strerror(int rc);

/* The most bytes auth_jwt_b64url_decode() writes for <len> input bytes. */
#define AUTH_JWT_B64_DECODED_MAX(len) ((len) / 4 * 3 + 2)

/*
 * Decodes the <len> base64url characters at <in> (RFC 4648 5, without
 * padding, as JWS requires) into <out>, which has room for
 * AUTH_JWT_B64_DECODED_MAX(len) bytes, and sets *<outlen>. Refuses any
 * character outside the alphabet ('=' included), a length that leaves 6
 * spare bits, and non-zero spare bits in the last character (so each
 * value has one encoding). Returns 0, or -1 when refused.
 */
int auth_jwt_b64url_decode(const char *in, size_t len, unsigned char *out,
                           size_t *outlen);

/*
 * Whether the <len> bytes at <p> make an acceptable user id: 1 to
 * AUTH_JWT_USER_MAX bytes, none of them a control character.
 */
bool auth_jwt_user_valid(const char *p, size_t len);

#endif
