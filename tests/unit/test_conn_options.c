/*
 * Connection options that need no server: splitting URL lists (nats.c 3.4.1 takes one URL per
 * natsOptions_SetURL), redacting user info from URLs, the checks of dt_nats_security, the
 * DT_NATS_* environment, and that a refused option's error text holds no secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker_int.h"
#include "test_support.h"

static void redact(const char *in, const char *want)
{
    char buf[256];
    assert_string_equal(dt_nats_url_redact(in, buf, sizeof(buf)), want);
}

static void redaction_drops_user_info(void **state)
{
    (void)state;
    redact("nats://127.0.0.1:4222", "nats://127.0.0.1:4222");
    redact("nats://user:pa55@h:4222", "nats://h:4222");
    redact("tls://s3cr3t-token@h", "tls://h");
    redact("user:p@ss@h:1", "h:1");                 /* no scheme, '@' inside the password */
    redact("nats://u:p@h:1/x@y", "nats://h:1/x@y"); /* '@' after the authority stays */
    redact(" nats://a:b@h1:1 , nats://h2:2,tls://t@h3", "nats://h1:1,nats://h2:2,tls://h3");
    redact(NULL, "nats://127.0.0.1:4222");
    char small[8];
    assert_string_equal(dt_nats_url_redact("nats://u:secret@host:4222", small, sizeof(small)),
                        "nats://");
}

static void url_lists_are_split_and_trimmed(void **state)
{
    (void)state;
    char **list = NULL, err[128];
    int n = 0;
    assert_int_equal(
        dt__broker_url_list(" nats://a:1 ,tls://b:2,c:3 ", &list, &n, err, sizeof(err)), DT_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0], "nats://a:1");
    assert_string_equal(list[1], "tls://b:2");
    assert_string_equal(list[2], "c:3");
    assert_true(dt__broker_urls_want_tls(list, n));
    dt__broker_url_list_free(list, n);

    assert_int_equal(dt__broker_url_list(NULL, &list, &n, err, sizeof(err)), DT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0], "nats://127.0.0.1:4222");
    assert_false(dt__broker_urls_want_tls(list, n));
    dt__broker_url_list_free(list, n);

    assert_int_equal(dt__broker_url_list("nats://a:1,,nats://b:2", &list, &n, err, sizeof(err)),
                     DT_EINVAL);
    assert_int_equal(dt__broker_url_list("nats://a:1, ", &list, &n, err, sizeof(err)), DT_EINVAL);
    char many[DT__BROKER_MAX_URLS * 8 + 16] = "";
    for (int i = 0; i <= DT__BROKER_MAX_URLS; i++) {
        strcat(many, i == 0 ? "h:1" : ",h:1");
    }
    assert_int_equal(dt__broker_url_list(many, &list, &n, err, sizeof(err)), DT_EINVAL);
}

static void security_checks(void **state)
{
    (void)state;
    char err[256];
    dt_nats_security s = {0};
    assert_int_equal(dt__broker_security_check(&s, err, sizeof(err)), DT_OK);

    s = (dt_nats_security){.token = "tok-SECRET", .user = "u", .password = "pw-SECRET"};
    assert_int_equal(dt__broker_security_check(&s, err, sizeof(err)), DT_EINVAL);
    assert_null(strstr(err, "SECRET"));

    s = (dt_nats_security){.password = "pw-SECRET"};
    assert_int_equal(dt__broker_security_check(&s, err, sizeof(err)), DT_EINVAL);
    assert_null(strstr(err, "SECRET"));

    s = (dt_nats_security){.tls_cert_file = "/etc/hostname"};
    assert_int_equal(dt__broker_security_check(&s, err, sizeof(err)), DT_EINVAL);

    s = (dt_nats_security){.creds_file = "/nonexistent/dt-test.creds"};
    assert_int_equal(dt__broker_security_check(&s, err, sizeof(err)), DT_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/dt-test.creds"));

    s = (dt_nats_security){.user = "u", .password = ""}; /* empty password: allowed */
    assert_int_equal(dt__broker_security_check(&s, err, sizeof(err)), DT_OK);
}

static void a_bad_seed_file_is_refused(void **state)
{
    (void)state;
    char *dir = dt_test_mkdtemp("dt-conn-options");
    char path[512], pub[64], err[256];
    snprintf(path, sizeof(path), "%s/bad.nk", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("# not a seed\nSUNOTBASE32!!\n", f);
    fclose(f);
    assert_int_equal(dt__broker_nkey_public(path, pub, sizeof(pub), err, sizeof(err)), DT_EINVAL);
    assert_non_null(strstr(err, "no valid user seed"));
    dt_test_rmtree(dir);
    free(dir);
}

/* Options that fail before any connection attempt: DT_EINVAL, a text without the secret. */
static void connect_refuses_bad_security_without_leaking(void **state)
{
    (void)state;
    dt_broker_options o;
    dt_broker_options_init(&o);
    o.urls = "nats://alice:pw-SECRET@127.0.0.1:1";
    o.security.token = "tok-SECRET";
    o.security.user = "bob";
    dt_broker *b = NULL;
    char err[256] = "";
    assert_int_equal(dt_broker_connect(&o, &b, err, sizeof(err)), DT_EINVAL);
    assert_null(b);
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "SECRET"));
}

static void environment_fills_what_flags_left_unset(void **state)
{
    (void)state;
    setenv("DT_NATS_TOKEN", "from-env", 1);
    setenv("DT_NATS_CA", "/ca.pem", 1);
    setenv("DT_NATS_USER", "", 1); /* empty: unset */
    unsetenv("DT_NATS_CREDS");
    dt_nats_security s = {.tls_ca_file = "/flag-ca.pem"};
    dt_nats_security_from_env(&s);
    assert_string_equal(s.token, "from-env");
    assert_string_equal(s.tls_ca_file, "/flag-ca.pem");
    assert_null(s.user);
    assert_null(s.creds_file);
    unsetenv("DT_NATS_TOKEN");
    unsetenv("DT_NATS_CA");
    unsetenv("DT_NATS_USER");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redaction_drops_user_info),
        cmocka_unit_test(url_lists_are_split_and_trimmed),
        cmocka_unit_test(security_checks),
        cmocka_unit_test(a_bad_seed_file_is_refused),
        cmocka_unit_test(connect_refuses_bad_security_without_leaking),
        cmocka_unit_test(environment_fills_what_flags_left_unset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    (void)dt_broker_global_shutdown();
    return rc;
}
