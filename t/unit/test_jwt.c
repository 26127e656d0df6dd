/*
 * Tests of modules/auth/jwt.h: HS256 and RS256 tokens made here (RSA keys
 * generated with EVP_PKEY, signed with EVP_DigestSign) through every
 * verdict: valid, expired, early, leeway on both sides, issuer, audience
 * as a string and an array, the user claim, "none", algorithm confusion,
 * forged and tampered signatures, every truncation, bad base64url,
 * duplicate JSON keys, and the length bound at and over. Tokens are
 * verified from a copy that ends at a PROT_NONE page, so an over-read
 * faults.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "jwt.h"
#include "tap.h"

#define NOW INT64_C(1700000000)

/* A token of the longest size this file builds, with its NUL. */
#define TOKEN_BUF (2 * AUTH_JWT_MAX)

static const char secret[] = "0123456789abcdef0123456789abcdef-hs256";

static EVP_PKEY *rsa_key;        /* the configured RS256 key */
static EVP_PKEY *other_key;      /* another one, for forgeries */
static unsigned char *guard_end; /* the first byte of a PROT_NONE page */
static size_t guard_room;
static struct auth_jwt_user user;

static void
guard_init(void)
{
    long page = sysconf(_SC_PAGESIZE);

    if (page <= 0) {
        abort();
    }
    /* enough whole pages for the longest token, then the guard */
    guard_room =
        ((TOKEN_BUF + (size_t) page - 1) / (size_t) page) * (size_t) page;
    unsigned char *m =
        mmap(NULL, guard_room + (size_t) page, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    guard_end = m + guard_room;
    if (mprotect(guard_end, (size_t) page, PROT_NONE) != 0) {
        perror("mprotect");
        abort();
    }
}

/* ---- building tokens ---- */

static size_t
b64url(const void *in, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = in;
    size_t n = 0, i = 0;

    for (; i + 2 < len; i += 3) {
        uint32_t v =
            (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
        out[n++] = abc[v >> 18];
        out[n++] = abc[(v >> 12) & 63];
        out[n++] = abc[(v >> 6) & 63];
        out[n++] = abc[v & 63];
    }
    if (len - i == 1) {
        out[n++] = abc[p[i] >> 2];
        out[n++] = abc[(p[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t) p[i] << 8 | p[i + 1];
        out[n++] = abc[v >> 10];
        out[n++] = abc[(v >> 4) & 63];
        out[n++] = abc[(v & 15) << 2];
    }
    out[n] = '\0';
    return n;
}

/* "b64(header).b64(payload)" into <out>; returns its length. */
static size_t
signing_input(const char *header, const char *payload, char *out)
{
    size_t n = b64url(header, strlen(header), out);

    out[n++] = '.';
    return n + b64url(payload, strlen(payload), out + n);
}

/* Appends "." and the base64url of <sig> to the <n> bytes of <out>. */
static void
append_sig(char *out, size_t n, const unsigned char *sig, size_t siglen)
{
    out[n++] = '.';
    b64url(sig, siglen, out + n);
}

static const char *
hs256_with(const char *header, const char *payload, const void *key,
           size_t keylen)
{
    static char out[TOKEN_BUF];
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    size_t n = signing_input(header, payload, out);

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen,
                  (unsigned char *) out, n, mac, sizeof(mac),
                  &maclen) == NULL) {
        abort();
    }
    append_sig(out, n, mac, maclen);
    return out;
}

static const char *
rs256_with(const char *header, const char *payload, EVP_PKEY *key)
{
    static char out[TOKEN_BUF];
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    size_t n = signing_input(header, payload, out);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL ||
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, (unsigned char *) out, n) != 1) {
        abort();
    }
    EVP_MD_CTX_free(ctx);
    append_sig(out, n, sig, siglen);
    return out;
}

#define HS_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define RS_HEADER "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"

static const char *
hs256(const char *payload)
{
    return hs256_with(HS_HEADER, payload, secret, sizeof(secret) - 1);
}

static const char *
rs256(const char *payload)
{
    return rs256_with(RS_HEADER, payload, rsa_key);
}

/* A payload for user alice expiring <exp_in> s from NOW, plus <extra>. */
static const char *
claims(long long exp_in, const char *extra)
{
    static char out[TOKEN_BUF];

    snprintf(out, sizeof(out), "{\"sub\":\"alice\",\"exp\":%lld%s%s}",
             (long long) NOW + exp_in, extra[0] ? "," : "", extra);
    return out;
}

/* ---- verifying ---- */

static struct auth_jwt_conf
hs_conf(void)
{
    struct auth_jwt_conf jc = {
        .secret = (const unsigned char *) secret,
        .secret_len = sizeof(secret) - 1,
        .user_claim = "sub",
        .leeway_s = 30,
    };
    return jc;
}

static struct auth_jwt_conf
rs_conf(void)
{
    struct auth_jwt_conf jc = {
        .rsa_key = rsa_key,
        .user_claim = "sub",
        .leeway_s = 30,
    };
    return jc;
}

/* Verifies the first <len> bytes of <token> from the guarded buffer. */
static int
verify_n(const struct auth_jwt_conf *jc, const char *token, size_t len)
{
    if (len > guard_room) {
        abort();
    }
    unsigned char *copy = guard_end - len;
    memcpy(copy, token, len);
    memset(&user, 0, sizeof(user));
    return auth_jwt_verify(jc, (const char *) copy, len, NOW, &user);
}

static int
verify(const struct auth_jwt_conf *jc, const char *token)
{
    return verify_n(jc, token, strlen(token));
}

/* ---- the tests ---- */

static void
test_valid(void)
{
    struct auth_jwt_conf hs = hs_conf(), rs = rs_conf();

    is_int(verify(&hs, hs256(claims(60, ""))), AUTH_JWT_OK, "valid HS256");
    is_str(user.id, "alice", "HS256: the user is \"sub\"");
    is_int(user.len, 5, "HS256: its length");
    is_int(verify(&rs, rs256(claims(60, ""))), AUTH_JWT_OK, "valid RS256");
    is_str(user.id, "alice", "RS256: the user is \"sub\"");

    /* both keys: the token's alg picks the key of that kind */
    struct auth_jwt_conf both = hs_conf();
    both.rsa_key = rsa_key;
    is_int(verify(&both, hs256(claims(60, ""))), AUTH_JWT_OK,
           "HS256 with both keys configured");
    is_int(verify(&both, rs256(claims(60, ""))), AUTH_JWT_OK,
           "RS256 with both keys configured");

    is_int(verify(&hs, hs256_with("{\"alg\":\"HS256\"}", claims(60, ""), secret,
                                  sizeof(secret) - 1)),
           AUTH_JWT_OK, "no \"typ\" is fine");
    is_int(verify(&hs, hs256("{\"sub\":\"alice\",}")), AUTH_JWT_MALFORMED,
           "a payload that is not JSON");
    is_int(verify(&hs, hs256(claims(60, "\"extra\":{\"a\":[1,2]}"))),
           AUTH_JWT_OK, "other claims are ignored");
}

static void
test_times(void)
{
    struct auth_jwt_conf hs = hs_conf();

    is_int(verify(&hs, hs256(claims(-3600, ""))), AUTH_JWT_EXPIRED,
           "expired an hour ago");
    is_int(verify(&hs, hs256(claims(-31, ""))), AUTH_JWT_EXPIRED,
           "expired just past the leeway");
    is_int(verify(&hs, hs256(claims(-29, ""))), AUTH_JWT_OK,
           "expired within the leeway");
    is_int(verify(&hs, hs256(claims(-30, ""))), AUTH_JWT_EXPIRED,
           "expired exactly the leeway ago");
    hs.leeway_s = 0;
    is_int(verify(&hs, hs256(claims(0, ""))), AUTH_JWT_EXPIRED,
           "no leeway: exp == now is expired");
    is_int(verify(&hs, hs256(claims(1, ""))), AUTH_JWT_OK,
           "no leeway: exp == now + 1 is valid");
    hs.leeway_s = 30;

    is_int(verify(&hs, hs256(claims(60, "\"nbf\":1700000100"))),
           AUTH_JWT_NOT_YET_VALID, "nbf 100 s ahead");
    is_int(verify(&hs, hs256(claims(60, "\"nbf\":1700000031"))),
           AUTH_JWT_NOT_YET_VALID, "nbf just past the leeway");
    is_int(verify(&hs, hs256(claims(60, "\"nbf\":1700000030"))), AUTH_JWT_OK,
           "nbf exactly the leeway ahead");
    is_int(verify(&hs, hs256(claims(60, "\"nbf\":1699999000"))), AUTH_JWT_OK,
           "nbf in the past");
    is_int(verify(&hs, hs256(claims(60, "\"nbf\":\"soon\""))),
           AUTH_JWT_MALFORMED, "nbf not a number");

    is_int(verify(&hs, hs256("{\"sub\":\"alice\"}")), AUTH_JWT_NO_EXPIRY,
           "no exp");
    is_int(verify(&hs, hs256("{\"sub\":\"alice\",\"exp\":\"1700000060\"}")),
           AUTH_JWT_MALFORMED, "exp a string");
    is_int(verify(&hs, hs256("{\"sub\":\"alice\",\"exp\":null}")),
           AUTH_JWT_MALFORMED, "exp null");
    is_int(verify(&hs, hs256("{\"sub\":\"alice\",\"exp\":1700000060.5}")),
           AUTH_JWT_OK, "fractional exp");
    is_int(verify(&hs, hs256("{\"sub\":\"alice\",\"exp\":1e300}")), AUTH_JWT_OK,
           "huge real exp is clamped, not wrapped");
    is_int(verify(&hs, hs256("{\"sub\":\"alice\",\"exp\":-1e300}")),
           AUTH_JWT_EXPIRED, "hugely negative exp is expired");
    is_int(verify(&hs, hs256("{\"sub\":\"alice\","
                             "\"exp\":9223372036854775807}")),
           AUTH_JWT_OK, "INT64_MAX exp");
    is_int(verify(&hs, hs256(claims(60, "\"nbf\":-9223372036854775807"))),
           AUTH_JWT_OK, "nbf near INT64_MIN does not wrap");
}

static void
test_issuer_audience(void)
{
    struct auth_jwt_conf hs = hs_conf();

    hs.issuer = "https://id.example.com";
    is_int(verify(&hs, hs256(claims(60, "\"iss\":\"https://id.example.com\""))),
           AUTH_JWT_OK, "right issuer");
    is_int(verify(&hs, hs256(claims(60, "\"iss\":\"https://evil.example\""))),
           AUTH_JWT_BAD_ISSUER, "wrong issuer");
    is_int(verify(&hs, hs256(claims(60, "\"iss\":\"https://id.example.co\""))),
           AUTH_JWT_BAD_ISSUER, "issuer a prefix of the right one");
    is_int(verify(&hs, hs256(claims(60, ""))), AUTH_JWT_BAD_ISSUER,
           "no issuer when one is required");
    is_int(
        verify(&hs, hs256(claims(60, "\"iss\":[\"https://id.example.com\"]"))),
        AUTH_JWT_BAD_ISSUER, "issuer in an array");
    hs.issuer = NULL;
    is_int(verify(&hs, hs256(claims(60, "\"iss\":\"anyone\""))), AUTH_JWT_OK,
           "any issuer when none is configured");

    hs.audience = "chat";
    is_int(verify(&hs, hs256(claims(60, "\"aud\":\"chat\""))), AUTH_JWT_OK,
           "right audience, a string");
    is_int(verify(&hs, hs256(claims(60, "\"aud\":\"billing\""))),
           AUTH_JWT_BAD_AUDIENCE, "wrong audience, a string");
    is_int(verify(&hs, hs256(claims(60, "\"aud\":[\"billing\",\"chat\"]"))),
           AUTH_JWT_OK, "right audience in an array");
    is_int(verify(&hs, hs256(claims(60, "\"aud\":[\"billing\",\"chats\"]"))),
           AUTH_JWT_BAD_AUDIENCE, "wrong audiences in an array");
    is_int(verify(&hs, hs256(claims(60, "\"aud\":[]"))), AUTH_JWT_BAD_AUDIENCE,
           "empty audience array");
    is_int(verify(&hs, hs256(claims(60, "\"aud\":[1,{\"chat\":1},\"chat\"]"))),
           AUTH_JWT_OK, "non-strings in the array are skipped");
    is_int(verify(&hs, hs256(claims(60, "\"aud\":7"))), AUTH_JWT_BAD_AUDIENCE,
           "audience a number");
    is_int(verify(&hs, hs256(claims(60, ""))), AUTH_JWT_BAD_AUDIENCE,
           "no audience when one is required");
    hs.audience = NULL;
    is_int(verify(&hs, hs256(claims(60, "\"aud\":\"chat\""))),
           AUTH_JWT_BAD_AUDIENCE,
           "a token for an audience, none configured: refused");

    /* the order of the checks: time first, then issuer, then audience */
    hs.issuer = "me";
    hs.audience = "chat";
    is_int(verify(&hs, hs256(claims(-100, "\"iss\":\"x\",\"aud\":\"y\""))),
           AUTH_JWT_EXPIRED, "expired beats wrong issuer");
    is_int(verify(&hs, hs256(claims(60, "\"iss\":\"x\",\"aud\":\"y\""))),
           AUTH_JWT_BAD_ISSUER, "wrong issuer beats wrong audience");
}

static void
test_user(void)
{
    struct auth_jwt_conf hs = hs_conf();
    char payload[1024], name[AUTH_JWT_USER_MAX + 2];

    hs.user_claim = "uid";
    is_int(verify(&hs, hs256(claims(60, "\"uid\":\"u-17\""))), AUTH_JWT_OK,
           "another user claim");
    is_str(user.id, "u-17", "its value is the user");
    is_int(verify(&hs, hs256(claims(60, "\"uid\":42"))), AUTH_JWT_OK,
           "an integer user claim");
    is_str(user.id, "42", "printed in decimal");
    is_int(verify(&hs, hs256(claims(60, "\"uid\":-7"))), AUTH_JWT_OK,
           "a negative integer user claim");
    is_str(user.id, "-7", "printed with its sign");
    is_int(verify(&hs, hs256(claims(60, ""))), AUTH_JWT_NO_USER,
           "the user claim missing");
    is_int(verify(&hs, hs256(claims(60, "\"uid\":\"\""))), AUTH_JWT_NO_USER,
           "an empty user");
    is_int(verify(&hs, hs256(claims(60, "\"uid\":\"a\\nb\""))),
           AUTH_JWT_NO_USER, "a user with a newline");
    is_int(verify(&hs, hs256(claims(60, "\"uid\":1.5"))), AUTH_JWT_NO_USER,
           "a real user claim");
    is_int(verify(&hs, hs256(claims(60, "\"uid\":[\"a\"]"))), AUTH_JWT_NO_USER,
           "an array user claim");

    memset(name, 'u', sizeof(name));
    name[AUTH_JWT_USER_MAX] = '\0';
    snprintf(payload, sizeof(payload), "\"uid\":\"%s\"", name);
    is_int(verify(&hs, hs256(claims(60, payload))), AUTH_JWT_OK,
           "a user of %d bytes", AUTH_JWT_USER_MAX);
    is_int(user.len, AUTH_JWT_USER_MAX, "kept whole");
    name[AUTH_JWT_USER_MAX] = 'u';
    name[AUTH_JWT_USER_MAX + 1] = '\0';
    snprintf(payload, sizeof(payload), "\"uid\":\"%s\"", name);
    is_int(verify(&hs, hs256(claims(60, payload))), AUTH_JWT_NO_USER,
           "a user of %d bytes", AUTH_JWT_USER_MAX + 1);

    ok(auth_jwt_user_valid("bob", 3), "user_valid: bob");
    ok(!auth_jwt_user_valid("", 0), "user_valid: empty");
    ok(!auth_jwt_user_valid("a\x7f", 2), "user_valid: DEL");
    ok(!auth_jwt_user_valid("a\0b", 3), "user_valid: NUL");
    ok(auth_jwt_user_valid("\xc3\xa9t\xc3\xa9", 5), "user_valid: UTF-8");
}

/* Unsigned and cross-algorithm tokens. */
static void
test_algorithms(void)
{
    struct auth_jwt_conf hs = hs_conf(), rs = rs_conf();
    char out[TOKEN_BUF];

    size_t n = signing_input("{\"alg\":\"none\"}", claims(60, ""), out);
    strcpy(out + n, ".");
    is_int(verify(&hs, out), AUTH_JWT_MALFORMED,
           "alg none, empty signature: malformed");
    is_int(verify(&rs, out), AUTH_JWT_MALFORMED, "the same with an RSA key");
    strcpy(out + n, ".AAAA");
    is_int(verify(&hs, out), AUTH_JWT_BAD_ALG, "alg none with a signature");

    is_int(verify(&hs, hs256_with("{\"alg\":\"hs256\"}", claims(60, ""), secret,
                                  sizeof(secret) - 1)),
           AUTH_JWT_BAD_ALG, "alg in lower case");
    is_int(verify(&hs, hs256_with("{\"alg\":\"HS512\"}", claims(60, ""), secret,
                                  sizeof(secret) - 1)),
           AUTH_JWT_BAD_ALG, "alg HS512");
    is_int(verify(&hs, hs256_with("{\"alg\":\"HS256 \"}", claims(60, ""),
                                  secret, sizeof(secret) - 1)),
           AUTH_JWT_BAD_ALG, "alg with a trailing blank");
    is_int(verify(&hs, hs256_with("{\"typ\":\"JWT\"}", claims(60, ""), secret,
                                  sizeof(secret) - 1)),
           AUTH_JWT_MALFORMED, "no alg");
    is_int(verify(&hs, hs256_with("{\"alg\":256}", claims(60, ""), secret,
                                  sizeof(secret) - 1)),
           AUTH_JWT_MALFORMED, "alg a number");
    is_int(verify(&hs, hs256_with("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
                                  claims(60, ""), secret, sizeof(secret) - 1)),
           AUTH_JWT_MALFORMED, "a crit header");

    /* the classic confusion: an HS256 token keyed with the RSA public key,
     * which anyone can fetch */
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, rsa_key) != 1) {
        abort();
    }
    long pemlen = BIO_get_mem_data(bio, &pem);
    const char *forged =
        hs256_with(HS_HEADER, claims(60, ""), pem, (size_t) pemlen);
    is_int(verify(&rs, forged), AUTH_JWT_BAD_ALG,
           "HS256 keyed with the RSA public key, RSA configured: refused");
    struct auth_jwt_conf both = rs_conf();
    both.secret = (const unsigned char *) secret;
    both.secret_len = sizeof(secret) - 1;
    is_int(verify(&both, forged), AUTH_JWT_BAD_SIGNATURE,
           "the same with an HMAC secret too: checked with the secret");
    BIO_free(bio);

    is_int(verify(&hs, rs256(claims(60, ""))), AUTH_JWT_BAD_ALG,
           "RS256 token, only an HMAC secret configured");
    is_int(verify(&rs, hs256(claims(60, ""))), AUTH_JWT_BAD_ALG,
           "HS256 token, only an RSA key configured");
}

/* Flips one character of the part <part> (0..2) of <token>. */
static void
flip(char *token, int part, size_t at)
{
    char *p = token;

    for (int i = 0; i < part; i++) {
        p = strchr(p, '.') + 1;
    }
    p[at] = p[at] == 'A' ? 'B' : 'A';
}

static void
test_signatures(void)
{
    struct auth_jwt_conf hs = hs_conf(), rs = rs_conf();
    char tok[TOKEN_BUF];

    strcpy(tok, hs256(claims(60, "")));
    flip(tok, 2, 3);
    is_int(verify(&hs, tok), AUTH_JWT_BAD_SIGNATURE,
           "HS256 signature with a character changed");
    strcpy(tok, hs256_with(HS_HEADER, claims(60, ""), "another secret", 14));
    is_int(verify(&hs, tok), AUTH_JWT_BAD_SIGNATURE, "HS256 with another key");
    strcpy(tok, hs256(claims(60, "")));
    flip(tok, 1, 2);
    is_int(verify(&hs, tok), AUTH_JWT_BAD_SIGNATURE,
           "HS256 with the payload changed");
    flip(tok, 1, 2);
    flip(tok, 0, 2);
    is_int(verify(&hs, tok), AUTH_JWT_MALFORMED,
           "HS256 with the header changed: no longer JSON");

    /* the right MAC but one byte short, then one byte long */
    strcpy(tok, hs256(claims(60, "")));
    char *sig = strrchr(tok, '.') + 1;
    unsigned char mac[40];
    size_t maclen;
    if (auth_jwt_b64url_decode(sig, strlen(sig), mac, &maclen) != 0) {
        abort();
    }
    append_sig(tok, (size_t) (sig - 1 - tok), mac, maclen - 1);
    is_int(verify(&hs, tok), AUTH_JWT_BAD_SIGNATURE, "HS256 signature short");
    mac[maclen] = 0;
    append_sig(tok, (size_t) (sig - 1 - tok), mac, maclen + 1);
    is_int(verify(&hs, tok), AUTH_JWT_BAD_SIGNATURE, "HS256 signature long");

    strcpy(tok, rs256(claims(60, "")));
    flip(tok, 2, 10);
    is_int(verify(&rs, tok), AUTH_JWT_BAD_SIGNATURE,
           "RS256 signature with a character changed");
    strcpy(tok, rs256_with(RS_HEADER, claims(60, ""), other_key));
    is_int(verify(&rs, tok), AUTH_JWT_BAD_SIGNATURE,
           "RS256 signed with another key");
    strcpy(tok, rs256(claims(60, "")));
    flip(tok, 1, 2);
    is_int(verify(&rs, tok), AUTH_JWT_BAD_SIGNATURE,
           "RS256 with the payload changed");
    strcpy(tok, rs256(claims(60, "")));
    sig = strrchr(tok, '.') + 1;
    sig[8] = '\0';
    is_int(verify(&rs, tok), AUTH_JWT_BAD_SIGNATURE, "RS256 signature short");
}

static void
test_truncated(void)
{
    struct auth_jwt_conf hs = hs_conf(), rs = rs_conf();
    char tok[TOKEN_BUF];
    size_t bad = 0, len;

    strcpy(tok, hs256(claims(60, "")));
    len = strlen(tok);
    for (size_t n = 0; n < len; n++) {
        bad += verify_n(&hs, tok, n) != AUTH_JWT_OK;
    }
    is_int(bad, len, "HS256: each of the %zu truncations is refused", len);

    strcpy(tok, rs256(claims(60, "")));
    len = strlen(tok);
    bad = 0;
    for (size_t n = 0; n < len; n++) {
        bad += verify_n(&rs, tok, n) != AUTH_JWT_OK;
    }
    is_int(bad, len, "RS256: each of the %zu truncations is refused", len);

    strcpy(tok, hs256(claims(60, "")));
    *strrchr(tok, '.') = '\0';
    is_int(verify(&hs, tok), AUTH_JWT_MALFORMED, "no signature part");
    strcat(tok, ".");
    is_int(verify(&hs, tok), AUTH_JWT_MALFORMED, "an empty signature part");
    strcpy(tok, hs256(claims(60, "")));
    strcat(tok, ".AAAA");
    is_int(verify(&hs, tok), AUTH_JWT_MALFORMED, "four parts");
    is_int(verify(&hs, ""), AUTH_JWT_MALFORMED, "empty");
    is_int(verify(&hs, ".."), AUTH_JWT_MALFORMED, "two dots");
    is_int(verify(&hs, "abc"), AUTH_JWT_MALFORMED, "no dots");
}

static void
test_base64url(void)
{
    struct auth_jwt_conf hs = hs_conf();
    unsigned char out[16];
    size_t n = 0;
    char tok[TOKEN_BUF];

    ok(auth_jwt_b64url_decode("", 0, out, &n) == 0 && n == 0, "b64: empty");
    ok(auth_jwt_b64url_decode("QQ", 2, out, &n) == 0 && n == 1 && out[0] == 'A',
       "b64: QQ is A");
    ok(auth_jwt_b64url_decode("QUI", 3, out, &n) == 0 && n == 2 &&
           memcmp(out, "AB", 2) == 0,
       "b64: QUI is AB");
    ok(auth_jwt_b64url_decode("QUJD", 4, out, &n) == 0 && n == 3 &&
           memcmp(out, "ABC", 3) == 0,
       "b64: QUJD is ABC");
    ok(auth_jwt_b64url_decode("-_-_", 4, out, &n) == 0 && n == 3 &&
           memcmp(out, "\xfb\xff\xbf", 3) == 0,
       "b64: the url alphabet's - and _");
    is_int(auth_jwt_b64url_decode("Q", 1, out, &n), -1, "b64: one character");
    is_int(auth_jwt_b64url_decode("QUJDQ", 5, out, &n), -1,
           "b64: 4k+1 characters");
    is_int(auth_jwt_b64url_decode("QR", 2, out, &n), -1,
           "b64: non-zero spare bits (QR)");
    is_int(auth_jwt_b64url_decode("QUJ", 3, out, &n), -1,
           "b64: non-zero spare bits (QUJ)");
    is_int(auth_jwt_b64url_decode("QQ==", 4, out, &n), -1, "b64: padding");
    is_int(auth_jwt_b64url_decode("+/+/", 4, out, &n), -1,
           "b64: the standard alphabet's + and /");
    is_int(auth_jwt_b64url_decode("QU I", 4, out, &n), -1, "b64: a blank");
    is_int(auth_jwt_b64url_decode("QU\0I", 4, out, &n), -1, "b64: a NUL");

    strcpy(tok, hs256(claims(60, "")));
    char *sig = strrchr(tok, '.') + 1;
    sig[0] = '+';
    is_int(verify(&hs, tok), AUTH_JWT_MALFORMED, "'+' in the signature");
    strcpy(tok, hs256(claims(60, "")));
    strcat(tok, "=");
    is_int(verify(&hs, tok), AUTH_JWT_MALFORMED, "a padded signature");
    strcpy(tok, hs256(claims(60, "")));
    tok[3] = '/';
    is_int(verify(&hs, tok), AUTH_JWT_MALFORMED, "'/' in the header");
}

/* Tokens whose JSON is not two plain objects, correctly signed. */
static void
test_json(void)
{
    struct auth_jwt_conf hs = hs_conf();

    is_int(verify(&hs, hs256_with("{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
                                  claims(60, ""), secret, sizeof(secret) - 1)),
           AUTH_JWT_MALFORMED, "duplicate key in the header");
    is_int(verify(&hs, hs256_with("{\"alg\":\"none\",\"alg\":\"HS256\"}",
                                  claims(60, ""), secret, sizeof(secret) - 1)),
           AUTH_JWT_MALFORMED, "duplicate alg, the last one HS256");
    is_int(verify(&hs, hs256(claims(60, "\"sub\":\"mallory\""))),
           AUTH_JWT_MALFORMED, "duplicate key in the payload");
    is_int(verify(&hs, hs256(claims(60, "\"exp\":1"))), AUTH_JWT_MALFORMED,
           "duplicate exp in the payload");
    is_int(verify(&hs, hs256_with("[\"HS256\"]", claims(60, ""), secret,
                                  sizeof(secret) - 1)),
           AUTH_JWT_MALFORMED, "header an array");
    is_int(verify(&hs, hs256("[1700000060]")), AUTH_JWT_MALFORMED,
           "payload an array");
    is_int(verify(&hs, hs256("\"alice\"")), AUTH_JWT_MALFORMED,
           "payload a string");
    is_int(verify(&hs, hs256("{\"sub\":\"alice\",\"exp\":1700000060} x")),
           AUTH_JWT_MALFORMED, "payload with trailing bytes");
    is_int(verify(&hs, hs256("{\"sub\":\"al\\u0000ice\",\"exp\":1700000060}")),
           AUTH_JWT_MALFORMED, "a NUL escape in the payload");
    is_int(verify(&hs, hs256("{\"sub\":\"\xff\",\"exp\":1700000060}")),
           AUTH_JWT_MALFORMED, "payload not UTF-8");
    is_int(verify(&hs, hs256_with("{\"alg\":\"HS256\"", claims(60, ""), secret,
                                  sizeof(secret) - 1)),
           AUTH_JWT_MALFORMED, "header cut short");
}

/*
 * A valid HS256 token of exactly <len> bytes: a padding claim grows the
 * payload and a "kid" of 0 to 3 bytes fills the last steps, since base64
 * grows by one or two characters per byte.
 */
static const char *
token_of_length(size_t len)
{
    static char pad[AUTH_JWT_MAX];
    char header[64], extra[AUTH_JWT_MAX + 16];

    for (size_t kid = 0; kid < 4; kid++) {
        snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"kid\":\"%.*s\"}",
                 (int) kid, "kkk");
        /* the payload is about 3/4 of the token; start a little short */
        for (size_t want = len * 3 / 4 - 300; want + 1 < sizeof(pad); want++) {
            memset(pad, 'p', want);
            pad[want] = '\0';
            snprintf(extra, sizeof(extra), "\"pad\":\"%s\"", pad);
            const char *tok = hs256_with(header, claims(60, extra), secret,
                                         sizeof(secret) - 1);
            if (strlen(tok) == len) {
                return tok;
            }
            if (strlen(tok) > len) {
                break;
            }
        }
    }
    abort();
}

static void
test_length(void)
{
    struct auth_jwt_conf hs = hs_conf();
    char tok[TOKEN_BUF];

    strcpy(tok, token_of_length(AUTH_JWT_MAX));
    is_int(strlen(tok), AUTH_JWT_MAX, "a token of exactly %d bytes",
           AUTH_JWT_MAX);
    is_int(verify(&hs, tok), AUTH_JWT_OK, "is valid");
    strcpy(tok, token_of_length(AUTH_JWT_MAX + 1));
    is_int(verify(&hs, tok), AUTH_JWT_TOO_LONG, "one byte more is refused");
    strcpy(tok, token_of_length(AUTH_JWT_MAX + 100));
    is_int(verify(&hs, tok), AUTH_JWT_TOO_LONG, "%d bytes are refused",
           AUTH_JWT_MAX + 100);
    memset(tok, '.', AUTH_JWT_MAX + 1);
    is_int(verify_n(&hs, tok, AUTH_JWT_MAX + 1), AUTH_JWT_TOO_LONG,
           "%d bytes of garbage: refused by length first", AUTH_JWT_MAX + 1);
}

static void
test_strerror(void)
{
    for (int rc = AUTH_JWT_INTERNAL; rc <= AUTH_JWT_OK; rc++) {
        ok(strcmp(auth_jwt_strerror(rc), "unknown verdict") != 0,
           "strerror(%d) is \"%s\"", rc, auth_jwt_strerror(rc));
    }
    is_str(auth_jwt_strerror(1), "unknown verdict", "strerror of no verdict");
}

int
main(void)
{
    guard_init();
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    other_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    if (rsa_key == NULL || other_key == NULL) {
        fprintf(stderr, "RSA key generation failed\n");
        return 1;
    }
    test_valid();
    test_times();
    test_issuer_audience();
    test_user();
    test_algorithms();
    test_signatures();
    test_truncated();
    test_base64url();
    test_json();
    test_length();
    test_strerror();
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(other_key);
    return done_testing();
}
