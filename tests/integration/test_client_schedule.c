/*
 * dt_client_schedule against a real nats-server: the ExecutionStarted message it publishes
 * (every field, subject and Nats-Msg-Id), generated IDs, dedupe of a retried start, the PENDING
 * status record, reuse policies, size limits and argument validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_client.h"

/* True if s is a lowercase UUID v4 (8-4-4-4-12, version 4, RFC 4122 variant). */
static bool is_uuid_v4(const char *s)
{
    if (strlen(s) != 36) {
        return false;
    }
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
        if (dash ? s[i] != '-' : !hex) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* An execution ID: a v4 UUID's 32 hex digits without dashes (Guid.ToString("N")). */
static bool is_execution_id(const char *s)
{
    if (strlen(s) != 32) {
        return false;
    }
    for (int i = 0; i < 32; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[12] == '4' && strchr("89ab", s[16]) != NULL;
}

static void test_start_message_fields(void **state)
{
    tc_fixture *f = *state;
    const dt_client_tag tags[] = {{"team", "payments"}, {"env", "test"}};
    dt_client_start_options o = {.instance_id = "order-42",
                                 .input = "{\"n\":1}",
                                 .input_len = 7,
                                 .version = "1.2",
                                 .start_at_ms = 1700000000123,
                                 .tags = tags,
                                 .ntags = 2,
                                 .reuse_policy = DT_CLIENT_REUSE_REPLACE_IF_FINISHED,
                                 .result_subject = "results.order-42"};
    char id[DT_CLIENT_ID_BUF];
    int64_t before = dt__now_ms();
    TC_EXPECT(f, dt_client_schedule(f->c, "ProcessOrder", &o, id, sizeof(id)), DT_OK);
    int64_t after = dt__now_ms();
    assert_string_equal(id, "order-42");

    Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
    assert_string_equal(m->instance_id, "order-42");
    assert_true(is_execution_id(m->execution_id));
    /* A caller-chosen ID under a policy that may refuse: the identity names the state read (no
     * record: revision 0), so racing starts of the ID share it (test_client_reuse). */
    assert_string_equal(m->dedupe_id, "order-42/@0/start/0");
    assert_int_equal(m->reuse_policy,
                     DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_REPLACE_IF_FINISHED);
    assert_string_equal(m->result_subject, "results.order-42");

    Dtpb__HistoryEvent *ev = m->event;
    assert_int_equal(ev->event_id, -1);
    int64_t ts = ev->timestamp->seconds * 1000 + ev->timestamp->nanos / 1000000;
    assert_true(ts >= before && ts <= after);
    assert_int_equal(ev->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED);
    Dtpb__ExecutionStartedEvent *es = ev->execution_started;
    assert_string_equal(es->name, "ProcessOrder");
    tc_assert_payload(es->version, "1.2");
    tc_assert_payload(es->input, "{\"n\":1}");
    assert_string_equal(es->orchestration_instance->instance_id, "order-42");
    tc_assert_payload(es->orchestration_instance->execution_id, m->execution_id);
    assert_null(es->parent_instance);
    assert_int_equal(es->scheduled_start_timestamp->seconds, 1700000000);
    assert_int_equal(es->scheduled_start_timestamp->nanos, 123000000);
    assert_int_equal(es->n_tags, 2);
    assert_string_equal(es->tags[0]->key, "team");
    assert_string_equal(es->tags[0]->value, "payments");
    assert_string_equal(es->tags[1]->key, "env");

    /* The PENDING record written after the PubAck. */
    Dtpb__InstanceStatus *s = tc_get_status(f, "order-42");
    assert_non_null(s);
    assert_int_equal(s->runtime_status, DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING);
    assert_string_equal(s->execution_id, m->execution_id);
    assert_string_equal(s->name, "ProcessOrder");
    tc_assert_payload(s->input, "{\"n\":1}");
    tc_assert_payload(s->version, "1.2");
    /* The caller's two tags and the start's identity (for a retry; hidden from readers). */
    assert_int_equal(s->n_tags, 3);
    assert_string_equal(s->tags[2]->key, "dt.start_id");
    assert_string_equal(s->tags[2]->value, "order-42/@0/start/0");
    dt_client_instance *inst = NULL;
    TC_EXPECT(f, dt_client_get_status(f->c, "order-42", false, &inst), DT_OK);
    assert_int_equal(inst->ntags, 2);
    dt_client_instance_free(inst);
    assert_null(tc_fetch(f, 100));
}

static void test_minimal_start_has_no_optional_fields(void **state)
{
    tc_fixture *f = *state;
    TC_EXPECT(f, dt_client_schedule(f->c, "Hello", NULL, NULL, 0), DT_OK);
    Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
    assert_true(is_uuid_v4(m->instance_id));
    Dtpb__ExecutionStartedEvent *es = m->event->execution_started;
    assert_null(es->input);
    assert_null(es->version);
    assert_null(es->scheduled_start_timestamp);
    assert_int_equal(es->n_tags, 0);
    assert_int_equal(m->reuse_policy, DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR);
    assert_string_equal(m->result_subject, "");
    /* An empty input is present, unlike none. */
    dt_client_start_options o = {.input = "", .input_len = 0};
    TC_EXPECT(f, dt_client_schedule(f->c, "Hello", &o, NULL, 0), DT_OK);
    m = tc_fetch_orch(f);
    tc_assert_payload(m->event->execution_started->input, "");
}

static void test_generated_ids_valid_and_unique(void **state)
{
    tc_fixture *f = *state;
    enum { N = 16 };
    char ids[N][DT_CLIENT_ID_BUF];
    for (int i = 0; i < N; i++) {
        TC_EXPECT(f, dt_client_schedule(f->c, "Gen", NULL, ids[i], sizeof(ids[i])), DT_OK);
        assert_true(is_uuid_v4(ids[i]));
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(ids[i], ids[j]);
        }
    }
    char execs[N][64];
    for (int i = 0; i < N; i++) {
        Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
        assert_true(is_execution_id(m->execution_id));
        snprintf(execs[i], sizeof(execs[i]), "%s", m->execution_id);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(execs[i], execs[j]);
        }
    }
}

static void test_retried_start_is_deduplicated(void **state)
{
    tc_fixture *f = *state;
    dt_client_start_options o = {.instance_id = "retry-1", .execution_id = "exec-fixed"};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_OK);
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_OK);
    assert_int_equal(tc_orch_count(f), 1);
    Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
    assert_string_equal(m->dedupe_id, "retry-1/@0/start/0");
    /* The retry found this start's PENDING record and sent the identity it holds. */
    Dtpb__InstanceStatus *s = tc_get_status(f, "retry-1");
    assert_non_null(s);
    assert_string_equal(s->execution_id, "exec-fixed");
    /* Another execution ID is another start, refused by the default policy. */
    dt_client_start_options other = {.instance_id = "retry-1", .execution_id = "exec-other"};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &other, NULL, 0), DT_EEXIST);
}

static void test_reuse_policies(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "busy", DT_CLIENT_RUNNING);
    tc_put_simple(f, "done", DT_CLIENT_COMPLETED);

    dt_client_start_options o = {.instance_id = "busy"};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_EEXIST);
    tc_errmsg_has(f, "instance 'busy' already exists (status RUNNING)");
    o.reuse_policy = DT_CLIENT_REUSE_REPLACE_IF_FINISHED;
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_EEXIST);
    o.instance_id = "done";
    o.reuse_policy = DT_CLIENT_REUSE_ERROR;
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_EEXIST);
    tc_errmsg_has(f, "(status COMPLETED)");
    assert_int_equal(tc_orch_count(f), 0);

    /* Replacing a finished instance: published, and the record becomes the new PENDING one. */
    o.reuse_policy = DT_CLIENT_REUSE_REPLACE_IF_FINISHED;
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch2", &o, NULL, 0), DT_OK);
    Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
    Dtpb__InstanceStatus *s = tc_get_status(f, "done");
    assert_int_equal(s->runtime_status, DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING);
    assert_string_equal(s->execution_id, m->execution_id);
    assert_string_equal(s->name, "Orch2");

    /* Terminate-and-replace of a running one: published; the worker's record is left alone. */
    o.instance_id = "busy";
    o.reuse_policy = DT_CLIENT_REUSE_TERMINATE_AND_REPLACE;
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_OK);
    m = tc_fetch_orch(f);
    assert_int_equal(m->reuse_policy,
                     DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_TERMINATE_AND_REPLACE);
    s = tc_get_status(f, "busy");
    assert_int_equal(s->runtime_status, DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING);
    assert_string_equal(s->execution_id, "exec-1");
}

static void test_too_large(void **state)
{
    (void)state;
    tc_fixture *f = tc_fixture_new("clibig", 2, 8192);
    size_t n = 8192 - 1024 + 1;
    char *big = calloc(1, n);
    memset(big, 'x', n);
    dt_client_start_options o = {.instance_id = "big", .input = big, .input_len = n};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_ETOOLARGE);
    tc_errmsg_has(f, "exceeds the hub's limit");
    assert_int_equal(tc_orch_count(f), 0);
    assert_null(tc_get_status(f, "big"));
    o.input_len = 4000;
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_OK);
    assert_int_equal(tc_orch_count(f), 1);
    free(big);
    tc_fixture_free(f);
}

static void test_invalid_arguments(void **state)
{
    tc_fixture *f = *state;
    char long_id[DT_CLIENT_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    const char *bad_ids[] = {"", "has space", "tab\there", "caf\xc3\xa9", long_id};
    for (size_t i = 0; i < DT__ARRAY_LEN(bad_ids); i++) {
        dt_client_start_options o = {.instance_id = bad_ids[i]};
        TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_EINVAL);
        tc_errmsg_has(f, "invalid instance ID");
    }
    char long_name[DT_CLIENT_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const char *bad_names[] = {"", "a.b", "a b", "a*", ">", long_name};
    for (size_t i = 0; i < DT__ARRAY_LEN(bad_names); i++) {
        TC_EXPECT(f, dt_client_schedule(f->c, bad_names[i], NULL, NULL, 0), DT_EINVAL);
        tc_errmsg_has(f, "invalid orchestration name");
    }
    TC_EXPECT(f, dt_client_schedule(f->c, NULL, NULL, NULL, 0), DT_EINVAL);
    char small[8];
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, small, sizeof(small)), DT_EINVAL);
    dt_client_start_options o = {.reuse_policy = (dt_client_reuse_policy)7};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_EINVAL);
    dt_client_start_options sub = {.result_subject = "has space"};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &sub, NULL, 0), DT_EINVAL);
    dt_client_tag tag = {"", "v"};
    dt_client_start_options tg = {.tags = &tag, .ntags = 1};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &tg, NULL, 0), DT_EINVAL);
    tag = (dt_client_tag){"dt.start_id", "mine"}; /* reserved: readers would drop it */
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &tg, NULL, 0), DT_EINVAL);
    tc_errmsg_has(f, "reserved");
    assert_int_equal(tc_orch_count(f), 0);
}

static void test_no_hub(void **state)
{
    (void)state;
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = dt_test_nats_url();
    o.hub = "no_such_hub_for_client_tests";
    dt_client *c = NULL;
    assert_int_equal(dt_client_create(&o, &c, NULL, 0), DT_OK);
    assert_int_equal(dt_client_schedule(c, "Orch", NULL, NULL, 0), DT_ENOTFOUND);
    assert_non_null(strstr(dt_client_errmsg(c), "no task hub"));
    dt_client_destroy(c);
    o.hub = "bad.hub";
    char err[128] = "";
    assert_int_equal(dt_client_create(&o, &c, err, sizeof(err)), DT_EINVAL);
    assert_true(err[0] != '\0');
}

/* The examples of docs/protocol.md (partition hash and status keys) hold. */
static void test_protocol_doc_examples(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        uint32_t p4, p16;
    } parts[] = {{"a", 0, 12},
                 {"order-1", 1, 13},
                 {"customer/42", 0, 0},
                 {"8c6f4c3e-6c1b-4b53-9d4c-0a4b5e8f1e2d", 2, 10}};
    for (size_t i = 0; i < DT__ARRAY_LEN(parts); i++) {
        assert_int_equal(dt__partition_of(parts[i].id, 4), parts[i].p4);
        assert_int_equal(dt__partition_of(parts[i].id, 16), parts[i].p16);
    }
    static const char *const keys[][2] = {{"order-42", "order-42"}, {"customer/42", "customer/42"},
                                          {"a.b", "a=2Eb"},         {"x=y", "x=3Dy"},
                                          {"k:1", "k=3A1"},         {"caf\xc3\xa9", "caf=C3=A9"}};
    for (size_t i = 0; i < DT__ARRAY_LEN(keys); i++) {
        char key[64];
        assert_int_equal(dt__status_key(keys[i][0], key, sizeof(key)), DT_OK);
        assert_string_equal(key, keys[i][1]);
    }
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_message_fields, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_minimal_start_has_no_optional_fields, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_generated_ids_valid_and_unique, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_retried_start_is_deduplicated, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_reuse_policies, tc_setup, tc_teardown),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, tc_setup, tc_teardown),
        cmocka_unit_test(test_no_hub),
        cmocka_unit_test(test_protocol_doc_examples),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
