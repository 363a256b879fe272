/*
 * The dashboard's HTTP API against a real nats-server and an in-process worker: every endpoint
 * with its effect, the live event stream, and bad input (malformed JSON, unknown instances, bad
 * filters, wrong methods, oversized bodies, garbage requests, missing or wrong tokens), each of
 * which must get a 4xx reply with a JSON error body and leave the server serving.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "dash_kit.h"
#include "prom_text.h"
#include "test_support.h"

static char pfx[64];

static const char *id_of(const char *tail, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", pfx, tail);
    return buf;
}

/* GET/POST expecting `want`; returns the JSON body (caller decrefs). */
static json_t *call(dk_env *env, const char *method, const char *path, const char *body, int want)
{
    json_t *j = NULL;
    char raw[512];
    int code = dk_http(env, method, path, body, NULL, &j, raw, sizeof(raw));
    if (code != want) {
        fail_msg("%s %s: status %d, want %d: %s", method, path, code, want, raw);
    }
    if (j == NULL) {
        fail_msg("%s %s: the reply is not JSON: %s", method, path, raw);
    }
    return j;
}

/* Expects a 4xx JSON error with `code`. */
static void expect_error(dk_env *env, const char *method, const char *path, const char *body,
                         int want, const char *code)
{
    json_t *j = call(env, method, path, body, want);
    const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (got == NULL || strcmp(got, code) != 0 || msg == NULL || msg[0] == '\0') {
        fail_msg("%s %s: error code %s, want %s", method, path, got ? got : "(none)", code);
    }
    json_decref(j);
}

static int64_t jint(json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void test_list_and_detail(dk_env *env)
{
    char tour[128], waiter[128], failing[128], path[512];
    dk_schedule(env, "dash_tour", id_of("tour", tour, sizeof(tour)), "{\"who\":\"api\"}");
    dk_schedule(env, "dash_wait", id_of("wait", waiter, sizeof(waiter)), NULL);
    dk_schedule(env, "dash_fail", id_of("fail", failing, sizeof(failing)), NULL);
    dk_wait_status(env, failing, DT_CLIENT_FAILED, 20000);
    dk_wait_status(env, waiter, DT_CLIENT_RUNNING, 20000);

    json_t *hub = call(env, "GET", "/api/hub", NULL, 200);
    assert_int_equal(jint(hub, "partitions"), 2);
    assert_string_equal(jstr(hub, "hub"), env->wk.hub);
    json_decref(hub);

    snprintf(path, sizeof(path), "/api/instances?prefix=%s&sort=id", pfx);
    json_t *l = call(env, "GET", path, NULL, 200);
    assert_int_equal(jint(l, "total"), 3);
    json_t *arr = json_object_get(l, "instances");
    assert_string_equal(jstr(json_array_get(arr, 0), "instance_id"), failing);
    assert_string_equal(jstr(json_array_get(arr, 2), "instance_id"), waiter);
    json_decref(l);

    snprintf(path, sizeof(path), "/api/instances?prefix=%s&sort=-id&limit=1&offset=1", pfx);
    l = call(env, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(l, "instances")), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(l, "instances"), 0), "instance_id"),
                        tour);
    json_decref(l);

    snprintf(path, sizeof(path), "/api/instances?prefix=%s&status=FAILED,completed", pfx);
    l = call(env, "GET", path, NULL, 200);
    assert_int_equal(jint(l, "total"), 1);
    json_decref(l);

    snprintf(path, sizeof(path), "/api/instances?prefix=%s&name=dash_wait", pfx);
    l = call(env, "GET", path, NULL, 200);
    assert_int_equal(jint(l, "total"), 1);
    json_decref(l);

    snprintf(path, sizeof(path), "/api/instances?prefix=%s&created_from=%lld", pfx,
             (long long)4102444800000LL);
    l = call(env, "GET", path, NULL, 200);
    assert_int_equal(jint(l, "total"), 0);
    json_decref(l);

    snprintf(path, sizeof(path), "/api/instances/%s", failing);
    json_t *in = call(env, "GET", path, NULL, 200);
    assert_string_equal(jstr(in, "runtime_status"), "FAILED");
    json_t *f = json_object_get(in, "failure");
    assert_string_equal(jstr(f, "type"), "dt.TaskFailed");
    assert_string_equal(jstr(json_object_get(f, "inner"), "type"), "BoomError");
    json_decref(in);

    snprintf(path, sizeof(path), "/api/instances/%s", tour);
    in = call(env, "GET", path, NULL, 200);
    assert_string_equal(jstr(in, "input"), "{\"who\":\"api\"}");
    assert_string_equal(jstr(in, "name"), "dash_tour");
    json_decref(in);
    /* Payload bytes that are not UTF-8 arrive as U+FFFD, in valid JSON. */
    char bin[128];
    snprintf(bin, sizeof(bin), "bin-%d", (int)getpid());
    dk_schedule(env, "dash_child", bin, "\"a\xff\xfe\"");
    snprintf(path, sizeof(path), "/api/instances/%s", bin);
    in = call(env, "GET", path, NULL, 200);
    assert_string_equal(jstr(in, "input"), "\"a\xef\xbf\xbd\xef\xbf\xbd\"");
    json_decref(in);
}

static void test_actions(dk_env *env)
{
    char tour[128], waiter[128], path[512];
    id_of("tour", tour, sizeof(tour));
    id_of("wait", waiter, sizeof(waiter));

    snprintf(path, sizeof(path), "/api/instances/%s/suspend", waiter);
    json_decref(call(env, "POST", path, "{\"reason\":\"test\"}", 200));
    dk_wait_status(env, waiter, DT_CLIENT_SUSPENDED, 20000);
    snprintf(path, sizeof(path), "/api/instances/%s/resume", waiter);
    json_decref(call(env, "POST", path, "", 200));
    dk_wait_status(env, waiter, DT_CLIENT_RUNNING, 20000);

    /* The tour waits for "go" once its activity, timer and child are done. */
    dt_client_instance *in = NULL;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(dt_client_get_status(env->c, tour, true, &in), DT_OK);
        bool waiting = in->custom_status != NULL && strstr(in->custom_status, "waiting") != NULL;
        dt_client_instance_free(in);
        if (waiting) {
            break;
        }
        usleep(100 * 1000);
    }
    snprintf(path, sizeof(path), "/api/instances/%s/raise", tour);
    json_decref(call(env, "POST", path, "{\"name\":\"go\",\"data\":{\"n\":1}}", 200));
    dk_wait_status(env, tour, DT_CLIENT_COMPLETED, 20000);

    snprintf(path, sizeof(path), "/api/instances/%s/history", tour);
    json_t *h = call(env, "GET", path, NULL, 200);
    json_t *events = json_object_get(h, "events");
    const char *want[] = {"TaskScheduled", "TimerFired", "SubOrchestrationInstanceCompleted",
                          "EventRaised", "ExecutionCompleted"};
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(events); i++) {
            found |= strcmp(jstr(json_array_get(events, i), "type"), want[k]) == 0;
        }
        if (!found) {
            fail_msg("history of %s has no %s", tour, want[k]);
        }
    }
    json_decref(h);

    /* Restart: under its own ID (a new execution), and under a new one. */
    dt_client_instance *done = NULL;
    assert_int_equal(dt_client_get_status(env->c, tour, false, &done), DT_OK);
    char old_exec[128];
    snprintf(old_exec, sizeof(old_exec), "%s", done->execution_id);
    dt_client_instance_free(done);
    snprintf(path, sizeof(path), "/api/instances/%s/restart", tour);
    json_t *rs = call(env, "POST", path, "{\"new_instance_id\":true}", 200);
    char fresh[128];
    assert_non_null(jstr(rs, "started_instance_id"));
    snprintf(fresh, sizeof(fresh), "%s", jstr(rs, "started_instance_id"));
    json_decref(rs);
    assert_string_not_equal(fresh, tour);
    json_decref(call(env, "POST", path, "{}", 200));
    bool new_exec = false;
    for (int i = 0; i < 200 && !new_exec; i++) {
        assert_int_equal(dt_client_get_status(env->c, tour, false, &done), DT_OK);
        new_exec = strcmp(done->execution_id, old_exec) != 0;
        dt_client_instance_free(done);
        usleep(50 * 1000);
    }
    assert_true(new_exec);
    expect_error(env, "POST", path, "{\"new_instance_id\":1}", 400, "invalid");
    /* Both tours wait for "go" again (their input is the first one's): finish them. */
    const char *tours[] = {tour, fresh};
    for (size_t k = 0; k < 2; k++) {
        for (int i = 0; i < 200; i++) {
            assert_int_equal(dt_client_get_status(env->c, tours[k], true, &done), DT_OK);
            bool waiting =
                done->custom_status != NULL && strstr(done->custom_status, "waiting") != NULL;
            dt_client_instance_free(done);
            if (waiting) {
                break;
            }
            usleep(100 * 1000);
        }
        snprintf(path, sizeof(path), "/api/instances/%s/raise", tours[k]);
        json_decref(call(env, "POST", path, "{\"name\":\"go\",\"data\":{\"n\":2}}", 200));
        dk_wait_status(env, tours[k], DT_CLIENT_COMPLETED, 20000);
    }
    snprintf(path, sizeof(path), "/api/instances/%s/restart", waiter);
    expect_error(env, "POST", path, NULL, 409, "conflict"); /* running: not under its own ID */

    snprintf(path, sizeof(path), "/api/instances/%s/purge", waiter);
    expect_error(env, "POST", path, NULL, 409, "conflict"); /* still running */
    snprintf(path, sizeof(path), "/api/instances/%s/terminate", waiter);
    json_decref(call(env, "POST", path, "{\"reason\":\"done\",\"recursive\":true}", 200));
    dk_wait_status(env, waiter, DT_CLIENT_TERMINATED, 20000);
    snprintf(path, sizeof(path), "/api/instances/%s/purge", waiter);
    json_decref(call(env, "POST", path, NULL, 200));
    snprintf(path, sizeof(path), "/api/instances/%s", waiter);
    expect_error(env, "GET", path, NULL, 404, "not_found");
}

static void test_overview(dk_env *env)
{
    json_t *o = call(env, "GET", "/api/overview", NULL, 200);
    json_t *counts = json_object_get(o, "instances");
    assert_null(json_object_get(counts, "error"));
    assert_true(jint(json_object_get(counts, "by_status"), "COMPLETED") >= 2);
    assert_true(jint(json_object_get(counts, "by_status"), "FAILED") >= 1);
    assert_non_null(json_object_get(json_object_get(counts, "by_name"), "dash_tour"));
    json_t *workers = json_object_get(json_object_get(o, "workers"), "list");
    assert_int_equal(json_array_size(workers), 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(workers, 0), "partitions")), 2);
    /* Two partitions' consumers, the activity queue's and the ingress one. */
    assert_true(json_array_size(json_object_get(o, "backlog")) >= 4);
    assert_true(
        json_is_number(json_object_get(json_object_get(o, "throughput"), "finished_per_s")));
    json_decref(o);
}

/* Reads the event stream until `needle` shows up (10 s at most). */
static bool stream_until(int fd, const char *needle, char *buf, size_t cap, size_t *n)
{
    while (strstr(buf, needle) == NULL) {
        if (*n + 1 >= cap) {
            return false;
        }
        ssize_t k = read(fd, buf + *n, cap - 1 - *n);
        if (k <= 0) {
            return false;
        }
        *n += (size_t)k;
        buf[*n] = '\0';
    }
    return true;
}

static int open_stream(dk_env *env, const char *query)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(env->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[512];
    int n = snprintf(req, sizeof(req), "GET /api/events%s HTTP/1.1\r\nHost: x\r\n\r\n", query);
    assert_int_equal(write(fd, req, (size_t)n), n);
    return fd;
}

static void test_events(dk_env *env)
{
    static char buf[256 * 1024];
    size_t n = 0;
    buf[0] = '\0';
    int fd = open_stream(env, "");
    assert_true(stream_until(fd, "event: hello", buf, sizeof(buf), &n));
    assert_non_null(strstr(buf, "text/event-stream"));
    char id[128];
    id_of("live", id, sizeof(id));
    dk_schedule(env, "dash_wait", id, NULL);
    char want[256];
    snprintf(want, sizeof(want), "\"instance_id\":\"%s\"", id);
    assert_true(stream_until(fd, want, buf, sizeof(buf), &n));
    assert_true(stream_until(fd, "\"runtime_status\":\"RUNNING\"", buf, sizeof(buf), &n));
    assert_int_equal(dt_client_terminate(env->c, id, NULL, false), DT_OK);
    assert_true(stream_until(fd, "\"runtime_status\":\"TERMINATED\"", buf, sizeof(buf), &n));
    close(fd);
}

static void test_page(dk_env *env)
{
    char raw[256];
    assert_int_equal(dk_http(env, "GET", "/", NULL, NULL, NULL, raw, sizeof(raw)), 200);
    assert_non_null(strstr(raw, "<!doctype html>"));
    assert_int_equal(dk_http(env, "GET", "/app.js", NULL, NULL, NULL, raw, sizeof(raw)), 200);
    assert_int_equal(dk_http(env, "GET", "/views/timeline.js", NULL, NULL, NULL, raw, sizeof(raw)),
                     200);
    expect_error(env, "GET", "/nothing.js", NULL, 404, "not_found");
    expect_error(env, "POST", "/", "{}", 405, "method");
}

/* GET /metrics: the Prometheus text of the dashboard's process and of the hub's queues. */
static void test_metrics(dk_env *env)
{
    static char raw[256 * 1024];
    assert_int_equal(dk_http(env, "GET", "/metrics", NULL, NULL, NULL, raw, sizeof(raw)), 200);
    prom_doc doc;
    if (!prom_parse(raw, strlen(raw), &doc)) {
        fail_msg("/metrics does not parse: %s", doc.error);
    }
    assert_int_equal(prom_count(&doc, "process_resident_memory_bytes"), 1);
    char labels[256];
    snprintf(labels, sizeof(labels),
             "kind=\"orchestration\",stream=\"DT_%s_ORCH\",consumer=\"orch_0\"", env->wk.hub);
    double v = -1;
    if (!prom_get(&doc, "dt_queue_pending", labels, &v)) {
        fail_msg("no dt_queue_pending{%s} in:\n%.2000s", labels, raw);
    }
    assert_true(v >= 0);
    prom_free(&doc);
    expect_error(env, "POST", "/metrics", "{}", 405, "method");
}

static void test_bad_input(dk_env *env)
{
    char tour[128], path[512];
    id_of("tour", tour, sizeof(tour));
    char action[600];
    snprintf(action, sizeof(action), "/api/instances/%s/terminate", tour);
    expect_error(env, "POST", action, "{\"reason\":", 400, "bad_json");
    expect_error(env, "POST", action, "[1,2]", 400, "bad_json");
    expect_error(env, "POST", action, "{\"a\":1,\"a\":2}", 400, "bad_json");
    expect_error(env, "POST", action, "{\"recursive\":\"yes\"}", 400, "invalid");
    expect_error(env, "POST", action, "{\"reason\":42}", 400, "invalid");
    snprintf(path, sizeof(path), "/api/instances/%s/raise", tour);
    expect_error(env, "POST", path, "{\"data\":1}", 400, "invalid");
    expect_error(env, "POST", path, "{\"name\":\"has space\"}", 400, "invalid");
    expect_error(env, "GET", "/api/instances/no-such-instance", NULL, 404, "not_found");
    expect_error(env, "GET", "/api/instances/no-such-instance/history", NULL, 404, "not_found");
    expect_error(env, "POST", "/api/instances/no-such-instance/suspend", NULL, 404, "not_found");
    expect_error(env, "POST", "/api/instances/no-such-instance/raise", "{\"name\":\"e\"}", 404,
                 "not_found");
    expect_error(env, "GET", "/api/instances?status=FOO", NULL, 400, "bad_filter");
    expect_error(env, "GET", "/api/instances?status=,", NULL, 400, "bad_filter");
    expect_error(env, "GET", "/api/instances?limit=0", NULL, 400, "bad_filter");
    expect_error(env, "GET", "/api/instances?limit=abc", NULL, 400, "bad_filter");
    expect_error(env, "GET", "/api/instances?offset=-1", NULL, 400, "bad_filter");
    expect_error(env, "GET", "/api/instances?sort=size", NULL, 400, "bad_filter");
    expect_error(env, "GET", "/api/instances?created_from=yesterday", NULL, 400, "bad_filter");
    expect_error(env, "GET", "/api/instances?created_to=99999999999999999999999", NULL, 400,
                 "bad_filter");
    expect_error(env, "GET", "/api/nope", NULL, 404, "not_found");
    expect_error(env, "DELETE", "/api/instances", NULL, 405, "method");
    snprintf(path, sizeof(path), "/api/instances/%s/suspend", tour);
    expect_error(env, "GET", path, NULL, 405, "method");
    expect_error(env, "POST", "/api/instances/x", NULL, 405, "method");
    char longid[401];
    memset(longid, 'a', 400);
    longid[400] = '\0';
    snprintf(path, sizeof(path), "/api/instances/%s", longid);
    expect_error(env, "GET", path, NULL, 400, "invalid");
    expect_error(env, "GET", "/api/instances/bad%20id", NULL, 400, "invalid");

    size_t big = 300 * 1024;
    char *body = malloc(big + 1);
    assert_non_null(body);
    memset(body, ' ', big);
    body[big] = '\0';
    expect_error(env, "POST", action, body, 413, "too_large");
    free(body);

    /* Garbage on the wire gets a 4xx (or a closed connection), never a crash or a stall. */
    static const char garbage[] = "\x01\x02 NOT-HTTP\r\n\r\n";
    int code = dk_http_raw(env, garbage, sizeof(garbage) - 1);
    assert_true(code == 0 || (code >= 400 && code < 500));
    static const char half[] = "POST /api/instances/x/terminate HTTP/1.1\r\nContent-Length: 10\r\n";
    code = dk_http_raw(env, half, sizeof(half) - 1);
    assert_true(code == 0 || (code >= 400 && code < 500));
    json_decref(call(env, "GET", "/api/hub", NULL, 200)); /* still serving */

    /* The instance was left alone by all of the above. */
    dt_client_instance *in = NULL;
    assert_int_equal(dt_client_get_status(env->c, tour, false, &in), DT_OK);
    assert_int_equal(in->runtime_status, DT_CLIENT_COMPLETED);
    dt_client_instance_free(in);
}

/* dt_broker_consumer_stats on a stream of the test's own: counts, and the age of the oldest
 * message not yet acknowledged (a consumer on one subject of two, past its ack floor). */
static void test_consumer_stats(dk_env *env)
{
    dt_broker *b = env->wk.broker;
    char stream[64], subj_a[96], subj_b[96];
    snprintf(stream, sizeof(stream), "DASHSTATS_%d", (int)getpid());
    snprintf(subj_a, sizeof(subj_a), "dashstats.%d.a", (int)getpid());
    snprintf(subj_b, sizeof(subj_b), "dashstats.%d.>", (int)getpid());
    assert_int_equal(dt_broker_stream_ensure(b, stream, subj_b), DT_OK);
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = "stats";
    cc.filter_subject = subj_a;
    dt_broker_consumer *c = NULL;
    assert_int_equal(dt_broker_consumer_open(b, &cc, &c), DT_OK);
    char other[96];
    snprintf(other, sizeof(other), "dashstats.%d.b", (int)getpid());
    dt_broker_outmsg m = {.subject = other, .data = "x", .len = 1};
    assert_int_equal(dt_broker_publish(b, &m, NULL), DT_OK); /* not the consumer's */
    int64_t before = (int64_t)time(NULL) * 1000 - 2000;
    m.subject = subj_a;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(dt_broker_publish(b, &m, NULL), DT_OK);
    }
    /* Take and ack the first: the oldest unacknowledged is then the second. */
    dt_broker_msg *got = NULL;
    size_t n = 0;
    assert_int_equal(dt_broker_consumer_fetch(c, 1, 2000, &got, &n), DT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dt_broker_msg_ack_sync(got, 2000), DT_OK);
    dt_broker_msg_destroy(got);
    dt_broker_consumer_stat st[4];
    assert_int_equal(dt_broker_consumer_stats(b, stream, st, 4, &n), DT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(st[0].name, "stats");
    assert_string_equal(st[0].filter, subj_a);
    assert_int_equal(st[0].num_pending, 2);
    assert_int_equal(st[0].num_ack_pending, 0);
    assert_true(st[0].oldest_ms >= before && st[0].oldest_ms <= (int64_t)time(NULL) * 1000 + 2000);
    dt_broker_consumer_close(c);
    assert_int_equal(dt_broker_stream_delete(b, stream), DT_OK);
    assert_int_equal(dt_broker_consumer_stats(b, stream, st, 4, &n), DT_ENOTFOUND);
}

static void test_api(void **state)
{
    (void)state;
    dk_env env;
    dk_setup(&env, "dash_api", NULL);
    snprintf(pfx, sizeof(pfx), "api-%d-", (int)getpid());
    test_page(&env);
    test_list_and_detail(&env);
    test_actions(&env);
    test_overview(&env);
    test_events(&env);
    test_bad_input(&env);
    test_consumer_stats(&env);
    test_metrics(&env);
    dk_teardown(&env);
}

static void test_token(void **state)
{
    (void)state;
    dk_env env;
    dk_setup(&env, "dash_tok", "s3cret-token");
    char raw[256];
    json_t *j = NULL;
    assert_int_equal(dk_http(&env, "GET", "/api/hub", NULL, NULL, &j, raw, sizeof(raw)), 401);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "unauthorized");
    json_decref(j);
    assert_int_equal(dk_http(&env, "GET", "/api/hub", NULL, "Bearer wrong", NULL, raw, sizeof(raw)),
                     401);
    assert_int_equal(
        dk_http(&env, "GET", "/api/hub", NULL, "Basic s3cret-token", NULL, raw, sizeof(raw)), 401);
    assert_int_equal(
        dk_http(&env, "POST", "/api/instances/x/terminate", NULL, NULL, NULL, raw, sizeof(raw)),
        401);
    assert_int_equal(
        dk_http(&env, "GET", "/api/hub", NULL, "Bearer s3cret-token", NULL, raw, sizeof(raw)), 200);
    /* The token in the URL counts for the event stream only. */
    assert_int_equal(dk_http(&env, "GET", "/api/hub?access_token=s3cret-token", NULL, NULL, NULL,
                             raw, sizeof(raw)),
                     401);
    static char buf[4096];
    size_t n = 0;
    buf[0] = '\0';
    int fd = open_stream(&env, "?access_token=s3cret-token");
    assert_true(stream_until(fd, "event: hello", buf, sizeof(buf), &n));
    close(fd);
    n = 0;
    buf[0] = '\0';
    fd = open_stream(&env, "?access_token=nope");
    assert_true(stream_until(fd, "401", buf, sizeof(buf), &n));
    close(fd);
    /* The page itself holds no data and loads without the token. */
    assert_int_equal(dk_http(&env, "GET", "/", NULL, NULL, NULL, raw, sizeof(raw)), 200);

    /* Beyond loopback a token is required. */
    dt_dashboard_options o;
    dt_dashboard_options_init(&o);
    o.nats_url = env.wk.url;
    o.hub = env.wk.hub;
    o.port = DT_DASHBOARD_PORT_ANY;
    o.bind_addr = "0.0.0.0";
    dt_dashboard *d = NULL;
    char err[256] = "";
    assert_int_equal(dt_dashboard_create(&o, &d, err, sizeof(err)), DT_EINVAL);
    assert_non_null(strstr(err, "token"));
    o.bind_addr = "not-an-address";
    o.token = "t";
    assert_int_equal(dt_dashboard_create(&o, &d, err, sizeof(err)), DT_EINVAL);
    o.bind_addr = "0.0.0.0";
    assert_int_equal(dt_dashboard_create(&o, &d, err, sizeof(err)), DT_OK);
    dt_dashboard_destroy(d);
    o.hub = "no_such_hub_here";
    o.bind_addr = NULL;
    assert_int_equal(dt_dashboard_create(&o, &d, err, sizeof(err)), DT_ENOTFOUND);
    dk_teardown(&env);
}

int main(void)
{
    if (dt_test_nats_url() == NULL) {
        fprintf(stderr, "DT_TEST_NATS_URL is not set\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
