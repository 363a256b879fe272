/*
 * Credentials and TLS of a connection (dt_nats_security, durabletask/connection.h): checks,
 * and their translation into nats.c options.
 *
 * nats.c reads credential files itself, at each (re)connect; the checks here only make a missing
 * or unreadable file a clear DT_EINVAL up front instead of a connect failure that a worker would
 * retry forever. nats.c's natsOptions_SetNKeyFromSeed needs the user's public key beside the seed
 * file, and 3.4.1 has no public call that derives it, so it is derived here: the seed is decoded
 * (base32, CRC-16), its ed25519 public key computed with OpenSSL's libcrypto (which nats.c links
 * for TLS anyway) and encoded as a NATS user key ("U..."). Seeds are wiped from memory after use.
 *
 * No text written here contains a secret: files are named by path, tokens and passwords never.
 */
#include "broker_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define NKEY_PREFIX_SEED   (18u << 3) /* base32 "S..." */
#define NKEY_PREFIX_USER   (20u << 3) /* base32 "U..." */
#define NKEY_RAW_LEN       32u
#define NKEY_SEED_FILE_MAX 8192u

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static dt_status readable(const char *what, const char *path, char *err, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "%s '%s': %s", what, path, strerror(errno));
    }
    fclose(f);
    return DT_OK;
}

dt_status dt__broker_security_check(const dt_nats_security *s, char *err, size_t len)
{
    int ways = set(s->creds_file) + set(s->nkey_seed_file) + set(s->token) +
               (set(s->user) || set(s->password));
    if (ways > 1) {
        return dt__broker_errbuf(err, len, DT_EINVAL,
                                 "more than one way to authenticate is set: choose one of "
                                 "credentials file, nkey seed file, token, user and password");
    }
    if (set(s->password) && !set(s->user)) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "a password needs a user name");
    }
    if (set(s->tls_cert_file) != set(s->tls_key_file)) {
        return dt__broker_errbuf(err, len, DT_EINVAL,
                                 "a TLS client certificate needs its key, and a key its "
                                 "certificate");
    }
    const struct {
        const char *what, *path;
    } files[] = {{"credentials file", s->creds_file},
                 {"nkey seed file", s->nkey_seed_file},
                 {"TLS CA file", s->tls_ca_file},
                 {"TLS certificate file", s->tls_cert_file},
                 {"TLS key file", s->tls_key_file}};
    for (size_t i = 0; i < DT__ARRAY_LEN(files); i++) {
        dt_status st =
            set(files[i].path) ? readable(files[i].what, files[i].path, err, len) : DT_OK;
        if (st != DT_OK) {
            return st;
        }
    }
    return DT_OK;
}

/* ---- nkeys ---- */

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* CRC-16/XMODEM, the checksum of encoded nkeys. */
static uint16_t crc16(const unsigned char *d, size_t n)
{
    uint32_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint32_t)d[i] << 8;
        for (int k = 0; k < 8; k++) {
            crc = (crc & 0x8000u) != 0 ? (crc << 1) ^ 0x1021u : crc << 1;
        }
    }
    return (uint16_t)(crc & 0xffffu);
}

/* Base32 (RFC 4648 alphabet, no padding) of [s, s+n) into out; returns the byte count or 0 on a
 * bad character or overflow. */
static size_t b32_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(b32_alphabet, s[i]);
        if (s[i] == '\0' || p == NULL) {
            return 0;
        }
        acc = (acc << 5) | (uint32_t)(p - b32_alphabet);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (k == cap) {
                return 0;
            }
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    return k;
}

static void b32_encode(const unsigned char *d, size_t n, char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        acc = (acc << 8) | d[i];
        bits += 8;
        while (bits >= 5 && k + 1 < cap) {
            bits -= 5;
            out[k++] = b32_alphabet[(acc >> bits) & 31u];
        }
    }
    if (bits > 0 && k + 1 < cap) {
        out[k++] = b32_alphabet[(acc << (5 - bits)) & 31u];
    }
    out[k] = '\0';
}

/* Finds the first "SU..." token of the file's text (a bare seed file, or a decorated one as nsc
 * writes), as nats.c does; [*b, *e) on success. */
static bool find_seed(const char *text, const char **b, const char **e)
{
    for (const char *p = text; *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            p++;
        }
        if (p[0] == 'S' && p[1] == 'U') {
            *b = p;
            while (*p != '\0' && strchr(" \t\r\n", *p) == NULL) {
                p++;
            }
            *e = p;
            return true;
        }
        while (*p != '\0' && *p != '\n') {
            p++;
        }
    }
    return false;
}

/* Decodes a user seed into its 32 raw bytes; false if it is not a valid user seed. */
static bool decode_user_seed(const char *b, const char *e, unsigned char raw[NKEY_RAW_LEN])
{
    unsigned char buf[64];
    size_t n = b32_decode(b, (size_t)(e - b), buf, sizeof(buf));
    bool ok = n == 2 + NKEY_RAW_LEN + 2;
    if (ok) {
        uint16_t crc = (uint16_t)(buf[n - 2] | (buf[n - 1] << 8));
        unsigned kind = (unsigned)(((buf[0] & 7u) << 5) | ((buf[1] & 248u) >> 3));
        ok = crc16(buf, n - 2) == crc && (buf[0] & 248u) == NKEY_PREFIX_SEED &&
             kind == NKEY_PREFIX_USER;
    }
    if (ok) {
        memcpy(raw, buf + 2, NKEY_RAW_LEN);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return ok;
}

/* The encoded public user key ("U...", 56 characters) of a raw ed25519 seed. */
static bool public_key(const unsigned char raw[NKEY_RAW_LEN], char *out, size_t cap)
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, NKEY_RAW_LEN);
    unsigned char pub[1 + NKEY_RAW_LEN + 2];
    size_t plen = NKEY_RAW_LEN;
    bool ok =
        k != NULL && EVP_PKEY_get_raw_public_key(k, pub + 1, &plen) == 1 && plen == NKEY_RAW_LEN;
    EVP_PKEY_free(k);
    if (ok) {
        pub[0] = NKEY_PREFIX_USER;
        uint16_t crc = crc16(pub, 1 + NKEY_RAW_LEN);
        pub[1 + NKEY_RAW_LEN] = (unsigned char)(crc & 0xff);
        pub[2 + NKEY_RAW_LEN] = (unsigned char)(crc >> 8);
        b32_encode(pub, sizeof(pub), out, cap);
    }
    return ok;
}

dt_status dt__broker_nkey_public(const char *seed_file, char *out, size_t cap, char *err,
                                 size_t len)
{
    char text[NKEY_SEED_FILE_MAX + 1];
    unsigned char raw[NKEY_RAW_LEN];
    FILE *f = fopen(seed_file, "rb");
    if (f == NULL) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "nkey seed file '%s': %s", seed_file,
                                 strerror(errno));
    }
    size_t n = fread(text, 1, NKEY_SEED_FILE_MAX, f);
    fclose(f);
    text[n] = '\0';
    const char *b = NULL, *e = NULL;
    bool ok = find_seed(text, &b, &e) && decode_user_seed(b, e, raw);
    ok = ok && public_key(raw, out, cap);
    OPENSSL_cleanse(text, sizeof(text));
    OPENSSL_cleanse(raw, sizeof(raw));
    if (!ok) {
        return dt__broker_errbuf(err, len, DT_EINVAL,
                                 "nkey seed file '%s' holds no valid user seed (SU...)", seed_file);
    }
    return DT_OK;
}

/* ---- nats.c options ---- */

static dt_status opt_fail(natsStatus s, const char *what, char *err, size_t len)
{
    dt_status st = dt__broker_nerr(err, len, s, 0, "%s", what);
    return st == DT_ENOMEM ? st : DT_EINVAL;
}

static dt_status apply_auth(natsOptions *opts, const dt_nats_security *s, char *err, size_t len)
{
    natsStatus ns = NATS_OK;
    if (set(s->creds_file)) {
        ns = natsOptions_SetUserCredentialsFromFiles(opts, s->creds_file, NULL);
    } else if (set(s->nkey_seed_file)) {
        char pub[64];
        dt_status st = dt__broker_nkey_public(s->nkey_seed_file, pub, sizeof(pub), err, len);
        if (st != DT_OK) {
            return st;
        }
        ns = natsOptions_SetNKeyFromSeed(opts, pub, s->nkey_seed_file);
    } else if (set(s->token)) {
        ns = natsOptions_SetToken(opts, s->token);
    } else if (set(s->user)) {
        ns = natsOptions_SetUserInfo(opts, s->user, set(s->password) ? s->password : "");
    }
    return ns == NATS_OK ? DT_OK : opt_fail(ns, "credentials", err, len);
}

dt_status dt__broker_security_apply(natsOptions *opts, const dt_nats_security *s, bool want_tls,
                                    char *err, size_t len)
{
    dt_status st = apply_auth(opts, s, err, len);
    if (st != DT_OK) {
        return st;
    }
    natsStatus ns = NATS_OK;
    if (want_tls || set(s->tls_ca_file) || set(s->tls_cert_file)) {
        ns = natsOptions_SetSecure(opts, true);
        if (ns != NATS_OK) {
            return opt_fail(ns, "TLS", err, len);
        }
    }
    if (set(s->tls_ca_file)) {
        ns = natsOptions_LoadCATrustedCertificates(opts, s->tls_ca_file);
        if (ns != NATS_OK) {
            return opt_fail(ns, "TLS CA file", err, len);
        }
    }
    if (set(s->tls_cert_file)) {
        ns = natsOptions_LoadCertificatesChain(opts, s->tls_cert_file, s->tls_key_file);
        if (ns != NATS_OK) {
            return opt_fail(ns, "TLS client certificate", err, len);
        }
    }
    return DT_OK;
}
