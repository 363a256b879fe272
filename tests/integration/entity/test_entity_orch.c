/*
 * test_entity_orch: entities from orchestrations against nats-server: signal and call (result,
 * failure, an unregistered entity name failing the orchestration non-retriably), critical
 * sections (locks released when the holder completes, fails or is terminated), and many
 * concurrent transfers between the same accounts: every one completes (no deadlock) and the
 * total is conserved, each balance exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "entity_funcs.h"
#include "protocol_int.h"
#include "worker_kit.h"

#define PARTITIONS 4
#define LEASE_TTL  2000
#define WAIT_MS    60000

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_client *c;
} fixture;

/* ---- orchestrations ---- */

/* Calls counter(input) add 5, then get; signals counter(input + "-sig") add 1; output: the get. */
static void call_counter(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *key = dt_orch_input(ctx, NULL);
    char sig[64];
    snprintf(sig, sizeof(sig), "%s-sig", key);
    dt_await(ctx, dt_call_entity(ctx, "counter", key, "add", "5", 1), NULL);
    size_t len = 0;
    const void *v = dt_await(ctx, dt_call_entity(ctx, "counter", key, "get", NULL, 0), &len);
    dt_signal_entity(ctx, "counter", sig, "add", "1", 1, 0);
    dt_task *bad = dt_call_entity(ctx, "counter", key, "fail", NULL, 0);
    if (dt_try_await(ctx, bad) == DT_OK) {
        dt_orch_fail(ctx, "Unexpected", "the failing operation succeeded", NULL);
    }
    dt_orch_set_output(ctx, v, len);
}

static void call_unknown(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_entity(ctx, "nosuch", "k", "get", NULL, 0), NULL);
}

/* "<from> <to> <amount>": moves amount between two accounts inside a critical section. */
static void transfer(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char from[32], to[32];
    long amount = 0;
    if (sscanf(dt_orch_input(ctx, NULL), "%31s %31s %ld", from, to, &amount) != 3) {
        dt_orch_fail(ctx, "BadInput", "expected '<from> <to> <amount>'", NULL);
    }
    dt_entity_ref set[2] = {{"account", from}, {"account", to}};
    dt_await(ctx, dt_lock_entities(ctx, set, 2), NULL);
    assert_true(dt_in_critical_section(ctx));
    char amt[32];
    int n = snprintf(amt, sizeof(amt), "%ld", amount);
    dt_task *w = dt_call_entity(ctx, "account", from, "withdraw", amt, (size_t)n);
    bool ok = dt_try_await(ctx, w) == DT_OK;
    if (ok) {
        dt_await(ctx, dt_call_entity(ctx, "account", to, "deposit", amt, (size_t)n), NULL);
    }
    dt_unlock_entities(ctx);
    dt_orch_set_output(ctx, ok ? "moved" : "refused", ok ? 5 : 7);
}

/* Locks account(input), then fails (or, with input "<key> wait", waits for an event forever). */
static void lock_then_end(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    char key[32], how[16] = "";
    sscanf(dt_orch_input(ctx, NULL), "%31s %15s", key, how);
    dt_entity_ref one = {"account", key};
    dt_await(ctx, dt_lock_entities(ctx, &one, 1), NULL);
    dt_await(ctx, dt_call_entity(ctx, "account", key, "deposit", "1", 1), NULL);
    if (strcmp(how, "wait") == 0) {
        dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
    }
    dt_orch_fail(ctx, "Boom", "failed while holding a lock", NULL);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "ento", PARTITIONS, LEASE_TTL);
    dt_worker_options o = wk_options(&f->env);
    char err[256];
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_entity(f->w, "counter", ef_counter, NULL), DT_OK);
    assert_int_equal(dt_worker_add_entity(f->w, "account", ef_account, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "call_counter", call_counter, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "call_unknown", call_unknown, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "transfer", transfer, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "lock_then_end", lock_then_end, NULL), DT_OK);
    assert_int_equal(dt_worker_start(f->w), DT_OK);
    f->c = wk_client(&f->env);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_worker_destroy(f->w);
    dt_client_destroy(f->c);
    wk_teardown(&f->env);
    free(f);
    return 0;
}

static void start(fixture *f, const char *name, const char *id, const char *input)
{
    dt_client_start_options o;
    dt_client_start_options_init(&o);
    o.instance_id = id;
    o.input = input;
    o.input_len = strlen(input);
    char out[300];
    if (dt_client_schedule(f->c, name, &o, out, sizeof(out)) != DT_OK) {
        fail_msg("start %s: %s", id, dt_client_errmsg(f->c));
    }
}

static dt_client_instance *finish(fixture *f, const char *id)
{
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_wait_for_completion(f->c, id, WAIT_MS, true, &inst);
    if (st != DT_OK) {
        fail_msg("wait %s: %s", id, dt_client_errmsg(f->c));
    }
    return inst;
}

static long balance(fixture *f, const char *key)
{
    dt_entity_metadata *m = NULL;
    dt_status st = dt_client_get_entity(f->c, "account", key, true, &m);
    if (st == DT_ENOTFOUND) {
        return 0;
    }
    assert_int_equal(st, DT_OK);
    assert_non_null(m->state);
    long v = strtol(m->state, NULL, 10);
    assert_null(m->locked_by);
    dt_entity_metadata_free(m);
    return v;
}

/* Deposits through a call from an orchestration-free path: a client signal, then waits. */
static void fund(fixture *f, const char *key, long amount)
{
    char amt[32];
    int n = snprintf(amt, sizeof(amt), "%ld", amount);
    assert_int_equal(dt_client_signal_entity(f->c, "account", key, "deposit", amt, (size_t)n, NULL),
                     DT_OK);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void expect_balance(fixture *f, const char *key, long want)
{
    long got = -1;
    for (int64_t waited = 0; waited < WAIT_MS; waited += 50) {
        dt_entity_metadata *m = NULL;
        dt_status st = dt_client_get_entity(f->c, "account", key, true, &m);
        if (st == DT_OK) {
            got = m->state != NULL ? strtol(m->state, NULL, 10) : -1; /* locked, no state yet */
            bool unlocked = m->locked_by == NULL;
            dt_entity_metadata_free(m);
            if (got == want && unlocked) {
                return;
            }
        }
        sleep_ms(50);
    }
    fail_msg("account %s has %ld, expected %ld (or stays locked)", key, got, want);
}

/* ---- tests ---- */

static void test_call_and_signal(void **state)
{
    fixture *f = *state;
    start(f, "call_counter", "cc-1", "x");
    dt_client_instance *inst = finish(f, "cc-1");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_memory_equal(inst->output, "5", 1);
    dt_client_instance_free(inst);
    dt_entity_metadata *m = NULL;
    for (int i = 0; i < 200 && dt_client_get_entity(f->c, "counter", "x-sig", true, &m) != DT_OK;
         i++) {
        sleep_ms(50);
    }
    assert_non_null(m);
    assert_memory_equal(m->state, "1", 1);
    dt_entity_metadata_free(m);
}

static void test_call_unknown_entity_fails_orchestration(void **state)
{
    fixture *f = *state;
    start(f, "call_unknown", "cu-1", "");
    dt_client_instance *inst = finish(f, "cu-1");
    assert_int_equal(inst->runtime_status, DT_CLIENT_FAILED);
    const dt_failure *fl = inst->failure;
    assert_non_null(fl);
    assert_non_null(fl->inner);
    assert_string_equal(fl->inner->type, "dt.UnknownEntity");
    assert_true(fl->inner->non_retriable);
    assert_non_null(strstr(fl->inner->message, "'nosuch'"));
    dt_client_instance_free(inst);
}

static void test_lock_released_on_failure_and_terminate(void **state)
{
    fixture *f = *state;
    start(f, "lock_then_end", "lf-1", "held1 fail");
    dt_client_instance *inst = finish(f, "lf-1");
    assert_int_equal(inst->runtime_status, DT_CLIENT_FAILED);
    dt_client_instance_free(inst);
    expect_balance(f, "held1", 1); /* unlocked again */
    fund(f, "held1", 10);          /* and serves others */
    expect_balance(f, "held1", 11);

    start(f, "lock_then_end", "lw-1", "held2 wait");
    dt_entity_metadata *m = NULL;
    bool locked = false;
    for (int i = 0; i < 400 && !locked; i++) {
        if (dt_client_get_entity(f->c, "account", "held2", false, &m) == DT_OK) {
            locked = m->locked_by != NULL && strcmp(m->locked_by, "lw-1") == 0;
            dt_entity_metadata_free(m);
        }
        sleep_ms(50);
    }
    assert_true(locked);
    fund(f, "held2", 10); /* waits for the lock */
    sleep_ms(300);
    assert_int_equal(dt_client_get_entity(f->c, "account", "held2", true, &m), DT_OK);
    assert_int_equal(m->backlog_queue_size, 1);
    assert_memory_equal(m->state, "1", 1);
    dt_entity_metadata_free(m);
    assert_int_equal(dt_client_terminate(f->c, "lw-1", "enough", false), DT_OK);
    inst = finish(f, "lw-1");
    assert_int_equal(inst->runtime_status, DT_CLIENT_TERMINATED);
    dt_client_instance_free(inst);
    expect_balance(f, "held2", 11); /* released; the queued deposit ran */
}

#define ACCOUNTS  4
#define TRANSFERS 40

static void test_concurrent_transfers_conserve_total(void **state)
{
    fixture *f = *state;
    long expect[ACCOUNTS];
    char key[16];
    for (int i = 0; i < ACCOUNTS; i++) {
        snprintf(key, sizeof(key), "acc%d", i);
        fund(f, key, 1000);
        expect[i] = 1000;
    }
    for (int i = 0; i < ACCOUNTS; i++) {
        snprintf(key, sizeof(key), "acc%d", i);
        expect_balance(f, key, 1000);
    }
    /* Transfers in both directions between the same pairs, all at once. */
    for (int t = 0; t < TRANSFERS; t++) {
        int from = t % ACCOUNTS, to = (t * 7 + 1) % ACCOUNTS;
        if (to == from) {
            to = (to + 1) % ACCOUNTS;
        }
        long amount = 10 + t;
        expect[from] -= amount;
        expect[to] += amount;
        char id[32], in[64];
        snprintf(id, sizeof(id), "tr-%d", t);
        snprintf(in, sizeof(in), "acc%d acc%d %ld", from, to, amount);
        start(f, "transfer", id, in);
    }
    for (int t = 0; t < TRANSFERS; t++) {
        char id[32];
        snprintf(id, sizeof(id), "tr-%d", t);
        dt_client_instance *inst = finish(f, id);
        assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
        assert_memory_equal(inst->output, "moved", 5);
        dt_client_instance_free(inst);
    }
    long total = 0;
    for (int i = 0; i < ACCOUNTS; i++) {
        snprintf(key, sizeof(key), "acc%d", i);
        /* A transfer completes when its orchestration does; the unlock its critical section
         * sends at the end may still be on its way to the account, so wait for the lock to go. */
        expect_balance(f, key, expect[i]);
        long b = balance(f, key);
        assert_int_equal(b, expect[i]);
        total += b;
    }
    assert_int_equal(total, 1000 * ACCOUNTS);
}

static size_t count_entities(fixture *f, const char *name, bool empty, size_t page, int64_t from)
{
    dt_entity_query q;
    dt_entity_query_init(&q);
    q.name = name;
    q.include_empty = empty;
    q.include_state = true;
    q.page_size = page;
    q.last_modified_from_ms = from;
    size_t total = 0;
    char *tok = NULL;
    do {
        q.page_token = tok;
        dt_entity_page *pg = NULL;
        assert_int_equal(dt_client_query_entities(f->c, &q, &pg), DT_OK);
        assert_true(pg->n <= page);
        for (size_t i = 0; i < pg->n; i++) {
            assert_true(!pg->entities[i].has_state || pg->entities[i].state != NULL);
        }
        total += pg->n;
        free(tok);
        tok = pg->next_token != NULL ? strdup(pg->next_token) : NULL;
        dt_entity_page_free(pg);
    } while (tok != NULL);
    return total;
}

/* A lock request from an orchestration that never existed (as a purged holder would leave). */
static void publish_ghost_lock(fixture *f, const char *entity_id)
{
    Dtpb__EntityLockRequestedEvent l = DTPB__ENTITY_LOCK_REQUESTED_EVENT__INIT;
    Dtpb__Payload parent = DTPB__PAYLOAD__INIT;
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    char *set[1] = {(char *)entity_id};
    parent.value.data = (uint8_t *)"ghost";
    parent.value.len = 5;
    l.critical_section_id = "ghost/x/elock/0";
    l.lock_set = set;
    l.n_lock_set = 1;
    l.parent_instance_id = &parent;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED;
    ev.entity_lock_requested = &l;
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, entity_id, "", &ev, "ghost-lock-1");
    uint8_t buf[512];
    size_t len = dtpb__orchestration_message__pack(&m, buf);
    char tail[16], subject[DT_BROKER_NAME_BUF];
    snprintf(tail, sizeof(tail), "%u", dt__partition_of(entity_id, PARTITIONS));
    assert_int_equal(
        dt_broker_subject(f->env.hub, DT_BROKER_SUBJ_ORCH, tail, subject, sizeof(subject)), DT_OK);
    dt_broker_outmsg out = {.subject = subject, .data = buf, .len = len};
    assert_int_equal(dt_broker_publish(f->env.broker, &out, NULL), DT_OK);
}

static void test_query_and_clean(void **state)
{
    fixture *f = *state;
    char key[16];
    for (int i = 1; i <= 5; i++) {
        snprintf(key, sizeof(key), "q%d", i);
        assert_int_equal(dt_client_signal_entity(f->c, "counter", key, "add", "1", 1, NULL), DT_OK);
    }
    assert_int_equal(dt_client_signal_entity(f->c, "counter", "q5", "reset", NULL, 0, NULL), DT_OK);
    fund(f, "a1", 3);
    expect_balance(f, "a1", 3);
    for (int i = 0; i < 200 && count_entities(f, "counter", true, 100, 0) < 5; i++) {
        sleep_ms(50);
    }
    for (int i = 0; i < 200 && count_entities(f, "counter", false, 100, 0) != 4; i++) {
        sleep_ms(50); /* q5's reset */
    }
    assert_int_equal(count_entities(f, "counter", false, 100, 0), 4);
    assert_int_equal(count_entities(f, "Counter", false, 2, 0), 4); /* pages of 2 */
    assert_int_equal(count_entities(f, "counter", true, 1, 0), 5);  /* q5: empty, still stored */
    assert_int_equal(count_entities(f, NULL, false, 3, 0), 5);      /* + the account */
    assert_int_equal(count_entities(f, NULL, false, 100, INT64_MAX / 2), 0);
    /* An orphaned lock: its holder never existed, a deposit waits behind it. */
    publish_ghost_lock(f, "@account@orph");
    fund(f, "orph", 5);
    dt_entity_metadata *m = NULL;
    bool held = false;
    for (int i = 0; i < 200 && !held; i++) {
        if (dt_client_get_entity(f->c, "account", "orph", false, &m) == DT_OK) {
            held = m->locked_by != NULL && m->backlog_queue_size == 1;
            dt_entity_metadata_free(m);
        }
        sleep_ms(50);
    }
    assert_true(held);
    dt_entity_clean_result r = {0};
    assert_int_equal(dt_client_clean_entities(f->c, true, true, &r), DT_OK);
    assert_int_equal(r.locks_released, 1);
    assert_int_equal(r.empty_removed, 1);
    expect_balance(f, "orph", 5); /* unlocked; the deposit ran */
    assert_int_equal(count_entities(f, "counter", true, 100, 0), 4);
    assert_int_equal(dt_client_clean_entities(f->c, true, true, &r), DT_OK);
    assert_int_equal(r.locks_released + r.empty_removed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_call_and_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_unknown_entity_fails_orchestration, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lock_released_on_failure_and_terminate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_transfers_conserve_total, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_and_clean, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
