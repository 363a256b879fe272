/*
 * A stale owner cannot commit (issue 8): worker A (a chaos_worker process with a data directory
 * of its own) is stopped with SIGSTOP exactly between its lease check and its log append (a Debug
 * hook, DT_TEST_STALL_COMMIT, holds it there), long past its lease. Worker B, with an empty data
 * directory, takes the partition over: it rebuilds the store from the log and claims it. Then A
 * continues: its append is refused, it steps down, and nothing it did is visible: no log entry of
 * A's follows B's claim, the instance completes once with the right output through B, its side
 * effect is published once, and nothing is dead-lettered.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common_int.h"
#include "dt_broker.h"
#include "durabletask/client.h"
#include "test_nats.h"
#include "test_support.h"

#define LEASE_TTL_MS 2000
#define WAIT_MS      60000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct worker_proc {
    pid_t pid;
    char data[512];
    char log[512];
} worker_proc;

/* The workers of the running test, stopped by the teardown even when an assertion fails. */
static worker_proc *procs[2];

static void spawn(worker_proc *w, const char *url, const char *hub, const char *stall)
{
    w->pid = fork();
    if (w->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1); /* not the test's stdout: a worker must not hold ctest's pipe open */
        setenv("DT_CHAOS_WORKER_INFO", "1", 1);
        if (stall != NULL) {
            setenv("DT_TEST_STALL_COMMIT", stall, 1);
        }
        FILE *f = freopen(w->log, "w", stderr);
        (void)f;
        execl(CHAOS_WORKER_PATH, "chaos_worker", url, hub, w->data, (char *)NULL);
        _exit(127);
    }
    assert_true(w->pid > 0);
}

static void stop(worker_proc *w, int sig)
{
    if (w->pid > 0) {
        kill(w->pid, SIGCONT);
        kill(w->pid, sig);
        waitpid(w->pid, NULL, 0);
        w->pid = 0;
    }
}

static bool log_has(const worker_proc *w, const char *needle)
{
    char *text = dt_test_read_file(w->log);
    bool has = text != NULL && strstr(text, needle) != NULL;
    free(text);
    return has;
}

static bool wait_log(const worker_proc *w, const char *needle, int64_t ms)
{
    int64_t end = dt__mono_ms() + ms;
    while (!log_has(w, needle) && dt__mono_ms() < end) {
        sleep_ms(20);
    }
    return log_has(w, needle);
}

static void start(dt_client *c, const char *id, const char *input)
{
    dt_client_start_options so = {.instance_id = id, .input = input, .input_len = strlen(input)};
    char got[DT_CLIENT_ID_BUF];
    assert_int_equal(dt_client_schedule(c, "chain", &so, got, sizeof(got)), DT_OK);
}

static void expect_output(dt_client *c, const char *id, const char *want)
{
    dt_client_instance *in = NULL;
    dt_status st = dt_client_wait_for_completion(c, id, WAIT_MS, true, &in);
    if (st != DT_OK) {
        fail_msg("%s: %s", id, dt_client_errmsg(c));
    }
    assert_int_equal(in->runtime_status, DT_CLIENT_COMPLETED);
    assert_int_equal(in->output_len, strlen(want));
    assert_memory_equal(in->output, want, in->output_len);
    dt_client_instance_free(in);
}

/*
 * No log entry by the stale owner's incarnation (the Dt-Owner "<worker id>/<incarnation>" of
 * the last entry written by process `stale` before the takeover) after the first entry by
 * another worker. A later incarnation of the same process (it rejoined the fleet, and placement
 * may give it the partition again: a new takeover with a new claim) is another owner.
 */
static void check_log_owners(dt_broker *b, const char *hub, pid_t stale)
{
    char stream[DT_BROKER_NAME_BUF], subject[DT_BROKER_NAME_BUF], tag[32], stale_owner[256] = "";
    dt_broker_stream_name(hub, DT_BROKER_STREAM_LOG, stream, sizeof(stream));
    dt_broker_subject(hub, DT_BROKER_SUBJ_LOG, "0", subject, sizeof(subject));
    snprintf(tag, sizeof(tag), "-%d-", (int)stale);
    bool other_seen = false;
    int before = 0, after = 0;
    for (uint64_t seq = 1;; seq++) {
        dt_broker_msg *m = NULL;
        if (dt_broker_stream_get(b, stream, subject, DT_BROKER_GET_NEXT, seq, &m) != DT_OK) {
            break;
        }
        seq = dt_broker_msg_stored_seq(m);
        const char *owner = NULL;
        dt_status st = dt_broker_msg_header(m, "Dt-Owner", &owner);
        char who[256];
        snprintf(who, sizeof(who), "%s", st == DT_OK && owner != NULL ? owner : "");
        dt_broker_msg_destroy(m);
        bool stale_process = strstr(who, tag) != NULL;
        if (!other_seen && stale_process) {
            snprintf(stale_owner, sizeof(stale_owner), "%s", who);
            before++;
        } else if (!stale_process) {
            other_seen = true;
            after++;
        } else if (strcmp(who, stale_owner) == 0) {
            fail_msg("log entry %llu by the stale owner (%s) after the new owner's claim",
                     (unsigned long long)seq, who);
        }
    }
    fprintf(stderr, "stale owner %s: %d log entries before the takeover; others: %d after\n",
            stale_owner, before, after);
    assert_true(before > 0 && after > 0);
}

static void test_stopped_owner_cannot_commit(void **state)
{
    (void)state;
    const char *url = getenv("DT_TEST_NATS_URL");
    if (url == NULL) {
        fail_msg("DT_TEST_NATS_URL is not set: run the integration tests through scripts/test");
    }
    char hub[48];
    snprintf(hub, sizeof(hub), "stale_%d", (int)getpid());
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = url;
    co.hub = hub;
    dt_client *c = NULL;
    char err[256];
    assert_int_equal(dt_client_create(&co, &c, err, sizeof(err)), DT_OK);
    dt_client_hub_info h;
    dt_client_hub_info_init(&h);
    h.partitions = 1;
    h.lease_ttl_ms = LEASE_TTL_MS;
    assert_int_equal(dt_client_hub_create(c, &h, NULL), DT_OK);
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = url;
    dt_broker *b = NULL;
    assert_int_equal(dt_broker_connect(&bo, &b, err, sizeof(err)), DT_OK);
    char fx_stream[64], fx_subject[96];
    snprintf(fx_stream, sizeof(fx_stream), "FX_%s", hub);
    snprintf(fx_subject, sizeof(fx_subject), "chaos.%s.fx", hub);
    assert_int_equal(dt_broker_stream_ensure(b, fx_stream, fx_subject), DT_OK);

    static char *dir;
    dir = dt_test_mkdtemp("dt-stale");
    static worker_proc a, nb;
    procs[0] = &a;
    procs[1] = &nb;
    snprintf(a.data, sizeof(a.data), "%s/a", dir);
    snprintf(a.log, sizeof(a.log), "%s/a.log", dir);
    snprintf(nb.data, sizeof(nb.data), "%s/b", dir);
    snprintf(nb.log, sizeof(nb.log), "%s/b.log", dir);
    spawn(&a, url, hub, "stale-1@3000");
    start(c, "warm-1", "1"); /* A serves the partition */
    expect_output(c, "warm-1", "7");

    start(c, "stale-1", "2");
    assert_true(wait_log(&a, "DT_TEST_STALL_COMMIT: stalling", WAIT_MS));
    kill(a.pid, SIGSTOP); /* paused between its lease check and its append */
    spawn(&nb, url, hub, NULL);
    assert_true(wait_log(&nb, "partition 0: running", WAIT_MS));
    kill(a.pid, SIGCONT);
    expect_output(c, "stale-1", "8");
    assert_true(wait_log(&a, "another owner appended", WAIT_MS));
    check_log_owners(b, hub, a.pid);
    start(c, "after-1", "3"); /* the fleet goes on */
    expect_output(c, "after-1", "9");
    /* Each of the three completed instances published its side effect, none twice. */
    dt_broker_stream_info fx;
    assert_int_equal(dt_broker_stream_info_get(b, fx_stream, &fx), DT_OK);
    assert_int_equal(fx.msgs, 3);
    char dead[DT_BROKER_NAME_BUF];
    dt_broker_stream_name(hub, DT_BROKER_STREAM_DEAD, dead, sizeof(dead));
    dt_broker_stream_info si;
    assert_int_equal(dt_broker_stream_info_get(b, dead, &si), DT_OK);
    assert_int_equal(si.msgs, 0);

    stop(&a, SIGKILL);
    stop(&nb, SIGTERM);
    dt_broker_stream_delete(b, fx_stream);
    assert_int_equal(dt_client_hub_delete(c), DT_OK);
    dt_client_destroy(c);
    dt_broker_close(b);
    dt_test_rmtree(dir);
    free(dir);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        if (procs[i] != NULL) {
            stop(procs[i], SIGKILL);
        }
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stopped_owner_cannot_commit, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_broker_global_shutdown();
    return rc;
}
