/*
 * takeover: how long a partition takes to serve again when it moves to a worker with an empty
 * data directory (a new host), and what a snapshot of it costs (issue 8).
 *
 * One partition is filled with 10,000 finished hello5 instances and 1,000 instances waiting for
 * an event (about 150,000 history events) by worker A. A stops gracefully (its leases are
 * released at once, so the lease TTL is not part of the figure). The driver then rebuilds the
 * partition from the hub into a scratch file through the journal (timed: A's snapshots and the
 * log after them) and takes one snapshot of it (timed), as an owner does every 5,000 log entries.
 * Worker B starts with an empty data directory; the figure is the time from B's start to the
 * completion of a waiting instance whose event is raised as soon as B holds the partition: B
 * restores the snapshot, applies the log's tail, claims the partition and runs the episode.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "journal/journal_int.h"
#include "protocol_int.h"

#define N_FINISHED 10000
#define N_WAITING  1000
#define WAIT_MS    600000

/* Instances and history events in a store file (read-only). */
static bool file_counts(const char *path, long long *instances, long long *events)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    bool ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
              sqlite3_prepare_v2(db, "SELECT count(*), total(history_len) FROM instances", -1, &st,
                                 NULL) == SQLITE_OK &&
              sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        *instances = sqlite3_column_int64(st, 0);
        *events = (long long)sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

static double file_mib(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return (double)n / (1024.0 * 1024.0);
}

static void log_note(void *ctx, dt_log_level level, const char *msg)
{
    (void)ctx;
    if (level >= DT_LOG_INFO) {
        bench_note("journal: %s", msg);
    }
}

/* Opens the partition into `path` through a journal (a rebuild: *rebuild_ms) and forces a
 * snapshot of it (*snap_ms). */
static bool snapshot_of(bench_hub *h, const char *path, double *rebuild_ms, double *snap_ms)
{
    dt_broker_hub_config cfg;
    if (dt_broker_hub_get(h->broker, h->name, &cfg) != DT_OK) {
        return false;
    }
    dt__journal_config jc = {.broker = h->broker,
                             .hub = h->name,
                             .partition = 0,
                             .owner = "bench-driver",
                             .origin = cfg.created_at_ms,
                             .max_msg = cfg.max_msg_size,
                             .log = log_note};
    dt__journal *j = NULL;
    dt__store *s = NULL;
    uint64_t epoch = 0;
    char err[512] = "";
    double t0 = bench_now_ms();
    bool ok = dt__journal_create(&jc, &j) == DT_OK &&
              dt__journal_open(j, path, NULL, &s, &epoch, err, sizeof(err)) == DT_OK;
    *rebuild_ms = bench_now_ms() - t0;
    t0 = bench_now_ms();
    ok = ok && dt__journal_snapshot(j, s, true) == DT_OK;
    *snap_ms = bench_now_ms() - t0;
    if (!ok) {
        bench_note("takeover: snapshot failed: %s", err);
    }
    dt__store_close(s);
    dt__journal_destroy(j);
    return ok;
}

static bool raise_go(bench_hub *h, const char *id)
{
    char subject[DT_BROKER_NAME_BUF];
    dt_broker_header hd[1] = {{DT_HDR_INSTANCE_ID, id}};
    char msg_id[160];
    snprintf(msg_id, sizeof(msg_id), "raise-%s", id); /* the start used the bare ID */
    dt_broker_outmsg m = {
        .subject = subject, .msg_id = msg_id, .headers = hd, .nheaders = 1, .data = "1", .len = 1};
    return dt_broker_subject(h->name, DT_BROKER_SUBJ_IN, "raise.go", subject, sizeof(subject)) ==
               DT_OK &&
           dt_broker_publish(h->broker, &m, NULL) == DT_OK;
}

int bench_takeover(const bench_opts *o)
{
    bench_opts one = *o;
    one.partitions = 1;
    size_t nf = bench_scaled(o, N_FINISHED), nw = bench_scaled(o, N_WAITING);
    bench_setup s;
    if (!bench_setup_open(&one, "takeover", 0, &s)) {
        return 1;
    }
    double t0 = bench_now_ms();
    bench_observer_round(s.ob, "fin", nf);
    bool ok = bench_start_many(&s.hub, "hello5", "fin", 0, nf, "\"x\"") &&
              bench_observer_wait(s.ob, nf, true, WAIT_MS) == nf;
    bench_observer_round(s.ob, "wait", nw);
    ok = ok && bench_start_many(&s.hub, "waiter", "wait", 0, nw, NULL) &&
         bench_observer_wait(s.ob, nw, false, WAIT_MS) == nw;
    bench_note("takeover: %zu finished and %zu waiting instances in %.1f s", nf, nw,
               (bench_now_ms() - t0) / 1000.0);
    bench_worker_stop(&s.w); /* graceful: its lease is released at once */
    char path[600];
    long long instances = 0, events = 0;
    double rebuild_ms = 0, snap_ms = 0, mib = 0;
    if (ok) {
        /* The driver rebuilds the partition from the hub (A's snapshots and log) into a scratch
         * file, as a new owner would, then takes one snapshot of it: both timed. */
        snprintf(path, sizeof(path), "%s/takeover-scratch.db", o->tmpdir);
        remove(path);
        ok = snapshot_of(&s.hub, path, &rebuild_ms, &snap_ms);
        ok = ok && file_counts(path, &instances, &events);
        mib = file_mib(path);
        remove(path);
    }
    bench_worker b = {0};
    double serve_ms = 0;
    if (ok) {
        bench_observer_round(s.ob, "wait", nw);
        double t1 = bench_now_ms();
        ok = bench_worker_start(&one, &s.hub, 0, &b) && raise_go(&s.hub, "wait-0");
        while (ok && bench_observer_done_at(s.ob, 0) == 0 && bench_now_ms() - t1 < WAIT_MS) {
            bench_sleep_ms(1);
        }
        double done = bench_observer_done_at(s.ob, 0);
        ok = ok && done > 0;
        serve_ms = done - t1;
        bench_worker_stop(&b);
    }
    if (ok) {
        bench_json j;
        bench_json_begin(&j, "takeover");
        bench_json_int(&j, "finished", (long long)nf);
        bench_json_int(&j, "waiting", (long long)nw);
        bench_json_int(&j, "instances_in_file", instances);
        bench_json_int(&j, "history_events", events);
        bench_json_num(&j, "file_mib", mib, 1);
        bench_json_num(&j, "rebuild_ms", rebuild_ms, 0);
        bench_json_num(&j, "snapshot_ms", snap_ms, 0);
        bench_json_num(&j, "serve_again_s", serve_ms / 1000.0, 2);
        bench_json_end(&j);
    }
    bench_setup_close(&s);
    return ok ? 0 : 1;
}
