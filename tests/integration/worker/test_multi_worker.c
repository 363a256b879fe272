/*
 * Several workers sharing one task hub (8 partitions, lease TTL 2 s), each a separate dt_worker
 * in this process with its own broker connection, all on the same data directory, as separate
 * processes on one host would be. Each worker counts, through its registrations' user_data, the
 * partitions whose orchestrations it ran; the test picks worker IDs whose rendezvous placement
 * gives every worker a share, waits until the leases show that placement, and then requires that
 * every orchestration ran on its partition's owner and completed with the right output. The last
 * two tests stop one of two workers gracefully mid-run (once while every instance waits for an
 * event, once while episodes, timers and activities are in flight) and require the other to take
 * its partitions over and finish every instance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common_int.h"
#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "protocol_int.h"
#include "worker/lease/leases_int.h"
#include "worker_kit.h"

#define PARTITIONS  8
#define LEASE_TTL   2000
#define N_INSTANCES 100
#define MAX_WORKERS 3
#define WAIT_MS     30000

/* What one worker did; written on its partition and activity threads. */
typedef struct tally {
    atomic_uint partitions; /* bit p: ran an episode of an instance of partition p */
    atomic_int episodes;
    atomic_int activities;
} tally;

typedef struct fixture {
    wk_env env;
    dt_client *c;
    size_t n;
    char ids[MAX_WORKERS][32];
    unsigned placed[MAX_WORKERS]; /* partitions each worker should own (bit p) */
    tally tallies[MAX_WORKERS];
    dt_worker *w[MAX_WORKERS];
} fixture;

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the work ---- */

static void act_double(dt_activity_ctx *ctx, void *ud)
{
    tally *t = ud;
    atomic_fetch_add(&t->activities, 1);
    long v = strtol(dt_activity_input(ctx, NULL), NULL, 10);
    char out[32];
    int n = snprintf(out, sizeof(out), "%ld", 2 * v);
    dt_activity_set_output(ctx, out, (size_t)n);
}

static void count_episode(dt_orch_ctx *ctx, tally *t)
{
    uint32_t p = dt__partition_of(dt_orch_instance_id(ctx), PARTITIONS);
    atomic_fetch_or(&t->partitions, 1u << p);
    atomic_fetch_add(&t->episodes, 1);
}

/* Doubles its input in an activity. */
static void doubler(dt_orch_ctx *ctx, void *ud)
{
    count_episode(ctx, ud);
    const char *in = dt_orch_input(ctx, NULL);
    const char *r = dt_await(ctx, dt_call_activity(ctx, "double", in, strlen(in), NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

/* Doubles its input, waits for event "proceed", outputs "<double>:<event data>". */
static void doubler_wait(dt_orch_ctx *ctx, void *ud)
{
    count_episode(ctx, ud);
    const char *in = dt_orch_input(ctx, NULL);
    const char *r = dt_await(ctx, dt_call_activity(ctx, "double", in, strlen(in), NULL), NULL);
    dt_set_custom_status(ctx, "\"waiting\"", 9);
    const char *d = dt_await(ctx, dt_wait_event(ctx, "proceed"), NULL);
    char out[128];
    int n = snprintf(out, sizeof(out), "%s:%s", r, d != NULL ? d : "");
    dt_orch_set_output(ctx, out, (size_t)n);
}

/* Doubles its input five times, 400 ms apart (>= 1.6 s a run): outputs 32 * input. Long enough
 * that a worker stopped 300 ms after the starts (its stop takes ~0.4-0.6 s) is surely stopped
 * with instances in flight; with 150 ms (>= 0.6 s) the stopped worker sometimes finished them
 * all during its stop and the test's precondition failed. */
static void doubler_slow(dt_orch_ctx *ctx, void *ud)
{
    count_episode(ctx, ud);
    const char *v = dt_orch_input(ctx, NULL);
    for (int i = 0; i < 5; i++) {
        if (i > 0) {
            dt_await(ctx, dt_sleep(ctx, 400), NULL);
        }
        v = dt_await(ctx, dt_call_activity(ctx, "double", v, strlen(v), NULL), NULL);
    }
    dt_orch_set_output(ctx, v, strlen(v));
}

/* ---- placement and leases ---- */

/* Picks worker IDs "mw<i>-<k>" (smallest k) whose placement gives each worker >= 2 partitions,
 * and records that placement. */
static void pick_ids(fixture *f)
{
    for (int k = 0; k < 1000; k++) {
        const char *ids[MAX_WORKERS];
        memset(f->placed, 0, sizeof(f->placed));
        for (size_t i = 0; i < f->n; i++) {
            snprintf(f->ids[i], sizeof(f->ids[i]), "mw%zu-%d", i, k);
            ids[i] = f->ids[i];
        }
        for (uint32_t p = 0; p < PARTITIONS; p++) {
            f->placed[dt__leases_place(ids, NULL, f->n, p)] |= 1u << p;
        }
        bool even = true;
        for (size_t i = 0; i < f->n; i++) {
            even = even && __builtin_popcount(f->placed[i]) >= 2;
        }
        if (even) {
            return;
        }
    }
    fail_msg("no balanced worker IDs found");
}

/* The owner named by lease p.<p>, or "" when none. */
static void lease_owner(dt_broker_kv *kv, uint32_t p, char *out, size_t len)
{
    char key[32];
    snprintf(key, sizeof(key), "p.%u", p);
    out[0] = '\0';
    dt_broker_kv_entry e = {0};
    if (dt_broker_kv_get(kv, key, &e) != DT_OK) {
        return;
    }
    char v[512];
    snprintf(v, sizeof(v), "%.*s", (int)(e.len < sizeof(v) ? e.len : sizeof(v) - 1),
             (const char *)e.value);
    const char *o = strstr(v, "\"owner\":\"");
    if (o != NULL) {
        o += 9;
        snprintf(out, len, "%.*s", (int)strcspn(o, "\""), o);
    }
    dt_broker_kv_entry_clear(&e);
}

/* Waits until every partition's lease names the owner of `placed` among workers [0, n). */
static void wait_placement(fixture *f, size_t n, const unsigned *placed)
{
    char bucket[DT_BROKER_NAME_BUF];
    assert_int_equal(
        dt_broker_bucket_name(f->env.hub, DT_BROKER_BUCKET_LEASES, bucket, sizeof(bucket)), DT_OK);
    dt_broker_kv *kv = NULL;
    assert_int_equal(dt_broker_kv_open(f->env.broker, bucket, &kv), DT_OK);
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    uint32_t wrong = 0;
    do {
        wrong = PARTITIONS;
        for (uint32_t p = 0; p < PARTITIONS; p++) {
            char owner[64];
            lease_owner(kv, p, owner, sizeof(owner));
            for (size_t i = 0; i < n; i++) {
                if ((placed[i] & (1u << p)) != 0 && strcmp(owner, f->ids[i]) == 0) {
                    wrong--;
                }
            }
        }
        if (wrong > 0) {
            sleep_ms(50);
        }
    } while (wrong > 0 && dt__mono_ms() < deadline);
    dt_broker_kv_close(kv);
    if (wrong > 0) {
        fail_msg("%u partitions never reached their placed owner", wrong);
    }
}

/* ---- fixture ---- */

static void start_worker(fixture *f, size_t i)
{
    dt_worker_options o = wk_options(&f->env);
    o.worker_id = f->ids[i];
    char err[256] = "";
    if (dt_worker_create(&o, &f->w[i], err, sizeof(err)) != DT_OK) {
        fail_msg("worker %s: %s", f->ids[i], err);
    }
    tally *t = &f->tallies[i];
    assert_int_equal(dt_worker_add_orchestrator(f->w[i], "doubler", doubler, t), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w[i], "doubler_wait", doubler_wait, t), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w[i], "doubler_slow", doubler_slow, t), DT_OK);
    assert_int_equal(dt_worker_add_activity(f->w[i], "double", NULL, act_double, t), DT_OK);
    if (dt_worker_start(f->w[i]) != DT_OK) {
        fail_msg("worker %s start: %s", f->ids[i], dt_worker_errmsg(f->w[i]));
    }
    assert_string_equal(dt_worker_id(f->w[i]), f->ids[i]);
}

/* A hub, n workers with balanced IDs, all leases placed, and a client. */
static fixture *fleet(size_t n)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->n = n;
    wk_setup(&f->env, "multi", PARTITIONS, LEASE_TTL);
    pick_ids(f);
    for (size_t i = 0; i < n; i++) {
        start_worker(f, i);
    }
    wait_placement(f, n, f->placed);
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = f->env.url;
    co.hub = f->env.hub;
    char err[256] = "";
    if (dt_client_create(&co, &f->c, err, sizeof(err)) != DT_OK) {
        fail_msg("client: %s", err);
    }
    return f;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f != NULL) {
        dt_client_destroy(f->c);
        for (size_t i = 0; i < f->n; i++) {
            dt_worker_destroy(f->w[i]);
        }
        wk_teardown(&f->env);
        free(f);
    }
    return 0;
}

static int setup_two(void **state)
{
    *state = fleet(2);
    return 0;
}

static int setup_three(void **state)
{
    *state = fleet(3);
    return 0;
}

/* ---- helpers ---- */

static void schedule_all(fixture *f, const char *name)
{
    for (int i = 0; i < N_INSTANCES; i++) {
        char id[32], in[16];
        snprintf(id, sizeof(id), "mw-%03d", i);
        snprintf(in, sizeof(in), "%d", i);
        dt_client_start_options o = {.instance_id = id, .input = in, .input_len = strlen(in)};
        dt_status st = dt_client_schedule(f->c, name, &o, NULL, 0);
        if (st != DT_OK) {
            fail_msg("schedule %s: %s", id, dt_client_errmsg(f->c));
        }
    }
}

/* Waits for every instance "mw-<i>"; each must have completed with output "<k*i><suffix>". */
static void expect_all_done(fixture *f, int k, const char *suffix)
{
    for (int i = 0; i < N_INSTANCES; i++) {
        char id[32], want[64];
        snprintf(id, sizeof(id), "mw-%03d", i);
        snprintf(want, sizeof(want), "%d%s", k * i, suffix);
        dt_client_instance *inst = NULL;
        dt_status st = dt_client_wait_for_completion(f->c, id, WAIT_MS, true, &inst);
        if (st != DT_OK) {
            fail_msg("%s: %s", id, dt_client_errmsg(f->c));
        }
        if (inst->runtime_status != DT_CLIENT_COMPLETED) {
            fail_msg("%s: %s", id, dt_client_runtime_status_name(inst->runtime_status));
        }
        assert_string_equal((const char *)inst->output, want);
        dt_client_instance_free(inst);
    }
}

/* Every worker ran exactly the partitions placed on it. */
static void expect_placed_work(fixture *f)
{
    int activities = 0;
    for (size_t i = 0; i < f->n; i++) {
        unsigned ran = atomic_load(&f->tallies[i].partitions);
        if (ran != f->placed[i]) {
            fail_msg("worker %s ran partitions 0x%02x, placed 0x%02x", f->ids[i], ran,
                     f->placed[i]);
        }
        assert_true(atomic_load(&f->tallies[i].episodes) > 0);
        activities += atomic_load(&f->tallies[i].activities);
    }
    assert_true(activities >= N_INSTANCES);
}

/* Waits until the instance shows the custom status "waiting" (set once its activity is done). */
static void wait_waiting(fixture *f, const char *id)
{
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    while (dt__mono_ms() < deadline) {
        dt_client_instance *inst = NULL;
        bool waiting = false;
        if (dt_client_get_status(f->c, id, true, &inst) == DT_OK) {
            waiting = inst->custom_status != NULL;
            assert_int_not_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
        }
        dt_client_instance_free(inst);
        if (waiting) {
            return;
        }
        sleep_ms(20);
    }
    fail_msg("%s never reached its wait for the event", id);
}

/* ---- tests ---- */

static void test_two_workers_share(void **state)
{
    fixture *f = *state;
    schedule_all(f, "doubler");
    expect_all_done(f, 2, "");
    expect_placed_work(f);
}

static void test_three_workers_share(void **state)
{
    fixture *f = *state;
    schedule_all(f, "doubler");
    expect_all_done(f, 2, "");
    expect_placed_work(f);
}

static void test_graceful_stop_takeover(void **state)
{
    fixture *f = *state;
    schedule_all(f, "doubler_wait");
    for (int i = 0; i < N_INSTANCES; i++) { /* all mid-run: the activity is done, event awaited */
        char id[32];
        snprintf(id, sizeof(id), "mw-%03d", i);
        wait_waiting(f, id);
    }
    expect_placed_work(f);

    /* Stop worker 0 gracefully: its leases are released and worker 1 takes over at once. */
    dt_worker_stop(f->w[0], 5000);
    int stopped_episodes = atomic_load(&f->tallies[0].episodes);
    unsigned all = (1u << PARTITIONS) - 1;
    unsigned only_one[MAX_WORKERS] = {0, all};
    wait_placement(f, 2, only_one);
    for (int i = 0; i < N_INSTANCES; i++) {
        char id[32];
        snprintf(id, sizeof(id), "mw-%03d", i);
        dt_status st = dt_client_raise_event(f->c, id, "proceed", "\"go\"", 4, NULL);
        if (st != DT_OK) {
            fail_msg("raise to %s: %s", id, dt_client_errmsg(f->c));
        }
    }
    expect_all_done(f, 2, ":\"go\"");
    assert_int_equal(atomic_load(&f->tallies[0].episodes), stopped_episodes);
    assert_int_equal(atomic_load(&f->tallies[1].partitions), all);
}

/* Instances of the stopped worker's partitions that had not finished when it stopped. */
static int unfinished_of(fixture *f, unsigned partitions)
{
    int n = 0;
    for (int i = 0; i < N_INSTANCES; i++) {
        char id[32];
        snprintf(id, sizeof(id), "mw-%03d", i);
        if ((partitions & (1u << dt__partition_of(id, PARTITIONS))) == 0) {
            continue;
        }
        dt_client_instance *inst = NULL;
        if (dt_client_get_status(f->c, id, false, &inst) != DT_OK ||
            !dt_client_runtime_status_finished(inst->runtime_status)) {
            n++;
        }
        dt_client_instance_free(inst);
    }
    return n;
}

static void test_stop_while_busy(void **state)
{
    fixture *f = *state;
    schedule_all(f, "doubler_slow");
    sleep_ms(300); /* every instance takes >= 1.6 s: stop while episodes, timers and activities
                      are in flight */
    dt_worker_stop(f->w[0], 5000);
    int stopped_episodes = atomic_load(&f->tallies[0].episodes);
    int left = unfinished_of(f, f->placed[0]);
    if (left == 0) {
        fail_msg("the stopped worker had finished all its instances: nothing was taken over");
    }
    expect_all_done(f, 32, "");
    assert_int_equal(atomic_load(&f->tallies[0].episodes), stopped_episodes);
    assert_int_equal(atomic_load(&f->tallies[1].partitions), (1u << PARTITIONS) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_workers_share, setup_two, teardown),
        cmocka_unit_test_setup_teardown(test_three_workers_share, setup_three, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_stop_takeover, setup_two, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_busy, setup_two, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_broker_global_shutdown();
    return rc;
}
