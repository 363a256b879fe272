/* Helpers for end-to-end worker tests (see worker_kit.h). */
#include "worker_kit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena_int.h"
#include "common_int.h"
#include "pb_int.h"
#include "protocol_int.h"
#include "test_support.h"

void wk_setup(wk_env *env, const char *prefix, uint32_t partitions, int64_t lease_ttl_ms)
{
    memset(env, 0, sizeof(*env));
    env->url = dt_test_nats_url();
    if (env->url == NULL) {
        fail_msg("DT_TEST_NATS_URL is not set: run the tests through scripts/test");
    }
    dt_broker_options o;
    dt_broker_options_init(&o);
    o.urls = env->url;
    char err[256];
    assert_int_equal(dt_broker_connect(&o, &env->broker, err, sizeof(err)), DT_OK);
    char rnd[37];
    dt__random_uuid(rnd);
    snprintf(env->hub, sizeof(env->hub), "%s_%.8s", prefix, rnd);
    dt_broker_hub_config c;
    dt_broker_hub_config_init(&c);
    c.partitions = partitions;
    c.lease_ttl_ms = lease_ttl_ms;
    assert_int_equal(dt_broker_hub_create(env->broker, env->hub, &c, NULL), DT_OK);
    env->data_dir = dt_test_mkdtemp("dt-worker");
    assert_non_null(env->data_dir);
}

void wk_teardown(wk_env *env)
{
    dt_broker_hub_delete(env->broker, env->hub);
    dt_broker_close(env->broker);
    dt_test_rmtree(env->data_dir);
    free(env->data_dir);
}

static void quiet_log(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    (void)ctx;
    if (getenv("DT_TEST_VERBOSE") != NULL || level >= DT_LOG_ERROR) {
        fprintf(stderr, "[worker %d] %s%s%s\n", (int)level, instance_id != NULL ? instance_id : "",
                instance_id != NULL ? ": " : "", msg);
    }
}

dt_worker_options wk_options(const wk_env *env)
{
    dt_worker_options o = {0};
    o.nats_url = env->url;
    o.hub = env->hub;
    o.data_dir = env->data_dir;
    o.log = quiet_log;
    return o;
}

static void publish(wk_env *env, const char *tail, const dt_broker_header *h, size_t nh,
                    const char *body)
{
    char subject[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_subject(env->hub, DT_BROKER_SUBJ_IN, tail, subject, sizeof(subject)),
                     DT_OK);
    dt_broker_outmsg m = {.subject = subject,
                          .headers = h,
                          .nheaders = nh,
                          .data = body,
                          .len = body != NULL ? strlen(body) : 0};
    dt_status st = dt_broker_publish(env->broker, &m, NULL);
    if (st != DT_OK) {
        fail_msg("publish to %s: %s", subject, dt_broker_errmsg(env->broker));
    }
}

void wk_start(wk_env *env, const char *name, const char *instance_id, const char *input,
              const char *extra_header, const char *extra_value)
{
    char tail[DT_BROKER_NAME_BUF];
    snprintf(tail, sizeof(tail), "start.%s", name);
    dt_broker_header h[2] = {{DT_HDR_INSTANCE_ID, instance_id}, {extra_header, extra_value}};
    publish(env, tail, h, extra_header != NULL ? 2 : 1, input);
}

void wk_raise(wk_env *env, const char *instance_id, const char *event, const char *data)
{
    char tail[DT_BROKER_NAME_BUF];
    snprintf(tail, sizeof(tail), "raise.%s", event);
    dt_broker_header h[1] = {{DT_HDR_INSTANCE_ID, instance_id}};
    publish(env, tail, h, 1, data);
}

void wk_control(wk_env *env, const char *kind, const char *instance_id, const char *reason)
{
    dt_broker_header h[1] = {{DT_HDR_INSTANCE_ID, instance_id}};
    publish(env, kind, h, 1, reason);
}

static bool finished(int s)
{
    return s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED ||
           s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED ||
           s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED;
}

Dtpb__InstanceStatus *wk_wait(wk_env *env, const char *instance_id, int want, int64_t timeout_ms)
{
    char bucket[DT_BROKER_NAME_BUF], key[3 * DT_INSTANCE_ID_MAX + 1];
    assert_int_equal(
        dt_broker_bucket_name(env->hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket)), DT_OK);
    assert_int_equal(dt__status_key(instance_id, key, sizeof(key)), DT_OK);
    dt_broker_kv *kv = NULL;
    dt_broker_kv_watcher *w = NULL;
    assert_int_equal(dt_broker_kv_open(env->broker, bucket, &kv), DT_OK);
    assert_int_equal(dt_broker_kv_watch(kv, key, NULL, &w), DT_OK);
    int64_t deadline = dt__mono_ms() + timeout_ms;
    Dtpb__InstanceStatus *found = NULL;
    while (found == NULL && dt__mono_ms() < deadline) {
        dt_broker_kv_entry e = {0};
        if (dt_broker_kv_watcher_next(w, deadline - dt__mono_ms(), &e) != DT_OK) {
            continue;
        }
        Dtpb__InstanceStatus *s =
            e.op == DT_BROKER_KV_PUT ? dtpb__instance_status__unpack(NULL, e.len, e.value) : NULL;
        if (s != NULL &&
            (want >= 0 ? (int)s->runtime_status == want : finished(s->runtime_status))) {
            found = s;
        } else if (s != NULL) {
            dtpb__instance_status__free_unpacked(s, NULL);
        }
        dt_broker_kv_entry_clear(&e);
    }
    dt_broker_kv_watcher_destroy(w);
    dt_broker_kv_close(kv);
    return found;
}

const char *wk_output(const Dtpb__InstanceStatus *s)
{
    if (s->output == NULL) {
        return "";
    }
    /* protobuf-c does not terminate bytes: copy into a buffer that lives with the record. */
    static char buf[4][4096];
    static int next;
    char *b = buf[next++ % 4];
    size_t n = s->output->value.len < 4095 ? s->output->value.len : 4095;
    memcpy(b, s->output->value.data, n);
    b[n] = '\0';
    return b;
}

void wk_act_hello(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    char *out = malloc(len + 8); /* inputs of any size (snprintf's return is not what fits) */
    if (out == NULL) {
        dt_activity_fail(ctx, "test.OutOfMemory", "hello", false);
        return;
    }
    int n = snprintf(out, len + 8, "Hello %.*s", (int)len, in != NULL ? in : "");
    dt_activity_set_output(ctx, out, (size_t)n);
    free(out);
}

int wk_dead_letters(wk_env *env, const char *durable, int want, char reasons[][256])
{
    char stream[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_stream_name(env->hub, DT_BROKER_STREAM_DEAD, stream, sizeof(stream)),
                     DT_OK);
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = durable;
    dt_broker_consumer *con = NULL;
    assert_int_equal(dt_broker_consumer_open(env->broker, &cc, &con), DT_OK);
    int got = 0;
    for (int round = 0; round < 20 && got < want; round++) {
        dt_broker_msg *msgs[16];
        size_t n = 0;
        if (dt_broker_consumer_fetch(con, 16, 500, msgs, &n) != DT_OK) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            const char *why = NULL;
            if (dt_broker_msg_header(msgs[i], "Dt-Reason", &why) == DT_OK && got < want) {
                snprintf(reasons[got++], 256, "%s", why);
            }
            dt_broker_msg_ack(msgs[i]);
            dt_broker_msg_destroy(msgs[i]);
        }
    }
    dt_broker_consumer_close(con);
    return got;
}

dt_client *wk_client(const wk_env *env)
{
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = env->url;
    co.hub = env->hub;
    dt_client *c = NULL;
    char err[256];
    if (dt_client_create(&co, &c, err, sizeof(err)) != DT_OK) {
        fail_msg("client create: %s", err);
    }
    return c;
}

void wk_expect(wk_env *env, const char *id, int status, const char *output)
{
    /* A final status: wait for the end and compare (a wrong ending fails at once). */
    bool final = status < 0 || dt__status_finished(status);
    Dtpb__InstanceStatus *s = wk_wait(env, id, final ? -1 : status, 30000);
    if (s == NULL) {
        fail_msg("instance %s did not reach status %d in time", id, status);
    }
    if (status >= 0) {
        assert_int_equal(s->runtime_status, status);
    }
    if (output != NULL) {
        assert_string_equal(wk_output(s), output);
    }
    dtpb__instance_status__free_unpacked(s, NULL);
}

/* Publishes m straight to its instance's partition subject (or `partition` when >= 0). */
static void publish_direct(wk_env *env, uint32_t partitions, int partition, dt__arena *a,
                           const Dtpb__OrchestrationMessage *m)
{
    size_t len = 0;
    uint8_t *data = dt__pack(a, &m->base, &len);
    assert_non_null(data);
    char tail[16], subject[DT_BROKER_NAME_BUF];
    uint32_t p =
        partition >= 0 ? (uint32_t)partition : dt__partition_of(m->instance_id, partitions);
    snprintf(tail, sizeof(tail), "%u", p);
    assert_int_equal(
        dt_broker_subject(env->hub, DT_BROKER_SUBJ_ORCH, tail, subject, sizeof(subject)), DT_OK);
    dt_broker_outmsg out = {.subject = subject, .data = data, .len = len};
    assert_int_equal(dt_broker_publish(env->broker, &out, NULL), DT_OK);
}

void wk_publish_raise(wk_env *env, uint32_t partitions, const char *instance_id, const char *name,
                      const char *data, const char *dedupe)
{
    dt__arena *a = dt__arena_create(0);
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    Dtpb__EventRaisedEvent *r = dt__arena_calloc(a, 1, sizeof(*r));
    assert_non_null(ev);
    assert_non_null(r);
    dtpb__event_raised_event__init(r);
    r->name = (char *)name;
    if (data != NULL) {
        r->input = dt__emit_payload(a, (const uint8_t *)data, strlen(data));
    }
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    ev->event_raised = r;
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, instance_id, "", ev, dedupe);
    publish_direct(env, partitions, -1, a, &m);
    dt__arena_destroy(a);
}

void wk_publish_rewind(wk_env *env, uint32_t partitions, const char *instance_id,
                       const char *reason, const char *dedupe)
{
    dt__arena *a = dt__arena_create(0);
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    Dtpb__ExecutionRewoundEvent *r = dt__arena_calloc(a, 1, sizeof(*r));
    assert_non_null(ev);
    assert_non_null(r);
    dtpb__execution_rewound_event__init(r);
    if (reason != NULL) {
        r->reason = dt__emit_payload(a, (const uint8_t *)reason, strlen(reason));
    }
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_REWOUND;
    ev->execution_rewound = r;
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, instance_id, "", ev, dedupe);
    publish_direct(env, partitions, -1, a, &m);
    dt__arena_destroy(a);
}

void wk_publish_start(wk_env *env, uint32_t partitions, const wk_direct_start *d)
{
    dt__arena *a = dt__arena_create(0);
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    Dtpb__ExecutionStartedEvent *s = dt__arena_calloc(a, 1, sizeof(*s));
    Dtpb__OrchestrationInstance *oi = dt__arena_calloc(a, 1, sizeof(*oi));
    assert_non_null(ev);
    assert_non_null(s);
    assert_non_null(oi);
    dtpb__execution_started_event__init(s);
    dtpb__orchestration_instance__init(oi);
    oi->instance_id = (char *)d->instance_id;
    oi->execution_id =
        dt__emit_payload(a, (const uint8_t *)d->execution_id, strlen(d->execution_id));
    s->name = (char *)d->name;
    s->orchestration_instance = oi;
    if (d->input != NULL) {
        s->input = dt__emit_payload(a, (const uint8_t *)d->input, strlen(d->input));
    }
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev->execution_started = s;
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, d->instance_id, d->execution_id, ev, d->dedupe_id);
    m.continued_as_new = d->continued_as_new;
    m.reuse_policy = (Dtpb__InstanceIdReusePolicy)d->reuse_policy;
    publish_direct(env, partitions, d->partition, a, &m);
    dt__arena_destroy(a);
}
