/*
 * The cluster test (issue 8): a hub with 3 replicas on a three-node nats-server cluster
 * (test_cluster.h) survives the loss of the node that leads its ORCH stream.
 *
 * Two in-process workers serve the hub (each with its own connection to the whole URL list). A
 * publisher thread starts N_INSTANCES orchestrations (cluster_work.h) over START_SPREAD_MS, the
 * way any NATS client would (a JetStream publish to dt.<hub>.in.*), and raises each "event"
 * instance's event exactly once, for half of them before the start. KILL_AFTER_MS into the starts
 * the main thread kill -9s the node that leads DT_<hub>_ORCH, and DOWN_MS later starts it again on
 * its store. Then every instance must complete with the right output (so each event was applied
 * once), every activity must have run at least once, every durable publish of a state transition
 * must be in the side-effect stream exactly once, the dead-letter stream must be empty (every
 * message the test sent was accepted and must have had its effect), and the restarted node must
 * have caught up with the ORCH stream.
 *
 * Before the starts, the leaders of what the hub's work needs besides the ORCH stream (the ACT
 * stream, the default task queue's consumer act_default on it, and the leases bucket's stream) are
 * moved off the node that leads DT_<hub>_ORCH, so that losing that node takes the ORCH stream's
 * leader alone: partitions keep their leases and fire timers, activities keep being delivered and
 * run, and their results find no ORCH leader until another node is elected (about 4 to 9 s on
 * nats-server 2.9.10). With random placement that happens in some runs and not in others.
 *
 * A publish that got no PubAck (the stream it goes to is electing a leader, or the client's node
 * died) is sent again with the same Nats-Msg-Id, which JetStream drops if the first one was
 * stored; a publish that got its PubAck is never sent again.
 */
#include <pthread.h>
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

#include "cluster_work.h"
#include "common_int.h"
#include "dt_broker.h"
#include "dt_work.pb-c.h"
#include "durabletask/client.h"
#include "protocol_int.h"
#include "test_cluster.h"
#include "test_support.h"

#define N_INSTANCES     300
#define N_WORKERS       2
#define PARTITIONS      4
#define LEASE_TTL_MS    2000
#define START_SPREAD_MS 6000
#define KILL_AFTER_MS   2000  /* after the first start */
#define DOWN_MS         4000  /* the killed node stays down this long */
#define PUBLISH_MAX_MS  20000 /* a publish without PubAck is repeated for at most this long */
#define CLUSTER_WAIT_MS 20000
#define FINISH_MS       30000 /* every instance completes within this after the last start */
#define CATCH_UP_MS     10000
#define PLACE_MS        15000         /* moving the activity consumer's leader */
#define ACT_CONSUMER    "act_default" /* the default task queue's durable consumer */
#define ELECTION_MS     10000 /* after the restart, only to report when ORCH had a leader again */

typedef struct fixture {
    dt_test_cluster *cluster;
    char hub[32];
    char fx_stream[64];
    char *data_dir;
    dt_broker *b;
    dt_broker_kv *status; /* opened before the kill: the open asks the bucket's leader */
    dt_worker *workers[N_WORKERS];
    pthread_t publisher;
    bool publishing;
    atomic_bool stop;      /* the publisher gives up */
    atomic_int published;  /* instances started */
    atomic_int repeated;   /* publishes sent again after no PubAck */
    char publish_err[512]; /* the publisher's failure, "" if none */
    int64_t t0;            /* first start */
} fixture;

static fixture *current; /* for the teardown */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double secs_since(int64_t t)
{
    return (double)(dt__mono_ms() - t) / 1000.0;
}

/* ---- the publisher thread (no cmocka asserts here: failures go to publish_err) ---- */

/* Publishes until a PubAck arrives; false when PUBLISH_MAX_MS passed or the test stopped. */
static bool publish_acked(fixture *f, const char *tail, const char *id, const char *msg_id,
                          const char *body)
{
    char subject[DT_BROKER_NAME_BUF];
    if (dt_broker_subject(f->hub, DT_BROKER_SUBJ_IN, tail, subject, sizeof(subject)) != DT_OK) {
        snprintf(f->publish_err, sizeof(f->publish_err), "bad subject tail %s", tail);
        return false;
    }
    dt_broker_header h[1] = {{DT_HDR_INSTANCE_ID, id}};
    dt_broker_outmsg m = {.subject = subject,
                          .msg_id = msg_id,
                          .headers = h,
                          .nheaders = 1,
                          .data = body,
                          .len = strlen(body)};
    int64_t end = dt__mono_ms() + PUBLISH_MAX_MS;
    for (int attempt = 0;; attempt++) {
        dt_status st = dt_broker_publish(f->b, &m, NULL);
        if (st == DT_OK) {
            return true;
        }
        if (dt__mono_ms() > end || atomic_load(&f->stop)) {
            snprintf(f->publish_err, sizeof(f->publish_err), "publish %s to %s: %s", msg_id,
                     subject, dt_broker_errmsg(f->b));
            return false;
        }
        if (attempt == 0) {
            atomic_fetch_add(&f->repeated, 1);
        }
        sleep_ms(100);
    }
}

/* Instance i's start, and for an "event" instance its one event (first for half of them). */
static bool start_one(fixture *f, int i)
{
    char id[32], tail[64], msg_id[64], body[32];
    snprintf(id, sizeof(id), "c-%d", i);
    bool has_event = strcmp(cw_kind(i), "event") == 0;
    bool event_first = (i / CW_KINDS) % 2 == 0;
    char ev_id[64], ev_body[32];
    snprintf(ev_id, sizeof(ev_id), "go-%s", id);
    snprintf(ev_body, sizeof(ev_body), "%d", 2 * i);
    if (has_event && event_first && !publish_acked(f, "raise.go", id, ev_id, ev_body)) {
        return false;
    }
    snprintf(tail, sizeof(tail), "start.%s", cw_kind(i));
    snprintf(msg_id, sizeof(msg_id), "start-%s", id);
    snprintf(body, sizeof(body), "%d", i);
    if (!publish_acked(f, tail, id, msg_id, body)) {
        return false;
    }
    return !has_event || event_first || publish_acked(f, "raise.go", id, ev_id, ev_body);
}

static void *publisher_main(void *arg)
{
    fixture *f = arg;
    for (int i = 0; i < N_INSTANCES && !atomic_load(&f->stop); i++) {
        int64_t due = f->t0 + (int64_t)i * START_SPREAD_MS / N_INSTANCES;
        int64_t now = dt__mono_ms();
        if (due > now) {
            sleep_ms(due - now);
        }
        if (!start_one(f, i)) {
            break;
        }
        atomic_fetch_add(&f->published, 1);
    }
    return NULL;
}

/* ---- set-up ---- */

static void worker_log(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    if (level >= DT_LOG_WARN || getenv("DT_TEST_VERBOSE") != NULL) {
        dt_worker_log_stderr(level, instance_id, msg, ctx);
    }
}

static void start_workers(fixture *f)
{
    static const char *const names[N_WORKERS] = {"w1", "w2"};
    for (int k = 0; k < N_WORKERS; k++) {
        dt_worker_options o = {.nats_url = f->cluster->urls,
                               .hub = f->hub,
                               .data_dir = f->data_dir,
                               .worker_id = names[k],
                               .log = worker_log,
                               .log_ctx = (void *)names[k]};
        char err[256];
        if (dt_worker_create(&o, &f->workers[k], err, sizeof(err)) != DT_OK) {
            fail_msg("worker %s: %s", names[k], err);
        }
        cw_register(f->workers[k]);
        assert_int_equal(dt_worker_start(f->workers[k]), DT_OK);
    }
}

/* The hub, created the way an operator would: through the client, with 3 replicas. */
static void create_hub(fixture *f)
{
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = f->cluster->urls;
    co.hub = f->hub;
    dt_client *c = NULL;
    char err[256];
    if (dt_client_create(&co, &c, err, sizeof(err)) != DT_OK) {
        fail_msg("client: %s", err);
    }
    dt_client_hub_info h, out;
    dt_client_hub_info_init(&h);
    h.partitions = PARTITIONS;
    h.replicas = 3;
    h.lease_ttl_ms = LEASE_TTL_MS;
    dt_status st = dt_client_hub_create(c, &h, &out);
    if (st != DT_OK) {
        fail_msg("hub create: %s", dt_client_errmsg(c));
    }
    assert_int_equal(out.replicas, 3);
    dt_client_destroy(c);
}

static void setup_run(fixture *f)
{
    f->cluster = dt_test_cluster_new("dt-cluster");
    int64_t t = dt__mono_ms();
    assert_true(dt_test_cluster_start(f->cluster, CLUSTER_WAIT_MS));
    fprintf(stderr, "cluster: three nodes ready in %.1f s (%s)\n", secs_since(t), f->cluster->urls);
    char rnd[37];
    dt__random_uuid(rnd);
    snprintf(f->hub, sizeof(f->hub), "cl_%.8s", rnd);
    create_hub(f);
    char fx_subject[128];
    snprintf(f->fx_stream, sizeof(f->fx_stream), "CL_FX_%s", f->hub);
    snprintf(fx_subject, sizeof(fx_subject), "cl.%s.fx", f->hub);
    assert_int_equal(dt_test_cluster_stream_create(f->cluster, f->fx_stream, fx_subject, 3), DT_OK);
    cw_init(N_INSTANCES, fx_subject);
    f->data_dir = dt_test_mkdtemp("dt-cluster-data");
    assert_non_null(f->data_dir);
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = f->cluster->urls;
    char err[256];
    if (dt_broker_connect(&bo, &f->b, err, sizeof(err)) != DT_OK) {
        fail_msg("connect: %s", err);
    }
    char bucket[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_bucket_name(f->hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket)),
                     DT_OK);
    assert_int_equal(dt_broker_kv_open(f->b, bucket, &f->status), DT_OK);
    start_workers(f);
}

/* ---- the failure ---- */

/* Polls the leader of `orch` until `until` (monotonic ms) or until some node other than `dead`
 * leads it, which it reports once (*reported). */
static void watch_leader(dt_test_cluster *c, const char *orch, int dead, int64_t killed,
                         int64_t until, bool *reported)
{
    while (!*reported && dt__mono_ms() < until) {
        int now = dt_test_cluster_stream_leader(c, orch, 500);
        if (now >= 0 && now != dead) {
            fprintf(stderr, "cluster: n%d leads %s %.1f s after the kill\n", now + 1, orch,
                    secs_since(killed));
            *reported = true;
        } else {
            sleep_ms(250);
        }
    }
}

/* Moves the leaders of the ACT stream, its act_default consumer and the leases bucket's stream
 * off the node that leads the ORCH stream (see the file's head). */
static void place_leaders(fixture *f)
{
    char orch[DT_BROKER_NAME_BUF], act[DT_BROKER_NAME_BUF], leases[DT_BROKER_NAME_BUF + 3];
    assert_int_equal(dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ORCH, orch, sizeof(orch)),
                     DT_OK);
    assert_int_equal(dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ACT, act, sizeof(act)), DT_OK);
    memcpy(leases, "KV_", 3); /* a bucket's stream is KV_<bucket> */
    assert_int_equal(
        dt_broker_bucket_name(f->hub, DT_BROKER_BUCKET_LEASES, leases + 3, sizeof(leases) - 3),
        DT_OK);
    int orch_leader = dt_test_cluster_stream_leader(f->cluster, orch, 2000);
    assert_true(orch_leader >= 0);
    const char *what[3][2] = {{act, NULL}, {act, ACT_CONSUMER}, {leases, NULL}};
    for (int k = 0; k < 3; k++) {
        int l =
            dt_test_cluster_move_leader(f->cluster, what[k][0], what[k][1], orch_leader, PLACE_MS);
        if (l < 0) {
            fail_msg("could not move the leader of %s %s off n%d", what[k][0],
                     what[k][1] != NULL ? what[k][1] : "", orch_leader + 1);
        }
        fprintf(stderr, "cluster: n%d leads %s%s%s\n", l + 1, what[k][0],
                what[k][1] != NULL ? "/" : "", what[k][1] != NULL ? what[k][1] : "");
    }
    fprintf(stderr, "cluster: n%d leads %s\n", orch_leader + 1, orch);
}

/* Kills the ORCH stream's leader KILL_AFTER_MS into the starts, keeps it down DOWN_MS, then
 * starts it again on its store; reports when another node took the lead. */
static void fail_orch_leader(fixture *f)
{
    char orch[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ORCH, orch, sizeof(orch)),
                     DT_OK);
    sleep_ms(f->t0 + KILL_AFTER_MS - dt__mono_ms());
    int leader = dt_test_cluster_stream_leader(f->cluster, orch, 2000);
    assert_true(leader >= 0);
    fprintf(stderr, "cluster: kill -9 n%d (leads %s) after %d of %d starts\n", leader + 1, orch,
            atomic_load(&f->published), N_INSTANCES);
    int64_t killed = dt__mono_ms();
    dt_test_cluster_kill(f->cluster, leader);
    bool reported = false;
    watch_leader(f->cluster, orch, leader, killed, killed + DOWN_MS, &reported);
    sleep_ms(killed + DOWN_MS - dt__mono_ms());
    assert_true(dt_test_cluster_restart(f->cluster, leader));
    fprintf(stderr, "cluster: n%d restarted on its store %.1f s after the kill\n", leader + 1,
            secs_since(killed));
    watch_leader(f->cluster, orch, -1, killed, killed + DOWN_MS + ELECTION_MS, &reported);
}

/* ---- the checks ---- */

static Dtpb__InstanceStatus *status_of(dt_broker_kv *kv, int i)
{
    char id[32], key[128];
    snprintf(id, sizeof(id), "c-%d", i);
    dt__status_key(id, key, sizeof(key));
    dt_broker_kv_entry e = {0};
    if (dt_broker_kv_get(kv, key, &e) != DT_OK) {
        return NULL;
    }
    Dtpb__InstanceStatus *s = dtpb__instance_status__unpack(NULL, e.len, e.value);
    dt_broker_kv_entry_clear(&e);
    return s;
}

static bool completed(const Dtpb__InstanceStatus *s)
{
    return s != NULL &&
           s->runtime_status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
}

/* Instances completed, and into *out_final those with a final status (completed or not); with
 * `check`, each completed one must have its output and the others are listed. */
static int count_done(dt_broker_kv *kv, bool check, int *out_final)
{
    int done = 0, final = 0;
    for (int i = 0; i < N_INSTANCES; i++) {
        Dtpb__InstanceStatus *s = status_of(kv, i);
        final += s != NULL && dt__status_finished(s->runtime_status);
        if (completed(s)) {
            char want[32];
            snprintf(want, sizeof(want), "%ld", cw_expected(i));
            bool right = s->output != NULL && s->output->value.len == strlen(want) &&
                         memcmp(s->output->value.data, want, strlen(want)) == 0;
            if (check && !right) {
                fail_msg("c-%d (%s) completed with output %.*s, expected %s", i, cw_kind(i),
                         s->output != NULL ? (int)s->output->value.len : 6,
                         s->output != NULL ? (const char *)s->output->value.data : "(none)", want);
            }
            done++;
        } else if (check) {
            char id[32];
            snprintf(id, sizeof(id), "c-%d", i);
            const Dtpb__TaskFailureDetails *fd = s != NULL ? s->failure_details : NULL;
            fprintf(stderr, "not completed: %s (%s, partition %u) status %d%s%s%s%s\n", id,
                    cw_kind(i), dt__partition_of(id, PARTITIONS),
                    s != NULL ? (int)s->runtime_status : -1, fd != NULL ? ": " : "",
                    fd != NULL && fd->error_type != NULL ? fd->error_type : "",
                    fd != NULL ? ": " : "",
                    fd != NULL && fd->error_message != NULL ? fd->error_message : "");
        }
        dtpb__instance_status__free_unpacked(s, NULL);
    }
    *out_final = final;
    return done;
}

/* Where an unfinished instance stands: its history as its partition's owner has it. */
static void print_history(fixture *f, int i)
{
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = f->cluster->urls;
    co.hub = f->hub;
    dt_client *c = NULL;
    char err[256], id[32];
    snprintf(id, sizeof(id), "c-%d", i);
    dt_client_history *h = NULL;
    if (dt_client_create(&co, &c, err, sizeof(err)) != DT_OK ||
        dt_client_get_history(c, id, &h) != DT_OK) {
        fprintf(stderr, "history of %s: %s\n", id, c != NULL ? dt_client_errmsg(c) : err);
    } else {
        fprintf(stderr, "history of %s:", id);
        for (size_t k = 0; k < h->n; k++) {
            fprintf(stderr, " %s(%d)", h->events[k].type, (int)h->events[k].task_id);
        }
        fprintf(stderr, "\n");
    }
    dt_client_history_free(h);
    dt_client_destroy(c);
}

/* The hub's consumers as the cluster sees them (pending, ack-pending, redelivered). */
static void print_consumers(fixture *f)
{
    char api[256];
    for (int p = -1; p < PARTITIONS; p++) {
        if (p < 0) {
            snprintf(api, sizeof(api), "$JS.API.CONSUMER.INFO.DT_%s_ACT.act_default", f->hub);
        } else {
            snprintf(api, sizeof(api), "$JS.API.CONSUMER.INFO.DT_%s_ORCH.orch_%d", f->hub, p);
        }
        char *info = dt_test_cluster_api(f->cluster, api, NULL, 2000);
        const char *tail = info != NULL ? strstr(info, "\"delivered\"") : NULL;
        fprintf(stderr, "%s: %.400s\n", api, tail != NULL ? tail : (info != NULL ? info : "?"));
        free(info);
    }
}

static void wait_all_done(fixture *f)
{
    dt_broker_kv *kv = f->status;
    int64_t t = dt__mono_ms();
    int done = 0, final = 0;
    /* Until every instance has ended, completed or not (a failed one fails the test at once). */
    while ((done = count_done(kv, false, &final), final) < N_INSTANCES &&
           dt__mono_ms() - t < FINISH_MS) {
        sleep_ms(500);
    }
    fprintf(stderr, "cluster: %d/%d completed, %d ended otherwise, %.1f s after the last start\n",
            done, N_INSTANCES, final - done, secs_since(t));
    if (final < N_INSTANCES) {
        print_consumers(f);
    }
    for (int i = 0; i < N_INSTANCES && final < N_INSTANCES; i++) {
        Dtpb__InstanceStatus *s = status_of(kv, i);
        if (!completed(s)) {
            print_history(f, i);
        }
        dtpb__instance_status__free_unpacked(s, NULL);
    }
    assert_int_equal(count_done(kv, true, &final), N_INSTANCES);
}

/* Counts "c-<i>.<step>" bodies in the side-effect stream into seen[i][step]. */
static void read_side_effects(fixture *f, int (*seen)[CW_MAX_STEPS])
{
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = f->fx_stream;
    cc.durable = "check";
    dt_broker_consumer *con = NULL;
    assert_int_equal(dt_broker_consumer_open(f->b, &cc, &con), DT_OK);
    for (;;) {
        dt_broker_msg *msgs[256];
        size_t n = 0;
        assert_int_equal(dt_broker_consumer_fetch(con, 256, 1000, msgs, &n), DT_OK);
        if (n == 0) {
            break;
        }
        for (size_t k = 0; k < n; k++) {
            int i = -1, step = -1;
            char body[64];
            snprintf(body, sizeof(body), "%.*s", (int)dt_broker_msg_len(msgs[k]),
                     (const char *)dt_broker_msg_data(msgs[k]));
            if (sscanf(body, "c-%d.%d", &i, &step) != 2 || i < 0 || i >= N_INSTANCES || step < 0 ||
                step >= cw_steps(i)) {
                fail_msg("unexpected side effect %s", body);
            }
            seen[i][step]++;
            dt_broker_msg_ack(msgs[k]);
            dt_broker_msg_destroy(msgs[k]);
        }
    }
    dt_broker_consumer_close(con);
}

/* Each durable publish exactly once; each activity at least once. */
static void check_side_effects(fixture *f)
{
    int(*seen)[CW_MAX_STEPS] = calloc(N_INSTANCES, sizeof(*seen));
    assert_non_null(seen);
    read_side_effects(f, seen);
    int bad = 0, repeats = 0;
    for (int i = 0; i < N_INSTANCES; i++) {
        for (int step = 0; step < cw_steps(i); step++) {
            if (seen[i][step] != 1) {
                fprintf(stderr, "durable publish c-%d.%d happened %d times\n", i, step,
                        seen[i][step]);
                bad++;
            }
        }
        for (int slot = 0; slot < cw_slots(i); slot++) {
            int runs = cw_runs(i, slot);
            if (runs < 1) {
                fprintf(stderr, "activity %d of c-%d never ran\n", slot, i);
                bad++;
            }
            repeats += runs > 1 ? runs - 1 : 0;
        }
    }
    free(seen);
    fprintf(stderr, "cluster: %d activity runs repeated (at-least-once)\n", repeats);
    assert_int_equal(bad, 0);
}

static void check_no_dead_letters(fixture *f)
{
    char stream[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_stream_name(f->hub, DT_BROKER_STREAM_DEAD, stream, sizeof(stream)),
                     DT_OK);
    dt_broker_stream_info si = {0};
    assert_int_equal(dt_broker_stream_info_get(f->b, stream, &si), DT_OK);
    if (si.msgs == 0) {
        return;
    }
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = "check_dead";
    dt_broker_consumer *con = NULL;
    assert_int_equal(dt_broker_consumer_open(f->b, &cc, &con), DT_OK);
    dt_broker_msg *msgs[64];
    size_t n = 0;
    assert_int_equal(dt_broker_consumer_fetch(con, 64, 1000, msgs, &n), DT_OK);
    for (size_t k = 0; k < n; k++) {
        const char *why = "(no reason)", *subj = "?";
        (void)dt_broker_msg_header(msgs[k], DT_HDR_REASON, &why);
        (void)dt_broker_msg_header(msgs[k], DT_HDR_ORIGINAL_SUBJECT, &subj);
        fprintf(stderr, "dead letter: %s (from %s)\n", why, subj);
        dt_broker_msg_ack(msgs[k]);
        dt_broker_msg_destroy(msgs[k]);
    }
    dt_broker_consumer_close(con);
    fail_msg("%llu message(s) in the dead-letter stream", (unsigned long long)si.msgs);
}

/* The restarted node has caught up with the ORCH stream. */
static void check_caught_up(fixture *f)
{
    char orch[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_stream_name(f->hub, DT_BROKER_STREAM_ORCH, orch, sizeof(orch)),
                     DT_OK);
    int64_t t = dt__mono_ms();
    while (!dt_test_cluster_stream_current(f->cluster, orch, 1000)) {
        if (dt__mono_ms() - t > CATCH_UP_MS) {
            fail_msg("the replicas of %s are not all current %d ms after the run", orch,
                     CATCH_UP_MS);
        }
        sleep_ms(250);
    }
}

/* ---- the test ---- */

static void stop_publisher(fixture *f)
{
    if (f->publishing) {
        atomic_store(&f->stop, true);
        pthread_join(f->publisher, NULL);
        f->publishing = false;
    }
}

static int teardown(void **state)
{
    (void)state;
    fixture *f = current;
    if (f == NULL) {
        return 0;
    }
    stop_publisher(f);
    for (int k = 0; k < N_WORKERS; k++) {
        dt_worker_destroy(f->workers[k]);
    }
    dt_broker_kv_close(f->status);
    dt_broker_close(f->b);
    dt_test_cluster_free(f->cluster);
    cw_fini();
    dt_test_rmtree(f->data_dir);
    free(f->data_dir);
    free(f);
    current = NULL;
    return 0;
}

static void test_orch_leader_killed(void **state)
{
    (void)state;
    int64_t t_all = dt__mono_ms();
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    current = f;
    setup_run(f);
    place_leaders(f);

    f->t0 = dt__mono_ms();
    assert_int_equal(pthread_create(&f->publisher, NULL, publisher_main, f), 0);
    f->publishing = true;
    fail_orch_leader(f);
    pthread_join(f->publisher, NULL);
    f->publishing = false;
    fprintf(stderr, "cluster: %d starts published in %.1f s, %d sent again after no PubAck\n",
            atomic_load(&f->published), secs_since(f->t0), atomic_load(&f->repeated));
    if (f->publish_err[0] != '\0') {
        fail_msg("%s", f->publish_err);
    }
    assert_int_equal(atomic_load(&f->published), N_INSTANCES);

    wait_all_done(f);
    check_side_effects(f);
    check_no_dead_letters(f);
    check_caught_up(f);
    fprintf(stderr, "cluster: whole test %.1f s\n", secs_since(t_all));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_orch_leader_killed, teardown)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_broker_global_shutdown();
    return rc;
}
