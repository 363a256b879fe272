/*
 * The chaos test: 500 orchestrations (chains, fan-outs, timers, external events) run on three
 * worker processes while the test kill -9s and restarts workers at random and restarts
 * nats-server once. Then every instance must have completed with the right output, and every
 * orchestration's side effect (one durable publish into a stream) must exist exactly once.
 *
 * Seeded: the seed is printed; DT_CHAOS_SEED=<n> replays the same schedule of kills.
 * Runs its own nats-server (it must restart it), on a free loopback port.
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

#define N_INSTANCES          500
#define N_WORKERS            3
#define CHAOS_MS             40000
#define STARTS_MS            30000
#define SERVER_RESTART_AT_MS 15000
#define FINISH_MS            150000
#define CHAOS_PARTITIONS     8

typedef struct chaos {
    char *dir;
    int port;
    char url[64];
    pid_t server;
    pid_t workers[N_WORKERS];
    char hub[32];
    dt_broker *b;
    unsigned seed;
    bool raised[N_INSTANCES];
    int raise_attempts[N_INSTANCES];
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

static void start_worker(chaos *c, int i)
{
    c->workers[i] = fork();
    if (c->workers[i] == 0) {
        execl(CHAOS_WORKER_PATH, "chaos_worker", c->url, c->hub, c->dir, (char *)NULL);
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

static const char *kinds[] = {"chain", "fanout", "timer", "event"};

static long expected(int i)
{
    switch (i % 4) {
    case 0:
        return i + 6;
    case 1:
        return 5L * i + 10;
    case 2:
        return i + 1000;
    default:
        return 3L * i; /* the event carries 2i */
    }
}

/* Starts instances [from, to). */
static void start_range(chaos *c, int from, int to)
{
    for (int i = from; i < to && i < N_INSTANCES; i++) {
        char subject[128], id[32], msg_id[64], body[32];
        snprintf(subject, sizeof(subject), "dt.%s.in.start.%s", c->hub, kinds[i % 4]);
        snprintf(id, sizeof(id), "c-%d", i);
        snprintf(msg_id, sizeof(msg_id), "start-%s", id);
        snprintf(body, sizeof(body), "%d", i);
        dt_broker_header h[1] = {{DT_HDR_INSTANCE_ID, id}};
        publish_retry(c, subject, msg_id, h, 1, body);
    }
}

/* Reads an instance's status record; NULL while absent or unreadable. */
static Dt__InstanceStatus *status_of(dt_broker_kv *kv, int i)
{
    char id[32], key[128];
    snprintf(id, sizeof(id), "c-%d", i);
    dt__status_key(id, key, sizeof(key));
    dt_broker_kv_entry e = {0};
    if (dt_broker_kv_get(kv, key, &e) != DT_OK) {
        return NULL;
    }
    Dt__InstanceStatus *s = dt__instance_status__unpack(NULL, e.len, e.value);
    dt_broker_kv_entry_clear(&e);
    return s;
}

/* Raises "go" for running event instances (again after a while, in case a raise was lost). */
static void raise_events(chaos *c, dt_broker_kv *kv)
{
    for (int i = 3; i < N_INSTANCES; i += 4) {
        if (c->raised[i]) {
            continue;
        }
        Dt__InstanceStatus *s = status_of(kv, i);
        if (s == NULL) {
            continue;
        }
        bool running = s->runtime_status == DT__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
        bool done = s->runtime_status == DT__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
        dt__instance_status__free_unpacked(s, NULL);
        if (done) {
            c->raised[i] = true;
            continue;
        }
        if (running && c->raise_attempts[i]++ % 20 == 0) {
            char subject[128], id[32], msg_id[64], body[32];
            snprintf(subject, sizeof(subject), "dt.%s.in.raise.go", c->hub);
            snprintf(id, sizeof(id), "c-%d", i);
            snprintf(msg_id, sizeof(msg_id), "go-%s-%d", id, c->raise_attempts[i]);
            snprintf(body, sizeof(body), "%d", 2 * i);
            dt_broker_header h[1] = {{DT_HDR_INSTANCE_ID, id}};
            publish_retry(c, subject, msg_id, h, 1, body);
        }
    }
}

/* Starts the instances gradually over the first STARTS_MS while it kill -9s a random worker and
 * starts it again at random intervals, for CHAOS_MS, and restarts nats-server once on the way:
 * so kills and the restart hit work in every stage. */
static void run_chaos(chaos *c, dt_broker_kv *kv, int *kills)
{
    int64_t t0 = dt__mono_ms(), next_kill = t0 + 1000;
    bool restarted = false;
    int started = 0;
    while (dt__mono_ms() - t0 < CHAOS_MS) {
        int64_t now = dt__mono_ms();
        int due = (int)((now - t0) * N_INSTANCES / STARTS_MS) + 1;
        if (due > started) {
            start_range(c, started, due);
            started = due < N_INSTANCES ? due : N_INSTANCES;
        }
        if (!restarted && now - t0 >= SERVER_RESTART_AT_MS) {
            fprintf(stderr, "chaos: restarting nats-server\n");
            stop_pid(&c->server, SIGKILL);
            sleep_ms(500);
            start_server(c);
            restarted = true;
        }
        if (now >= next_kill) {
            int i = rand_r(&c->seed) % N_WORKERS;
            stop_pid(&c->workers[i], SIGKILL);
            sleep_ms(rand_r(&c->seed) % 500);
            start_worker(c, i);
            (*kills)++;
            next_kill = now + 1000 + rand_r(&c->seed) % 2000;
        }
        raise_events(c, kv);
        sleep_ms(100);
    }
    assert_true(restarted);
}

static int count_done(chaos *c, dt_broker_kv *kv, bool check)
{
    int done = 0;
    for (int i = 0; i < N_INSTANCES; i++) {
        Dt__InstanceStatus *s = status_of(kv, i);
        if (s == NULL) {
            continue;
        }
        if (s->runtime_status == DT__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED) {
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
            for (int k = i; k < N_INSTANCES; k++) {
                Dt__InstanceStatus *u = status_of(kv, k);
                if (u != NULL &&
                    u->runtime_status != DT__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED) {
                    char id[32];
                    snprintf(id, sizeof(id), "c-%d", k);
                    fprintf(stderr, "unfinished: %s (%s, partition %u) status %d\n", id,
                            kinds[k % 4], dt__partition_of(id, CHAOS_PARTITIONS),
                            u->runtime_status);
                }
                dt__instance_status__free_unpacked(u, NULL);
            }
            fail_msg("instance c-%d ended with status %d", i, s->runtime_status);
        }
        dt__instance_status__free_unpacked(s, NULL);
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
    int *seen = calloc(N_INSTANCES, sizeof(int));
    char(*first)[160] = calloc(N_INSTANCES, sizeof(*first)); /* the first copy, described */
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
            assert_true(i >= 0 && i < N_INSTANCES);
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
    for (int i = 0; i < N_INSTANCES; i++) {
        if (seen[i] != 1) {
            fail_msg("side effect of c-%d happened %d times", i, seen[i]);
        }
    }
    assert_int_equal(total, N_INSTANCES);
    free(seen);
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

static void test_chaos(void **state)
{
    (void)state;
    chaos *c = calloc(1, sizeof(*c));
    const char *seed = getenv("DT_CHAOS_SEED");
    c->seed = seed != NULL ? (unsigned)strtoul(seed, NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "chaos: seed %u (replay with DT_CHAOS_SEED=%u)\n", c->seed, c->seed);
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
    int kills = 0;
    run_chaos(c, kv, &kills);
    start_range(c, 0, N_INSTANCES); /* no-op unless the chaos ended before all were started */

    int64_t t0 = dt__mono_ms();
    int done = 0;
    while ((done = count_done(c, kv, false)) < N_INSTANCES && dt__mono_ms() - t0 < FINISH_MS) {
        raise_events(c, kv);
        sleep_ms(500);
    }
    fprintf(stderr, "chaos: %d workers killed, %d/%d completed %.1f s after the chaos\n", kills,
            done, N_INSTANCES, (double)(dt__mono_ms() - t0) / 1000.0);
    assert_int_equal(count_done(c, kv, true), N_INSTANCES);
    check_side_effects(c);

    dt_broker_kv_close(kv);
    for (int i = 0; i < N_WORKERS; i++) {
        stop_pid(&c->workers[i], SIGTERM);
    }
    dt_broker_close(c->b);
    stop_pid(&c->server, SIGTERM);
    dt_test_rmtree(c->dir);
    free(c->dir);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_chaos)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_broker_global_shutdown();
    return rc;
}
