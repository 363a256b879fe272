/*
 * The partition thread: set-up (store epoch, engine, consumer, publisher, query service), the
 * batch loop, and tear-down. See partition_int.h for the pipeline and its crash reasoning.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics_int.h"
#include "partition_int.h"

#define FETCH_WAIT_MS    100
#define TIMERS_PER_BATCH 256
#define RETRY_PAUSE_MS   200
#define OUTBOX_SETTLE_MS 10000 /* the previous batch's PubAcks: normally already in */
#define PAYLOAD_HEADROOM 4096  /* a message's envelope, identities and headers besides a payload */
#define REROUTE_RETRY_MS 1000  /* a misrouted message whose move failed for a transient reason */

static void batch_free(dt__batch *b)
{
    for (size_t i = 0; i < b->n_results; i++) {
        dt__episode_result_free(&b->results[i]);
    }
    dt__arena_destroy(b->arena);
}

/* Adds an item to the group of its instance (groups keep first-arrival order). */
static bool group_item(dt__batch *b, dt__item *it)
{
    for (dt__group *g = b->groups; g != NULL; g = g->next) {
        if (strcmp(g->instance_id, it->om->instance_id) == 0) {
            g->tail->next = it;
            g->tail = it;
            return true;
        }
    }
    dt__group *g = dt__arena_calloc(b->arena, 1, sizeof(*g));
    if (g == NULL) {
        return false;
    }
    g->instance_id = it->om->instance_id;
    g->head = g->tail = it;
    if (b->groups_tail != NULL) {
        b->groups_tail->next = g;
    } else {
        b->groups = g;
    }
    b->groups_tail = g;
    return true;
}

/* ---- one batch ---- */

/*
 * A valid message on another partition's subject (a client with a stale partition count, a
 * hand-made publish) would be applied where no read finds it: it is published to its own
 * partition's subject (same identity, so a repeat is dropped) and leaves this partition's stream;
 * when the broker is away it is tried again later (returns false: the fetched message must be
 * nak'd), and dead-lettered only when the move can never work (too large, invalid). `data` is the
 * packed message (alone, or a member of the batch `m`).
 */
static bool reroute(dt__partition *pt, dt_broker_msg *m, const Dtpb__OrchestrationMessage *om,
                    const uint8_t *data, size_t len)
{
    uint32_t p = dt__partition_of(om->instance_id, pt->w->hub_cfg.partitions);
    char tail[16], subject[DT_BROKER_NAME_BUF];
    snprintf(tail, sizeof(tail), "%u", p);
    dt_broker_outmsg out = {.subject = subject, .msg_id = om->dedupe_id, .data = data, .len = len};
    dt_status st =
        dt_broker_subject(pt->w->hub, DT_BROKER_SUBJ_ORCH, tail, subject, sizeof(subject));
    if (st == DT_OK) {
        st = dt_broker_publish(pt->w->broker, &out, NULL);
    }
    if (st == DT_OK) {
        dt__worker_log(pt->w, DT_LOG_WARN, om->instance_id,
                       "partition %u: message for partition %u moved to %s", pt->p, p, subject);
    } else if (st != DT_ETOOLARGE && st != DT_EINVAL) {
        dt__worker_log(pt->w, DT_LOG_WARN, om->instance_id,
                       "partition %u: message for partition %u not moved yet: %s", pt->p, p,
                       dt_status_str(st));
        return false;
    } else {
        char why[256];
        snprintf(why, sizeof(why), "sent to partition %u's subject, belongs to partition %u: %s",
                 pt->p, p, dt_status_str(st));
        dt__dead_letter(pt, "orchestration", why, om->instance_id, data, len,
                        dt_broker_msg_subject(m));
    }
    return true;
}

/*
 * Decodes one packed OrchestrationMessage of fetched message i (the whole body, or a member of a
 * batch) into an item of the batch, linked from msg_items[i]. A malformed one is dead-lettered, a
 * misrouted one moved (reroute); both take no further part. A lone message is also terminated
 * then (a batch message is settled once for all its members, in settle()). `*last` is the
 * previous item of the same fetched message (NULL for the first). False: out of memory.
 */
static bool add_item(dt__partition *pt, dt__batch *b, size_t i, dt_broker_msg *m, bool member,
                     const uint8_t *data, size_t len, dt__item **last)
{
    dt__item *it = dt__arena_calloc(b->arena, 1, sizeof(*it));
    if (it == NULL) {
        return false;
    }
    it->msg = m;
    it->data = data;
    it->len = len;
    it->timer_id = -1;
    if (dt__orch_msg_decode(b->arena, data, len, &it->om) != DT_OK) {
        dt__dead_letter(pt, "orchestration",
                        member ? "malformed OrchestrationMessage in an OrchestrationBatch"
                               : "malformed OrchestrationMessage",
                        NULL, data, len, dt_broker_msg_subject(m));
        if (!member) {
            dt_broker_msg_term(m);
        }
        return true;
    }
    if (dt__partition_of(it->om->instance_id, pt->w->hub_cfg.partitions) != pt->p) {
        bool done = reroute(pt, m, it->om, data, len);
        if (member) {
            b->msg_retry[i] = b->msg_retry[i] || !done;
        } else if (done) {
            dt_broker_msg_term(m);
        } else {
            /* Tried again later, not given up (the batch's ack of it after this nak is a
             * no-op). */
            dt_broker_msg_nak_delay(m, REROUTE_RETRY_MS);
        }
        return true;
    }
    if (!group_item(b, it)) {
        return false;
    }
    if (*last != NULL) {
        (*last)->same_msg = it;
    } else {
        b->msg_items[i] = it;
    }
    *last = it;
    return true;
}

/* The members of batch message i (Dt-Batch header), each as add_item() takes a lone message. */
static bool add_batch(dt__partition *pt, dt__batch *b, size_t i, dt_broker_msg *m)
{
    Dtpb__OrchestrationBatch *ob = NULL;
    if (dt__orch_batch_decode(b->arena, dt_broker_msg_data(m), dt_broker_msg_len(m), &ob) !=
        DT_OK) {
        dt__dead_letter(pt, "orchestration", "malformed OrchestrationBatch", NULL,
                        dt_broker_msg_data(m), dt_broker_msg_len(m), dt_broker_msg_subject(m));
        dt_broker_msg_term(m);
        return true;
    }
    dt__item *last = NULL;
    for (size_t k = 0; k < ob->n_messages; k++) {
        if (!add_item(pt, b, i, m, true, ob->messages[k].data, ob->messages[k].len, &last)) {
            return false;
        }
    }
    return true;
}

/* Decodes fetched messages into items; malformed ones are dead-lettered and terminated. */
static bool add_messages(dt__partition *pt, dt__batch *b, dt_broker_msg **msgs, size_t n)
{
    b->msg_items = dt__arena_calloc(b->arena, n > 0 ? n : 1, sizeof(*b->msg_items));
    b->msg_retry = dt__arena_calloc(b->arena, n > 0 ? n : 1, sizeof(*b->msg_retry));
    if (b->msg_items == NULL || b->msg_retry == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *count = NULL;
        dt__item *last = NULL;
        bool ok = dt_broker_msg_header(msgs[i], DT_HDR_BATCH, &count) == DT_OK
                      ? add_batch(pt, b, i, msgs[i])
                      : add_item(pt, b, i, msgs[i], false, dt_broker_msg_data(msgs[i]),
                                 dt_broker_msg_len(msgs[i]), &last);
        if (!ok) {
            return false;
        }
    }
    return true;
}

/*
 * Adds the results of activities run in-process (local_act_int.h) as items, and collects their
 * outbox rows in *rows (arena memory) for deletion once the batch commits. A result that did not
 * run, or that cannot be read (never expected: this worker packed it), has its request published
 * through JetStream instead. False: out of memory.
 */
static bool add_locals(dt__partition *pt, dt__batch *b, dt__local_result *locals, int64_t **rows,
                       size_t *n_rows)
{
    size_t n = 0;
    for (dt__local_result *r = locals; r != NULL; r = r->next) {
        n++;
    }
    *rows = dt__arena_alloc(b->arena, (n > 0 ? n : 1) * sizeof(int64_t));
    *n_rows = 0;
    if (*rows == NULL) {
        return false;
    }
    for (dt__local_result *r = locals; r != NULL; r = r->next) {
        dt__item *it = dt__arena_calloc(b->arena, 1, sizeof(*it));
        if (it == NULL) {
            return false;
        }
        it->timer_id = -1;
        it->data = r->data;
        it->len = r->len;
        if (!r->ran || dt__orch_msg_decode(b->arena, r->data, r->len, &it->om) != DT_OK ||
            dt__partition_of(it->om->instance_id, pt->w->hub_cfg.partitions) != pt->p) {
            dt__outbox_local_refused(pt, r->row_id);
            continue;
        }
        if (!group_item(b, it)) {
            return false;
        }
        (*rows)[(*n_rows)++] = r->row_id;
    }
    return true;
}

/* Adds the partition's due timers as items (no query while the earliest is still ahead). */
static dt_status add_timers(dt__partition *pt, dt__batch *b)
{
    dt__timer_row *rows = NULL;
    size_t n = 0;
    int64_t first = 0;
    dt_status st = dt__store_timer_floor_ms(pt->store, &first);
    if (st != DT_OK || first > b->now_ms) {
        return st;
    }
    st = dt__store_due_timers(pt->store, b->now_ms, TIMERS_PER_BATCH, b->arena, &rows, &n);
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        dt__item *it = dt__arena_calloc(b->arena, 1, sizeof(*it));
        if (it == NULL) {
            return DT_ENOMEM;
        }
        it->timer_id = rows[i].id;
        dt__metrics_timer_fired(pt->w->metrics, rows[i].fire_at_ms, b->now_ms); /* metrics */
        if (dt__orch_msg_decode(b->arena, rows[i].payload.data, rows[i].payload.len, &it->om) !=
            DT_OK) {
            /* Written by this code; unreadable means a corrupt row: drop it, loudly. */
            dt__worker_log(pt->w, DT_LOG_ERROR, rows[i].instance_id,
                           "partition %u: unreadable timer %lld dropped", pt->p,
                           (long long)rows[i].id);
            dt__store_batch drop = {.delete_timer_ids = &rows[i].id, .n_delete_timers = 1};
            dt__journal_commit(pt->journal, pt->store, pt->epoch, &drop);
            continue;
        }
        if (!group_item(b, it)) {
            return DT_ENOMEM;
        }
    }
    return st;
}

#define LEAVE_DELAY_MS 5000

/* Acks or naks each fetched message once. A batch message is nak'd whole when one member must
 * come again (left for another version, not moved yet): the members applied meanwhile are
 * recognised by their identities when it does. */
static void settle(const dt__batch *b, dt_broker_msg **msgs, size_t n, bool ack)
{
    for (size_t i = 0; i < n; i++) {
        bool leave = false;
        int32_t retry_ms = 0; /* entities: a name no function is registered for yet */
        for (dt__item *it = b->msg_items != NULL ? b->msg_items[i] : NULL; it != NULL;
             it = it->same_msg) {
            leave = leave || it->leave;
            retry_ms = it->retry_ms > retry_ms ? it->retry_ms : retry_ms;
        }
        if (b->msg_retry != NULL && b->msg_retry[i]) {
            dt_broker_msg_nak_delay(msgs[i], REROUTE_RETRY_MS);
        } else if (retry_ms > 0 && ack) {
            dt_broker_msg_nak_delay(msgs[i], retry_ms);
        } else if (leave) {
            dt_broker_msg_nak_delay(msgs[i], LEAVE_DELAY_MS); /* for a worker of its version */
        } else if (ack) {
            dt_broker_msg_ack(msgs[i]);
        } else {
            dt_broker_msg_nak_delay(msgs[i], RETRY_PAUSE_MS);
        }
        dt_broker_msg_destroy(msgs[i]);
    }
}

static bool lease_valid(dt__partition *pt)
{
    int64_t until = 0;
    return dt__leases_held(pt->w->leases, pt->p, &until) && dt__mono_ms() < until;
}

static void stall_point(const dt__batch *b);

/* Runs the episodes of a batch and commits them. Returns DT_EFENCED when ownership is gone. */
static dt_status run_batch(dt__partition *pt, dt__batch *b)
{
    for (dt__group *g = b->groups; g != NULL; g = g->next) {
        dt_status st = dt__episode_process(pt, b, g);
        if (st != DT_OK) {
            dt__episode_remote_cancel(b);
            return st;
        }
    }
    dt_status rst = dt__episode_remote_collect(pt, b); /* episodes run by SDK workers */
    if (rst != DT_OK) {
        return rst;
    }
    if (b->n_commits == 0 && b->n_parks == 0) {
        return DT_OK;
    }
    if (!lease_valid(pt)) {
        return DT_EFENCED; /* too close to the lease's end to write safely */
    }
    dt__store_stats before, after;
    dt__store_get_stats(pt->store, &before);
    /* The rows published since the last commit are deleted in this transaction. */
    dt__store_batch sb = {.eps = b->commits,
                          .n = b->n_commits,
                          .published_ids = pt->settled.ids,
                          .n_published = pt->settled.n,
                          .parks = b->parks,
                          .n_parks = b->n_parks};
    stall_point(b);
    int64_t commit_t0 = dt__metrics_now_us(); /* metrics */
    /* The commit is the log append: durable (and fenced) in JetStream, then in SQLite. A worker
     * paused here past its lease (a stopped process, a long GC-like stall, a partition from the
     * cluster) finds its append refused once another owner has claimed the log. */
    dt_status st = dt__journal_commit(pt->journal, pt->store, pt->epoch, &sb);
    dt__store_get_stats(pt->store, &after);
    bool as_read = after.unexpected_rows == before.unexpected_rows;
    if (!as_read) {
        /* A stored row was not as its episode read it (a writer other than this thread): the
         * cached rows may be wrong too; read them from SQLite again. */
        dt__worker_log(pt->w, DT_LOG_WARN, NULL,
                       "partition %u: a stored row changed under its episode; row cache dropped",
                       pt->p);
        dt__row_cache_clear(pt->rows);
    }
    if (st == DT_OK) {
        b->committed = true;
        dt__metrics_committed(pt->w->metrics, b->commits, b->n_commits,
                              dt__metrics_now_us() - commit_t0); /* metrics */
        dt__outbox_settled_done(pt);
        for (size_t i = 0; as_read && i < b->n_commits; i++) {
            dt__row_cache_put(pt->rows, pt->engine, b->commits[i].instance);
        }
    } else if (st != DT_EFENCED) {
        dt__worker_log(pt->w, DT_LOG_ERROR, NULL, "partition %u: commit failed: %s", pt->p,
                       st == DT_ETIMEOUT || st == DT_EBROKER ? dt_broker_errmsg(pt->w->broker)
                                                             : dt__store_errmsg(pt->store));
    }
    return st;
}

static void evict_touched(dt__partition *pt, dt__batch *b)
{
    for (size_t i = 0; i < b->n_touched; i++) {
        dt__engine_evict(pt->engine, b->touched[i]);
        dt__row_cache_drop(pt->rows, b->touched[i]);
    }
}

#ifndef NDEBUG
#include <signal.h>
#include <stdlib.h>

/* Whether the batch committed an outbox row whose msg_id ends with `tail`. */
static bool committed_row_ending(const dt__batch *b, const char *tail, size_t tail_len)
{
    for (size_t c = 0; b->committed && c < b->n_commits; c++) {
        for (size_t i = 0; i < b->commits[c].n_outbox; i++) {
            const char *id = b->commits[c].outbox[i].msg_id;
            size_t n = strlen(id);
            if (n >= tail_len && memcmp(id + n - tail_len, tail, tail_len) == 0) {
                return true;
            }
        }
    }
    return false;
}

/*
 * Fault injection for the crash tests, in Debug builds only: DT_TEST_CRASH_OUTBOX="<tail>@<point>"
 * kills the process (SIGKILL) at <point> of the first batch that commits an outbox row whose
 * msg_id ends with <tail>. Points: "commit" (committed; neither acked nor published) and
 * "publish" (acked and published; PubAcks not collected, rows not deleted).
 */
static void crash_point(const dt__batch *b, const char *point)
{
    const char *spec = getenv("DT_TEST_CRASH_OUTBOX");
    const char *at = spec != NULL ? strrchr(spec, '@') : NULL;
    if (at != NULL && strcmp(at + 1, point) == 0 &&
        committed_row_ending(b, spec, (size_t)(at - spec))) {
        (void)raise(SIGKILL);
    }
}
/*
 * Fault injection for the stale-owner test, in Debug builds only: DT_TEST_STALL_COMMIT=
 * "<prefix>@<ms>" makes the first batch with an outbox row whose msg_id starts with <prefix>
 * sleep <ms> between its lease check and its log append (once per process), and says so on
 * stderr, so that a test can stop the process exactly there (tests/integration/chaos).
 */
static void stall_point(const dt__batch *b)
{
    static atomic_bool done;
    const char *spec = getenv("DT_TEST_STALL_COMMIT");
    const char *at = spec != NULL ? strrchr(spec, '@') : NULL;
    if (at == NULL || atomic_load(&done)) {
        return;
    }
    size_t plen = (size_t)(at - spec);
    for (size_t c = 0; c < b->n_commits; c++) {
        for (size_t i = 0; i < b->commits[c].n_outbox; i++) {
            if (strncmp(b->commits[c].outbox[i].msg_id, spec, plen) == 0 &&
                !atomic_exchange(&done, true)) {
                fprintf(stderr, "DT_TEST_STALL_COMMIT: stalling before the log append\n");
                fflush(stderr);
                long ms = strtol(at + 1, NULL, 10);
                struct timespec ts = {(time_t)(ms / 1000), (ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
                return;
            }
        }
    }
}
#else
static void crash_point(const dt__batch *b, const char *point)
{
    (void)b;
    (void)point;
}

static void stall_point(const dt__batch *b)
{
    (void)b;
}
#endif

/* Time to wait for messages: until the next timer, at most FETCH_WAIT_MS. */
static int64_t fetch_wait(dt__partition *pt)
{
    int64_t next = 0;
    if (dt__store_timer_floor_ms(pt->store, &next) != DT_OK || next == INT64_MAX) {
        return FETCH_WAIT_MS;
    }
    int64_t d = next - dt__now_ms();
    return d < 1 ? 1 : (d > FETCH_WAIT_MS ? FETCH_WAIT_MS : d);
}

/* One iteration: fetch, settle the previous outbox, run, commit, ack, publish. Returns DT_EFENCED
 * to end the thread. */
static dt_status iterate(dt__partition *pt)
{
    size_t max = pt->w->opt.fetch_batch;
    dt_broker_msg **msgs = dt_calloc(max, sizeof(*msgs));
    dt__batch b = {.arena = dt__arena_create((size_t)64 * 1024), .now_ms = 0};
    size_t n = 0;
    dt_status st = (msgs == NULL || b.arena == NULL) ? DT_ENOMEM : DT_OK;
    if (st == DT_OK && dt__journal_behind(pt->journal)) {
        /* An append of unknown outcome or a failed local commit: the file follows the log
         * before anything runs on it (or the partition is found to have a new owner). */
        uint64_t applied = 0;
        st = dt__journal_catch_up(pt->journal, pt->store, pt->epoch, &applied);
        if (st == DT_OK && applied > 0) {
            /* Entries of this owner that the file lacked: their outbox rows were never sent
             * (the batch counted as failed), and the cached rows predate them. */
            pt->outbox_pending = true;
            pt->sent_upto = 0;
            dt__row_cache_clear(pt->rows);
        }
        if (st != DT_OK) {
            batch_free(&b);
            dt_free(msgs);
            return st;
        }
    }
    dt__local_result *locals = NULL;
    if (st == DT_OK) {
        st = dt__inbox_take(pt->inbox, fetch_wait(pt), msgs, &n, &locals);
        if (st != DT_OK) { /* disconnected: timers wait for the broker too */
            dt__inbox_requeue(pt->inbox, locals);
            locals = NULL;
        }
        dt__metrics_batch(pt->w->metrics, DT__MKIND_ORCH, n); /* metrics */
    }
    /* The previous batch's PubAcks, when all came back while the fetch waited: those rows are
     * deleted by this batch's commit, or on their own if no commit comes for a while. When some
     * are still out (a lone step: its status record's PubAck takes longer than its in-process
     * activity), the episodes do not wait for them: they are collected once this batch is
     * committed, before its own rows go out (below), and their rows deleted by the next commit.
     * Only the deletion moves; what is published, acked and committed, and in which order, does
     * not. */
    if (dt_broker_publisher_inflight(pt->pub) == 0) {
        dt__outbox_settle(pt, OUTBOX_SETTLE_MS);
    }
    int64_t *local_rows = NULL;
    size_t n_local = 0;
    if (st == DT_OK) {
        b.now_ms = dt__now_ms();
        st = add_messages(pt, &b, msgs, n) && add_locals(pt, &b, locals, &local_rows, &n_local)
                 ? add_timers(pt, &b)
                 : DT_ENOMEM;
    }
    if (st == DT_OK && b.groups != NULL) {
        st = run_batch(pt, &b);
        if (st != DT_OK) {
            evict_touched(pt, &b);
        }
    }
    /* Committed (or nothing to commit): ack now, before publishing. The outbox is durable in
     * SQLite and goes out below, or at the next start-up; a message redelivered after a lost ack
     * is recognised by its identity. Acking first lets the acks travel while the PubAcks come
     * back. On failure the messages come back after the pause. */
    crash_point(&b, "commit");
    settle(&b, msgs, n, st == DT_OK);
    if (st == DT_OK) {
        dt__outbox_local_done(pt, local_rows, n_local); /* applied (or found to be repeats) */
    } else {
        dt__inbox_requeue(pt->inbox, locals); /* tried again with the next batch */
        locals = NULL;
    }
    dt__outbox_settle(pt, OUTBOX_SETTLE_MS); /* if still in flight: one flight at a time */
    if (b.committed || pt->outbox_pending) {
        dt__outbox_send(pt, &b);
    }
    crash_point(&b, "publish");
    if (!b.committed) {
        dt__outbox_trim(pt, false);
    }
    if (st == DT_OK && n == 0) {
        dt__parked_expire(pt); /* no backlog: a start that is not here is not coming soon */
    }
    if (st == DT_OK) {
        dt__retention_tick(pt);
    }
    if (st == DT_OK) {
        dt__journal_snapshot(pt->journal, pt->store, false); /* when enough was appended */
    }
    dt__local_results_free(locals);
    batch_free(&b);
    dt_free(msgs);
    return st;
}

/* ---- set-up and tear-down ---- */

static dt_status make_dirs(const char *path)
{
    char buf[4096];
    int w = snprintf(buf, sizeof(buf), "%s", path);
    if (w < 0 || (size_t)w >= sizeof(buf)) {
        return DT_ETOOLARGE;
    }
    for (char *s = buf + 1; *s != '\0'; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                return DT_EIO;
            }
            *s = '/';
        }
    }
    return (mkdir(buf, 0755) == 0 || errno == EEXIST) ? DT_OK : DT_EIO;
}

static dt_status engine_lookup(const char *name, const char *version, void *ctx,
                               dt_orchestrator_fn *fn, void **ud, char *why, size_t why_len)
{
    return dt__worker_lookup(ctx, name, version, fn, ud, why, why_len);
}

static void engine_log(const char *instance_id, dt_log_level level, const char *msg, void *ctx)
{
    dt__worker_log(ctx, level, instance_id, "%s", msg);
}

static void journal_log(void *ctx, dt_log_level level, const char *msg)
{
    dt__worker_log(ctx, level, NULL, "%s", msg);
}

static dt_status open_store(dt__partition *pt, char *db_path, size_t len)
{
    dt_worker *w = pt->w;
    char dir[4096];
    int n1 = snprintf(dir, sizeof(dir), "%s/%s", w->data_dir, w->hub);
    int n2 = snprintf(db_path, len, "%s/p%03u.db", dir, pt->p);
    if (n1 < 0 || (size_t)n1 >= sizeof(dir) || n2 < 0 || (size_t)n2 >= len) {
        return DT_ETOOLARGE;
    }
    dt_status st = make_dirs(dir);
    if (st != DT_OK) {
        dt__worker_log(w, DT_LOG_ERROR, NULL, "partition %u: cannot create %s: %s", pt->p, dir,
                       strerror(errno));
        pt->store_failed = true;
        return st;
    }
    dt__journal_config jc = {
        .broker = w->broker,
        .hub = w->hub,
        .partition = pt->p,
        .owner = w->worker_id,
        .origin = w->hub_cfg.created_at_ms,
        .max_msg = pt->max_msg,
        .snapshot_entries = w->opt.snapshot_entries,
        .snapshot_bytes = w->opt.snapshot_bytes,
        .log = journal_log,
        .log_ctx = w,
    };
    st = dt__journal_create(&jc, &pt->journal);
    if (st != DT_OK) {
        return st;
    }
    char err[1024] = "";
    dt__store_options so;
    dt__store_options_init(&so);
    so.synchronous_full = w->opt.sqlite_full_sync;
    /* The partition thread is the file's one writer: checkpoints (two fsyncs each) go to a
     * thread of their own instead of stalling a commit every few hundred (store_ckpt.c). */
    so.background_checkpoint = true;
    /* The store becomes a current view of the partition's log, rebuilt from it when needed. */
    st = dt__journal_open(pt->journal, db_path, &so, &pt->store, &pt->epoch, err, sizeof(err));
    if (st != DT_OK) {
        /* The broker away, a racing owner: tried again soon. A file that cannot be written
         * here (permissions, disk): this worker steps back from the partition for a while. */
        bool local = st == DT_EIO || st == DT_EVERSION || st == DT_EBUSY;
        dt__worker_log(w, local ? DT_LOG_ERROR : DT_LOG_WARN, NULL, "partition %u: %s", pt->p, err);
        pt->store_failed = local;
    }
    return st;
}

static dt_status open_broker_side(dt__partition *pt, const char *db_path)
{
    dt_worker *w = pt->w;
    char stream[DT_BROKER_NAME_BUF], durable[64], tail[16];
    snprintf(tail, sizeof(tail), "%u", pt->p);
    snprintf(durable, sizeof(durable), "orch_%u", pt->p);
    dt_status st = dt_broker_stream_name(w->hub, DT_BROKER_STREAM_ORCH, stream, sizeof(stream));
    if (st == DT_OK) {
        st = dt_broker_subject(w->hub, DT_BROKER_SUBJ_ORCH, tail, pt->subject, sizeof(pt->subject));
    }
    char bucket[DT_BROKER_NAME_BUF - 8]; /* room for "$KV." and "." around it */
    if (st == DT_OK) {
        st = dt_broker_bucket_name(w->hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket));
    }
    if (st == DT_OK) {
        snprintf(pt->status_prefix, sizeof(pt->status_prefix), "$KV.%s.", bucket);
    }
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = durable;
    cc.filter_subject = pt->subject;
    cc.max_ack_pending = 100000;
    /* Messages a dead owner fetched but never acked come back after this: short, so a takeover
     * resumes promptly; an episode batch is acked well within it. */
    cc.ack_wait_ms = 10000;
    if (st == DT_OK) {
        st = dt_broker_consumer_open(w->broker, &cc, &pt->consumer);
    }
    if (st == DT_OK) {
        st = dt_broker_publisher_create(w->broker, NULL, &pt->pub);
    }
    if (st == DT_OK) {
        st = dt__inbox_start(pt->consumer, w->opt.fetch_batch, FETCH_WAIT_MS, &pt->inbox);
    }
    char err[256];
    if (st == DT_OK) {
        st = dt__query_service_start(w->broker, w->hub, pt->p, db_path, pt->journal, pt->epoch,
                                     &pt->query, err, sizeof(err));
    }
    if (st != DT_OK) {
        dt__worker_log(w, DT_LOG_ERROR, NULL, "partition %u: broker set-up failed: %s", pt->p,
                       dt_broker_errmsg(w->broker));
    }
    return st;
}

/* The hub's message limit, or the server's when that is smaller. */
static size_t max_msg(const dt_worker *w)
{
    size_t m = w->hub_cfg.max_msg_size > 0 ? w->hub_cfg.max_msg_size : 1024 * 1024;
    int64_t server = dt_broker_max_payload(w->broker);
    return server > 0 && (uint64_t)server < m ? (size_t)server : m;
}

static dt_status setup(dt__partition *pt)
{
    char db_path[4096];
    pt->max_msg = max_msg(pt->w);
    dt_status st = open_store(pt, db_path, sizeof(db_path));
    if (st != DT_OK) {
        return st;
    }
    dt__engine_config ec = {
        .cache_capacity = pt->w->opt.cache_capacity,
        /* What a parent's result, the next execution's start or the status record must carry
         * (the record leaves payloads out to fit, but each one must fit alone). */
        .max_payload_bytes = pt->max_msg > PAYLOAD_HEADROOM ? pt->max_msg - PAYLOAD_HEADROOM : 0,
        .lookup = engine_lookup,
        .lookup_ctx = pt->w,
        .log = engine_log,
        .log_ctx = pt->w,
    };
    st = dt__engine_create(&ec, &pt->engine);
    if (st == DT_OK) {
        st = dt__row_cache_create(ec.cache_capacity, &pt->rows);
    }
    if (st == DT_OK) {
        st = open_broker_side(pt, db_path);
    }
    if (st == DT_OK) {
        /* Publish whatever a previous owner left now, apart from the first batch's own rows
         * (which may then run in-process); settled by the first iteration. */
        pt->outbox_pending = true;
        dt__outbox_send(pt, NULL);
    }
    return st;
}

static void teardown(dt__partition *pt)
{
    if (pt->pub != NULL) {
        dt__outbox_settle(pt, 2000); /* rows not confirmed stay for the next owner */
    }
    if (pt->store != NULL) {
        dt__outbox_trim(pt, true); /* so the next owner does not publish them again */
    }
    dt__outbox_settled_free(pt);
    dt__outbox_cache_clear(pt);
    dt__query_service_stop(pt->query);
    pt->query = NULL;
    dt_broker_publisher_destroy(pt->pub);
    pt->pub = NULL;
    dt__inbox_close(pt->inbox); /* before its consumer */
    pt->inbox = NULL;
    dt_broker_kv_close(pt->meta_kv);
    pt->meta_kv = NULL;
    dt_broker_kv_close(pt->status_kv);
    pt->status_kv = NULL;
    dt_broker_consumer_close(pt->consumer);
    pt->consumer = NULL;
    dt__row_cache_destroy(pt->rows);
    pt->rows = NULL;
    dt__engine_destroy(pt->engine);
    pt->engine = NULL;
    dt__store_close(pt->store);
    pt->store = NULL;
    dt__journal_destroy(pt->journal);
    pt->journal = NULL;
}

static void *partition_main(void *arg)
{
    dt__partition *pt = arg;
    dt_status st = setup(pt);
    dt__metrics *owned_metrics = st == DT_OK ? pt->w->metrics : NULL; /* metrics */
    dt__metrics_partition(owned_metrics, pt->p, true);                /* metrics */
    if (st == DT_OK) {
        dt__worker_log(pt->w, DT_LOG_INFO, NULL, "partition %u: running (epoch %llu)", pt->p,
                       (unsigned long long)pt->epoch);
    }
    while (st != DT_EFENCED && !atomic_load(&pt->stop) && lease_valid(pt)) {
        if (st == DT_ENOMEM) {
            dt__worker_log(pt->w, DT_LOG_ERROR, NULL,
                           "partition %u: out of memory running a batch (coroutine stacks or "
                           "heap); it is retried",
                           pt->p);
        }
        if (st != DT_OK) {
            struct timespec ts = {0, RETRY_PAUSE_MS * 1000000L};
            nanosleep(&ts, NULL);
            if (pt->consumer == NULL) {
                break; /* set-up failed: the supervisor starts a new thread later */
            }
        }
        st = iterate(pt);
    }
    dt__worker_log(pt->w, DT_LOG_INFO, NULL, "partition %u: released (%s)", pt->p,
                   st == DT_EFENCED ? "fenced" : "stopped");
    dt__metrics_partition(owned_metrics, pt->p, false); /* metrics */
    teardown(pt);
    atomic_store(&pt->done, true);
    return NULL;
}

dt_status dt__partition_start(dt_worker *w, uint32_t p, dt__partition **out)
{
    dt__partition *pt = dt_calloc(1, sizeof(*pt));
    if (pt == NULL) {
        return DT_ENOMEM;
    }
    pt->w = w;
    pt->p = p;
    atomic_init(&pt->stop, false);
    atomic_init(&pt->done, false);
    if (pthread_create(&pt->thread, NULL, partition_main, pt) != 0) {
        dt_free(pt);
        return DT_ENOMEM;
    }
    *out = pt;
    return DT_OK;
}

bool dt__partition_done(dt__partition *pt)
{
    return atomic_load(&pt->done);
}

bool dt__partition_store_failed(const dt__partition *pt)
{
    return pt->store_failed;
}

void dt__partition_request_stop(dt__partition *pt)
{
    if (pt != NULL) {
        atomic_store(&pt->stop, true);
    }
}

void dt__partition_stop(dt__partition *pt)
{
    if (pt == NULL) {
        return;
    }
    atomic_store(&pt->stop, true);
    pthread_join(pt->thread, NULL);
    dt_free(pt);
}
