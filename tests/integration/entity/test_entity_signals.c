/*
 * test_entity_signals: entities end to end against nats-server: client signals and reads
 * (state, deletion and re-creation, a failed operation rolled back alone, a state over the
 * limit refused), signals published by a plain NATS client to dt.<hub>.in.signal.<name>, bad
 * input (refused at the client with a clear error; an unregistered name and a malformed publish
 * dead-lettered with the reason), and a worker process killed with SIGKILL while signals flow:
 * every counter ends exact (each operation applied once) after another process took over.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common_int.h"
#include "entity_funcs.h"
#include "protocol_int.h"
#include "worker_kit.h"

#define PARTITIONS 2
#define LEASE_TTL  2000
#define WAIT_MS    30000

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_client *c;
    pid_t pids[2]; /* worker processes still to stop (0: none) */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    wk_setup(&f->env, "ent", PARTITIONS, LEASE_TTL);
    f->c = wk_client(&f->env);
    *state = f;
    return 0;
}

static void start_worker(fixture *f)
{
    dt_worker_options o = wk_options(&f->env);
    char err[256];
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_entity(f->w, "Counter", ef_counter, NULL), DT_OK);
    assert_int_equal(dt_worker_add_entity(f->w, "counter", ef_counter, NULL), DT_EEXIST);
    assert_int_equal(dt_worker_add_entity(f->w, "bad.name", ef_counter, NULL), DT_EINVAL);
    assert_int_equal(dt_worker_start(f->w), DT_OK);
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 2; i++) {
        if (f->pids[i] > 0) { /* a failed test left it running */
            kill(f->pids[i], SIGKILL);
            waitpid(f->pids[i], NULL, 0);
        }
    }
    dt_worker_destroy(f->w);
    dt_client_destroy(f->c);
    wk_teardown(&f->env);
    free(f);
    return 0;
}

/* The counter's state, "" when it does not exist, "?" while its partition has no worker yet (a
 * worker starting, a take-over); fails the test on other errors. */
static void read_counter(dt_client *c, const char *key, char *buf, size_t len)
{
    dt_entity_metadata *m = NULL;
    dt_status st = dt_client_get_entity(c, "counter", key, true, &m);
    if (st == DT_ENOTFOUND || st == DT_EBUSY) {
        snprintf(buf, len, "%s", st == DT_EBUSY ? "?" : "");
        return;
    }
    if (st != DT_OK) {
        fail_msg("get counter %s: %s: %s", key, dt_status_str(st), dt_client_errmsg(c));
    }
    snprintf(buf, len, "%.*s", (int)m->state_len, (const char *)m->state);
    dt_entity_metadata_free(m);
}

/* Waits until the counter reads `want` ("" = does not exist); fails after WAIT_MS. */
static void expect_counter(dt_client *c, const char *key, const char *want)
{
    char got[64] = "?";
    for (int64_t waited = 0; waited < WAIT_MS; waited += 50) {
        read_counter(c, key, got, sizeof(got));
        if (strcmp(got, want) == 0) {
            return;
        }
        sleep_ms(50);
    }
    fail_msg("counter %s is '%s', expected '%s'", key, got, want);
}

static void signal_op(dt_client *c, const char *key, const char *op, const char *input)
{
    dt_status st = dt_client_signal_entity(c, "counter", key, op, input,
                                           input != NULL ? strlen(input) : 0, NULL);
    if (st != DT_OK) {
        fail_msg("signal %s %s: %s", key, op, dt_client_errmsg(c));
    }
}

static void test_signal_and_get(void **state)
{
    fixture *f = *state;
    start_worker(f);
    for (int i = 0; i < 20; i++) {
        signal_op(f->c, "a", "add", "1");
    }
    signal_op(f->c, "b", "add", "5");
    expect_counter(f->c, "a", "20");
    expect_counter(f->c, "b", "5");
    dt_entity_metadata *m = NULL;
    assert_int_equal(dt_client_get_entity(f->c, "COUNTER", "a", false, &m), DT_OK);
    assert_string_equal(m->instance_id, "@counter@a");
    assert_string_equal(m->name, "counter");
    assert_string_equal(m->key, "a");
    assert_true(m->has_state);
    assert_null(m->state);
    assert_null(m->locked_by);
    assert_int_equal(m->backlog_queue_size, 0);
    assert_true(m->last_modified_ms > 0);
    dt_entity_metadata_free(m);
    /* Entities are not instances: an instance listing does not show them. */
    dt_client_page *page = NULL;
    assert_int_equal(dt_client_list(f->c, NULL, NULL, 100, false, &page), DT_OK);
    assert_int_equal(page->n, 0);
    dt_client_page_free(page);
}

/* A signal for later is kept (as a timer of the entity's partition) and runs at its time. */
static void test_scheduled_signal(void **state)
{
    fixture *f = *state;
    start_worker(f);
    signal_op(f->c, "s", "add", "1");
    expect_counter(f->c, "s", "1");
    dt_entity_signal_options o;
    dt_entity_signal_options_init(&o);
    int64_t at = dt__now_ms() + 1500;
    o.signal_at_ms = at;
    assert_int_equal(dt_client_signal_entity(f->c, "counter", "s", "add", "10", 2, &o), DT_OK);
    signal_op(f->c, "s", "add", "100"); /* not scheduled: runs first */
    expect_counter(f->c, "s", "101");
    expect_counter(f->c, "s", "111");
    assert_true(dt__now_ms() >= at);
}

static void test_failed_operation_rolled_back_alone(void **state)
{
    fixture *f = *state;
    start_worker(f);
    signal_op(f->c, "r", "add", "1");
    signal_op(f->c, "r", "fail", NULL);
    signal_op(f->c, "r", "add", "2");
    signal_op(f->c, "r", "add", "10");
    expect_counter(f->c, "r", "13");
}

static void test_delete_and_recreate(void **state)
{
    fixture *f = *state;
    start_worker(f);
    signal_op(f->c, "d", "add", "5");
    expect_counter(f->c, "d", "5");
    signal_op(f->c, "d", "reset", NULL);
    expect_counter(f->c, "d", "");
    signal_op(f->c, "d", "add", "2");
    expect_counter(f->c, "d", "2");
}

static void test_state_too_large_keeps_old_state(void **state)
{
    fixture *f = *state;
    start_worker(f);
    signal_op(f->c, "big", "add", "1");
    signal_op(f->c, "big", "fill", "2000000"); /* over the hub's 1 MiB message limit */
    signal_op(f->c, "big", "add", "1");
    expect_counter(f->c, "big", "2");
}

static void test_bad_input_refused_at_client(void **state)
{
    fixture *f = *state;
    assert_int_equal(dt_client_signal_entity(f->c, "bad@name", "k", "add", NULL, 0, NULL),
                     DT_EINVAL);
    assert_non_null(strstr(dt_client_errmsg(f->c), "invalid entity name"));
    assert_int_equal(dt_client_signal_entity(f->c, "counter", "a key", "add", NULL, 0, NULL),
                     DT_EINVAL);
    assert_non_null(strstr(dt_client_errmsg(f->c), "invalid entity key"));
    assert_int_equal(dt_client_signal_entity(f->c, "counter", "", "add", NULL, 0, NULL), DT_EINVAL);
    assert_int_equal(dt_client_signal_entity(f->c, "counter", "k", "", NULL, 0, NULL), DT_EINVAL);
    assert_non_null(strstr(dt_client_errmsg(f->c), "operation"));
    dt_entity_metadata *m = NULL;
    assert_int_equal(dt_client_get_entity(f->c, "counter", "a.b c", false, &m), DT_EINVAL);
    /* An orchestration cannot take an entity's ID. */
    dt_client_start_options o;
    dt_client_start_options_init(&o);
    o.instance_id = "@counter@a";
    char id[300];
    assert_int_equal(dt_client_schedule(f->c, "anything", &o, id, sizeof(id)), DT_EINVAL);
    assert_non_null(strstr(dt_client_errmsg(f->c), "entity IDs"));
}

static void publish_signal(wk_env *env, const char *name, const char *key, const char *op,
                           const char *body)
{
    char tail[128], subject[DT_BROKER_NAME_BUF];
    snprintf(tail, sizeof(tail), "signal.%s", name);
    assert_int_equal(dt_broker_subject(env->hub, DT_BROKER_SUBJ_IN, tail, subject, sizeof(subject)),
                     DT_OK);
    dt_broker_header h[2];
    size_t nh = 0;
    if (key != NULL) {
        h[nh++] = (dt_broker_header){DT_HDR_ENTITY_KEY, key};
    }
    if (op != NULL) {
        h[nh++] = (dt_broker_header){DT_HDR_OPERATION, op};
    }
    dt_broker_outmsg m = {.subject = subject,
                          .headers = h,
                          .nheaders = nh,
                          .data = body,
                          .len = body != NULL ? strlen(body) : 0};
    assert_int_equal(dt_broker_publish(env->broker, &m, NULL), DT_OK);
}

static void test_publish_to_signal(void **state)
{
    fixture *f = *state;
    start_worker(f);
    publish_signal(&f->env, "counter", "p", "add", "7");
    publish_signal(&f->env, "Counter", "p", "add", "3");
    expect_counter(f->c, "p", "10");
    publish_signal(&f->env, "counter", NULL, "add", "1"); /* no key */
    publish_signal(&f->env, "counter", "p", NULL, "1");   /* no operation */
    publish_signal(&f->env, "nosuch", "k", "add", "1");   /* no such entity function */
    char reasons[3][256];
    assert_int_equal(wk_dead_letters(&f->env, "ent_dead", 3, reasons), 3);
    bool key = false, op = false, unknown = false;
    for (int i = 0; i < 3; i++) {
        key = key || strstr(reasons[i], "Dt-Entity-Key") != NULL;
        op = op || strstr(reasons[i], "Dt-Operation") != NULL;
        unknown = unknown || strstr(reasons[i], "no entity function registered under the name "
                                                "'nosuch'") != NULL;
    }
    assert_true(key && op && unknown);
    expect_counter(f->c, "p", "10");
}

/* Signals waiting in the ingress stream when a worker starts are routed in groups (one message per
 * partition, Dt-Batch): each still applied once. */
static void test_publish_backlog_grouped(void **state)
{
    fixture *f = *state;
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "g%d", i % 3);
        publish_signal(&f->env, "counter", key, "add", "1");
    }
    start_worker(f);
    expect_counter(f->c, "g0", "100");
    expect_counter(f->c, "g1", "100");
    expect_counter(f->c, "g2", "100");
}

/* ---- a worker process killed while signals flow ---- */

#define KILL_COUNTERS 20
#define KILL_SIGNALS  100 /* per counter */

static pid_t spawn_worker(const wk_env *env)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(ENTITY_WORKER_PATH, "entity_worker", env->url, env->hub, env->data_dir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void test_kill9_counters_exact(void **state)
{
    fixture *f = *state;
    pid_t first = f->pids[0] = spawn_worker(&f->env);
    char key[16], got[64];
    for (int i = 0; i < KILL_SIGNALS; i++) {
        for (int k = 0; k < KILL_COUNTERS; k++) {
            snprintf(key, sizeof(key), "k%d", k);
            signal_op(f->c, key, "add", "1");
        }
    }
    /* Kill the first worker as soon as it has applied something. */
    got[0] = '\0';
    for (int64_t waited = 0; waited < WAIT_MS && (got[0] == '\0' || got[0] == '?'); waited += 5) {
        read_counter(f->c, "k0", got, sizeof(got));
        sleep_ms(5);
    }
    assert_true(got[0] != '\0' && got[0] != '?');
    kill(first, SIGKILL);
    int status = 0;
    waitpid(first, &status, 0);
    f->pids[0] = 0;
    pid_t second = f->pids[1] = spawn_worker(&f->env);
    char want[16];
    snprintf(want, sizeof(want), "%d", KILL_SIGNALS);
    for (int k = 0; k < KILL_COUNTERS; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        expect_counter(f->c, key, want);
    }
    sleep_ms(1000); /* nothing applied twice arrives late */
    for (int k = 0; k < KILL_COUNTERS; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        read_counter(f->c, key, got, sizeof(got));
        assert_string_equal(got, want);
    }
    kill(second, SIGTERM);
    waitpid(second, &status, 0);
    f->pids[1] = 0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signal_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduled_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_operation_rolled_back_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_recreate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_too_large_keeps_old_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_refused_at_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_to_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_backlog_grouped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_counters_exact, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
