/*
 * dtctl's security options: flags (--user/--password, --tls-ca) and the DT_NATS_* variables
 * (DT_NATS_TOKEN), against nats-servers this test configures. Right credentials create and show a
 * hub; wrong ones exit with 5 and an EAUTH error whose text holds no secret, in text and in JSON.
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

#ifndef DTCTL_PATH
#error "DTCTL_PATH must be defined by the build"
#endif

#define TOKEN    "tok-d7c41aSECRET"
#define PASSWORD "pw-a0b2c9SECRET"

typedef struct run_out {
    int rc;
    char *out, *err;
} run_out;

/* dtctl with args (NULL-terminated after the fixed ones) and extra environment entries. */
static run_out dtctl(const char *dir, char *const env[], char *const args[])
{
    char *argv[24] = {DTCTL_PATH};
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL && n + 1 < 24; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    char out[512], err[512];
    sk_path(dir, "dtctl.out", out, sizeof(out));
    sk_path(dir, "dtctl.err", err, sizeof(err));
    run_out r = {.rc = dt_test_run(argv, env, out, err)};
    r.out = dt_test_read_file(out);
    r.err = dt_test_read_file(err);
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}

static void run_free(run_out *r)
{
    free(r->out);
    free(r->err);
}

static void token_from_the_environment(void **state)
{
    (void)state;
    char *dir = sk_mkdir();
    dt_test_nats *s = dt_test_nats_new("dt-sec-dtctl-token");
    sk_start(s, "authorization { token: \"" TOKEN "\" }");
    char *env_ok[] = {"DT_NATS_TOKEN=" TOKEN, "DT_HUB=dtctl_token", NULL};
    char *create[] = {"--url", s->url, "hub", "create", NULL};
    run_out r = dtctl(dir, env_ok, create);
    if (r.rc != 0) {
        fail_msg("dtctl hub create: %d: %s", r.rc, r.err);
    }
    run_free(&r);
    char *info[] = {"--url", s->url, "hub", "info", NULL};
    r = dtctl(dir, env_ok, info);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "partitions"));
    run_free(&r);

    char *env_bad[] = {"DT_NATS_TOKEN=tok-wrongSECRET", "DT_HUB=dtctl_token", NULL};
    char *info_json[] = {"--json", "--url", s->url, "hub", "info", NULL};
    r = dtctl(dir, env_bad, info_json);
    assert_int_equal(r.rc, 5);
    assert_non_null(strstr(r.err, "\"EAUTH\""));
    sk_assert_no_secret(r.err, "SECRET");
    sk_assert_no_secret(r.out, "SECRET");
    run_free(&r);

    /* A flag wins over the variable. */
    char *info_flag[] = {"--token", TOKEN, "--url", s->url, "hub", "info", NULL};
    r = dtctl(dir, env_bad, info_flag);
    assert_int_equal(r.rc, 0);
    run_free(&r);
    dt_test_nats_free(s);
    sk_rmdir(dir);
}

static void user_and_password_flags_over_tls(void **state)
{
    (void)state;
    char *dir = sk_mkdir(), conf[2048], ca[512];
    sk_make_tls(dir);
    snprintf(conf, sizeof(conf),
             "authorization { users: [ { user: dt, password: \"" PASSWORD "\" } ] }\n"
             "tls { cert_file: \"%s/server.pem\"\n key_file: \"%s/server.key\" }\n",
             dir, dir);
    dt_test_nats *s = dt_test_nats_new("dt-sec-dtctl-user");
    sk_start(s, conf);
    char url[64];
    snprintf(url, sizeof(url), "tls://127.0.0.1:%d", s->port);
    sk_path(dir, "ca.pem", ca, sizeof(ca));
    char *ok[] = {"--url",  url,     "--tls-ca",   ca,    "--user", "dt", "--password",
                  PASSWORD, "--hub", "dtctl_user", "hub", "create", NULL};
    run_out r = dtctl(dir, NULL, ok);
    if (r.rc != 0) {
        fail_msg("dtctl hub create: %d: %s", r.rc, r.err);
    }
    run_free(&r);

    char *bad[] = {"--url",          url,     "--tls-ca",   ca,    "--user", "dt", "--password",
                   "wrong-pwSECRET", "--hub", "dtctl_user", "hub", "info",   NULL};
    r = dtctl(dir, NULL, bad);
    assert_int_equal(r.rc, 5);
    assert_non_null(strstr(r.err, "Authorization Violation"));
    sk_assert_no_secret(r.err, "SECRET");
    run_free(&r);

    /* A mistyped option is echoed without its value, which may be a password. */
    char *typo[] = {"--pasword=typo-SECRET", "hub", "info", NULL};
    r = dtctl(dir, NULL, typo);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "--pasword"));
    sk_assert_no_secret(r.err, "SECRET");
    run_free(&r);
    dt_test_nats_free(s);
    sk_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_from_the_environment),
        cmocka_unit_test(user_and_password_flags_over_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
