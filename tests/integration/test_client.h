/*
 * test_client.h: helpers shared by the client and query-service integration tests
 * (test_client_*.c, test_query_*.c, test_dtctl_*.c). Include after <cmocka.h>. Each test gets a
 * hub of its own (memory storage), deleted in its teardown.
 */
#ifndef DT_TEST_CLIENT_H
#define DT_TEST_CLIENT_H

#include <stdlib.h>

#include "arena_int.h"
#include "common_int.h"
#include "durabletask/client.h"
#include "protocol/protocol_int.h"
#include "test_broker.h"

typedef struct tc_fixture {
    dt_broker *b; /* the test's own connection, to look behind the client */
    dt_client *c;
    char hub[64];
    uint32_t partitions;
    dt_broker_kv *status_kv;
    dt_broker_consumer *orch; /* over the whole ORCH stream; opened on first use */
    dt__arena *a;             /* for decoded messages; freed in teardown */
} tc_fixture;

/* A fixture with a new hub of `partitions` partitions and `max_msg_size` (0: default). */
static inline tc_fixture *tc_fixture_new(const char *prefix, uint32_t partitions,
                                         uint32_t max_msg_size)
{
    tc_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->b = tb_connect();
    dt_broker_hub_config hc;
    dt_broker_hub_config_init(&hc);
    hc.storage = DT_BROKER_STORAGE_MEMORY;
    hc.partitions = partitions;
    if (max_msg_size > 0) {
        hc.max_msg_size = max_msg_size;
    }
    f->partitions = partitions;
    tb_hub(f->b, prefix, &hc, f->hub, sizeof(f->hub));
    char bucket[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_bucket_name(f->hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket)),
                     DT_OK);
    TB_EXPECT(dt_broker_kv_open(f->b, bucket, &f->status_kv), DT_OK, dt_broker_errmsg(f->b));
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = dt_test_nats_url();
    o.hub = f->hub;
    char err[256] = "";
    dt_status st = dt_client_create(&o, &f->c, err, sizeof(err));
    if (st != DT_OK) {
        fail_msg("client create: %s (%s)", dt_status_name(st), err);
    }
    f->a = dt__arena_create(0);
    assert_non_null(f->a);
    return f;
}

static inline void tc_fixture_free(tc_fixture *f)
{
    dt_client_destroy(f->c);
    dt_broker_consumer_close(f->orch);
    dt_broker_kv_close(f->status_kv);
    tb_hub_delete(f->b, f->hub);
    dt_broker_close(f->b);
    dt__arena_destroy(f->a);
    free(f);
}

/* Asserts a client call's status, showing the client's error text on failure. */
#define TC_EXPECT(f, call, want) TB_EXPECT(call, want, dt_client_errmsg((f)->c))

/* Fails unless the client's error text contains `needle`. */
static inline void tc_errmsg_has(tc_fixture *f, const char *needle)
{
    const char *m = dt_client_errmsg(f->c);
    char rep[256];
    if (strstr(m, needle) == NULL) {
        fail_msg("error message '%s' does not contain '%s'", m, needle);
    }
    if (dt_test_repeated_prefix(m, rep, sizeof(rep)) != NULL) {
        fail_msg("error message '%s' repeats its prefix '%s'", m, rep);
    }
}

/* Fetches the next message of the hub's ORCH stream (any partition) within timeout_ms, or
 * returns NULL when none comes. The caller destroys it. */
static inline dt_broker_msg *tc_fetch(tc_fixture *f, int64_t timeout_ms)
{
    if (f->orch == NULL) {
        char stream[DT_BROKER_NAME_BUF];
        dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ORCH, stream, sizeof(stream));
        dt_broker_consumer_config cc;
        dt_broker_consumer_config_init(&cc);
        cc.stream = stream;
        cc.durable = "test";
        TB_EXPECT(dt_broker_consumer_open(f->b, &cc, &f->orch), DT_OK, dt_broker_errmsg(f->b));
    }
    dt_broker_msg *m = NULL;
    size_t n = 0;
    TB_EXPECT(dt_broker_consumer_fetch(f->orch, 1, timeout_ms, &m, &n), DT_OK,
              dt_broker_consumer_errmsg(f->orch));
    if (n == 1) {
        dt_broker_msg_ack(m);
    }
    return n == 1 ? m : NULL;
}

/* Fetches one message, checks subject (partition of its instance) and Nats-Msg-Id against the
 * decoded dedupe_id, and returns the decoded message (fixture arena). */
static inline Dtpb__OrchestrationMessage *tc_fetch_orch(tc_fixture *f)
{
    dt_broker_msg *m = tc_fetch(f, 2000);
    if (m == NULL) {
        fail_msg("no message on the ORCH stream");
    }
    Dtpb__OrchestrationMessage *om = NULL;
    TB_EXPECT(dt__orch_msg_decode(f->a, dt_broker_msg_data(m), dt_broker_msg_len(m), &om), DT_OK,
              "decode");
    char subject[DT_BROKER_NAME_BUF], tail[16];
    snprintf(tail, sizeof(tail), "%u", dt__partition_of(om->instance_id, f->partitions));
    dt_broker_subject(f->hub, DT_BROKER_SUBJ_ORCH, tail, subject, sizeof(subject));
    assert_string_equal(dt_broker_msg_subject(m), subject);
    const char *msg_id = NULL;
    assert_int_equal(dt_broker_msg_header(m, "Nats-Msg-Id", &msg_id), DT_OK);
    assert_string_equal(msg_id, om->dedupe_id);
    dt_broker_msg_destroy(m);
    return om;
}

/* Messages stored in the hub's ORCH stream. */
static inline uint64_t tc_orch_count(tc_fixture *f)
{
    char stream[DT_BROKER_NAME_BUF];
    dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ORCH, stream, sizeof(stream));
    dt_broker_stream_info si;
    TB_EXPECT(dt_broker_stream_info_get(f->b, stream, &si), DT_OK, dt_broker_errmsg(f->b));
    return si.msgs;
}

static inline Dtpb__Payload *tc_payload(tc_fixture *f, const char *s)
{
    Dtpb__Payload *p = dt__arena_alloc(f->a, sizeof(*p));
    dtpb__payload__init(p);
    p->value.data = (uint8_t *)dt__arena_strdup(f->a, s);
    p->value.len = strlen(s);
    return p;
}

static inline Dtpb__Timestamp *tc_ts(tc_fixture *f, int64_t ms)
{
    Dtpb__Timestamp *t = dt__arena_alloc(f->a, sizeof(*t));
    dtpb__timestamp__init(t);
    t->seconds = ms / 1000;
    t->nanos = (int32_t)(ms % 1000) * 1000000;
    return t;
}

/* Writes a status record as a worker would (instance's key, packed InstanceStatus). */
static inline void tc_put_status(tc_fixture *f, const Dtpb__InstanceStatus *s)
{
    char key[3 * DT_INSTANCE_ID_MAX + 1];
    assert_int_equal(dt__status_key(s->instance_id, key, sizeof(key)), DT_OK);
    size_t len = 0;
    uint8_t *buf = dt__pack(f->a, &s->base, &len);
    TB_EXPECT(dt_broker_kv_put(f->status_kv, key, buf, len, NULL), DT_OK,
              dt_broker_kv_errmsg(f->status_kv));
}

/* A minimal record: instance, execution "exec-1", name "Orch", status. */
static inline void tc_put_simple(tc_fixture *f, const char *id, int32_t status)
{
    Dtpb__InstanceStatus s;
    dtpb__instance_status__init(&s);
    s.instance_id = (char *)id;
    s.execution_id = "exec-1";
    s.name = "Orch";
    s.runtime_status = (Dtpb__OrchestrationStatus)status;
    s.created_at = tc_ts(f, 1000);
    s.last_updated_at = tc_ts(f, 2000);
    tc_put_status(f, &s);
}

/* Reads and decodes the record (NULL when absent or deleted). */
static inline Dtpb__InstanceStatus *tc_get_status(tc_fixture *f, const char *id)
{
    char key[3 * DT_INSTANCE_ID_MAX + 1];
    assert_int_equal(dt__status_key(id, key, sizeof(key)), DT_OK);
    dt_broker_kv_entry e = {0};
    dt_status st = dt_broker_kv_get(f->status_kv, key, &e);
    if (st == DT_ENOTFOUND) {
        return NULL;
    }
    TB_EXPECT(st, DT_OK, dt_broker_kv_errmsg(f->status_kv));
    Dtpb__InstanceStatus *s = dtpb__instance_status__unpack(dt__arena_pb_allocator(f->a), e.len,
                                                            (const uint8_t *)e.value);
    dt_broker_kv_entry_clear(&e);
    assert_non_null(s);
    return s;
}

static inline void tc_assert_payload(const Dtpb__Payload *p, const char *want)
{
    if (want == NULL) {
        assert_null(p);
        return;
    }
    assert_non_null(p);
    assert_int_equal(p->value.len, strlen(want));
    assert_memory_equal(p->value.data, want, p->value.len);
}

/* cmocka state helpers: a default fixture (3 partitions). */
static inline int tc_setup(void **state)
{
    *state = tc_fixture_new("cli", 3, 0);
    return 0;
}

static inline int tc_teardown(void **state)
{
    tc_fixture_free(*state);
    return 0;
}

#endif
