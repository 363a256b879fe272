/*
 * Partition stores that do not open (issue 7, items 5 and 6), against the real nats-server and
 * real SQLite files. A worker that cannot open a partition's store (here: a file of a newer
 * schema in its data directory) gives the partition up so that another worker serves it, and says
 * so once per back-off step; a partition whose store file went missing is rebuilt from the
 * partition's log in the hub (issue 8).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common_int.h"
#include "leases_int.h"
#include "protocol_int.h"
#include "durabletask/worker.h"
#include "test_support.h"
#include "worker_kit.h"

#define WAIT_MS 30000
#define ST(x)   DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x

/* Log lines of every worker of the test, with the worker's name in front. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[256 * 1024];
static size_t log_len;

static void capture(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    (void)level;
    (void)instance_id;
    pthread_mutex_lock(&log_mu);
    int n =
        snprintf(log_buf + log_len, sizeof(log_buf) - log_len, "%s: %s\n", (const char *)ctx, msg);
    if (n > 0 && (size_t)n < sizeof(log_buf) - log_len) {
        log_len += (size_t)n;
    }
    pthread_mutex_unlock(&log_mu);
}

/* Occurrences of `needle` in the lines of worker `who`. */
static int log_count(const char *who, const char *needle)
{
    int n = 0;
    pthread_mutex_lock(&log_mu);
    for (const char *line = log_buf; line < log_buf + log_len;) {
        const char *end = strchr(line, '\n');
        size_t wl = strlen(who);
        if (strncmp(line, who, wl) == 0 && line[wl] == ':') {
            const char *hit = strstr(line, needle);
            n += hit != NULL && hit < end ? 1 : 0;
        }
        line = end + 1;
    }
    pthread_mutex_unlock(&log_mu);
    return n;
}

static void measure(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    dt_orch_input(ctx, &len);
    dt_orch_set_output(ctx, "\"ok\"", 4);
}

static void approval(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *v = dt_await(ctx, dt_wait_event(ctx, "approve"), NULL);
    dt_orch_set_output(ctx, v, strlen(v));
}

static dt_worker *start_worker(wk_env *env, const char *id, const char *data_dir)
{
    dt_worker_options o = wk_options(env);
    o.worker_id = id;
    o.data_dir = data_dir;
    o.log = capture;
    o.log_ctx = (void *)id;
    dt_worker *w = NULL;
    char err[256];
    assert_int_equal(dt_worker_create(&o, &w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "measure", measure, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(w, "approval", approval, NULL), DT_OK);
    assert_int_equal(dt_worker_start(w), DT_OK);
    return w;
}

/* A store file of a schema newer than this build: every open fails with DT_EVERSION. */
static void make_newer_store(const char *dir, const char *hub, uint32_t p)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, hub);
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
    snprintf(path, sizeof(path), "%s/%s/p%03u.db", dir, hub, p);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA application_id = 1146375763; PRAGMA user_version = 99; "
                                  "CREATE TABLE future (x);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}

/* An instance ID that lands on partition p of n. */
static void id_on(uint32_t p, uint32_t n, const char *prefix, char *out, size_t len)
{
    for (int i = 0;; i++) {
        snprintf(out, len, "%s-%d", prefix, i);
        if (dt__partition_of(out, n) == p) {
            return;
        }
    }
}

/* Each partition's store is broken in the data dir of exactly the worker placement gives it to:
 * before, every partition stalled under a worker that logged ~14 errors a second. */
static void test_unopenable_store_moves_to_another_worker(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "stores", 2, 3000);
    char *dir_a = dt_test_mkdtemp("dt-store-a");
    char *dir_b = dt_test_mkdtemp("dt-store-b");
    const char *ids[2] = {"wa", "wb"};
    for (uint32_t p = 0; p < 2; p++) {
        size_t owner = dt__leases_place(ids, NULL, 2, p);
        make_newer_store(owner == 0 ? dir_a : dir_b, env.hub, p);
    }
    dt_worker *a = start_worker(&env, "wa", dir_a);
    dt_worker *b = start_worker(&env, "wb", dir_b);
    char id0[64], id1[64];
    id_on(0, 2, "moved", id0, sizeof(id0));
    id_on(1, 2, "moved", id1, sizeof(id1));
    wk_start(&env, "measure", id0, NULL, NULL, NULL);
    wk_start(&env, "measure", id1, NULL, NULL, NULL);
    wk_expect(&env, id0, ST(COMPLETED), NULL);
    wk_expect(&env, id1, ST(COMPLETED), NULL);
    /* Once per back-off step (5 s, then 10 s, ...), not on every retry of the supervisor. */
    int fa = log_count("wa", "did not open"), fb = log_count("wb", "did not open");
    assert_true(fa + fb >= 1);
    assert_true(fa <= 3 && fb <= 3);
    dt_worker_destroy(a);
    dt_worker_destroy(b);
    dt_test_rmtree(dir_a);
    dt_test_rmtree(dir_b);
    free(dir_a);
    free(dir_b);
    wk_teardown(&env);
}

static bool wait_log(const char *who, const char *needle)
{
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    while (log_count(who, needle) == 0 && dt__mono_ms() < deadline) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return log_count(who, needle) > 0;
}

/* The hub's truth is the partition's log: a worker whose data directory was wiped (a new
 * container, a lost disk) rebuilds the store from it, and every instance goes on: the waiting
 * one takes its event and completes, the finished one is still listed with its output. */
static void test_wiped_store_is_rebuilt(void **state)
{
    (void)state;
    wk_env env;
    wk_setup(&env, "wiped", 1, 3000);
    dt_worker *w1 = start_worker(&env, "w1", env.data_dir);
    wk_start(&env, "approval", "waits-1", NULL, NULL, NULL);
    wk_start(&env, "measure", "done-1", "\"x\"", NULL, NULL);
    wk_expect(&env, "waits-1", ST(RUNNING), NULL);
    wk_expect(&env, "done-1", ST(COMPLETED), "\"ok\"");
    dt_worker_destroy(w1);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", env.data_dir, env.hub);
    dt_test_rmtree(path);
    dt_worker *w2 = start_worker(&env, "w2", env.data_dir);
    wk_raise(&env, "waits-1", "approve", "\"yes\"");
    wk_expect(&env, "waits-1", ST(COMPLETED), "\"yes\"");
    assert_true(wait_log("w2", "store rebuilt from the log"));
    dt_client *c = wk_client(&env);
    dt_client_history *h = NULL; /* read from the rebuilt store by its owner */
    assert_int_equal(dt_client_get_history(c, "done-1", &h), DT_OK);
    assert_true(h->n >= 3);
    assert_string_equal(h->events[h->n - 1].type, "ExecutionCompleted");
    assert_int_equal(h->events[h->n - 1].payload_len, 4);
    assert_memory_equal(h->events[h->n - 1].payload, "\"ok\"", 4);
    dt_client_history_free(h);
    dt_client_destroy(c);
    snprintf(path, sizeof(path), "%s/%s/p000.db", env.data_dir, env.hub);
    assert_int_equal(access(path, F_OK), 0);
    dt_worker_destroy(w2);
    wk_teardown(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unopenable_store_moves_to_another_worker),
        cmocka_unit_test(test_wiped_store_is_rebuilt),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_broker_global_shutdown();
    return rc;
}
