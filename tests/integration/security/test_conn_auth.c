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

/* What a test allocates: freed by the teardown, which also runs when the test fails (cmocka jumps
 * out of it), so a failure is reported without a leak report on top. */
typedef struct {
    dt_test_nats *s;
    char *dir, *other;              /* key dirs (sk_rmdir) */
    char *conf, *seed, *other_seed; /* malloc'd texts */
} fixture;

static int setup(void **state)
{
    *state = calloc(1, sizeof(fixture));
    return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_test_nats_free(f->s);
    if (f->dir != NULL) {
        sk_rmdir(f->dir);
    }
    if (f->other != NULL) {
        sk_rmdir(f->other);
    }
    free(f->conf);
    free(f->seed);
    free(f->other_seed);
    free(f);
    return 0;
}

static void token(void **state)
{
    fixture *f = *state;
    dt_test_nats *s = f->s = dt_test_nats_new("dt-sec-token");
    sk_start(s, "authorization { token: \"" TOKEN "\" }");
    dt_nats_security sec = {.token = TOKEN};
    sk_run_orchestration(s->url, &sec, TOKEN);

    char err[512];
    dt_nats_security wrong = {.token = "tok-wrongSECRET"};
    sk_expect_refused(s->url, &wrong, DT_EAUTH, "SECRET", err, sizeof(err));
    assert_non_null(strstr(err, "Authorization Violation"));
    dt_nats_security none = {0};
    sk_expect_refused(s->url, &none, DT_EAUTH, NULL, err, sizeof(err));
}

static void user_and_password(void **state)
{
    fixture *f = *state;
    dt_test_nats *s = f->s = dt_test_nats_new("dt-sec-user");
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
}

static void nkey(void **state)
{
    fixture *f = *state;
    char pub[64], conf[256], seed_path[512];
    f->dir = sk_mkdir();
    sk_make_nkey(f->dir, pub, sizeof(pub));
    f->seed = sk_slurp(f->dir, "user.nk");
    f->seed[strcspn(f->seed, "\r\n")] = '\0';
    dt_test_nats *s = f->s = dt_test_nats_new("dt-sec-nkey");
    snprintf(conf, sizeof(conf), "authorization { users: [ { nkey: %s } ] }", pub);
    sk_start(s, conf);
    dt_nats_security sec = {.nkey_seed_file =
                                sk_path(f->dir, "user.nk", seed_path, sizeof(seed_path))};
    sk_run_orchestration(s->url, &sec, f->seed);

    /* A seed of another user: a valid key the server does not know. */
    char other_path[512], err[512], other_pub[64];
    f->other = sk_mkdir();
    sk_make_nkey(f->other, other_pub, sizeof(other_pub));
    dt_nats_security wrong = {.nkey_seed_file =
                                  sk_path(f->other, "user.nk", other_path, sizeof(other_path))};
    f->other_seed = sk_slurp(f->other, "user.nk");
    f->other_seed[strcspn(f->other_seed, "\r\n")] = '\0';
    sk_expect_refused(s->url, &wrong, DT_EAUTH, f->other_seed, err, sizeof(err));
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
    fixture *f = *state;
    char path[512], err[512];
    f->dir = sk_mkdir();
    sk_make_creds(f->dir);
    f->conf = sk_slurp(f->dir, "operator.conf");
    dt_test_nats *s = f->s = dt_test_nats_new("dt-sec-creds");
    sk_start(s, f->conf);
    f->seed = creds_seed(f->dir, "user.creds");
    dt_nats_security sec = {.creds_file = sk_path(f->dir, "user.creds", path, sizeof(path))};
    sk_run_orchestration(s->url, &sec, f->seed);

    f->other_seed = creds_seed(f->dir, "stranger.creds");
    dt_nats_security wrong = {.creds_file = sk_path(f->dir, "stranger.creds", path, sizeof(path))};
    sk_expect_refused(s->url, &wrong, DT_EAUTH, f->other_seed, err, sizeof(err));
    dt_nats_security missing = {.creds_file = sk_path(f->dir, "missing.creds", path, sizeof(path))};
    sk_expect_refused(s->url, &missing, DT_EINVAL, NULL, err, sizeof(err));
    assert_non_null(strstr(err, "missing.creds"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(token, setup, teardown),
        cmocka_unit_test_setup_teardown(user_and_password, setup, teardown),
        cmocka_unit_test_setup_teardown(nkey, setup, teardown),
        cmocka_unit_test_setup_teardown(credentials_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
