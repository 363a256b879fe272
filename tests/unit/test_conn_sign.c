/*
 * The adapter's nkey signatures (broker-adapter/nkey_sign.c) without a server: nats.c 3.4.1 sends
 * no "sig" when a signature's first byte is 0x00, so the adapter must hand it a valid ed25519
 * signature that never begins with 0x00, and the RFC 8032 one whenever that does not. The nonces
 * whose RFC 8032 signature begins with 0x00 are found by search, so the test is deterministic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "broker_int.h"

/* Nonces searched for ones whose RFC 8032 signature begins with 0x00 (1 in 256 on average; the
 * fixed seed below finds the first few within a few thousand). */
#define SEARCH_MAX 200000
#define ZERO_CASES 4
/* Signatures the adapter makes again for each such nonce: each uses a fresh random nonce. */
#define REPEATS 32

typedef unsigned char seed_t[DT__ED25519_SEED_LEN];
typedef unsigned char sig_t[DT__ED25519_SIG_LEN];

static void seed_fill(seed_t seed, unsigned char salt)
{
    for (size_t i = 0; i < DT__ED25519_SEED_LEN; i++) {
        seed[i] = (unsigned char)(i * 7u + salt);
    }
}

static void public_of(const seed_t seed, unsigned char pub[DT__ED25519_PUB_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, DT__ED25519_SEED_LEN);
    size_t n = DT__ED25519_PUB_LEN;
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &n), 1);
    assert_int_equal(n, DT__ED25519_PUB_LEN);
    EVP_PKEY_free(k);
}

static size_t nonce_text(int i, char *buf, size_t len)
{
    int n = snprintf(buf, len, "dt-nonce-%06d", i);
    assert_true(n > 0 && (size_t)n < len);
    return (size_t)n;
}

/* The next nonce index at or after `from` whose RFC 8032 signature by `seed` begins with 0x00. */
static int next_zero_nonce(const seed_t seed, int from, sig_t rfc)
{
    char nonce[32];
    for (int i = from; i < SEARCH_MAX; i++) {
        size_t n = nonce_text(i, nonce, sizeof(nonce));
        assert_true(dt__broker_ed25519_sign(seed, (const unsigned char *)nonce, n, rfc));
        if (rfc[0] == 0) {
            return i;
        }
    }
    fail_msg("no nonce below %d has a signature beginning with 0x00", SEARCH_MAX);
    return -1;
}

static void a_leading_zero_signature_is_replaced_by_a_valid_one(void **state)
{
    (void)state;
    seed_t seed;
    unsigned char pub[DT__ED25519_PUB_LEN], other_pub[DT__ED25519_PUB_LEN];
    seed_fill(seed, 3);
    public_of(seed, pub);
    seed_t other;
    seed_fill(other, 4);
    public_of(other, other_pub);

    int i = 0;
    for (int found = 0; found < ZERO_CASES; found++, i++) {
        sig_t rfc, sig;
        char nonce[32];
        i = next_zero_nonce(seed, i, rfc);
        size_t n = nonce_text(i, nonce, sizeof(nonce));
        const unsigned char *msg = (const unsigned char *)nonce;
        assert_true(dt__broker_ed25519_verify(pub, msg, n, rfc)); /* valid, just unsendable */
        for (int r = 0; r < REPEATS; r++) {
            assert_true(dt__broker_nkey_sign(seed, msg, n, sig));
            assert_int_not_equal(sig[0], 0);
            assert_memory_not_equal(sig, rfc, sizeof(sig));
            assert_true(dt__broker_ed25519_verify(pub, msg, n, sig));
            /* ... for this message and key only. */
            assert_false(dt__broker_ed25519_verify(other_pub, msg, n, sig));
            assert_false(dt__broker_ed25519_verify(pub, msg, n - 1, sig));
        }
    }
}

static void other_signatures_are_the_standard_ones(void **state)
{
    (void)state;
    seed_t seed;
    unsigned char pub[DT__ED25519_PUB_LEN];
    seed_fill(seed, 3);
    public_of(seed, pub);
    int checked = 0;
    for (int i = 0; checked < 1000; i++) {
        sig_t rfc, sig;
        char nonce[32];
        size_t n = nonce_text(i, nonce, sizeof(nonce));
        const unsigned char *msg = (const unsigned char *)nonce;
        assert_true(dt__broker_ed25519_sign(seed, msg, n, rfc));
        if (rfc[0] == 0) {
            continue;
        }
        assert_true(dt__broker_nkey_sign(seed, msg, n, sig));
        assert_memory_equal(sig, rfc, sizeof(sig)); /* deterministic: RFC 8032 */
        assert_true(dt__broker_ed25519_verify(pub, msg, n, sig));
        checked++;
    }
}

/* The RFC 8032 test vector 1 (empty message): the standard signer is the standard one. */
static void the_standard_signer_matches_rfc8032(void **state)
{
    (void)state;
    static const char seed_hex[] =
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    static const char sig_hex[] =
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    seed_t seed;
    sig_t want, got;
    for (size_t i = 0; i < sizeof(seed); i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(seed_hex + 2 * i, "%2x", &v), 1);
        seed[i] = (unsigned char)v;
    }
    for (size_t i = 0; i < sizeof(want); i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(sig_hex + 2 * i, "%2x", &v), 1);
        want[i] = (unsigned char)v;
    }
    assert_true(dt__broker_ed25519_sign(seed, (const unsigned char *)"", 0, got));
    assert_memory_equal(got, want, sizeof(want));
    assert_true(dt__broker_nkey_sign(seed, (const unsigned char *)"", 0, got));
    assert_memory_equal(got, want, sizeof(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_leading_zero_signature_is_replaced_by_a_valid_one),
        cmocka_unit_test(other_signatures_are_the_standard_ones),
        cmocka_unit_test(the_standard_signer_matches_rfc8032),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
