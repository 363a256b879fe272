/*
 * The KEDA scaling contract (docs/operations.md, "Scaling with KEDA"): every work-item queue has
 * one stable durable consumer (orch_<p> on DT_<hub>_ORCH for partition p, act_<queue> on
 * DT_<hub>_ACT for a task queue), and the lag KEDA's nats-jetstream scaler reads from
 * nats-server's monitoring endpoint (/jsz?acc=$G&consumers=true: num_pending + num_ack_pending of
 * the named consumer) is the backlog. A worker creates the consumers and stops; a known number of
 * work items is published while no worker consumes; /jsz must report exactly that number for the
 * documented names, and the worker's metrics source (dt_broker_consumer_stats) must agree.
 *
 * Separate deployments: a worker that registers only activities runs no partition, so it can be
 * scaled on its task queue's lag alone while another worker runs the orchestrations.
 *
 * Needs nats-server's monitoring port: scripts/test exports DT_TEST_NATS_MONITOR_URL; without it
 * the test is skipped (and says so).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "durabletask/alloc.h"
#include "durabletask/metrics.h"
#include "durabletask/worker.h"
#include "prom_text.h"
#include "worker_kit.h"

#define ACT_ITEMS  25
#define ORCH_ITEMS 17
#define QUEUE      "kq"

static void noop(dt_orch_ctx *ctx, void *ud)
{
    (void)ctx;
    (void)ud;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    char **buf = ctx;
    size_t have = *buf != NULL ? strlen(*buf) : 0;
    char *d = realloc(*buf, have + size * n + 1);
    if (d == NULL) {
        return 0;
    }
    memcpy(d + have, p, size * n);
    d[have + size * n] = '\0';
    *buf = d;
    return size * n;
}

/* GET <monitor>/jsz?acc=$G&consumers=true, parsed. */
static json_t *jsz(const char *monitor)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/jsz?acc=%%24G&consumers=true", monitor);
    char *text = NULL;
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &text);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    json_error_t err;
    /* Some /jsz numbers are 2^64-1 (unlimited), past json_int_t: read every number as a double
     * (exact for the counts compared here). */
    json_t *doc = json_loads(text != NULL ? text : "", JSON_DECODE_INT_AS_REAL, &err);
    free(text);
    if (doc == NULL) {
        fail_msg("/jsz did not parse: %s", err.text);
    }
    return doc;
}

/* The array member `key` of `o` whose "name" is `name`, or NULL. */
static json_t *named(json_t *o, const char *key, const char *name)
{
    json_t *arr = json_object_get(o, key), *e;
    size_t i;
    json_array_foreach(arr, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n != NULL && strcmp(n, name) == 0) {
            return e;
        }
    }
    return NULL;
}

/* What KEDA's nats-jetstream scaler computes for (stream, consumer): num_pending +
 * num_ack_pending from /jsz; -1 when the consumer is not listed. */
static long long keda_lag(json_t *doc, const char *stream, const char *consumer)
{
    json_t *acc = named(doc, "account_details", "$G");
    json_t *st = acc != NULL ? named(acc, "stream_detail", stream) : NULL;
    json_t *co = st != NULL ? named(st, "consumer_detail", consumer) : NULL;
    if (co == NULL) {
        return -1;
    }
    return (long long)(json_number_value(json_object_get(co, "num_pending")) +
                       json_number_value(json_object_get(co, "num_ack_pending")));
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The figures of durable `name` of `stream` as the metrics read them (dt_broker_consumer_stats);
 * false when it does not exist. */
static bool consumer(wk_env *env, const char *stream, const char *name,
                     dt_broker_consumer_stat *out)
{
    dt_broker_consumer_stat st[16];
    size_t n = 0;
    if (dt_broker_consumer_stats(env->broker, stream, st, 16, &n) != DT_OK) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(st[i].name, name) == 0) {
            *out = st[i];
            return true;
        }
    }
    return false;
}

/* Runs a worker until both consumers exist, then stops it: they stay (durable). */
static void create_consumers(wk_env *env, const char *orch_stream, const char *act_stream)
{
    dt_worker_options o = wk_options(env);
    dt_worker *w = NULL;
    assert_int_equal(dt_worker_create(&o, &w, NULL, 0), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "noop", noop, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "hello", QUEUE, wk_act_hello, NULL), DT_OK);
    assert_int_equal(dt_worker_start(w), DT_OK);
    dt_broker_consumer_stat si;
    bool ready = false;
    for (int i = 0; i < 200 && !ready; i++) {
        ready = consumer(env, orch_stream, "orch_0", &si) &&
                consumer(env, act_stream, "act_" QUEUE, &si);
        sleep_ms(50);
    }
    assert_true(ready);
    dt_worker_destroy(w);
}

static void publish_n(wk_env *env, const char *subject, int n)
{
    for (int i = 0; i < n; i++) {
        dt_broker_outmsg m = {.subject = subject, .data = "x", .len = 1};
        assert_int_equal(dt_broker_publish(env->broker, &m, NULL), DT_OK);
    }
}

static void expect_backlog(wk_env *env, json_t *doc, const char *stream, const char *name,
                           const char *filter, long long n)
{
    long long lag = keda_lag(doc, stream, name);
    if (lag != n) {
        fail_msg("/jsz lag of %s/%s: %lld, published %lld", stream, name, lag, n);
    }
    (void)filter;
    dt_broker_consumer_stat si;
    assert_true(consumer(env, stream, name, &si));
    assert_int_equal(si.num_pending + (uint64_t)si.num_ack_pending, (uint64_t)n);
    /* dt_queue_oldest_age_seconds: the first message waits since the publish above. */
    int64_t age_ms = (int64_t)time(NULL) * 1000 - si.oldest_ms;
    assert_true(si.oldest_ms > 0);
    assert_true(age_ms > -2000 && age_ms < 60000);
}

static void test_keda_lag(void **state)
{
    (void)state;
    const char *monitor = getenv("DT_TEST_NATS_MONITOR_URL");
    if (monitor == NULL || monitor[0] == '\0') {
        fprintf(stderr, "test_keda_lag: SKIPPED: DT_TEST_NATS_MONITOR_URL is not set (scripts/test "
                        "sets it: nats-server's monitoring endpoint)\n");
        skip();
    }
    wk_env env;
    wk_setup(&env, "keda", 1, 10000);
    char orch[128], act[128], orch_subj[128], act_subj[128];
    snprintf(orch, sizeof(orch), "DT_%s_ORCH", env.hub);
    snprintf(act, sizeof(act), "DT_%s_ACT", env.hub);
    snprintf(orch_subj, sizeof(orch_subj), "dt.%s.orch.0", env.hub);
    snprintf(act_subj, sizeof(act_subj), "dt.%s.act.%s", env.hub, QUEUE);
    create_consumers(&env, orch, act);
    json_t *doc = jsz(monitor);
    assert_true(keda_lag(doc, act, "act_" QUEUE) == 0);
    json_decref(doc);
    publish_n(&env, act_subj, ACT_ITEMS);
    publish_n(&env, orch_subj, ORCH_ITEMS);
    doc = jsz(monitor);
    expect_backlog(&env, doc, act, "act_" QUEUE, act_subj, ACT_ITEMS);
    expect_backlog(&env, doc, orch, "orch_0", orch_subj, ORCH_ITEMS);
    json_decref(doc);
    wk_teardown(&env);
}

static void call_on_queue(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_options ao = {0};
    ao.task_queue = QUEUE;
    const char *r = dt_await(ctx, dt_call_activity(ctx, "hello", "q", 1, &ao), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

static double metric(dt_worker *w, const char *name, const char *labels)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(dt_worker_metrics_render(w, &text, &len), DT_OK);
    prom_doc d;
    assert_true(prom_parse(text, len, &d));
    double v = -1;
    if (!prom_get(&d, name, labels, &v)) {
        fail_msg("no sample %s{%s}", name, labels);
    }
    prom_free(&d);
    dt_free(text);
    return v;
}

/* Waits (up to 10 s) until the worker runs `want` partitions: leases are taken one by one. */
static double owned_eventually(dt_worker *w, double want)
{
    double v = metric(w, "dt_partitions_owned", "");
    for (int i = 0; i < 100 && v != want; i++) {
        sleep_ms(100);
        v = metric(w, "dt_partitions_owned", "");
    }
    return v;
}

static dt_worker *worker(wk_env *env, bool orchestrations, bool activities)
{
    dt_worker_options o = wk_options(env);
    o.metrics_addr = ""; /* metrics without an HTTP server: dt_worker_metrics_render */
    dt_worker *w = NULL;
    assert_int_equal(dt_worker_create(&o, &w, NULL, 0), DT_OK);
    if (orchestrations) {
        assert_int_equal(dt_worker_add_orchestrator(w, "onq", call_on_queue, NULL), DT_OK);
    }
    if (activities) {
        assert_int_equal(dt_worker_add_activity(w, "hello", QUEUE, wk_act_hello, NULL), DT_OK);
    }
    assert_int_equal(dt_worker_start(w), DT_OK);
    return w;
}

static void test_separate_deployments(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "kedasep", 2, 10000);
    dt_worker *acts = worker(&env, false, true);
    dt_worker *orchs = worker(&env, true, false);
    wk_start(&env, "onq", "sep-1", NULL, NULL, NULL);
    wk_expect(&env, "sep-1", DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED, NULL);
    assert_true(metric(acts, "dt_partitions_owned", "") == 0);
    assert_true(metric(acts, "dt_work_items_completed_total", "kind=\"activity\",name=\"hello\"") ==
                1);
    assert_true(owned_eventually(orchs, 2) == 2);
    assert_true(
        metric(orchs, "dt_work_items_completed_total", "kind=\"orchestration\",name=\"onq\"") == 1);
    dt_worker_destroy(orchs);
    dt_worker_destroy(acts);
    wk_teardown(&env);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keda_lag),
        cmocka_unit_test(test_separate_deployments),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
