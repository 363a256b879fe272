/*
 * test_activity.h: helpers shared by the activity-pool integration tests (test_activity_*.c).
 * Include after <cmocka.h>. A test environment is a fresh hub on the suite's nats-server plus a
 * consumer on the hub's partition-0 subject, where the tests ask the pool to send results.
 */
#ifndef DT_TEST_ACTIVITY_H
#define DT_TEST_ACTIVITY_H

#include <pthread.h>
#include <stdlib.h>

#include "common_int.h"
#include "protocol/protocol_int.h"
#include "test_broker.h"
#include "worker/activity/activity_int.h"

typedef struct ta_env {
    dt_broker *b;
    char hub[64];
    char reply[DT_BROKER_NAME_BUF]; /* dt.<hub>.orch.0 */
    dt_broker_consumer *results;
    dt__arena *a; /* decoded results; freed by ta_env_close */
} ta_env;

/* Log lines of the pool, kept for assertions (thread-safe). */
typedef struct ta_log {
    pthread_mutex_t mu;
    char text[8192];
} ta_log;

static inline void ta_log_fn(dt_log_level level, const char *instance_id, const char *msg,
                             void *ctx)
{
    ta_log *l = ctx;
    (void)level;
    pthread_mutex_lock(&l->mu);
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof(l->text) - n, "[%s] %s\n", instance_id ? instance_id : "-", msg);
    pthread_mutex_unlock(&l->mu);
}

static inline bool ta_log_has(ta_log *l, const char *needle)
{
    pthread_mutex_lock(&l->mu);
    bool has = strstr(l->text, needle) != NULL;
    pthread_mutex_unlock(&l->mu);
    return has;
}

/* Opens an environment on a new hub (`c` NULL: defaults with memory storage). */
static inline void ta_env_open(ta_env *e, const dt_broker_hub_config *c)
{
    memset(e, 0, sizeof(*e));
    e->b = tb_connect();
    tb_hub(e->b, "act", c, e->hub, sizeof(e->hub));
    TB_EXPECT(dt_broker_subject(e->hub, DT_BROKER_SUBJ_ORCH, "0", e->reply, sizeof(e->reply)),
              DT_OK, "reply subject");
    char stream[DT_BROKER_NAME_BUF];
    dt_broker_stream_name(e->hub, DT_BROKER_STREAM_ORCH, stream, sizeof(stream));
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = "t_results";
    cc.filter_subject = e->reply;
    TB_EXPECT(dt_broker_consumer_open(e->b, &cc, &e->results), DT_OK, dt_broker_errmsg(e->b));
    e->a = dt__arena_create(0);
    assert_non_null(e->a);
}

static inline void ta_env_close(ta_env *e)
{
    dt_broker_consumer_close(e->results);
    tb_hub_delete(e->b, e->hub);
    dt_broker_close(e->b);
    dt__arena_destroy(e->a);
}

/* Starts a pool of `n` activities on hub e->hub. */
static inline dt__activity_pool *ta_pool(ta_env *e, const dt__activity_def *defs, size_t n,
                                         size_t threads, int64_t max_deliveries, int64_t timeout_ms,
                                         ta_log *log)
{
    dt__activity_pool_config c = {
        .broker = e->b,
        .hub = e->hub,
        .defs = defs,
        .n_defs = n,
        .threads_per_queue = threads,
        .max_deliveries = max_deliveries,
        .timeout_ms = timeout_ms,
        .log = log != NULL ? ta_log_fn : NULL,
        .log_ctx = log,
    };
    dt__activity_pool *p = NULL;
    char err[512] = "";
    TB_EXPECT(dt__activity_pool_start(&c, &p, err, sizeof(err)), DT_OK, err);
    return p;
}

/* The subject of task queue `queue` of the environment's hub. */
static inline void ta_act_subject(const ta_env *e, const char *queue, char *buf, size_t len)
{
    TB_EXPECT(dt_broker_subject(e->hub, DT_BROKER_SUBJ_ACT, queue, buf, len), DT_OK, "subject");
}

/* Publishes raw bytes to task queue `queue`. */
static inline void ta_publish_raw(ta_env *e, const char *queue, const void *data, size_t len)
{
    char subject[DT_BROKER_NAME_BUF];
    ta_act_subject(e, queue, subject, sizeof(subject));
    dt_broker_outmsg m = {.subject = subject, .data = data, .len = len};
    TB_EXPECT(dt_broker_publish(e->b, &m, NULL), DT_OK, dt_broker_errmsg(e->b));
}

/* Packs an ActivityRequest (input NULL: none) into malloc'd memory. */
static inline uint8_t *ta_pack_request(const ta_env *e, const char *instance, const char *name,
                                       int32_t task_id, const char *input, size_t *out_len)
{
    Dtpb__ActivityRequest r;
    dtpb__activity_request__init(&r);
    r.instance_id = (char *)instance;
    r.execution_id = "e1";
    r.name = (char *)name;
    r.task_id = task_id;
    r.reply_subject = (char *)e->reply;
    Dtpb__Payload in;
    dtpb__payload__init(&in);
    if (input != NULL) {
        in.value.data = (uint8_t *)input;
        in.value.len = strlen(input);
        r.input = &in;
    }
    size_t n = dtpb__activity_request__get_packed_size(&r);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    assert_non_null(buf);
    dtpb__activity_request__pack(&r, buf);
    *out_len = n;
    return buf;
}

/* Publishes an ActivityRequest (execution "e1", reply to partition 0) to `queue`. */
static inline void ta_request(ta_env *e, const char *queue, const char *instance, const char *name,
                              int32_t task_id, const char *input)
{
    size_t n = 0;
    uint8_t *buf = ta_pack_request(e, instance, name, task_id, input, &n);
    ta_publish_raw(e, queue, buf, n);
    free(buf);
}

/*
 * Fetches up to `want` results within timeout_ms, acks them and decodes them into e->a. Checks
 * that each message's Nats-Msg-Id equals its dedupe_id. Returns how many were fetched.
 */
static inline size_t ta_results(ta_env *e, Dtpb__OrchestrationMessage **out, size_t want,
                                int64_t timeout_ms)
{
    size_t got = 0;
    int64_t end = tb_now_ms() + timeout_ms;
    while (got < want && tb_now_ms() < end) {
        dt_broker_msg *m[64];
        size_t n = 0;
        size_t ask = want - got < 64 ? want - got : 64;
        TB_EXPECT(dt_broker_consumer_fetch(e->results, ask, 200, m, &n), DT_OK,
                  dt_broker_consumer_errmsg(e->results));
        for (size_t i = 0; i < n; i++) {
            Dtpb__OrchestrationMessage *om = NULL;
            TB_EXPECT(
                dt__orch_msg_decode(e->a, dt_broker_msg_data(m[i]), dt_broker_msg_len(m[i]), &om),
                DT_OK, "decode result");
            const char *id = NULL;
            TB_EXPECT(dt_broker_msg_header(m[i], DT_HDR_MSG_ID, &id), DT_OK, "Nats-Msg-Id");
            assert_string_equal(id, om->dedupe_id);
            out[got++] = om;
            TB_EXPECT(dt_broker_msg_ack(m[i]), DT_OK, "ack result");
            dt_broker_msg_destroy(m[i]);
        }
    }
    return got;
}

/* Exactly one result within timeout_ms. */
static inline Dtpb__OrchestrationMessage *ta_result(ta_env *e, int64_t timeout_ms)
{
    Dtpb__OrchestrationMessage *m = NULL;
    size_t n = ta_results(e, &m, 1, timeout_ms);
    if (n != 1) {
        fail_msg("no result within %lld ms", (long long)timeout_ms);
    }
    return m;
}

/* Asserts that no result arrives within ms. */
static inline void ta_no_result(ta_env *e, int64_t ms)
{
    Dtpb__OrchestrationMessage *m = NULL;
    assert_int_equal(ta_results(e, &m, 1, ms), 0);
}

/* Messages in stream `which` of the environment's hub. */
static inline uint64_t ta_stream_msgs(ta_env *e, dt_broker_stream which)
{
    char stream[DT_BROKER_NAME_BUF];
    dt_broker_stream_name(e->hub, which, stream, sizeof(stream));
    dt_broker_stream_info si;
    TB_EXPECT(dt_broker_stream_info_get(e->b, stream, &si), DT_OK, dt_broker_errmsg(e->b));
    return si.msgs;
}

/* Waits until stream `which` holds `want` messages (acks are applied asynchronously). */
static inline void ta_wait_stream_msgs(ta_env *e, dt_broker_stream which, uint64_t want,
                                       int64_t timeout_ms)
{
    int64_t end = tb_now_ms() + timeout_ms;
    while (ta_stream_msgs(e, which) != want && tb_now_ms() < end) {
        tb_sleep_ms(10);
    }
    assert_int_equal(ta_stream_msgs(e, which), want);
}

/* The TaskCompleted of a result (fails the test for anything else). */
static inline Dtpb__TaskCompletedEvent *ta_completed(Dtpb__OrchestrationMessage *m)
{
    assert_int_equal(m->event->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED);
    return m->event->task_completed;
}

static inline Dtpb__TaskFailedEvent *ta_failed(Dtpb__OrchestrationMessage *m)
{
    assert_int_equal(m->event->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED);
    assert_non_null(m->event->task_failed->failure_details);
    return m->event->task_failed;
}

#endif
