/*
 * The chaos test: N orchestrations (chains, fan-outs, timers, approvals waiting for an event,
 * continue-as-new loops receiving three events, parents with two sub-orchestrations) run on three
 * worker processes, each with a data directory of its own (as on separate hosts), while the test
 * kill -9s and restarts a worker every 1-3 s (wiping its data directory one time in three) and
 * restarts nats-server once. Every event is raised exactly once, right after its instance's start,
 * or (for half of them) right before it. Then every instance must have completed with the right
 * output (which shows each event applied once), every orchestration's side effect (one durable
 * publish into a stream) must exist exactly once, and nothing may be in the dead-letter stream:
 * every message was accepted and must have had its effect.
 *
 * N is DT_CHAOS_N (default 600; the full run is DT_CHAOS_N=2000). Seeded: the seed is
 * printed; DT_CHAOS_SEED=<n> replays the same schedule of kills. Runs its own nats-server (it
 * must restart it), on a free loopback port.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common_int.h"
#include "dt_broker.h"
#include "dt_work.pb-c.h"
#include "protocol_int.h"
#include "test_support.h"

#define N_DEFAULT        600
#define N_WORKERS        3
#define START_EVERY_MS   50 /* starts spread over N * this */
#define CHAOS_TAIL_MS    10000
#define FINISH_MS        300000
#define CHAOS_PARTITIONS 8
#define N_KINDS          6

static int n_instances = N_DEFAULT; /* DT_CHAOS_N */

typedef struct chaos {
    char *dir;
    int port;
    char url[64];
    pid_t server;
    pid_t workers[N_WORKERS];
    char hub[32];
    dt_broker *b;
    unsigned seed;
} chaos;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(s);
    return ok;
}

static void start_server(chaos *c)
{
    char port[16], store[512], log[512];
    snprintf(port, sizeof(port), "%d", c->port);
    snprintf(store, sizeof(store), "%s/js", c->dir);
    snprintf(log, sizeof(log), "%s/nats.log", c->dir);
    c->server = fork();
    if (c->server == 0) {
        execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port, "-sd", store,
               "-l", log, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !port_open(c->port); i++) {
        sleep_ms(50);
    }
    assert_true(port_open(c->port));
    sleep_ms(300); /* JetStream recovers its streams after the port opens */
}

static void stop_pid(pid_t *pid, int sig)
{
    if (*pid > 0) {
        kill(*pid, sig);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

/* Each worker has a data directory of its own, as on separate hosts: nothing is shared but the
 * NATS server, and a partition that moves is rebuilt from its log by the new owner. */
static void worker_dir(const chaos *c, int i, char *out, size_t len)
{
    snprintf(out, len, "%s/worker%d", c->dir, i);
}

static void start_worker(chaos *c, int i)
{
    char data[600];
    worker_dir(c, i, data, sizeof(data));
    c->workers[i] = fork();
    if (c->workers[i] == 0) {
        execl(CHAOS_WORKER_PATH, "chaos_worker", c->url, c->hub, data, (char *)NULL);
        _exit(127);
    }
}

/* A publish that retries while the server restarts (the Nats-Msg-Id keeps it single). */
static void publish_retry(chaos *c, const char *subject, const char *msg_id,
                          const dt_broker_header *h, size_t nh, const char *body)
{
    dt_broker_header all[4];
    memcpy(all, h, nh * sizeof(*h));
    all[nh] = (dt_broker_header){DT_HDR_MSG_ID, msg_id};
    dt_broker_outmsg m = {.subject = subject,
                          .msg_id = msg_id,
                          .headers = all,
                          .nheaders = nh + 1,
                          .data = body,
                          .len = strlen(body)};
    for (int attempt = 0; attempt < 600; attempt++) {
        if (dt_broker_publish(c->b, &m, NULL) == DT_OK) {
            return;
        }
        sleep_ms(100);
    }
    fail_msg("could not publish to %s", subject);
}

static const char *kinds[N_KINDS] = {"chain", "fanout", "timer", "event", "loop", "parent"};

static long expected(int i)
{
    switch (i % N_KINDS) {
    case 0:
        return i + 6;
    case 1:
        return 5L * i + 10;
    case 2:
        return i + 1000;
    case 3:
        return 3L * i; /* the event carries 2i */
    case 4:
        return 3L * i + 111; /* events i+1, i+10, i+100 */
    default:
        return 2L * i + 15; /* children (i)+7 and (i+1)+7 */
    }
}

/* Raises each of the instance's events once, with an identity of its own. */
static void raise_all(chaos *c, int i)
{
    char subject[128], id[32], msg_id[64], body[32];
    snprintf(id, sizeof(id), "c-%d", i);
    dt_broker_header h[1] = {{DT_HDR_INSTANCE_ID, id}};
    if (i % N_KINDS == 3) {
        snprintf(subject, sizeof(subject), "dt.%s.in.raise.go", c->hub);
        snprintf(msg_id, sizeof(msg_id), "go-%s", id);
        snprintf(body, sizeof(body), "%d", 2 * i);
        publish_retry(c, subject, msg_id, h, 1, body);
    } else if (i % N_KINDS == 4) {
        const int add[3] = {1, 10, 100};
        snprintf(subject, sizeof(subject), "dt.%s.in.raise.add", c->hub);
        for (int k = 0; k < 3; k++) {
            snprintf(msg_id, sizeof(msg_id), "add-%s-%d", id, k);
            snprintf(body, sizeof(body), "%d", i + add[k]);
            publish_retry(c, subject, msg_id, h, 1, body);
        }
    }
}

/* Starts instances [from, to); the events of half of the waiting kinds go before the start. */
static void start_range(chaos *c, int from, int to)
{
    for (int i = from; i < to && i < n_instances; i++) {
        char subject[128], id[32], msg_id[64], body[32];
        snprintf(subject, sizeof(subject), "dt.%s.in.start.%s", c->hub, kinds[i % N_KINDS]);
        snprintf(id, sizeof(id), "c-%d", i);
        snprintf(msg_id, sizeof(msg_id), "start-%s", id);
        snprintf(body, sizeof(body), i % N_KINDS == 4 ? "%d 0 0" : "%d", i);
        bool events_first = (i / N_KINDS) % 2 == 0;
        if (events_first) {
            raise_all(c, i);
        }
        dt_broker_header h[1] = {{DT_HDR_INSTANCE_ID, id}};
        publish_retry(c, subject, msg_id, h, 1, body);
        if (!events_first) {
            raise_all(c, i);
        }
    }
}

/* Reads an instance's status record; NULL while absent or unreadable. */
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

/* Starts the instances gradually over N * START_EVERY_MS while it kill -9s a random worker and
 * starts it again at random intervals, until CHAOS_TAIL_MS after the last start, and restarts
 * nats-server once half-way through the starts: so kills and the restart hit work in every
 * stage. */
static void run_chaos(chaos *c, int *kills, int *wipes)
{
    int64_t starts_ms = (int64_t)n_instances * START_EVERY_MS;
    int64_t t0 = dt__mono_ms(), next_kill = t0 + 1000;
    bool restarted = false;
    int started = 0;
    while (dt__mono_ms() - t0 < starts_ms + CHAOS_TAIL_MS) {
        int64_t now = dt__mono_ms();
        int due = (int)((now - t0) * n_instances / starts_ms) + 1;
        if (due > started) {
            start_range(c, started, due);
            started = due < n_instances ? due : n_instances;
        }
        if (!restarted && now - t0 >= starts_ms / 2) {
            fprintf(stderr, "chaos: restarting nats-server\n");
            stop_pid(&c->server, SIGKILL);
            sleep_ms(500);
            start_server(c);
            restarted = true;
        }
        if (now >= next_kill) {
            int i = rand_r(&c->seed) % N_WORKERS;
            stop_pid(&c->workers[i], SIGKILL);
            if (rand_r(&c->seed) % 3 == 0) { /* a host lost with its disk: a fresh container */
                char data[600];
                worker_dir(c, i, data, sizeof(data));
                dt_test_rmtree(data);
                (*wipes)++;
            }
            sleep_ms(rand_r(&c->seed) % 500);
            start_worker(c, i);
            (*kills)++;
            next_kill = now + 1000 + rand_r(&c->seed) % 2000;
        }
        sleep_ms(100);
    }
    assert_true(restarted);
}

static int count_done(chaos *c, dt_broker_kv *kv, bool check)
{
    int done = 0;
    for (int i = 0; i < n_instances; i++) {
        Dtpb__InstanceStatus *s = status_of(kv, i);
        if (s == NULL) {
            continue;
        }
        if (s->runtime_status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED) {
            done++;
            if (check) {
                char want[32];
                snprintf(want, sizeof(want), "%ld", expected(i));
                assert_non_null(s->output);
                assert_int_equal(s->output->value.len, strlen(want));
                assert_memory_equal(s->output->value.data, want, strlen(want));
            }
        } else if (check) {
            /* Every unfinished instance with its partition: a stall of one partition shows. */
            for (int k = i; k < n_instances; k++) {
                Dtpb__InstanceStatus *u = status_of(kv, k);
                if (u != NULL && u->runtime_status !=
                                     DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED) {
                    char id[32];
                    snprintf(id, sizeof(id), "c-%d", k);
                    fprintf(stderr, "unfinished: %s (%s, partition %u) status %d\n", id,
                            kinds[k % N_KINDS], dt__partition_of(id, CHAOS_PARTITIONS),
                            u->runtime_status);
                }
                dtpb__instance_status__free_unpacked(u, NULL);
            }
            fail_msg("instance c-%d ended with status %d", i, s->runtime_status);
        }
        dtpb__instance_status__free_unpacked(s, NULL);
    }
    (void)c;
    return done;
}

/* Every instance's side effect is in the stream exactly once. */
static void check_side_effects(chaos *c)
{
    char stream[64], subject[128];
    snprintf(stream, sizeof(stream), "CHAOS_FX_%s", c->hub);
    snprintf(subject, sizeof(subject), "chaos.%s.fx", c->hub);
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = "check";
    dt_broker_consumer *con = NULL;
    assert_int_equal(dt_broker_consumer_open(c->b, &cc, &con), DT_OK);
    int *seen = calloc(n_instances, sizeof(int));
    char(*first)[160] = calloc(n_instances, sizeof(*first)); /* the first copy, described */
    int total = 0;
    for (;;) {
        dt_broker_msg *msgs[256];
        size_t n = 0;
        assert_int_equal(dt_broker_consumer_fetch(con, 256, 1000, msgs, &n), DT_OK);
        if (n == 0) {
            break;
        }
        for (size_t k = 0; k < n; k++) {
            int i = -1;
            sscanf((const char *)dt_broker_msg_data(msgs[k]), "c-%d", &i);
            assert_true(i >= 0 && i < n_instances);
            seen[i]++;
            total++;
            /* Enough to tell a second publish (another Nats-Msg-Id or stream sequence) from a
             * second delivery of one message, should a side effect show up twice. */
            const char *mid = "(none)";
            (void)dt_broker_msg_header(msgs[k], "Nats-Msg-Id", &mid);
            dt_broker_msg_meta meta = {0};
            (void)dt_broker_msg_meta_get(msgs[k], &meta);
            char desc[160];
            snprintf(desc, sizeof(desc), "Nats-Msg-Id %s, stream seq %llu, delivery %llu", mid,
                     (unsigned long long)meta.stream_seq, (unsigned long long)meta.deliveries);
            if (seen[i] == 1) {
                memcpy(first[i], desc, sizeof(desc));
            } else {
                fprintf(stderr, "fx c-%d: copy 1: %s; copy %d: %s\n", i, first[i], seen[i], desc);
            }
            dt_broker_msg_ack(msgs[k]);
            dt_broker_msg_destroy(msgs[k]);
        }
    }
    dt_broker_consumer_close(con);
    free(first);
    for (int i = 0; i < n_instances; i++) {
        if (seen[i] != 1) {
            fail_msg("side effect of c-%d happened %d times", i, seen[i]);
        }
    }
    assert_int_equal(total, n_instances);
    free(seen);
}

/* Nothing was dead-lettered: every message the test sent was accepted and must have its
 * effect (an event dead-lettered as "no instance" is a lost event). */
static void check_no_dead_letters(chaos *c)
{
    char stream[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_stream_name(c->hub, DT_BROKER_STREAM_DEAD, stream, sizeof(stream)),
                     DT_OK);
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = "check_dead";
    dt_broker_consumer *con = NULL;
    assert_int_equal(dt_broker_consumer_open(c->b, &cc, &con), DT_OK);
    dt_broker_msg *msgs[64];
    size_t n = 0;
    assert_int_equal(dt_broker_consumer_fetch(con, 64, 1000, msgs, &n), DT_OK);
    for (size_t k = 0; k < n; k++) {
        const char *why = "(no reason)", *subj = "?";
        (void)dt_broker_msg_header(msgs[k], "Dt-Reason", &why);
        (void)dt_broker_msg_header(msgs[k], "Dt-Original-Subject", &subj);
        fprintf(stderr, "dead letter: %s (from %s)\n", why, subj);
        dt_broker_msg_ack(msgs[k]);
        dt_broker_msg_destroy(msgs[k]);
    }
    dt_broker_consumer_close(con);
    if (n > 0) {
        fail_msg("%zu message(s) in the dead-letter stream", n);
    }
}

static void create_fx_stream(chaos *c)
{
    /* A plain stream capturing the side effects, with the default 2-minute dedupe window:
     * publishes repeated after a crash carry the same Nats-Msg-Id and are dropped. */
    char name[64], subject[128];
    snprintf(name, sizeof(name), "CHAOS_FX_%s", c->hub);
    snprintf(subject, sizeof(subject), "chaos.%s.fx", c->hub);
    assert_int_equal(dt_broker_stream_ensure(c->b, name, subject), DT_OK);
}

/* The run in progress, for the teardown: a failed check must not leave the nats-server and the
 * workers this test started running (the machine is shared). */
static chaos *current;

static int teardown(void **state)
{
    (void)state;
    chaos *c = current;
    if (c == NULL) {
        return 0;
    }
    for (int i = 0; i < N_WORKERS; i++) {
        stop_pid(&c->workers[i], SIGKILL);
    }
    stop_pid(&c->server, SIGKILL);
    dt_test_rmtree(c->dir);
    free(c->dir);
    free(c);
    current = NULL;
    return 0;
}

static void test_chaos(void **state)
{
    (void)state;
    chaos *c = calloc(1, sizeof(*c));
    current = c;
    const char *seed = getenv("DT_CHAOS_SEED");
    c->seed = seed != NULL ? (unsigned)strtoul(seed, NULL, 10) : (unsigned)time(NULL);
    const char *n = getenv("DT_CHAOS_N");
    long want = n != NULL ? strtol(n, NULL, 10) : 0;
    n_instances = want >= N_KINDS && want <= 100000 ? (int)want : N_DEFAULT;
    fprintf(stderr, "chaos: %d instances, seed %u (replay with DT_CHAOS_SEED=%u)\n", n_instances,
            c->seed, c->seed);
    c->dir = dt_test_mkdtemp("dt-chaos");
    c->port = free_port();
    snprintf(c->url, sizeof(c->url), "nats://127.0.0.1:%d", c->port);
    snprintf(c->hub, sizeof(c->hub), "chaos%u", c->seed % 100000);
    start_server(c);

    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = c->url;
    char err[256];
    assert_int_equal(dt_broker_connect(&bo, &c->b, err, sizeof(err)), DT_OK);
    dt_broker_hub_config hc;
    dt_broker_hub_config_init(&hc);
    hc.partitions = CHAOS_PARTITIONS;
    hc.lease_ttl_ms = 2000;
    assert_int_equal(dt_broker_hub_create(c->b, c->hub, &hc, NULL), DT_OK);
    create_fx_stream(c);
    for (int i = 0; i < N_WORKERS; i++) {
        start_worker(c, i);
    }

    char bucket[128];
    dt_broker_bucket_name(c->hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket));
    dt_broker_kv *kv = NULL;
    assert_int_equal(dt_broker_kv_open(c->b, bucket, &kv), DT_OK);
    int kills = 0, wipes = 0;
    run_chaos(c, &kills, &wipes);
    start_range(c, 0, n_instances); /* no-op unless the chaos ended before all were started */

    int64_t t0 = dt__mono_ms();
    int done = 0;
    while ((done = count_done(c, kv, false)) < n_instances && dt__mono_ms() - t0 < FINISH_MS) {
        sleep_ms(500);
    }
    fprintf(stderr,
            "chaos: %d workers killed (%d with their data dir wiped), %d/%d completed %.1f s "
            "after the chaos\n",
            kills, wipes, done, n_instances, (double)(dt__mono_ms() - t0) / 1000.0);
    assert_int_equal(count_done(c, kv, true), n_instances);
    check_side_effects(c);
    check_no_dead_letters(c);

    dt_broker_kv_close(kv);
    for (int i = 0; i < N_WORKERS; i++) {
        stop_pid(&c->workers[i], SIGTERM);
    }
    dt_broker_close(c->b);
    stop_pid(&c->server, SIGTERM);
    dt_test_rmtree(c->dir);
    free(c->dir);
    free(c);
    current = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_chaos, teardown)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_broker_global_shutdown();
    return rc;
}
