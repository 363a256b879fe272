/*
 * TLS against nats-servers this test configures, with a CA and certificates made by openssl at
 * test time: server-only TLS (the client verifies the server against the CA file; a tls:// URL
 * makes TLS required) and mutual TLS (the server verifies the client's certificate). For each, a
 * worker and a client run an orchestration; an untrusted server certificate, a missing client
 * certificate and a tls:// URL on a server without TLS are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sec_kit.h"

typedef struct tls_env {
    char *dir;
    char ca[512], other_ca[512], cert[512], key[512];
} tls_env;

static int setup(void **state)
{
    tls_env *e = calloc(1, sizeof(*e));
    e->dir = sk_mkdir();
    sk_make_tls(e->dir);
    sk_path(e->dir, "ca.pem", e->ca, sizeof(e->ca));
    sk_path(e->dir, "other-ca.pem", e->other_ca, sizeof(e->other_ca));
    sk_path(e->dir, "client.pem", e->cert, sizeof(e->cert));
    sk_path(e->dir, "client.key", e->key, sizeof(e->key));
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    tls_env *e = *state;
    sk_rmdir(e->dir);
    free(e);
    return 0;
}

/* The server's tls block; with verify, clients must show a certificate the CA signed. */
static void start_tls(dt_test_nats *s, const tls_env *e, bool verify)
{
    char conf[2048];
    snprintf(conf, sizeof(conf),
             "tls {\n  cert_file: \"%s/server.pem\"\n  key_file: \"%s/server.key\"\n"
             "  timeout: 5\n%s%s%s}\n",
             e->dir, e->dir, verify ? "  ca_file: \"" : "", verify ? e->ca : "",
             verify ? "\"\n  verify: true\n" : "");
    sk_start(s, conf);
}

static void server_tls(void **state)
{
    tls_env *e = *state;
    dt_test_nats *s = dt_test_nats_new("dt-sec-tls");
    start_tls(s, e, false);
    char url[128], err[512];
    snprintf(url, sizeof(url), "tls://127.0.0.1:%d", s->port);
    dt_nats_security sec = {.tls_ca_file = e->ca};
    sk_run_orchestration(url, &sec, NULL);
    /* By host name, with the plain scheme: TLS because the CA file is given. */
    snprintf(url, sizeof(url), "nats://localhost:%d", s->port);
    sk_run_orchestration(url, &sec, NULL);

    /* A server certificate nobody here trusts: not the system's CAs, not another CA. */
    dt_nats_security none = {0}, other = {.tls_ca_file = e->other_ca};
    sk_expect_refused(s->url, &none, DT_EAUTH, NULL, err, sizeof(err));
    sk_expect_refused(s->url, &other, DT_EAUTH, NULL, err, sizeof(err));
    assert_non_null(strstr(err, "SSL"));
    dt_test_nats_free(s);
}

static void tls_url_requires_tls(void **state)
{
    (void)state;
    dt_test_nats *plain = dt_test_nats_new("dt-sec-plain");
    sk_start(plain, NULL);
    char url[128], err[512];
    snprintf(url, sizeof(url), "tls://127.0.0.1:%d", plain->port);
    dt_nats_security none = {0};
    sk_expect_refused(url, &none, DT_EAUTH, NULL, err, sizeof(err));
    dt_test_nats_free(plain);
}

static void mutual_tls(void **state)
{
    tls_env *e = *state;
    dt_test_nats *s = dt_test_nats_new("dt-sec-mtls");
    start_tls(s, e, true);
    dt_nats_security sec = {.tls_ca_file = e->ca, .tls_cert_file = e->cert, .tls_key_file = e->key};
    sk_run_orchestration(s->url, &sec, NULL);

    char err[512];
    char *key = sk_slurp(e->dir, "client.key");
    const char *b64 = strchr(key, '\n') + 1; /* a piece of the key material itself */
    char secret[24];
    snprintf(secret, sizeof(secret), "%.20s", b64);
    dt_nats_security no_cert = {.tls_ca_file = e->ca};
    sk_expect_refused(s->url, &no_cert, DT_EAUTH, secret, err, sizeof(err));
    /* A certificate without its key is a usage error, found before connecting. */
    dt_nats_security no_key = {.tls_ca_file = e->ca, .tls_cert_file = e->cert};
    sk_expect_refused(s->url, &no_key, DT_EINVAL, NULL, err, sizeof(err));
    free(key);
    dt_test_nats_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_tls),
        cmocka_unit_test(tls_url_requires_tls),
        cmocka_unit_test(mutual_tls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
