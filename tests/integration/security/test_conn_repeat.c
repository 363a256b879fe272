/*
 * Many connects with nkey and credentials-file auth against one server, none refused.
 *
 * nats.c 3.4.1 sends no signature when the ed25519 signature of the server's nonce begins with
 * 0x00 (1 nonce in 256), and the server refuses such a connect ("Authorization Violation"). The
 * adapter signs itself so that this never happens (broker-adapter/nkey_sign.c). Each connect gets
 * a fresh nonce, so CONNECTS connects would meet about CONNECTS / 256 such nonces: with 600, the
 * old code fails this test about 9 times in 10 (1 - (255/256)^600).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dt_broker.h"
#include "sec_kit.h"

#define CONNECTS 600

typedef struct {
    dt_test_nats *s;
    char *dir;
    char *conf;
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
    free(f->conf);
    free(f);
    return 0;
}

/* Connects CONNECTS times with `sec` and closes each time; fails the test on any refusal. */
static void connect_repeatedly(const char *url, const dt_nats_security *sec)
{
    dt_broker_options o;
    dt_broker_options_init(&o);
    o.urls = url;
    o.security = *sec;
    int refused = 0;
    char first[1024] = "";
    for (int i = 0; i < CONNECTS; i++) {
        dt_broker *b = NULL;
        char err[512] = "";
        dt_status st = dt_broker_connect(&o, &b, err, sizeof(err));
        if (st != DT_OK && refused++ == 0) {
            snprintf(first, sizeof(first), "connect %d: %s: %.600s", i, dt_status_str(st), err);
        }
        dt_broker_close(b);
    }
    if (refused != 0) {
        sk_fail("%d of %d connects refused; the first: %s", refused, CONNECTS, first);
    }
}

static void nkey_connects_are_never_refused(void **state)
{
    fixture *f = *state;
    char pub[64], conf[256], path[512];
    f->dir = sk_mkdir();
    sk_make_nkey(f->dir, pub, sizeof(pub));
    f->s = dt_test_nats_new("dt-sec-repeat-nkey");
    snprintf(conf, sizeof(conf), "authorization { users: [ { nkey: %s } ] }", pub);
    sk_start(f->s, conf);
    dt_nats_security sec = {.nkey_seed_file = sk_path(f->dir, "user.nk", path, sizeof(path))};
    connect_repeatedly(f->s->url, &sec);
}

static void credentials_file_connects_are_never_refused(void **state)
{
    fixture *f = *state;
    char path[512];
    f->dir = sk_mkdir();
    sk_make_creds(f->dir);
    f->conf = sk_slurp(f->dir, "operator.conf");
    f->s = dt_test_nats_new("dt-sec-repeat-creds");
    sk_start(f->s, f->conf);
    dt_nats_security sec = {.creds_file = sk_path(f->dir, "user.creds", path, sizeof(path))};
    connect_repeatedly(f->s->url, &sec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nkey_connects_are_never_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(credentials_file_connects_are_never_refused, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    dt_broker_global_shutdown();
    return failed;
}
