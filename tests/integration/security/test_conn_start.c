/*
 * Reaching the servers: a worker started before its nats-server waits for it (one log line per
 * attempt, without the password of its URL) and runs an orchestration once the server is up; with
 * connect_attempts it gives up with a clear error; dt_worker_stop ends the wait. A server list
 * whose first node is down (a port nobody listens on) works for the worker and the client.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sec_kit.h"

#define PASSWORD "pw-3f9a1eSECRET"

typedef struct starter {
    dt_worker *w;
    dt_status st;
} starter;

static void *start_main(void *arg)
{
    starter *s = arg;
    s->st = dt_worker_start(s->w);
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static dt_worker *worker_on(const char *url, const char *data, uint32_t attempts)
{
    dt_worker_options o = {.nats_url = url,
                           .hub = "late",
                           .data_dir = data,
                           .connect_attempts = attempts,
                           .log = sk_log_sink};
    dt_worker *w = NULL;
    char err[256];
    if (dt_worker_create(&o, &w, err, sizeof(err)) != DT_OK) {
        fail_msg("%s", err);
    }
    sk_register(w);
    return w;
}

static int count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++) {
        n++;
    }
    return n;
}

/* The server comes up on the worker's port while dt_worker_start waits on another thread. The
 * server is started here, on the main thread, so that it lives as long as the test. */
static void worker_waits_for_a_late_server(void **state)
{
    (void)state;
    dt_test_nats *s = dt_test_nats_new("dt-sec-late");
    char url[160], conf[256];
    snprintf(url, sizeof(url), "nats://dt:%s@127.0.0.1:%d", PASSWORD, s->port);
    char *data = sk_mkdir();
    sk_log_reset();
    starter st = {.w = worker_on(url, data, 0)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, start_main, &st), 0);
    sleep_ms(1500); /* a few attempts: 0.1 + 0.2 + 0.4 + 0.8 s */
    snprintf(conf, sizeof(conf), "authorization { users: [ { user: dt, password: \"%s\" } ] }",
             PASSWORD);
    sk_start(s, conf);
    pthread_join(t, NULL);
    if (st.st != DT_OK) {
        fail_msg("dt_worker_start: %s", dt_worker_errmsg(st.w));
    }
    const char *log = sk_log_text();
    assert_true(count(log, "NATS not reachable (attempt ") >= 2);
    assert_non_null(strstr(log, "of unlimited"));
    char shown[64];
    snprintf(shown, sizeof(shown), "nats://127.0.0.1:%d", s->port);
    assert_non_null(strstr(log, shown));
    sk_assert_no_secret(log, "SECRET");
    /* The worker that waited (it created hub "late") runs an orchestration. */
    dt_nats_security none = {0};
    sk_greet(url, &none, "late");
    dt_worker_destroy(st.w);
    sk_rmdir(data);
    dt_test_nats_free(s);
}

static void worker_gives_up_after_its_attempts(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", dt_test_free_port());
    char *data = sk_mkdir();
    sk_log_reset();
    dt_worker *w = worker_on(url, data, 3);
    assert_int_equal(dt_worker_start(w), DT_EBROKER);
    assert_non_null(strstr(dt_worker_errmsg(w), "gave up after 3 attempts"));
    assert_non_null(strstr(dt_worker_errmsg(w), url));
    assert_int_equal(count(sk_log_text(), "NATS not reachable"), 2); /* none after the last */
    assert_non_null(strstr(sk_log_text(), "(attempt 2 of 3)"));
    dt_worker_destroy(w);
    sk_rmdir(data);
}

static void stop_ends_the_wait(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", dt_test_free_port());
    char *data = sk_mkdir();
    starter st = {.w = worker_on(url, data, 0)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, start_main, &st), 0);
    sleep_ms(700);
    dt_worker_stop(st.w, 1000);
    pthread_join(t, NULL);
    assert_int_equal(st.st, DT_ECLOSED);
    assert_non_null(strstr(dt_worker_errmsg(st.w), "stopped while connecting"));
    dt_worker_destroy(st.w);
    sk_rmdir(data);
}

static void a_list_with_a_dead_first_node(void **state)
{
    (void)state;
    dt_test_nats *s = dt_test_nats_new("dt-sec-list");
    sk_start(s, NULL);
    char urls[160];
    snprintf(urls, sizeof(urls), "nats://127.0.0.1:%d, %s", dt_test_free_port(), s->url);
    dt_nats_security none = {0};
    sk_run_orchestration(urls, &none, NULL);
    dt_test_nats_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(worker_waits_for_a_late_server),
        cmocka_unit_test(worker_gives_up_after_its_attempts),
        cmocka_unit_test(stop_ends_the_wait),
        cmocka_unit_test(a_list_with_a_dead_first_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
