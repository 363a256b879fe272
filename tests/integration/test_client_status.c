/*
 * Status reads and waits against a real nats-server: every field of a status record with and
 * without payloads, unknown instances, and waits that wake as soon as another thread writes
 * the record (a KV watch), time out otherwise, and notice a purge.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_client.h"

static void put_full(tc_fixture *f, const char *id)
{
    Dtpb__TaskFailureDetails inner, outer;
    dtpb__task_failure_details__init(&inner);
    inner.error_type = "IOError";
    inner.error_message = "disk full";
    dtpb__task_failure_details__init(&outer);
    outer.error_type = "dt.TaskFailed";
    outer.error_message = "activity Save failed";
    outer.stack_trace = tc_payload(f, "at save()");
    outer.inner_failure = &inner;
    outer.is_non_retriable = true;
    Dtpb__InstanceStatus__TagsEntry t0, t1;
    dtpb__instance_status__tags_entry__init(&t0);
    t0.key = "team";
    t0.value = "core";
    dtpb__instance_status__tags_entry__init(&t1);
    t1.key = "k";
    t1.value = "";
    Dtpb__InstanceStatus__TagsEntry *tags[] = {&t0, &t1};
    Dtpb__InstanceStatus s;
    dtpb__instance_status__init(&s);
    s.instance_id = (char *)id;
    s.name = "Save";
    s.execution_id = "exec-9";
    s.runtime_status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED;
    s.created_at = tc_ts(f, 1700000000001);
    s.last_updated_at = tc_ts(f, 1700000000999);
    s.input = tc_payload(f, "{\"in\":1}");
    s.output = tc_payload(f, "");
    s.custom_status = tc_payload(f, "\"halfway\"");
    s.failure_details = &outer;
    s.version = tc_payload(f, "2.0");
    s.parent_instance_id = "parent-1";
    s.n_tags = 2;
    s.tags = tags;
    tc_put_status(f, &s);
}

static void test_get_status_fields(void **state)
{
    tc_fixture *f = *state;
    put_full(f, "full.1");
    dt_client_instance *st = NULL;
    TC_EXPECT(f, dt_client_get_status(f->c, "full.1", true, &st), DT_OK);
    assert_string_equal(st->instance_id, "full.1");
    assert_string_equal(st->name, "Save");
    assert_string_equal(st->execution_id, "exec-9");
    assert_string_equal(st->version, "2.0");
    assert_int_equal(st->runtime_status, DT_CLIENT_FAILED);
    assert_int_equal(st->created_at_ms, 1700000000001);
    assert_int_equal(st->last_updated_at_ms, 1700000000999);
    assert_string_equal(st->parent_instance_id, "parent-1");
    assert_int_equal(st->input_len, 8);
    assert_string_equal(st->input, "{\"in\":1}");
    assert_non_null(st->output); /* present and empty */
    assert_int_equal(st->output_len, 0);
    assert_string_equal(st->custom_status, "\"halfway\"");
    assert_non_null(st->failure);
    assert_string_equal(st->failure->type, "dt.TaskFailed");
    assert_string_equal(st->failure->message, "activity Save failed");
    assert_string_equal(st->failure->stack_trace, "at save()");
    assert_true(st->failure->non_retriable);
    assert_string_equal(st->failure->inner->type, "IOError");
    assert_null(st->failure->inner->inner);
    assert_null(st->failure->inner->stack_trace);
    assert_int_equal(st->ntags, 2);
    assert_string_equal(st->tags[0].key, "team");
    assert_string_equal(st->tags[0].value, "core");
    assert_string_equal(st->tags[1].value, "");
    dt_client_instance_free(st);

    TC_EXPECT(f, dt_client_get_status(f->c, "full.1", false, &st), DT_OK);
    assert_null(st->input);
    assert_null(st->output);
    assert_null(st->custom_status);
    assert_int_equal(st->input_len, 0);
    assert_non_null(st->failure); /* failure details are not a payload */
    assert_string_equal(st->name, "Save");
    dt_client_instance_free(st);

    dt_client_instance_free(NULL);
}

static void test_get_status_minimal_and_unknown(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "min", DT_CLIENT_RUNNING);
    dt_client_instance *st = NULL;
    TC_EXPECT(f, dt_client_get_status(f->c, "min", true, &st), DT_OK);
    assert_null(st->version);
    assert_null(st->parent_instance_id);
    assert_null(st->input);
    assert_null(st->failure);
    assert_null(st->tags);
    assert_int_equal(st->runtime_status, DT_CLIENT_RUNNING);
    dt_client_instance_free(st);
    TC_EXPECT(f, dt_client_get_status(f->c, "nobody", true, &st), DT_ENOTFOUND);
    tc_errmsg_has(f, "no instance 'nobody'");
    TC_EXPECT(f, dt_client_get_status(f->c, "bad id", true, &st), DT_EINVAL);
}

/* A thread that writes a status record after a delay, on its own connection. */
typedef struct writer {
    tc_fixture *f;
    const char *id;
    int32_t status;
    int64_t delay_ms;
    bool purge;
    bool failed; /* cmocka asserts only on the test's thread: the thread records, main checks */
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    tb_sleep_ms(w->delay_ms);
    dt_broker *b = tb_connect();
    char bucket[DT_BROKER_NAME_BUF], key[3 * DT_INSTANCE_ID_MAX + 1];
    dt_broker_bucket_name(w->f->hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket));
    dt__status_key(w->id, key, sizeof(key));
    dt_broker_kv *kv = NULL;
    if (dt_broker_kv_open(b, bucket, &kv) != DT_OK) {
        w->failed = true;
    } else if (w->purge) {
        w->failed = dt_broker_kv_delete(kv, key, 0) != DT_OK;
    } else {
        Dtpb__InstanceStatus s;
        dtpb__instance_status__init(&s);
        s.instance_id = (char *)w->id;
        s.execution_id = "exec-1";
        s.name = "Orch";
        s.runtime_status = (Dtpb__OrchestrationStatus)w->status;
        uint8_t buf[256];
        size_t len = dtpb__instance_status__pack(&s, buf);
        w->failed = dt_broker_kv_put(kv, key, buf, len, NULL) != DT_OK;
    }
    dt_broker_kv_close(kv);
    dt_broker_close(b);
    return NULL;
}

static void test_wait_for_completion_wakes(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "w1", DT_CLIENT_RUNNING);
    writer w = {.f = f, .id = "w1", .status = DT_CLIENT_COMPLETED, .delay_ms = 300};
    pthread_t th;
    pthread_create(&th, NULL, writer_main, &w);
    int64_t t0 = tb_now_ms();
    dt_client_instance *st = NULL;
    TC_EXPECT(f, dt_client_wait_for_completion(f->c, "w1", 20000, false, &st), DT_OK);
    int64_t took = tb_now_ms() - t0;
    pthread_join(th, NULL);
    assert_false(w.failed);
    assert_int_equal(st->runtime_status, DT_CLIENT_COMPLETED);
    dt_client_instance_free(st);
    assert_true(took >= 250);
    if (took > 1500) {
        fail_msg("wait woke after %lld ms, the update came after 300 ms", (long long)took);
    }
    /* Already finished: returns at once, even with no time to wait. */
    TC_EXPECT(f, dt_client_wait_for_completion(f->c, "w1", 0, false, NULL), DT_OK);
}

static void test_wait_for_start_wakes(void **state)
{
    tc_fixture *f = *state;
    TC_EXPECT(
        f,
        dt_client_schedule(f->c, "Orch", &(dt_client_start_options){.instance_id = "s1"}, NULL, 0),
        DT_OK);
    TC_EXPECT(f, dt_client_wait_for_start(f->c, "s1", 0, false, NULL), DT_ETIMEOUT);
    tc_errmsg_has(f, "(status PENDING)");
    writer w = {.f = f, .id = "s1", .status = DT_CLIENT_RUNNING, .delay_ms = 200};
    pthread_t th;
    pthread_create(&th, NULL, writer_main, &w);
    dt_client_instance *st = NULL;
    int64_t t0 = tb_now_ms();
    TC_EXPECT(f, dt_client_wait_for_start(f->c, "s1", 20000, true, &st), DT_OK);
    assert_true(tb_now_ms() - t0 < 1500);
    pthread_join(th, NULL);
    assert_false(w.failed);
    assert_int_equal(st->runtime_status, DT_CLIENT_RUNNING);
    dt_client_instance_free(st);
}

static void test_wait_times_out(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "slow", DT_CLIENT_RUNNING);
    int64_t t0 = tb_now_ms();
    dt_client_instance *st = NULL;
    TC_EXPECT(f, dt_client_wait_for_completion(f->c, "slow", 300, false, &st), DT_ETIMEOUT);
    int64_t took = tb_now_ms() - t0;
    assert_true(took >= 290 && took < 3000);
    tc_errmsg_has(f, "did not complete within 300 ms (status RUNNING)");
    /* An intermediate update (suspended) does not end the wait. */
    writer w = {.f = f, .id = "slow", .status = DT_CLIENT_SUSPENDED, .delay_ms = 50};
    pthread_t th;
    pthread_create(&th, NULL, writer_main, &w);
    TC_EXPECT(f, dt_client_wait_for_completion(f->c, "slow", 500, false, NULL), DT_ETIMEOUT);
    pthread_join(th, NULL);
    assert_false(w.failed);
    tc_errmsg_has(f, "(status SUSPENDED)");
    TC_EXPECT(f, dt_client_wait_for_completion(f->c, "nobody", 100, false, NULL), DT_ENOTFOUND);
}

static void test_wait_sees_purge(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "gone", DT_CLIENT_RUNNING);
    writer w = {.f = f, .id = "gone", .delay_ms = 100, .purge = true};
    pthread_t th;
    pthread_create(&th, NULL, writer_main, &w);
    TC_EXPECT(f, dt_client_wait_for_completion(f->c, "gone", 10000, false, NULL), DT_ENOTFOUND);
    pthread_join(th, NULL);
    assert_false(w.failed);
    tc_errmsg_has(f, "was purged");
}

static void test_status_names(void **state)
{
    (void)state;
    dt_client_runtime_status s;
    assert_int_equal(dt_client_runtime_status_parse("terminated", &s), DT_OK);
    assert_int_equal(s, DT_CLIENT_TERMINATED);
    assert_int_equal(dt_client_runtime_status_parse("Continued_As_New", &s), DT_OK);
    assert_int_equal(s, DT_CLIENT_CONTINUED_AS_NEW);
    assert_int_equal(dt_client_runtime_status_parse("bogus", &s), DT_EINVAL);
    assert_string_equal(dt_client_runtime_status_name(DT_CLIENT_PENDING), "PENDING");
    assert_string_equal(dt_client_runtime_status_name((dt_client_runtime_status)42), "UNKNOWN");
    assert_true(dt_client_runtime_status_finished(DT_CLIENT_CANCELED));
    assert_false(dt_client_runtime_status_finished(DT_CLIENT_SUSPENDED));
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_status_fields, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_get_status_minimal_and_unknown, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_completion_wakes, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_start_wakes, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_wait_times_out, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_wait_sees_purge, tc_setup, tc_teardown),
        cmocka_unit_test(test_status_names),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
