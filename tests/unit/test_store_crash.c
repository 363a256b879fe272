/*
 * Crash test of the store: a child process commits large batches in a loop and is SIGKILLed at a
 * random moment, several rounds in a row; after each kill the parent reopens the file and checks
 * that it is intact and that every batch is all-or-nothing.
 *
 * Every batch b touches every instance the same way, and writes b into every row it touches:
 * the instance's custom_status, EVENTS history events, one applied id, one timer (replacing the
 * previous one) and one outbox row. Every RESET_EVERY batches an instance continues-as-new (its
 * history restarts) and the batch before, its applied ids are pruned. So the whole file is a
 * function of the last committed batch B, which the parent recomputes and compares row by row.
 * The child reports each committed batch on a pipe: B must be the last reported one or, when the
 * kill fell between the commit and the report, the one after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_store_util.h"

enum {
    INSTANCES = 16,
    EVENTS = 16,       /* per instance per batch */
    EVENT_SIZE = 2048, /* bytes: a batch is about 0.5 MiB of history */
    RESET_EVERY = 7,
    ROUNDS = 10,
    MAX_BATCHES = 100000,
};

/* The history event k of instance i written by batch b: a header then padding. */
static void make_event(char *buf, int b, int i, int k)
{
    int n = snprintf(buf, EVENT_SIZE, "b=%d i=%d k=%d ", b, i, k);
    memset(buf + n, 'a' + (b + i + k) % 26, (size_t)(EVENT_SIZE - n));
}

/* First batch of the execution current after batch b (the last continue-as-new). */
static int execution_start(int b)
{
    return b - (b - 1) % RESET_EVERY;
}

/* Last batch whose commit pruned the applied ids (0 = none). */
static int last_prune(int b)
{
    return b - b % RESET_EVERY;
}

typedef struct batch_buf {
    char ids[INSTANCES][16];
    char num[16];
    char dedupe[INSTANCES][32];
    char *events;                      /* INSTANCES * EVENTS * EVENT_SIZE */
    dt__blob blobs[INSTANCES][EVENTS]; /* point into events */
    dt__instance_row rows[INSTANCES];
    const char *applied[1];
    dt__timer_new timers[INSTANCES];
    dt__outbox_msg outbox[INSTANCES];
    dt__episode_commit eps[INSTANCES];
} batch_buf;

static void build_episode(batch_buf *bb, int b, int i)
{
    for (int k = 0; k < EVENTS; k++) {
        char *ev = bb->events + ((size_t)i * EVENTS + (size_t)k) * EVENT_SIZE;
        make_event(ev, b, i, k);
        bb->blobs[i][k] = (dt__blob){(const uint8_t *)ev, EVENT_SIZE};
    }
    snprintf(bb->dedupe[i], sizeof(bb->dedupe[i]), "%d/%d", i, b);
    bb->rows[i] = instance_row(bb->ids[i], "Crash", 0, 1);
    bb->rows[i].custom_status = blob_str(bb->num);
    bb->timers[i] =
        (dt__timer_new){.fire_at_ms = b, .dedupe_id = bb->dedupe[i], .payload = blob_str(bb->num)};
    bb->outbox[i] = (dt__outbox_msg){
        .subject = "dt.crash", .msg_id = bb->dedupe[i], .payload = blob_str(bb->num)};
    bb->eps[i] = (dt__episode_commit){
        .instance = &bb->rows[i],
        .reset_history = b % RESET_EVERY == 1,
        .new_events = bb->blobs[i],
        .n_new_events = EVENTS,
        .applied_ids = bb->applied,
        .n_applied = 1,
        .prune_applied = b % RESET_EVERY == 0,
        .delete_all_timers = true,
        .new_timers = &bb->timers[i],
        .n_new_timers = 1,
        .outbox = &bb->outbox[i],
        .n_outbox = 1,
    };
}

static dt_status commit_batch(dt__store *s, uint64_t epoch, batch_buf *bb, int b)
{
    snprintf(bb->num, sizeof(bb->num), "%d", b);
    bb->applied[0] = bb->num;
    for (int i = 0; i < INSTANCES; i++) {
        build_episode(bb, b, i);
    }
    return dt__store_commit(s, epoch, bb->eps, INSTANCES);
}

/* The last committed batch as stored in instance 0 (0 when nothing was committed yet). */
static int stored_batch(dt__store *s, dt__arena *a)
{
    dt__instance_row row;
    dt_status st = dt__store_get_instance(s, "c-00", a, &row);
    if (st == DT_ENOTFOUND) {
        return 0;
    }
    if (st != DT_OK || row.custom_status.data == NULL) {
        return -1;
    }
    return (int)strtol((const char *)row.custom_status.data, NULL, 10);
}

/* The child: commit batches until killed, reporting each on fd. Never returns. */
static void child_main(const char *path, int fd)
{
    dt__store *s = NULL;
    uint64_t epoch = 0;
    dt__arena *a = dt__arena_create(0);
    batch_buf *bb = calloc(1, sizeof(*bb));
    if (a == NULL || bb == NULL || dt__store_open(path, NULL, &s, NULL, 0) != DT_OK ||
        dt__store_claim(s, "crash-child", &epoch) != DT_OK) {
        _exit(2);
    }
    bb->events = malloc((size_t)INSTANCES * EVENTS * EVENT_SIZE);
    for (int i = 0; i < INSTANCES; i++) {
        snprintf(bb->ids[i], sizeof(bb->ids[i]), "c-%02d", i);
    }
    int b = stored_batch(s, a);
    if (b < 0 || bb->events == NULL) {
        _exit(3);
    }
    for (b++; b < MAX_BATCHES; b++) {
        if (commit_batch(s, epoch, bb, b) != DT_OK) {
            _exit(4);
        }
        if (write(fd, &b, sizeof(b)) != (ssize_t)sizeof(b)) {
            _exit(5);
        }
    }
    _exit(6);
}

static char *raw_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *text = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return text;
}

/* Checks instance i's row and history against batches execution_start(b)..b. */
static void verify_history(dt__store *s, dt__arena *a, int i, int b, char *expect)
{
    char id[16];
    char num[16];
    snprintf(id, sizeof(id), "c-%02d", i);
    snprintf(num, sizeof(num), "%d", b);
    dt__instance_row row;
    assert_int_equal(dt__store_get_instance(s, id, a, &row), DT_OK);
    assert_blob_equal(row.custom_status, num);
    dt__blob *ev = NULL;
    size_t n = 0;
    assert_int_equal(dt__store_load_history(s, id, a, &ev, &n), DT_OK);
    int first = execution_start(b);
    assert_int_equal(n, (size_t)(b - first + 1) * EVENTS);
    assert_int_equal(row.history_len, n);
    for (size_t j = 0; j < n; j++) {
        make_event(expect, first + (int)(j / EVENTS), i, (int)(j % EVENTS));
        assert_int_equal(ev[j].len, EVENT_SIZE);
        assert_memory_equal(ev[j].data, expect, EVENT_SIZE);
    }
}

/* Checks instance i's applied ids: exactly the batches after the last prune. */
static void verify_applied(dt__store *s, int i, int b)
{
    char id[16];
    char num[16];
    snprintf(id, sizeof(id), "c-%02d", i);
    for (int x = b > 10 ? b - 10 : 1; x <= b + 1; x++) {
        bool applied = false;
        snprintf(num, sizeof(num), "%d", x);
        assert_int_equal(dt__store_is_applied(s, id, num, &applied), DT_OK);
        assert_int_equal(applied, x > last_prune(b) && x <= b);
    }
}

/* Whole-file checks with SQL: integrity, per-instance lengths, timers and outbox per batch. */
static void verify_tables(const char *path, int b)
{
    char *ok = raw_text(path, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    free(ok);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM instances i WHERE history_len != "
                                   "(SELECT coalesce(sum(n), 0) FROM history h "
                                   "WHERE h.instance_id = i.instance_id)"),
                     0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM instances"), b > 0 ? INSTANCES : 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM applied"),
                     (int64_t)(b - last_prune(b)) * INSTANCES);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM timers"), b > 0 ? INSTANCES : 0);
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM timers WHERE fire_at_ms = %d", b);
    assert_int_equal(raw_int(path, sql), b > 0 ? INSTANCES : 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM outbox"), (int64_t)b * INSTANCES);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM (SELECT payload FROM outbox GROUP BY payload "
             "HAVING count(*) != %d OR CAST(CAST(payload AS TEXT) AS INTEGER) > %d)",
             INSTANCES, b);
    assert_int_equal(raw_int(path, sql), 0);
}

/* Reopens after a kill and checks everything; returns the last committed batch. */
static int verify_store(const char *path, int reported, int rounds)
{
    dt__store *s = open_store(path, NULL); /* recovers the WAL left by the kill */
    dt__arena *a = dt__arena_create(0);
    assert_non_null(a);
    int b = stored_batch(s, a);
    if (b != reported && b != reported + 1) {
        fail_msg("stored batch %d, child reported %d committed", b, reported);
    }
    verify_tables(path, b);
    char *expect = malloc(EVENT_SIZE);
    assert_non_null(expect);
    for (int i = 0; i < INSTANCES && b > 0; i++) {
        verify_history(s, a, i, b, expect);
        verify_applied(s, i, b);
    }
    free(expect);
    uint64_t epoch = 0;
    assert_int_equal(dt__store_epoch(s, NULL, &epoch, NULL), DT_OK);
    assert_true(epoch <= (uint64_t)rounds);
    dt__arena_destroy(a);
    dt__store_close(s);
    return b;
}

/* Starts a child committing into path; *out_fd is the read end of its report pipe. */
static pid_t spawn_writer(const char *path, int *out_fd)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(path, fds[1]);
    }
    close(fds[1]);
    *out_fd = fds[0];
    return pid;
}

/* Kills the child after delay_ms and returns the last batch it reported (or `last`). */
static int kill_writer(pid_t pid, int fd, long delay_ms, int last)
{
    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        fail_msg("writer exited on its own (status %d): it failed before the kill", status);
    }
    int b = 0;
    while (read(fd, &b, sizeof(b)) == (ssize_t)sizeof(b)) {
        last = b;
    }
    close(fd);
    return last;
}

static void killed_writer_leaves_whole_batches(void **state)
{
    store_fixture *f = *state;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    print_message("crash test seed %u\n", seed);
    srand(seed);
    int last = 0;
    for (int round = 1; round <= ROUNDS; round++) {
        int fd = -1;
        pid_t pid = spawn_writer(f->path, &fd);
        long delay_ms = 40 + rand() % 300;
        int reported = kill_writer(pid, fd, delay_ms, last);
        int b = verify_store(f->path, reported, round);
        print_message("round %d: killed after %ld ms at batch %d (reported %d)\n", round, delay_ms,
                      b, reported);
        assert_true(b >= last);
        last = b;
    }
    assert_true(last > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(killed_writer_leaves_whole_batches, store_setup,
                                        store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
