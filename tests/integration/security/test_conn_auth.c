/*
 * Authentication against nats-servers this test configures: token, user and password (as options
 * and inside the URL), nkey (a seed file; the public key is derived by the adapter) and a
 * credentials file (operator mode: operator, account and user JWTs made at test time). For each,
 * a worker and a client run an orchestration; wrong credentials are refused with DT_EAUTH, and no
 * secret appears in an error text or log line.
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

#define TOKEN    "tok-8b1d6cSECRET"
#define PASSWORD "pw-55e0c2SECRET"

static void token(void **state)
{
    (void)state;
    dt_test_nats *s = dt_test_nats_new("dt-sec-token");
    sk_start(s, "authorization { token: \"" TOKEN "\" }");
    dt_nats_security sec = {.token = TOKEN};
    sk_run_orchestration(s->url, &sec, TOKEN);

    char err[512];
    dt_nats_security wrong = {.token = "tok-wrongSECRET"};
    sk_expect_refused(s->url, &wrong, DT_EAUTH, "SECRET", err, sizeof(err));
    assert_non_null(strstr(err, "Authorization Violation"));
    dt_nats_security none = {0};
    sk_expect_refused(s->url, &none, DT_EAUTH, NULL, err, sizeof(err));
    dt_test_nats_free(s);
}

static void user_and_password(void **state)
{
    (void)state;
    dt_test_nats *s = dt_test_nats_new("dt-sec-user");
    sk_start(s, "authorization { users: [ { user: dt, password: \"" PASSWORD "\" } ] }");
    dt_nats_security sec = {.user = "dt", .password = PASSWORD};
    sk_run_orchestration(s->url, &sec, PASSWORD);

    /* The same credentials inside the URL: used, and never printed. */
    char url[128], err[512];
    snprintf(url, sizeof(url), "nats://dt:%s@127.0.0.1:%d", PASSWORD, s->port);
    dt_nats_security none = {0};
    sk_run_orchestration(url, &none, PASSWORD);
    snprintf(url, sizeof(url), "nats://dt:wrong-pwSECRET@127.0.0.1:%d", s->port);
    sk_expect_refused(url, &none, DT_EAUTH, "SECRET", err, sizeof(err));
    char shown[64];
    snprintf(shown, sizeof(shown), "nats://127.0.0.1:%d", s->port);
    assert_non_null(strstr(err, shown));

    dt_nats_security wrong = {.user = "dt", .password = "wrong-pwSECRET"};
    sk_expect_refused(s->url, &wrong, DT_EAUTH, "SECRET", err, sizeof(err));
    dt_test_nats_free(s);
}

static void nkey(void **state)
{
    (void)state;
    char *dir = sk_mkdir(), pub[64], conf[256], seed_path[512];
    sk_make_nkey(dir, pub, sizeof(pub));
    char *seed = sk_slurp(dir, "user.nk");
    seed[strcspn(seed, "\r\n")] = '\0';
    dt_test_nats *s = dt_test_nats_new("dt-sec-nkey");
    snprintf(conf, sizeof(conf), "authorization { users: [ { nkey: %s } ] }", pub);
    sk_start(s, conf);
    dt_nats_security sec = {.nkey_seed_file =
                                sk_path(dir, "user.nk", seed_path, sizeof(seed_path))};
    sk_run_orchestration(s->url, &sec, seed);

    /* A seed of another user: a valid key the server does not know. */
    char *other = sk_mkdir(), other_path[512], err[512], other_pub[64];
    sk_make_nkey(other, other_pub, sizeof(other_pub));
    dt_nats_security wrong = {.nkey_seed_file =
                                  sk_path(other, "user.nk", other_path, sizeof(other_path))};
    char *other_seed = sk_slurp(other, "user.nk");
    other_seed[strcspn(other_seed, "\r\n")] = '\0';
    sk_expect_refused(s->url, &wrong, DT_EAUTH, other_seed, err, sizeof(err));
    free(other_seed);
    free(seed);
    dt_test_nats_free(s);
    sk_rmdir(other);
    sk_rmdir(dir);
}

/* The seed line of a creds file (the secret half). */
static char *creds_seed(const char *dir, const char *name)
{
    char *text = sk_slurp(dir, name);
    char *p = strstr(text, "\nSU");
    assert_non_null(p);
    p++;
    p[strcspn(p, "\r\n")] = '\0';
    char *seed = strdup(p);
    free(text);
    return seed;
}

static void credentials_file(void **state)
{
    (void)state;
    char *dir = sk_mkdir(), path[512], err[512];
    sk_make_creds(dir);
    char *conf = sk_slurp(dir, "operator.conf");
    dt_test_nats *s = dt_test_nats_new("dt-sec-creds");
    sk_start(s, conf);
    char *seed = creds_seed(dir, "user.creds");
    dt_nats_security sec = {.creds_file = sk_path(dir, "user.creds", path, sizeof(path))};
    sk_run_orchestration(s->url, &sec, seed);

    char *stranger = creds_seed(dir, "stranger.creds");
    dt_nats_security wrong = {.creds_file = sk_path(dir, "stranger.creds", path, sizeof(path))};
    sk_expect_refused(s->url, &wrong, DT_EAUTH, stranger, err, sizeof(err));
    dt_nats_security missing = {.creds_file = sk_path(dir, "missing.creds", path, sizeof(path))};
    sk_expect_refused(s->url, &missing, DT_EINVAL, NULL, err, sizeof(err));
    assert_non_null(strstr(err, "missing.creds"));
    free(stranger);
    free(seed);
    free(conf);
    dt_test_nats_free(s);
    sk_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token),
        cmocka_unit_test(user_and_password),
        cmocka_unit_test(nkey),
        cmocka_unit_test(credentials_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
