/*
 * Signing the server's nonce with a user nkey (ed25519), in a form nats.c 3.4.1 does not drop.
 *
 * Why the adapter signs at all: nats.c 3.4.1 (Debian's libnats, the version this project builds
 * against) base64-encodes the signature of the CONNECT as if it were a C string, so a signature
 * whose first byte is 0x00 encodes to nothing and the CONNECT goes out without "sig". The server
 * refuses it ("Authorization Violation"; its debug log says "Signature missing"). An ed25519
 * signature begins with 0x00 for about 1 nonce in 256, so about 1 connect or reconnect in 256
 * failed with nkey or credentials-file auth, and nats.c gives up reconnecting after two auth
 * errors in a row. Fixed upstream in nats.c 3.8.0 (nats-io/nats.c PR #705); until that version
 * can be used, the adapter hands nats.c only signatures that do not begin with 0x00.
 *
 * How: the RFC 8032 signature when its first byte is not 0 (almost always). Otherwise another
 * valid ed25519 signature of the same message: ed25519 verification (S·B = R + k·A, with
 * k = SHA-512(R || A || M)) holds for any secret nonce r with R = r·B and S = r + k·a mod L, RFC
 * 8032 only makes r deterministic. r is the clamped scalar of a fresh random ed25519 key and R
 * its public key (so libcrypto does the point arithmetic), S is computed with BIGNUMs. Each such
 * signature is checked with EVP_DigestVerify before use; one that begins with 0x00 again is
 * replaced by a new one (at most SIGN_TRIES). A clamped scalar is 2^254 + 8t with t uniform below
 * 2^251: the nonce has 251 random bits and a known structure (one bit of bias after scaling by
 * 1/8 mod L). Published attacks on 1-bit nonce biases need billions of signatures; this path
 * signs about 1 connect in 256, and it goes away with nats.c 3.8.0.
 *
 * Secrets (seed, scalars, nonces, hashes of them) are wiped with OPENSSL_cleanse; BIGNUMs holding
 * them are secure and freed with BN_clear_free.
 */
#include "broker_int.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

/* Alternative signatures tried before giving up (each begins with 0x00 with probability 1/256). */
#define SIGN_TRIES 16

/* The order of the ed25519 base point, 2^252 + 27742317777372353535851937790883648493. */
static const char order_hex[] = "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed";

/* SHA-512 of the concatenation a || b || c. */
static bool sha512(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn,
                   unsigned char out[64])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned int n = 0;
    bool ok = m != NULL && EVP_DigestInit_ex(m, EVP_sha512(), NULL) == 1 &&
              EVP_DigestUpdate(m, a, an) == 1 && EVP_DigestUpdate(m, b, bn) == 1 &&
              EVP_DigestUpdate(m, c, cn) == 1 && EVP_DigestFinal_ex(m, out, &n) == 1 && n == 64;
    EVP_MD_CTX_free(m);
    return ok;
}

/* The raw ed25519 public key of a 32-byte seed. */
static bool public_of(const unsigned char seed[DT__ED25519_SEED_LEN],
                      unsigned char pub[DT__ED25519_PUB_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, DT__ED25519_SEED_LEN);
    size_t n = DT__ED25519_PUB_LEN;
    bool ok = k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == DT__ED25519_PUB_LEN;
    EVP_PKEY_free(k);
    return ok;
}

/* The secret scalar of a seed (RFC 8032 5.1.5: clamped first half of SHA-512(seed)), a secure
 * BIGNUM (BN_clear_free), or NULL. */
static BIGNUM *scalar_of(const unsigned char seed[DT__ED25519_SEED_LEN])
{
    unsigned char h[64];
    BIGNUM *s = NULL;
    if (sha512(seed, DT__ED25519_SEED_LEN, "", 0, "", 0, h)) {
        h[0] &= 248u;
        h[31] &= 127u;
        h[31] |= 64u;
        s = BN_secure_new();
        if (s != NULL && BN_lebin2bn(h, 32, s) == NULL) {
            BN_clear_free(s);
            s = NULL;
        }
    }
    OPENSSL_cleanse(h, sizeof(h));
    return s;
}

bool dt__broker_ed25519_sign(const unsigned char seed[DT__ED25519_SEED_LEN],
                             const unsigned char *msg, size_t n,
                             unsigned char sig[DT__ED25519_SIG_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, DT__ED25519_SEED_LEN);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    size_t len = DT__ED25519_SIG_LEN;
    bool ok = k != NULL && m != NULL && EVP_DigestSignInit(m, NULL, NULL, NULL, k) == 1 &&
              EVP_DigestSign(m, sig, &len, msg, n) == 1 && len == DT__ED25519_SIG_LEN;
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(k);
    return ok;
}

bool dt__broker_ed25519_verify(const unsigned char pub[DT__ED25519_PUB_LEN],
                               const unsigned char *msg, size_t n,
                               const unsigned char sig[DT__ED25519_SIG_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, DT__ED25519_PUB_LEN);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = k != NULL && m != NULL && EVP_DigestVerifyInit(m, NULL, NULL, NULL, k) == 1 &&
              EVP_DigestVerify(m, sig, DT__ED25519_SIG_LEN, msg, n) == 1;
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(k);
    return ok;
}

/* S = r + k·a mod L into sig[32, 64), with r, a and k as little-endian numbers (k: 64 bytes). */
static bool compute_s(const BIGNUM *r, const BIGNUM *a, const unsigned char k_hash[64],
                      unsigned char sig[DT__ED25519_SIG_LEN])
{
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *order = NULL, *k = BN_new(), *s = BN_secure_new();
    bool ok = ctx != NULL && k != NULL && s != NULL && BN_hex2bn(&order, order_hex) != 0 &&
              BN_lebin2bn(k_hash, 64, k) != NULL && BN_mod_mul(s, k, a, order, ctx) == 1 &&
              BN_mod_add(s, s, r, order, ctx) == 1 && BN_bn2lebinpad(s, sig + 32, 32) == 32;
    BN_clear_free(s);
    BN_free(k);
    BN_free(order);
    BN_CTX_free(ctx);
    return ok;
}

/* One ed25519 signature of msg with a random nonce (file comment), verified against `pub`. */
static bool sign_random_nonce(const unsigned char seed[DT__ED25519_SEED_LEN],
                              const unsigned char pub[DT__ED25519_PUB_LEN],
                              const unsigned char *msg, size_t n,
                              unsigned char sig[DT__ED25519_SIG_LEN])
{
    unsigned char nonce_seed[DT__ED25519_SEED_LEN], k_hash[64];
    BIGNUM *a = NULL, *r = NULL;
    bool ok = RAND_priv_bytes(nonce_seed, sizeof(nonce_seed)) == 1 &&
              public_of(nonce_seed, sig) /* R */ && (r = scalar_of(nonce_seed)) != NULL &&
              (a = scalar_of(seed)) != NULL &&
              sha512(sig, 32, pub, DT__ED25519_PUB_LEN, msg, n, k_hash) &&
              compute_s(r, a, k_hash, sig);
    OPENSSL_cleanse(nonce_seed, sizeof(nonce_seed));
    OPENSSL_cleanse(k_hash, sizeof(k_hash));
    BN_clear_free(a);
    BN_clear_free(r);
    return ok && dt__broker_ed25519_verify(pub, msg, n, sig);
}

bool dt__broker_nkey_sign(const unsigned char seed[DT__ED25519_SEED_LEN], const unsigned char *msg,
                          size_t n, unsigned char sig[DT__ED25519_SIG_LEN])
{
    if (!dt__broker_ed25519_sign(seed, msg, n, sig)) {
        return false;
    }
    if (sig[0] != 0) {
        return true;
    }
    unsigned char pub[DT__ED25519_PUB_LEN];
    if (!public_of(seed, pub)) {
        return false;
    }
    for (int i = 0; i < SIGN_TRIES; i++) {
        if (sign_random_nonce(seed, pub, msg, n, sig) && sig[0] != 0) {
            return true;
        }
    }
    OPENSSL_cleanse(sig, DT__ED25519_SIG_LEN);
    return false;
}
