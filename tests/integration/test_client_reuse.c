/*
 * dt_client_schedule's reuse policies and its round trips, against a real nats-server (no
 * worker): every policy against no record, a running, pending, finished and deleted instance
 * and a retry of the same start; which requests go on the wire and in which order (no status
 * read where the policy cannot refuse the start; the start ahead of its PENDING record); two
 * callers racing to start one ID; a PENDING record that cannot be written; a start JetStream
 * refuses, whose record is taken back; a wait after the client's own start, which needs no read.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_client.h"

#define PENDING DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING

/* What the instance's record is before the schedule. */
typedef enum before { NONE, RUNNING, PENDING_OTHER, COMPLETED, DELETED, SAME_START } before;

/* Sets up the record of `id` as `b` says (SAME_START: this very start was accepted before). */
static void arrange(tc_fixture *f, const char *id, before b, const dt_client_start_options *o)
{
    switch (b) {
    case NONE:
        break;
    case RUNNING:
        tc_put_simple(f, id, DT_CLIENT_RUNNING);
        break;
    case PENDING_OTHER:
        tc_put_simple(f, id, DT_CLIENT_PENDING);
        break;
    case COMPLETED:
        tc_put_simple(f, id, DT_CLIENT_COMPLETED);
        break;
    case DELETED: {
        char key[3 * DT_INSTANCE_ID_MAX + 1];
        tc_put_simple(f, id, DT_CLIENT_COMPLETED);
        assert_int_equal(dt__status_key(id, key, sizeof(key)), DT_OK);
        TB_EXPECT(dt_broker_kv_delete(f->status_kv, key, 0), DT_OK, "delete");
        break;
    }
    case SAME_START:
        TC_EXPECT(f, dt_client_schedule(f->c, "Orch", o, NULL, 0), DT_OK);
        (void)tc_fetch_orch(f);
        break;
    }
}

/* What the schedule must do: its status, whether a start is stored, the record afterwards
 * (PENDING of this start, or untouched: still exec-1 with its status). */
typedef struct outcome {
    dt_status st;
    bool published;
    bool record_ours;
} outcome;

static void check_case(tc_fixture *f, dt_client_reuse_policy policy, before b, outcome want)
{
    char id[64], exec[64];
    snprintf(id, sizeof(id), "p%d-b%d", (int)policy, (int)b);
    snprintf(exec, sizeof(exec), "x-%d-%d", (int)policy, (int)b);
    dt_client_start_options o = {.instance_id = id, .execution_id = exec, .reuse_policy = policy};
    arrange(f, id, b, &o);
    Dtpb__InstanceStatus *pre = tc_get_status(f, id);
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), want.st);
    if (want.published) {
        Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
        assert_string_equal(m->instance_id, id);
        assert_string_equal(m->execution_id, exec);
    }
    /* A retried start is stored again and dropped by JetStream's duplicate window. */
    assert_null(tc_fetch(f, 50));
    Dtpb__InstanceStatus *s = tc_get_status(f, id);
    if (want.record_ours) {
        assert_non_null(s);
        assert_int_equal(s->runtime_status, PENDING);
        assert_string_equal(s->execution_id, exec);
    } else if (pre == NULL) {
        assert_null(s);
    } else {
        assert_non_null(s);
        assert_int_equal(s->runtime_status, pre->runtime_status);
        assert_string_equal(s->execution_id, pre->execution_id);
    }
}

static void test_policy_matrix(void **state)
{
    tc_fixture *f = *state;
    const outcome ok = {DT_OK, true, true}, refused = {DT_EEXIST, false, false},
                  replaced_by_worker = {DT_OK, true, false};
    static const struct {
        dt_client_reuse_policy policy;
        before b;
        int want; /* 0 ok, 1 refused, 2 published with the record left to the worker */
    } cases[] = {
        {DT_CLIENT_REUSE_ERROR, NONE, 0},
        {DT_CLIENT_REUSE_ERROR, RUNNING, 1},
        {DT_CLIENT_REUSE_ERROR, PENDING_OTHER, 1},
        {DT_CLIENT_REUSE_ERROR, COMPLETED, 1},
        {DT_CLIENT_REUSE_ERROR, DELETED, 0},
        {DT_CLIENT_REUSE_ERROR, SAME_START, 0},
        {DT_CLIENT_REUSE_REPLACE_IF_FINISHED, NONE, 0},
        {DT_CLIENT_REUSE_REPLACE_IF_FINISHED, RUNNING, 1},
        {DT_CLIENT_REUSE_REPLACE_IF_FINISHED, PENDING_OTHER, 1},
        {DT_CLIENT_REUSE_REPLACE_IF_FINISHED, COMPLETED, 0},
        {DT_CLIENT_REUSE_REPLACE_IF_FINISHED, DELETED, 0},
        {DT_CLIENT_REUSE_REPLACE_IF_FINISHED, SAME_START, 0},
        {DT_CLIENT_REUSE_TERMINATE_AND_REPLACE, NONE, 0},
        {DT_CLIENT_REUSE_TERMINATE_AND_REPLACE, RUNNING, 2},
        {DT_CLIENT_REUSE_TERMINATE_AND_REPLACE, PENDING_OTHER, 2},
        {DT_CLIENT_REUSE_TERMINATE_AND_REPLACE, COMPLETED, 0},
        {DT_CLIENT_REUSE_TERMINATE_AND_REPLACE, DELETED, 0},
        {DT_CLIENT_REUSE_TERMINATE_AND_REPLACE, SAME_START, 0},
    };
    for (size_t i = 0; i < DT__ARRAY_LEN(cases); i++) {
        outcome want = cases[i].want == 0 ? ok : cases[i].want == 1 ? refused : replaced_by_worker;
        if (cases[i].b == SAME_START) {
            want.published = false; /* the repeat is a duplicate: nothing new in the stream */
        }
        check_case(f, cases[i].policy, cases[i].b, want);
    }
}

/* ---- what goes on the wire ---- */

#define SPY_MAX 64

typedef struct spy {
    pthread_mutex_t mu;
    char subjects[SPY_MAX][160];
    size_t n;
} spy;

static void spy_cb(dt_broker_msg *m, void *ctx)
{
    spy *s = ctx;
    const char *reply = dt_broker_msg_reply(m);
    /* Deliveries to the test's own consumer carry the stream subject too: skip them. */
    bool delivery = reply != NULL && strncmp(reply, "$JS.ACK.", 8) == 0;
    pthread_mutex_lock(&s->mu);
    if (s->n < SPY_MAX && !delivery) {
        snprintf(s->subjects[s->n++], sizeof(s->subjects[0]), "%s", dt_broker_msg_subject(m));
    }
    pthread_mutex_unlock(&s->mu);
    dt_broker_msg_destroy(m);
}

/* Index of the first subject seen that starts with `prefix`, or -1. */
static int spy_find(spy *s, const char *prefix)
{
    pthread_mutex_lock(&s->mu);
    int at = -1;
    for (size_t i = 0; at < 0 && i < s->n; i++) {
        if (strncmp(s->subjects[i], prefix, strlen(prefix)) == 0) {
            at = (int)i;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return at;
}

static size_t spy_count(spy *s, const char *prefix)
{
    pthread_mutex_lock(&s->mu);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        k += strncmp(s->subjects[i], prefix, strlen(prefix)) == 0;
    }
    pthread_mutex_unlock(&s->mu);
    return k;
}

/* Runs one schedule under the spy; returns the number of status reads it made. */
static size_t traced_schedule(tc_fixture *f, spy *s, const dt_client_start_options *o)
{
    char orch[DT_BROKER_NAME_BUF], kv[DT_BROKER_NAME_BUF];
    snprintf(orch, sizeof(orch), "dt.%s.orch.", f->hub);
    snprintf(kv, sizeof(kv), "$KV.DT_%s_STATUS.", f->hub);
    pthread_mutex_lock(&s->mu);
    s->n = 0;
    pthread_mutex_unlock(&s->mu);
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", o, NULL, 0), DT_OK);
    for (int i = 0; i < 200 && spy_find(s, kv) < 0; i++) {
        tb_sleep_ms(5); /* the spy's connection sees the traffic a moment later */
    }
    /* The start goes first: a record on the wire always follows its start. */
    assert_true(spy_find(s, orch) >= 0);
    assert_true(spy_find(s, kv) > spy_find(s, orch));
    assert_int_equal(spy_count(s, orch), 1);
    assert_int_equal(spy_count(s, kv), 1);
    (void)tc_fetch_orch(f);
    char get[DT_BROKER_NAME_BUF], msg_get[DT_BROKER_NAME_BUF];
    snprintf(get, sizeof(get), "$JS.API.DIRECT.GET.KV_DT_%s_STATUS", f->hub);
    snprintf(msg_get, sizeof(msg_get), "$JS.API.STREAM.MSG.GET.KV_DT_%s_STATUS", f->hub);
    return spy_count(s, get) + spy_count(s, msg_get);
}

static void test_status_read_only_where_policy_may_refuse(void **state)
{
    tc_fixture *f = *state;
    spy *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    dt_broker_sub *sub = NULL;
    TB_EXPECT(dt_broker_subscribe(f->b, ">", NULL, spy_cb, s, &sub), DT_OK, dt_broker_errmsg(f->b));
    TB_EXPECT(dt_broker_flush(f->b, 2000), DT_OK, dt_broker_errmsg(f->b));

    dt_client_start_options gen = {0};
    assert_int_equal(traced_schedule(f, s, &gen), 0);
    gen.reuse_policy = DT_CLIENT_REUSE_REPLACE_IF_FINISHED;
    assert_int_equal(traced_schedule(f, s, &gen), 0);
    dt_client_start_options term = {.instance_id = "t-1",
                                    .reuse_policy = DT_CLIENT_REUSE_TERMINATE_AND_REPLACE};
    assert_int_equal(traced_schedule(f, s, &term), 0);
    dt_client_start_options named = {.instance_id = "n-1"};
    assert_int_equal(traced_schedule(f, s, &named), 1);
    named.instance_id = "n-2";
    named.reuse_policy = DT_CLIENT_REUSE_REPLACE_IF_FINISHED;
    assert_int_equal(traced_schedule(f, s, &named), 1);

    dt_broker_sub_destroy(sub);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The record is there when schedule returns: waits and status reads see PENDING at once. */
static void test_record_visible_on_return(void **state)
{
    tc_fixture *f = *state;
    char id[DT_CLIENT_ID_BUF];
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, id, sizeof(id)), DT_OK);
    dt_client_instance *inst = NULL;
    TC_EXPECT(f, dt_client_get_status(f->c, id, false, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, DT_CLIENT_PENDING);
    dt_client_instance_free(inst);
    TC_EXPECT(f, dt_client_wait_for_start(f->c, id, 0, false, NULL), DT_ETIMEOUT);
    tc_errmsg_has(f, "(status PENDING)");
}

/* ---- two callers, one ID ---- */

#define RACE_ROUNDS 100

typedef struct racer {
    dt_client *c;
    pthread_barrier_t *go;
    const char *exec;
    dt_status got[RACE_ROUNDS];
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        char id[64];
        snprintf(id, sizeof(id), "race-%d", i);
        dt_client_start_options o = {.instance_id = id,
                                     .execution_id = r->exec,
                                     .input = r->exec,
                                     .input_len = strlen(r->exec)};
        pthread_barrier_wait(r->go);
        r->got[i] = dt_client_schedule(r->c, "Orch", &o, NULL, 0);
    }
    return NULL;
}

static dt_client *client_for(const char *hub)
{
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = dt_test_nats_url();
    o.hub = hub;
    dt_client *c = NULL;
    assert_int_equal(dt_client_create(&o, &c, NULL, 0), DT_OK);
    return c;
}

/* The round of "race-<i>", or -1. */
static int round_of(const char *id)
{
    char *end = NULL;
    long i = strncmp(id, "race-", 5) == 0 ? strtol(id + 5, &end, 10) : -1;
    return (end != NULL && *end == '\0' && i >= 0 && i < RACE_ROUNDS) ? (int)i : -1;
}

/* Exactly one of two simultaneous starts of one ID hears DT_OK; its start (execution ID and
 * input) is the only one stored, so it is the one the worker runs, and the record names it. */
static void test_racing_starts(void **state)
{
    tc_fixture *f = *state;
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    racer rs[2] = {{.c = client_for(f->hub), .go = &go, .exec = "exec-A"},
                   {.c = client_for(f->hub), .go = &go, .exec = "exec-B"}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pthread_create(&th[k], NULL, race_main, &rs[k]), 0);
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(th[k], NULL);
    }
    int a_won = 0;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        dt_status a = rs[0].got[i], b = rs[1].got[i];
        if (!((a == DT_OK && b == DT_EEXIST) || (a == DT_EEXIST && b == DT_OK))) {
            fail_msg("round %d: %s and %s", i, dt_status_name(a), dt_status_name(b));
        }
        a_won += a == DT_OK;
        char id[64];
        snprintf(id, sizeof(id), "race-%d", i);
        Dtpb__InstanceStatus *s = tc_get_status(f, id);
        assert_non_null(s);
        assert_int_equal(s->runtime_status, PENDING);
        assert_string_equal(s->execution_id, a == DT_OK ? "exec-A" : "exec-B");
    }
    /* One start per round: the DT_EEXIST caller's was not stored. */
    uint64_t n = tc_orch_count(f);
    assert_int_equal(n, RACE_ROUNDS);
    bool seen[RACE_ROUNDS] = {false};
    for (uint64_t k = 0; k < n; k++) {
        Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
        int i = round_of(m->instance_id);
        assert_true(i >= 0 && !seen[i]);
        seen[i] = true;
        const char *winner = rs[0].got[i] == DT_OK ? "exec-A" : "exec-B";
        assert_string_equal(m->execution_id, winner);
        const Dtpb__ExecutionStartedEvent *es = m->event->execution_started;
        assert_non_null(es);
        assert_non_null(es->input);
        assert_int_equal(es->input->value.len, strlen(winner));
        assert_memory_equal(es->input->value.data, winner, strlen(winner));
    }
    assert_null(tc_fetch(f, 50));
    print_message("racing starts: %d rounds, A won %d, B won %d; one start stored per round, the "
                  "winner's\n",
                  RACE_ROUNDS, a_won, RACE_ROUNDS - a_won);
    dt_client_destroy(rs[0].c);
    dt_client_destroy(rs[1].c);
    pthread_barrier_destroy(&go);
}

/* ---- failures of one of the two writes ---- */

static void delete_stream(tc_fixture *f, const char *name)
{
    TB_EXPECT(dt_broker_stream_delete(f->b, name), DT_OK, dt_broker_errmsg(f->b));
}

/* The start is accepted although its PENDING record cannot be written (the worker writes it). */
static void test_pending_create_fails(void **state)
{
    tc_fixture *f = *state;
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, NULL, 0), DT_OK); /* opens the bucket */
    (void)tc_fetch_orch(f);
    char stream[DT_BROKER_NAME_BUF];
    snprintf(stream, sizeof(stream), "KV_DT_%s_STATUS", f->hub);
    delete_stream(f, stream);
    char id[DT_CLIENT_ID_BUF];
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, id, sizeof(id)), DT_OK);
    Dtpb__OrchestrationMessage *m = tc_fetch_orch(f);
    assert_string_equal(m->instance_id, id);
    dt_client_start_options o = {.instance_id = "no-record",
                                 .reuse_policy = DT_CLIENT_REUSE_TERMINATE_AND_REPLACE};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_OK);
    (void)tc_fetch_orch(f);
}

/* A start JetStream refuses fails the call, and the record written with it is taken back. */
static void test_refused_start_takes_record_back(void **state)
{
    tc_fixture *f = *state;
    tc_put_simple(f, "was-done", DT_CLIENT_COMPLETED);
    char stream[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ORCH, stream, sizeof(stream)),
                     DT_OK);
    delete_stream(f, stream);

    dt_client_start_options o = {.instance_id = "fresh"};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_EBROKER);
    assert_null(tc_get_status(f, "fresh"));

    char id[DT_CLIENT_ID_BUF] = "";
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, id, sizeof(id)), DT_EBROKER);
    assert_string_equal(id, ""); /* no ID handed out for a start that failed */

    o.instance_id = "was-done";
    o.reuse_policy = DT_CLIENT_REUSE_REPLACE_IF_FINISHED;
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_EBROKER);
    Dtpb__InstanceStatus *s = tc_get_status(f, "was-done");
    assert_non_null(s);
    assert_int_equal(s->runtime_status, DT_CLIENT_COMPLETED);
    assert_string_equal(s->execution_id, "exec-1");

    /* The same start again once the stream is back: accepted, the record created anew. */
    dt_broker_hub_config cfg;
    TB_EXPECT(dt_broker_hub_get(f->b, f->hub, &cfg), DT_OK, dt_broker_errmsg(f->b));
    TB_EXPECT(dt_broker_hub_create(f->b, f->hub, &cfg, NULL), DT_OK, dt_broker_errmsg(f->b));
    o.instance_id = "fresh";
    o.reuse_policy = DT_CLIENT_REUSE_ERROR;
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &o, NULL, 0), DT_OK);
    s = tc_get_status(f, "fresh");
    assert_non_null(s);
    assert_int_equal(s->runtime_status, PENDING);
}

/* ---- a wait after the client's own start ---- */

static size_t spy_reads(tc_fixture *f, spy *s)
{
    char get[DT_BROKER_NAME_BUF], msg_get[DT_BROKER_NAME_BUF];
    snprintf(get, sizeof(get), "$JS.API.DIRECT.GET.KV_DT_%s_STATUS", f->hub);
    snprintf(msg_get, sizeof(msg_get), "$JS.API.STREAM.MSG.GET.KV_DT_%s_STATUS", f->hub);
    return spy_count(s, get) + spy_count(s, msg_get);
}

static void spy_reset(spy *s)
{
    pthread_mutex_lock(&s->mu);
    s->n = 0;
    pthread_mutex_unlock(&s->mu);
}

/* The reads the spy saw since its reset, once the traffic of the last call has reached it. */
static size_t settled_reads(tc_fixture *f, spy *s, size_t at_least)
{
    for (int i = 0; i < 200 && spy_reads(f, s) < at_least; i++) {
        tb_sleep_ms(5);
    }
    tb_sleep_ms(100); /* room for a read that should not be there */
    return spy_reads(f, s);
}

static void wait_started(tc_fixture *f, const char *id, int32_t want)
{
    dt_client_instance *inst = NULL;
    TC_EXPECT(f, dt_client_wait_for_start(f->c, id, 5000, false, &inst), DT_OK);
    assert_int_equal(inst->runtime_status, want);
    dt_client_instance_free(inst);
}

/*
 * Once the client's feed is open, a start registers its key with it, so that a wait for that
 * instance takes the record written and every change since from the feed instead of reading:
 * a change made between the start and the wait is seen, and no read goes on the wire. The entry
 * serves one wait; the client keeps a bounded number of them (the oldest start's wait reads).
 */
static void test_wait_after_own_start_reads_nothing(void **state)
{
    tc_fixture *f = *state;
    spy *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    dt_broker_sub *sub = NULL;
    TB_EXPECT(dt_broker_subscribe(f->b, ">", NULL, spy_cb, s, &sub), DT_OK, dt_broker_errmsg(f->b));
    TB_EXPECT(dt_broker_flush(f->b, 2000), DT_OK, dt_broker_errmsg(f->b));

    /* The first wait opens the feed (a start made before it is not tracked: its wait reads). */
    char id[DT_CLIENT_ID_BUF];
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, id, sizeof(id)), DT_OK);
    TC_EXPECT(f, dt_client_wait_for_start(f->c, id, 50, false, NULL), DT_ETIMEOUT);

    /* Generated ID: the worker's RUNNING record lands between the start and the wait. */
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, id, sizeof(id)), DT_OK);
    tc_put_simple(f, id, DT_CLIENT_RUNNING);
    spy_reset(s);
    wait_started(f, id, DT_CLIENT_RUNNING);
    assert_int_equal(settled_reads(f, s, 0), 0);
    /* The entry served that wait: the next one reads. */
    spy_reset(s);
    wait_started(f, id, DT_CLIENT_RUNNING);
    assert_int_equal(settled_reads(f, s, 1), 1);

    /* Caller-chosen ID, policy ERROR (the start itself reads once): the wait reads nothing. */
    dt_client_start_options named = {.instance_id = "tracked-1"};
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", &named, NULL, 0), DT_OK);
    tc_put_simple(f, "tracked-1", DT_CLIENT_RUNNING);
    spy_reset(s);
    wait_started(f, "tracked-1", DT_CLIENT_RUNNING);
    assert_int_equal(settled_reads(f, s, 0), 0);

    /* More starts than the client keeps for waits: the oldest one's wait reads, and is right. */
    char oldest[DT_CLIENT_ID_BUF];
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, oldest, sizeof(oldest)), DT_OK);
    for (int i = 0; i < 300; i++) {
        TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, id, sizeof(id)), DT_OK);
    }
    tc_put_simple(f, oldest, DT_CLIENT_RUNNING);
    spy_reset(s);
    wait_started(f, oldest, DT_CLIENT_RUNNING);
    assert_int_equal(settled_reads(f, s, 1), 1);
    /* ... while the newest is still tracked. */
    tc_put_simple(f, id, DT_CLIENT_RUNNING);
    spy_reset(s);
    wait_started(f, id, DT_CLIENT_RUNNING);
    assert_int_equal(settled_reads(f, s, 0), 0);

    dt_broker_sub_destroy(sub);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* A wait for completion that a RUNNING record does not wake (waits.c peeks at the status): the
 * record written during the wait still counts — a later COMPLETED ends the wait, and without it
 * the timeout names the newest status. */
typedef struct later_writer {
    tc_fixture *f;
    const char *id;
    bool complete;
} later_writer;

static void *write_later(void *arg)
{
    later_writer *lw = arg;
    tb_sleep_ms(150);
    tc_put_simple(lw->f, lw->id, DT_CLIENT_RUNNING);
    if (lw->complete) {
        tb_sleep_ms(150);
        tc_put_simple(lw->f, lw->id, DT_CLIENT_COMPLETED);
    }
    return NULL;
}

static void test_changes_during_a_wait_count(void **state)
{
    tc_fixture *f = *state;
    char id[DT_CLIENT_ID_BUF];
    TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, id, sizeof(id)), DT_OK);
    TC_EXPECT(f, dt_client_wait_for_start(f->c, id, 50, false, NULL), DT_ETIMEOUT); /* the feed */
    for (int complete = 1; complete >= 0; complete--) {
        TC_EXPECT(f, dt_client_schedule(f->c, "Orch", NULL, id, sizeof(id)), DT_OK);
        later_writer lw = {.f = f, .id = id, .complete = complete != 0};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, write_later, &lw), 0);
        dt_client_instance *inst = NULL;
        dt_status st = dt_client_wait_for_completion(f->c, id, complete ? 5000 : 600, false, &inst);
        assert_int_equal(pthread_join(th, NULL), 0);
        if (complete) {
            TC_EXPECT(f, st, DT_OK);
            assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
            dt_client_instance_free(inst);
        } else {
            TC_EXPECT(f, st, DT_ETIMEOUT);
            tc_errmsg_has(f, "(status RUNNING)");
        }
    }
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_policy_matrix, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_status_read_only_where_policy_may_refuse, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_record_visible_on_return, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_racing_starts, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_pending_create_fails, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_refused_start_takes_record_back, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_wait_after_own_start_reads_nothing, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_changes_during_a_wait_count, tc_setup, tc_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
