/*
 * durabletask/connection.h: how workers, clients and tools reach a secured NATS deployment.
 *
 * One struct, dt_nats_security, carries every credential and TLS setting that nats.c supports
 * and that this project passes through: a credentials file (user JWT + nkey seed, decentralized
 * auth), a bare nkey seed file, a token, a user and password, a CA bundle for verifying the
 * servers' certificates and a client certificate and key for mutual TLS. dt_worker_options and
 * dt_client_options embed it; dtctl and the samples fill it from the DT_NATS_* environment
 * variables (dt_nats_security_from_env).
 *
 * Secrets never appear in log lines or error texts of this library; URLs are printed through
 * dt_nats_url_redact(), which drops their user info ("nats://user:pass@host" -> "nats://host").
 *
 * Layer: plain data and two helpers; used by the worker, the client and the broker adapter.
 */
#ifndef DURABLETASK_CONNECTION_H
#define DURABLETASK_CONNECTION_H

#include <stddef.h>

#include "durabletask/defs.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * NATS security settings. Every field is optional: NULL (or "") means unused, so a zeroed struct
 * is a plain connection. At most one way of authenticating may be set (creds_file, nkey_seed_file,
 * token, or user with password); the TLS fields combine with any of them. TLS is used when
 * tls_ca_file or tls_cert_file is set, when a URL has the scheme tls://, or when the server
 * requires it; once asked for by the client it is required (a server without TLS is refused).
 * Servers' certificates are verified against tls_ca_file, or the system's trust store without it,
 * and must name the host of the URL (DNS or IP subject alternative name).
 *
 * Files are read by the connection itself at each (re)connect, so a rotated credentials file is
 * picked up on the next reconnect; they must stay readable for the connection's life.
 */
typedef struct dt_nats_security {
    size_t struct_size;     /* the options rule (durabletask/defs.h): set by the _init, or 0 */
    const char *creds_file; /* NATS credentials file: user JWT and nkey seed (as nsc writes) */
    const char
        *nkey_seed_file; /* file with a user nkey seed ("SU..."); the public key is derived */
    const char *token;   /* authentication token */
    const char *user;    /* user name; with password */
    const char *password;
    const char *tls_ca_file; /* PEM bundle of the CAs that sign the servers' certificates */
    const char
        *tls_cert_file;       /* PEM client certificate (chain) for mutual TLS; with tls_key_file */
    const char *tls_key_file; /* PEM private key of tls_cert_file */
} dt_nats_security;

/*
 * Fills every field of `s` that is NULL from its environment variable, when that is set and not
 * empty: DT_NATS_CREDS, DT_NATS_NKEY, DT_NATS_TOKEN, DT_NATS_USER, DT_NATS_PASSWORD, DT_NATS_CA,
 * DT_NATS_CERT, DT_NATS_KEY. Fields already set are kept (command-line flags win). The pointers
 * written point into the process environment: valid until it is changed. Not thread-safe with
 * respect to setenv (like getenv).
 */
DT_API void dt_nats_security_from_env(dt_nats_security *s);

/* Sets every field of `s` (borrowed) to its default: NULL, a plain connection. */
DT_API void dt_nats_security_init(dt_nats_security *s);

/*
 * Writes `urls` (one URL or a comma-separated list) into buf without the user info of any URL:
 * "nats://u:p@h:4222,tls://tok@h2" -> "nats://h:4222,tls://h2". Truncates to fit (always
 * NUL-terminated when len > 0) and returns buf. NULL urls gives "nats://127.0.0.1:4222", the
 * default URL. Use it for every URL that goes into a log line or an error text.
 */
DT_API char *dt_nats_url_redact(const char *urls, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
