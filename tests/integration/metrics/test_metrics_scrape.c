/*
 * The /metrics endpoint of a worker against the real nats-server of scripts/test: a worker with
 * metrics_addr runs orchestrations (activity chains, a failing activity caught by its
 * orchestrator, a timer, an unregistered orchestrator), then /metrics is scraped over HTTP
 * (libcurl), every line is checked against the exposition format (tests/support/prom_text.c)
 * and the values that must have moved are compared with what ran. Bad addresses and a port in
 * use fail dt_worker_start with a clear error.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "durabletask/alloc.h"
#include "durabletask/metrics.h"
#include "durabletask/worker.h"
#include "prom_text.h"
#include "worker_kit.h"

#define WAIT_MS 30000
#define CHAINS  4

/* ---- the workload ---- */

static void act_boom(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_fail(ctx, "app.Boom", "refused on purpose", true);
}

static void chain(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    for (int i = 0; i < 3; i++) {
        dt_await(ctx, dt_call_activity(ctx, "hello", "x", 1, NULL), NULL);
    }
    dt_orch_set_output(ctx, "\"ok\"", 4);
}

static void caught(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_status st = dt_try_await(ctx, dt_call_activity(ctx, "boom", NULL, 0, NULL));
    dt_orch_set_output(ctx, st == DT_OK ? "\"no\"" : "\"yes\"", st == DT_OK ? 4 : 5);
}

static void sleepy(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_sleep(ctx, 200), NULL);
    dt_orch_set_output(ctx, "1", 1);
}

/* ---- HTTP ---- */

typedef struct body {
    char *data;
    size_t len;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    body *b = ctx;
    char *d = realloc(b->data, b->len + size * n + 1);
    if (d == NULL) {
        return 0;
    }
    memcpy(d + b->len, p, size * n);
    b->data = d;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* Sends `method` (NULL: GET) to http://127.0.0.1:<port><path>; returns the status code, body
 * in *out (free()). */
static long http_call(const char *method, int port, const char *path, body *out, char *ctype,
                      size_t ctlen)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (method != NULL) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    assert_int_equal(rc, CURLE_OK);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(ctype, ctlen, "%s", ct != NULL ? ct : "");
    curl_easy_cleanup(c);
    return code;
}

static long http_get(int port, const char *path, body *out, char *ctype, size_t ctlen)
{
    return http_call(NULL, port, path, out, ctype, ctlen);
}

static double value(const prom_doc *d, const char *name, const char *labels)
{
    double v = -1;
    if (!prom_get(d, name, labels, &v)) {
        fail_msg("no sample %s{%s}", name, labels);
    }
    return v;
}

/* Scrapes and parses /metrics; fails the test when a line breaks the format. */
static void scrape(int port, prom_doc *d)
{
    body b;
    char ct[128];
    assert_int_equal(http_get(port, "/metrics", &b, ct, sizeof(ct)), 200);
    assert_string_equal(ct, DT_METRICS_CONTENT_TYPE);
    bool ok = prom_parse(b.data, b.len, d);
    if (!ok) {
        fprintf(stderr, "exposition error: %s\n", d->error);
    }
    assert_true(ok);
    free(b.data);
}

/* Waits (up to 10 s) until the worker runs both partitions: leases are taken one by one. */
static void wait_owned(dt_worker *w, double want)
{
    for (int i = 0; i < 100; i++) {
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(dt_worker_metrics_render(w, &text, &len), DT_OK);
        prom_doc d;
        assert_true(prom_parse(text, len, &d));
        double v = -1;
        bool done = prom_get(&d, "dt_partitions_owned", "", &v) && v == want;
        prom_free(&d);
        dt_free(text);
        if (done) {
            return;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("the worker did not take %g partitions", want);
}

/* ---- tests ---- */

/* through_queue: every activity through its task queue (no in-process runs: local_act.c). */
static dt_worker *start_worker(wk_env *env, const char *addr, bool through_queue)
{
    dt_worker_options o = wk_options(env);
    o.metrics_addr = addr;
    o.disable_local_activities = through_queue;
    dt_worker *w = NULL;
    assert_int_equal(dt_worker_create(&o, &w, NULL, 0), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "chain", chain, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "caught", caught, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "sleepy", sleepy, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "hello", NULL, wk_act_hello, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "boom", NULL, act_boom, NULL), DT_OK);
    assert_int_equal(dt_worker_start(w), DT_OK);
    return w;
}

static void run_workload(wk_env *env)
{
    char id[64];
    for (int i = 0; i < CHAINS; i++) {
        snprintf(id, sizeof(id), "chain-%d", i);
        wk_start(env, "chain", id, NULL, NULL, NULL);
    }
    wk_start(env, "caught", "caught-1", NULL, NULL, NULL);
    wk_start(env, "sleepy", "sleepy-1", NULL, NULL, NULL);
    wk_start(env, "nosuch", "nosuch-1", NULL, NULL, NULL);
    for (int i = 0; i < CHAINS; i++) {
        snprintf(id, sizeof(id), "chain-%d", i);
        wk_expect(env, id, DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED, "\"ok\"");
    }
    wk_expect(env, "caught-1", DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED,
              "\"yes\"");
    wk_expect(env, "sleepy-1", DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED, "1");
    wk_expect(env, "nosuch-1", DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED, NULL);
}

#define ACT(n)  "kind=\"activity\",name=\"" n "\""
#define ORCH(n) "kind=\"orchestration\",name=\"" n "\""

static void check_work_items(const prom_doc *d)
{
    assert_true(value(d, "dt_work_items_started_total", ACT("hello")) == 3 * CHAINS);
    assert_true(value(d, "dt_work_items_completed_total", ACT("hello")) == 3 * CHAINS);
    assert_true(value(d, "dt_work_items_failed_total", ACT("hello")) == 0);
    assert_true(value(d, "dt_work_items_started_total", ACT("boom")) == 1);
    assert_true(value(d, "dt_work_items_failed_total", ACT("boom")) == 1);
    assert_true(value(d, "dt_activity_duration_seconds_count", "name=\"hello\"") == 3 * CHAINS);
    assert_true(value(d, "dt_work_items_started_total", ORCH("chain")) == CHAINS);
    assert_true(value(d, "dt_work_items_completed_total", ORCH("chain")) == CHAINS);
    assert_true(value(d, "dt_work_items_completed_total", ORCH("caught")) == 1);
    assert_true(value(d, "dt_work_items_completed_total", ORCH("sleepy")) == 1);
    assert_true(value(d, "dt_work_items_failed_total", ORCH("chain")) == 0);
    /* An orchestrator nobody registered: counted under _other, never under its own name. */
    assert_true(value(d, "dt_work_items_failed_total", ORCH("_other")) == 1);
    assert_int_equal(prom_count(d, "dt_work_items_started_total"), 3 + 1 + 2 + 1);
}

static void check_runtime(const prom_doc *d, bool through_queue)
{
    assert_true(value(d, "dt_partitions_owned", "") == 2); /* scrape() waited for it */
    assert_true(value(d, "dt_episode_duration_seconds_count", "") >= 3 * CHAINS);
    assert_true(value(d, "dt_replay_cache_hits_total", "") >= 3 * CHAINS);
    assert_true(value(d, "dt_store_commit_seconds_count", "") >= 1);
    assert_true(value(d, "dt_timer_fire_lag_seconds_count", "") >= 1);
    /* Task-queue fetches only: in-process activities (the default) need none. */
    assert_true(value(d, "dt_batch_size_count", "kind=\"activity\"") >= (through_queue ? 1 : 0));
    assert_true(value(d, "dt_batch_size_count", "kind=\"orchestration\"") >= 1);
    assert_true(value(d, "dt_broker_publish_errors_total", "kind=\"activity\"") == 0);
    assert_true(value(d, "dt_outbox_depth", "partition=\"0\"") >= 0);
    assert_true(value(d, "dt_timers_pending", "partition=\"1\"") >= 0);
    assert_true(value(d, "process_resident_memory_bytes", "") > 0);
    assert_true(value(d, "process_open_fds", "") > 0);
    assert_true(value(d, "process_cpu_seconds_total", "") > 0);
    assert_true(value(d, "process_start_time_seconds", "") > 1.7e9);
}

static void check_backlog(const prom_doc *d, const wk_env *env)
{
    char l[256];
    const char *durables[] = {"orch_0", "orch_1", "act_default", "ingress"};
    const char *streams[] = {"ORCH", "ORCH", "ACT", "IN"};
    const char *kinds[] = {"orchestration", "orchestration", "activity", "ingress"};
    for (int i = 0; i < 4; i++) {
        snprintf(l, sizeof(l), "kind=\"%s\",stream=\"DT_%s_%s\",consumer=\"%s\"", kinds[i],
                 env->hub, streams[i], durables[i]);
        /* Everything ran: nothing waits (the last acks may still travel). */
        assert_true(value(d, "dt_queue_pending", l) == 0);
        assert_true(value(d, "dt_queue_in_flight", l) >= 0);
        assert_true(value(d, "dt_queue_oldest_age_seconds", l) >= 0);
    }
}

static void scrape_run(bool through_queue)
{
    wk_env env;
    wk_setup(&env, "mx", 2, 10000);
    dt_worker *w = start_worker(&env, "127.0.0.1:0", through_queue);
    int port = dt_worker_metrics_port(w);
    assert_true(port > 0);
    run_workload(&env);
    wait_owned(w, 2);
    prom_doc d;
    scrape(port, &d);
    check_work_items(&d);
    check_runtime(&d, through_queue);
    check_backlog(&d, &env);
    prom_free(&d);
    /* The same text through the library call (for a program's own HTTP server). */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(dt_worker_metrics_render(w, &text, &len), DT_OK);
    assert_true(prom_parse(text, len, &d));
    assert_true(value(&d, "dt_work_items_completed_total", ACT("hello")) == 3 * CHAINS);
    prom_free(&d);
    dt_free(text);
    body b;
    char ct[128];
    assert_int_equal(http_get(port, "/other", &b, ct, sizeof(ct)), 404);
    free(b.data);
    assert_int_equal(http_call("DELETE", port, "/metrics", &b, ct, sizeof(ct)), 405);
    free(b.data);
    /* Stopped: the broker is gone, so no backlog is sampled; the rest is still served. */
    dt_worker_stop(w, 5000);
    scrape(port, &d);
    assert_int_equal(prom_count(&d, "dt_queue_pending"), 0);
    assert_true(value(&d, "dt_partitions_owned", "") == 0);
    assert_true(value(&d, "dt_work_items_completed_total", ACT("hello")) == 3 * CHAINS);
    prom_free(&d);
    dt_worker_destroy(w);
    wk_teardown(&env);
}

/* Activities run in-process where their orchestration runs (the default). */
static void test_scrape(void **state)
{
    (void)state;
    scrape_run(false);
}

/* Every activity through its task queue (disable_local_activities). */
static void test_scrape_queue(void **state)
{
    (void)state;
    scrape_run(true);
}

/* A loopback port held by a listening socket of ours. */
static int hold_port(int *out_port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t sl = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &sl);
    *out_port = ntohs(a.sin_port);
    return fd;
}

static void expect_refused(wk_env *env, const char *addr, dt_status want, const char *words)
{
    dt_worker_options o = wk_options(env);
    o.metrics_addr = addr;
    dt_worker *w = NULL;
    assert_int_equal(dt_worker_create(&o, &w, NULL, 0), DT_OK);
    assert_int_equal(dt_worker_start(w), want);
    const char *msg = dt_worker_errmsg(w);
    if (strstr(msg, words) == NULL || strstr(msg, "metrics_addr") == NULL) {
        fail_msg("metrics_addr '%s': error '%s' does not say '%s'", addr, msg, words);
    }
    dt_worker_destroy(w);
}

static void test_bad_config(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "mxbad", 1, 10000);
    expect_refused(&env, "nonsense", DT_EINVAL, "not an address");
    expect_refused(&env, "127.0.0.1:70000", DT_EINVAL, "not an address");
    expect_refused(&env, "::1:9100", DT_EINVAL, "not an address");
    expect_refused(&env, "no-such-host.invalid:9100", DT_EINVAL, "metrics_addr");
    int port = 0;
    int fd = hold_port(&port);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    expect_refused(&env, addr, DT_EBUSY, "in use");
    close(fd);
    wk_teardown(&env);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrape),
        cmocka_unit_test(test_scrape_queue),
        cmocka_unit_test(test_bad_config),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
