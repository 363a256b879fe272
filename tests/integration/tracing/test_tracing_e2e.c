/*
 * Distributed tracing end to end: an OTLP/HTTP receiver inside this process (libmicrohttpd) and
 * two worker processes (trace_worker: one runs the orchestrations, the other the activity), each
 * with its own OTEL_SERVICE_NAME, against the real nats-server of scripts/test.
 *
 *   1. dt_client_schedule with a known traceparent: one trace id throughout; the client's
 *      create_orchestration span is the caller's child and the orchestration span's parent;
 *      activity spans (exported by the other process) and the timer, episode and child
 *      orchestration spans are children of the orchestration span.
 *   2. publish-to-start with a traceparent header (a raw JetStream publish): the orchestration
 *      span continues that trace, its parent is the header's span.
 *   3. a malformed traceparent header: the instance completes all the same.
 *   4. the orchestration worker stops while an instance waits for an event (its partition is
 *      handed over to the other process) and comes back as a new process with an empty data
 *      directory (it takes the partition back and rebuilds it from the partition log): the
 *      episodes and activities before and after continue the same orchestration span; its
 *      suspend, resume and raised event are span events of the episodes that applied them.
 *   5. an in-process worker whose partition runs the activity itself (no work item, so no
 *      header: the request's body carries the context): the activity span is still the
 *      orchestration span's child.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "test_support.h"
#include "worker_kit.h"

#define TRACE_A  "0af7651916cd43dd8448eb211c80319c"
#define PARENT_A "b7ad6b7169203331"
#define TRACE_B  "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT_B "00f067aa0ba902b7"
#define TRACE_C  "11111111111111112222222222222222"
#define PARENT_C "3333333333333333"
#define TRACE_D  "44444444444444445555555555555555"
#define PARENT_D "6666666666666666"

/* ---- the receiver ---- */

typedef struct span_rec {
    char trace[33], span[17], parent[17], name[160], service[64];
    char events[128]; /* the span events' names, each followed by ' ' */
    bool in_process;  /* attribute durabletask.in_process */
} span_rec;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static span_rec spans[4096];
static size_t n_spans;
static int posts;

typedef struct upload {
    char *data;
    size_t len;
} upload;

static void copy_str(char *dst, size_t len, json_t *v)
{
    snprintf(dst, len, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static void take_body(const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    assert_non_null(doc);
    size_t i, j, k, a;
    json_t *rs, *ss, *sp, *attr;
    pthread_mutex_lock(&mu);
    posts++;
    json_array_foreach(json_object_get(doc, "resourceSpans"), i, rs)
    {
        char service[64] = "";
        json_array_foreach(json_object_get(json_object_get(rs, "resource"), "attributes"), a, attr)
        {
            if (strcmp(json_string_value(json_object_get(attr, "key")), "service.name") == 0) {
                copy_str(service, sizeof(service),
                         json_object_get(json_object_get(attr, "value"), "stringValue"));
            }
        }
        json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
        {
            json_array_foreach(json_object_get(ss, "spans"), k, sp)
            {
                if (n_spans == sizeof(spans) / sizeof(spans[0])) {
                    continue;
                }
                span_rec *r = &spans[n_spans++];
                copy_str(r->trace, sizeof(r->trace), json_object_get(sp, "traceId"));
                copy_str(r->span, sizeof(r->span), json_object_get(sp, "spanId"));
                copy_str(r->parent, sizeof(r->parent), json_object_get(sp, "parentSpanId"));
                copy_str(r->name, sizeof(r->name), json_object_get(sp, "name"));
                snprintf(r->service, sizeof(r->service), "%s", service);
                size_t e;
                json_t *ev;
                r->in_process = false;
                json_array_foreach(json_object_get(sp, "attributes"), e, ev)
                {
                    const char *key = json_string_value(json_object_get(ev, "key"));
                    r->in_process |= key != NULL && strcmp(key, "durabletask.in_process") == 0;
                }
                r->events[0] = '\0';
                json_array_foreach(json_object_get(sp, "events"), e, ev)
                {
                    size_t at = strlen(r->events);
                    snprintf(r->events + at, sizeof(r->events) - at, "%s ",
                             json_string_value(json_object_get(ev, "name")));
                }
            }
        }
    }
    pthread_mutex_unlock(&mu);
    json_decref(doc);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_len, void **con_cls)
{
    (void)cls;
    (void)version;
    upload *u = *con_cls;
    if (u == NULL) {
        u = calloc(1, sizeof(*u));
        *con_cls = u;
        return MHD_YES;
    }
    if (*data_len > 0) {
        u->data = realloc(u->data, u->len + *data_len);
        memcpy(u->data + u->len, data, *data_len);
        u->len += *data_len;
        *data_len = 0;
        return MHD_YES;
    }
    unsigned code = MHD_HTTP_OK;
    if (strcmp(method, "POST") != 0 || strcmp(url, "/v1/traces") != 0) {
        code = MHD_HTTP_NOT_FOUND;
    } else {
        take_body(u->data, u->len);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(2, "{}", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result r = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    upload *u = *con_cls;
    if (u != NULL) {
        free(u->data);
        free(u);
        *con_cls = NULL;
    }
}

/* ---- worker processes ---- */

/* Partition placement (runtime/worker/lease/leases_placement.c, frozen): rendezvous hashing. */
uint64_t dt__leases_id_hash(const char *id);
uint64_t dt__leases_weight(uint64_t id_hash, uint32_t p);

/* Worker IDs such that "orch" wins the hub's one partition whenever it runs. */
static char orch_id[32], act_id[32];
static void pick_ids(void)
{
    snprintf(act_id, sizeof(act_id), "trace-act-%d", (int)getpid());
    uint64_t wa = dt__leases_weight(dt__leases_id_hash(act_id), 0);
    for (int k = 0;; k++) {
        snprintf(orch_id, sizeof(orch_id), "trace-orch-%d", k);
        if (dt__leases_weight(dt__leases_id_hash(orch_id), 0) > wa) {
            return;
        }
    }
}

typedef struct fixture {
    wk_env env;
    struct MHD_Daemon *httpd;
    char endpoint[64];
    pid_t orch, act;
    char *orch_dir, *act_dir;
} fixture;

static pid_t spawn(fixture *f, const char *role, const char *service, const char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("OTEL_SERVICE_NAME", service, 1);
        setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f->endpoint, 1);
        execl(TRACE_WORKER_PATH, "trace_worker", f->env.url, f->env.hub, dir, role,
              strcmp(role, "orch") == 0 ? orch_id : act_id, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits up to 30 s until worker `id` holds the lease of partition 0. */
static void wait_owner(fixture *f, const char *id)
{
    char bucket[DT_BROKER_NAME_BUF], needle[64];
    assert_int_equal(
        dt_broker_bucket_name(f->env.hub, DT_BROKER_BUCKET_LEASES, bucket, sizeof(bucket)), DT_OK);
    snprintf(needle, sizeof(needle), "\"owner\":\"%s\"", id);
    dt_broker_kv *kv = NULL;
    for (int i = 0; i < 300; i++, usleep(100 * 1000)) {
        if (kv == NULL && dt_broker_kv_open(f->env.broker, bucket, &kv) != DT_OK) {
            continue;
        }
        dt_broker_kv_entry e = {0};
        bool mine = dt_broker_kv_get(kv, "p.0", &e) == DT_OK && e.value != NULL &&
                    strstr((const char *)e.value, needle) != NULL;
        dt_broker_kv_entry_clear(&e);
        if (mine) {
            dt_broker_kv_close(kv);
            return;
        }
    }
    fail_msg("worker %s did not take partition 0", id);
}

static void stop(pid_t pid)
{
    int status = 0;
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status)) {
        fprintf(stderr, "worker %d: signal %d\n", (int)pid,
                WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- span queries (under mu) ---- */

static const span_rec *find(const char *trace, const char *name, const char *parent)
{
    for (size_t i = 0; i < n_spans; i++) {
        const span_rec *r = &spans[i];
        if (strcmp(r->trace, trace) == 0 && strcmp(r->name, name) == 0 &&
            (parent == NULL || strcmp(r->parent, parent) == 0)) {
            return r;
        }
    }
    return NULL;
}

static size_t count(const char *trace, const char *name, const char *parent)
{
    size_t n = 0;
    for (size_t i = 0; i < n_spans; i++) {
        const span_rec *r = &spans[i];
        n += strcmp(r->trace, trace) == 0 && strcmp(r->name, name) == 0 &&
             (parent == NULL || strcmp(r->parent, parent) == 0);
    }
    return n;
}

static void dump(void)
{
    for (size_t i = 0; i < n_spans; i++) {
        fprintf(stderr, "span %s %s parent=%s %s [%s]\n", spans[i].trace, spans[i].span,
                spans[i].parent, spans[i].name, spans[i].service);
    }
}

/* Waits up to 15 s until `name` of `trace` was received `want` times. */
static bool wait_spans(const char *trace, const char *name, size_t want)
{
    for (int i = 0; i < 150; i++) {
        pthread_mutex_lock(&mu);
        size_t n = count(trace, name, NULL);
        pthread_mutex_unlock(&mu);
        if (n >= want) {
            return true;
        }
        usleep(100 * 1000);
    }
    return false;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    assert_non_null(f->httpd);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(f->httpd, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(f->endpoint, sizeof(f->endpoint), "http://127.0.0.1:%u", (unsigned)info->port);
    wk_setup(&f->env, "trace", 1, 3000);
    pick_ids();
    f->orch_dir = dt_test_mkdtemp("dt-trace-orch");
    f->act_dir = dt_test_mkdtemp("dt-trace-act");
    f->orch = spawn(f, "orch", "trace-orch", f->orch_dir);
    /* The orchestration worker owns the partition before the activity worker joins; placement
     * leaves it there. */
    wait_owner(f, orch_id);
    f->act = spawn(f, "act", "trace-act", f->act_dir);
    /* This process's client traces too, under its own name. */
    setenv("OTEL_SERVICE_NAME", "trace-client", 1);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f->endpoint, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->orch > 0) {
        kill(f->orch, SIGKILL);
        waitpid(f->orch, NULL, 0);
    }
    if (f->act > 0) {
        kill(f->act, SIGKILL);
        waitpid(f->act, NULL, 0);
    }
    wk_teardown(&f->env);
    dt_test_rmtree(f->orch_dir);
    dt_test_rmtree(f->act_dir);
    free(f->orch_dir);
    free(f->act_dir);
    MHD_stop_daemon(f->httpd);
    free(f);
    unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    return 0;
}

static void expect_completed(dt_client *c, const char *id)
{
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_wait_for_completion(c, id, 60000, true, &inst);
    if (st != DT_OK) {
        fprintf(stderr, "wait for %s: %s\n", id, dt_client_errmsg(c));
    }
    assert_int_equal(st, DT_OK);
    int status = (int)inst->runtime_status;
    if (status != DT_CLIENT_COMPLETED) {
        for (const dt_failure *x = inst->failure; x != NULL; x = x->inner) {
            fprintf(stderr, "%s failed: %s: %s\n", id, x->type, x->message);
        }
    }
    dt_client_instance_free(inst);
    assert_int_equal(status, DT_CLIENT_COMPLETED);
}

/* Checks of part 1 (under mu): the client's start, the orchestration and its children. */
static void check_client_trace(void)
{
    const span_rec *create = find(TRACE_A, "create_orchestration:traced", PARENT_A);
    assert_non_null(create);
    assert_string_equal(create->service, "trace-client");
    const span_rec *orch = find(TRACE_A, "orchestration:traced", create->span);
    assert_non_null(orch);
    assert_string_equal(orch->service, "trace-orch");
    assert_int_equal(count(TRACE_A, "orchestration:traced", NULL), 1);
    assert_int_equal(count(TRACE_A, "activity:greet", orch->span), 2);
    const span_rec *act = find(TRACE_A, "activity:greet", orch->span);
    assert_string_equal(act->service, "trace-act");
    assert_int_equal(count(TRACE_A, "timer", orch->span), 1);
    assert_true(count(TRACE_A, "episode:traced", orch->span) >= 3);
    assert_int_equal(count(TRACE_A, "episode:traced", NULL),
                     count(TRACE_A, "episode:traced", orch->span));
    const span_rec *child = find(TRACE_A, "orchestration:child", orch->span);
    assert_non_null(child);
    assert_int_equal(count(TRACE_A, "activity:greet", child->span), 1);
}

static void test_two_processes(void **state)
{
    fixture *f = *state;
    dt_client *c = wk_client(&f->env);
    char id[DT_CLIENT_ID_BUF];
    dt_client_start_options so = {
        .instance_id = "traced-1",
        .traceparent = "00-" TRACE_A "-" PARENT_A "-01",
        .tracestate = "vendor=1",
    };
    assert_int_equal(dt_client_schedule(c, "traced", &so, id, sizeof(id)), DT_OK);
    expect_completed(c, id);

    /* 2: publish-to-start with a traceparent header; 3: a malformed one. */
    wk_start(&f->env, "traced", "pub-1", "null", "traceparent", "00-" TRACE_B "-" PARENT_B "-01");
    wk_start(&f->env, "traced", "pub-bad", "null", "traceparent", "00-XYZ-nonsense");
    wk_expect(&f->env, "pub-1", DT_CLIENT_COMPLETED, NULL);
    wk_expect(&f->env, "pub-bad", DT_CLIENT_COMPLETED, NULL);

    /* 4: a restart of the orchestration worker between two episodes of one instance. */
    so = (dt_client_start_options){.instance_id = "waiter-1",
                                   .traceparent = "00-" TRACE_C "-" PARENT_C "-01"};
    assert_int_equal(dt_client_schedule(c, "waiter", &so, id, sizeof(id)), DT_OK);
    assert_true(wait_spans(TRACE_C, "activity:greet", 1));
    stop(f->orch);
    wait_owner(f, act_id); /* handed over */
    dt_test_rmtree(f->orch_dir);
    free(f->orch_dir);
    f->orch_dir = dt_test_mkdtemp("dt-trace-orch2");
    f->orch = spawn(f, "orch", "trace-orch", f->orch_dir);
    wait_owner(f, orch_id); /* taken back, rebuilt from the partition log */
    assert_int_equal(dt_client_suspend(c, "waiter-1", "pause"), DT_OK);
    Dtpb__InstanceStatus *rec = wk_wait(&f->env, "waiter-1", DT_CLIENT_SUSPENDED, 30000);
    assert_non_null(rec);
    dtpb__instance_status__free_unpacked(rec, NULL);
    assert_int_equal(dt_client_resume(c, "waiter-1", "go on"), DT_OK);
    assert_int_equal(dt_client_raise_event(c, "waiter-1", "go", "1", 1, NULL), DT_OK);
    expect_completed(c, "waiter-1");
    dt_client_destroy(c); /* flushes the client's spans */

    stop(f->orch); /* graceful stops flush the workers' spans */
    stop(f->act);
    f->orch = f->act = 0;

    pthread_mutex_lock(&mu);
    fprintf(stderr, "received %zu spans in %d posts\n", n_spans, posts);
    if (getenv("DT_TEST_VERBOSE") != NULL) {
        dump();
    }
    check_client_trace();

    const span_rec *orch_b = find(TRACE_B, "orchestration:traced", PARENT_B);
    assert_non_null(orch_b);
    assert_int_equal(count(TRACE_B, "activity:greet", orch_b->span), 2);
    assert_int_equal(count(TRACE_B, "create_orchestration:traced", NULL), 0);

    const span_rec *create_c = find(TRACE_C, "create_orchestration:waiter", PARENT_C);
    assert_non_null(create_c);
    const span_rec *orch_c = find(TRACE_C, "orchestration:waiter", create_c->span);
    assert_non_null(orch_c);
    assert_int_equal(count(TRACE_C, "activity:greet", orch_c->span), 2);
    /* Episodes before and after the restart: all children of the one orchestration span. */
    assert_true(count(TRACE_C, "episode:waiter", orch_c->span) >= 3);
    assert_int_equal(count(TRACE_C, "episode:waiter", NULL),
                     count(TRACE_C, "episode:waiter", orch_c->span));
    /* The raised event is a span event of the episode that applied it. */
    size_t raised = 0, suspended = 0, resumed = 0;
    for (size_t i = 0; i < n_spans; i++) {
        bool ep =
            strcmp(spans[i].trace, TRACE_C) == 0 && strcmp(spans[i].name, "episode:waiter") == 0;
        raised += ep && strstr(spans[i].events, "event_raised ") != NULL;
        suspended += ep && strstr(spans[i].events, "suspended ") != NULL;
        resumed += ep && strstr(spans[i].events, "resumed ") != NULL;
    }
    assert_int_equal(raised, 1);
    assert_int_equal(suspended, 1);
    assert_int_equal(resumed, 1);
    pthread_mutex_unlock(&mu);
}

/* ---- 5: an activity run in the partition's own process (no work item, no header) ---- */

static void solo(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *r = dt_await(ctx, dt_call_activity(ctx, "greet", "\"x\"", 3, NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

static void greet(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_set_output(ctx, "\"hi\"", 4);
}

static void test_in_process_activity(void **state)
{
    fixture *f = *state;
    wk_env env2;
    wk_setup(&env2, "trace_local", 1, 3000);
    dt_worker_options o = wk_options(&env2);
    dt_worker *w = NULL;
    char err[256];
    assert_int_equal(dt_worker_create(&o, &w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "solo", solo, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "greet", NULL, greet, NULL), DT_OK);
    assert_int_equal(dt_worker_start(w), DT_OK);
    dt_client *c = wk_client(&env2);
    char id[DT_CLIENT_ID_BUF];
    dt_client_start_options so = {.instance_id = "solo-1",
                                  .traceparent = "00-" TRACE_D "-" PARENT_D "-01"};
    assert_int_equal(dt_client_schedule(c, "solo", &so, id, sizeof(id)), DT_OK);
    expect_completed(c, id);
    dt_client_destroy(c);
    dt_worker_stop(w, 5000); /* flushes */
    dt_worker_destroy(w);
    wk_teardown(&env2);
    (void)f;
    pthread_mutex_lock(&mu);
    const span_rec *create = find(TRACE_D, "create_orchestration:solo", PARENT_D);
    assert_non_null(create);
    const span_rec *orch = find(TRACE_D, "orchestration:solo", create->span);
    assert_non_null(orch);
    const span_rec *act = find(TRACE_D, "activity:greet", orch->span);
    assert_non_null(act);
    assert_string_equal(act->service, "trace-client"); /* this process */
    assert_true(act->in_process);                      /* run by the partition's own worker */
    pthread_mutex_unlock(&mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_process_activity, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
