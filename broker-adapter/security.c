/*
 * Credentials and TLS of a connection (dt_nats_security, durabletask/connection.h): checks,
 * and their translation into nats.c options.
 *
 * Credential files are read at each (re)connect, so a rotated file is used from the next
 * reconnect on; the checks here only make a missing or unreadable file a clear DT_EINVAL up front
 * instead of a connect failure that a worker would retry forever. The adapter reads them itself,
 * through nats.c's callbacks (natsOptions_SetUserCredentialsCallbacks for a credentials file,
 * natsOptions_SetNKey for an nkey seed file) rather than nats.c's file handlers, because nats.c
 * 3.4.1 drops signatures that begin with a 0 byte and the server then refuses about 1 connect in
 * 256 (nkey_sign.c says more). The seed is decoded (base32, CRC-16) and used with OpenSSL's
 * libcrypto (which nats.c links for TLS anyway); the public key an nkey connection announces is
 * derived from it and encoded as a NATS user key ("U..."). Seeds and file texts holding them are
 * wiped from memory after use.
 *
 * No text written here contains a secret: files are named by path, tokens and passwords never.
 */
#include "broker_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEY_PREFIX_SEED (18u << 3) /* base32 "S..." */
#define NKEY_PREFIX_USER (20u << 3) /* base32 "U..." */
#define NKEY_RAW_LEN     DT__ED25519_SEED_LEN
/* Largest credentials or seed file read (nsc's files are a few KiB). */
#define AUTH_FILE_MAX ((size_t)64 * 1024)

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
    (void)fclose(f); /* opened for reading: nothing to lose */
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

/* ---- credential files ---- */

/* The text of `path`, NUL-terminated, in a dt_alloc'd buffer of AUTH_FILE_MAX + 1 bytes (it may
 * hold a seed: free it with text_free). NULL with errno set when the file cannot be read or is
 * larger than AUTH_FILE_MAX. */
static char *text_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *text = dt_alloc(AUTH_FILE_MAX + 1);
    size_t n = text != NULL ? fread(text, 1, AUTH_FILE_MAX + 1, f) : 0;
    int failed = text == NULL ? ENOMEM : ferror(f) ? EIO : n > AUTH_FILE_MAX ? EFBIG : 0;
    (void)fclose(f); /* opened for reading: nothing to lose */
    if (failed != 0) {
        if (text != NULL) {
            OPENSSL_cleanse(text, AUTH_FILE_MAX + 1);
        }
        dt_free(text);
        errno = failed;
        return NULL;
    }
    text[n] = '\0';
    return text;
}

static void text_free(char *text)
{
    if (text != NULL) {
        OPENSSL_cleanse(text, AUTH_FILE_MAX + 1);
        dt_free(text);
    }
}

/* The next non-blank line at or after *p, without its surrounding blanks, as [*b, *e); *p moves
 * past it. False at the end of the text. */
static bool next_line(const char **p, const char **b, const char **e)
{
    const char *s = *p;
    while (*s != '\0' && strchr(" \t\r\n", *s) != NULL) {
        s++;
    }
    if (*s == '\0') {
        return false;
    }
    const char *t = s;
    while (*t != '\0' && *t != '\n') {
        t++;
    }
    const char *end = t;
    while (end > s && strchr(" \t\r", end[-1]) != NULL) {
        end--;
    }
    *p = t;
    *b = s;
    *e = end;
    return true;
}

/* A section marker of a credentials file: "-----BEGIN NATS USER JWT-----" and the like. */
static bool is_marker(const char *b, const char *e)
{
    return e - b >= 6 && strncmp(b, "---", 3) == 0 && strncmp(e - 3, "---", 3) == 0;
}

/* The user JWT of a credentials file as nsc writes it (the value of the first marker / value /
 * marker section, as nats.c reads it): [*b, *e). */
static bool creds_jwt(const char *text, const char **b, const char **e)
{
    const char *p = text, *mb = NULL, *me = NULL;
    while (next_line(&p, &mb, &me)) {
        const char *q = p, *vb = NULL, *ve = NULL;
        if (is_marker(mb, me) && next_line(&q, &vb, &ve) && !is_marker(vb, ve) &&
            next_line(&q, &mb, &me) && is_marker(mb, me)) {
            *b = vb;
            *e = ve;
            return true;
        }
    }
    return false;
}

/* Reads the user seed of `path` (a seed file or a credentials file: its first "SU..." line) into
 * raw. On failure a reason (no secret) in *why. */
static bool read_seed(const char *path, unsigned char raw[NKEY_RAW_LEN], const char **why)
{
    char *text = text_read(path);
    const char *b = NULL, *e = NULL;
    bool ok = text != NULL && find_seed(text, &b, &e) && decode_user_seed(b, e, raw);
    *why = text == NULL ? strerror(errno) : "holds no valid user seed (SU...)";
    text_free(text);
    return ok;
}

dt_status dt__broker_nkey_public(const char *seed_file, char *out, size_t cap, char *err,
                                 size_t len)
{
    unsigned char raw[NKEY_RAW_LEN];
    const char *why = NULL;
    bool ok = read_seed(seed_file, raw, &why);
    bool derived = ok && public_key(raw, out, cap);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (!derived) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "nkey seed file '%s': %s", seed_file,
                                 ok ? "no public key derived" : why);
    }
    return DT_OK;
}

/* ---- nats.c's credential callbacks (any nats.c thread; closure: the dt__broker_auth) ---- */

/* A malloc'd "<what> '<path>': <why>" for nats.c, which frees it with free(). */
static void callback_err(char **out, const dt__broker_auth *auth, const char *why)
{
    size_t n = strlen(auth->what) + strlen(auth->path) + strlen(why) + 8;
    *out = malloc(n);
    if (*out != NULL) {
        dt__errf(*out, n, "%s '%s': %s", auth->what, auth->path, why);
    }
}

/* natsUserJWTHandler: the user JWT of the credentials file, in a malloc'd string (nats.c frees
 * it with free()). */
static natsStatus on_user_jwt(char **out_jwt, char **out_err, void *closure)
{
    const dt__broker_auth *auth = closure;
    char *text = text_read(auth->path);
    const char *b = NULL, *e = NULL, *why = NULL;
    natsStatus s = NATS_ERR;
    if (text == NULL) {
        why = strerror(errno);
    } else if (!creds_jwt(text, &b, &e)) {
        why = "holds no user JWT";
    } else if ((*out_jwt = malloc((size_t)(e - b) + 1)) == NULL) {
        s = NATS_NO_MEMORY;
    } else {
        memcpy(*out_jwt, b, (size_t)(e - b));
        (*out_jwt)[e - b] = '\0';
        s = NATS_OK;
    }
    text_free(text);
    if (why != NULL) {
        callback_err(out_err, auth, why);
    }
    return s;
}

/* natsSignatureHandler: the nonce signed with the file's seed (re-read at every connect), in a
 * malloc'd buffer (nats.c frees it with free()), never beginning with 0x00 (nkey_sign.c). */
static natsStatus on_sign(char **out_err, unsigned char **out_sig, int *out_len, const char *nonce,
                          void *closure)
{
    const dt__broker_auth *auth = closure;
    unsigned char raw[NKEY_RAW_LEN];
    unsigned char *sig = malloc(DT__ED25519_SIG_LEN);
    const char *why = NULL;
    natsStatus s = NATS_ERR;
    if (sig == NULL) {
        s = NATS_NO_MEMORY;
    } else if (read_seed(auth->path, raw, &why)) {
        why = dt__broker_nkey_sign(raw, (const unsigned char *)nonce, strlen(nonce), sig)
                  ? NULL
                  : "signing the server's nonce failed";
        s = why == NULL ? NATS_OK : NATS_ERR;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    if (s == NATS_OK) {
        *out_sig = sig;
        *out_len = DT__ED25519_SIG_LEN;
        return NATS_OK;
    }
    free(sig);
    if (why != NULL) {
        callback_err(out_err, auth, why);
    }
    return s;
}

void dt__broker_auth_fini(dt__broker_auth *auth)
{
    if (auth != NULL) {
        dt_free(auth->path);
        auth->path = NULL;
    }
}

/* ---- nats.c options ---- */

static dt_status opt_fail(natsStatus s, const char *what, char *err, size_t len)
{
    dt_status st = dt__broker_nerr(err, len, s, 0, "%s", what);
    return st == DT_ENOMEM ? st : DT_EINVAL;
}

/* Points `auth` at a copy of `path`. */
static dt_status auth_init(dt__broker_auth *auth, const char *what, const char *path, char *err,
                           size_t len)
{
    dt__broker_auth_fini(auth);
    auth->what = what;
    auth->path = dt_strdup(path);
    return auth->path != NULL ? DT_OK : dt__broker_errbuf(err, len, DT_ENOMEM, "out of memory");
}

static dt_status apply_auth(natsOptions *opts, const dt_nats_security *s, dt__broker_auth *auth,
                            char *err, size_t len)
{
    natsStatus ns = NATS_OK;
    if (set(s->creds_file)) {
        dt_status st = auth_init(auth, "credentials file", s->creds_file, err, len);
        if (st != DT_OK) {
            return st;
        }
        ns = natsOptions_SetUserCredentialsCallbacks(opts, on_user_jwt, auth, on_sign, auth);
    } else if (set(s->nkey_seed_file)) {
        char pub[64];
        dt_status st = dt__broker_nkey_public(s->nkey_seed_file, pub, sizeof(pub), err, len);
        if (st == DT_OK) {
            st = auth_init(auth, "nkey seed file", s->nkey_seed_file, err, len);
        }
        if (st != DT_OK) {
            return st;
        }
        ns = natsOptions_SetNKey(opts, pub, on_sign, auth);
    } else if (set(s->token)) {
        ns = natsOptions_SetToken(opts, s->token);
    } else if (set(s->user)) {
        ns = natsOptions_SetUserInfo(opts, s->user, set(s->password) ? s->password : "");
    }
    return ns == NATS_OK ? DT_OK : opt_fail(ns, "credentials", err, len);
}

dt_status dt__broker_security_apply(natsOptions *opts, const dt_nats_security *s, bool want_tls,
                                    dt__broker_auth *auth, char *err, size_t len)
{
    dt_status st = apply_auth(opts, s, auth, err, len);
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
