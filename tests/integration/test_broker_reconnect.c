/*
 * Reconnection against a nats-server this test owns, so that it can kill (SIGKILL) and restart it
 * on the same port and store: connection events, publishes while the server is down (fate
 * unknown, re-published under the same Nats-Msg-Id), a consumer and a KV watch that carry on after
 * the restart, async publishers whose windows are in flight when the server dies, and a
 * connection that waits for a server that is not up yet.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "test_broker.h"

extern char **environ;

typedef struct server {
    pid_t pid;
    int port;
    char *dir;
    char url[64];
    int ready_seen; /* "Server is ready" lines seen in the log so far */
} server;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        fail_msg("no free port");
    }
    close(fd);
    return ntohs(a.sin_port);
}

static bool log_says_ready(server *s)
{
    char path[512], buf[65536];
    snprintf(path, sizeof(path), "%s/nats.log", s->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Each start appends one "Server is ready"; count them against the starts so far. */
    int ready = 0;
    for (const char *p = buf; (p = strstr(p, "Server is ready")) != NULL; p++) {
        ready++;
    }
    if (ready > s->ready_seen) {
        s->ready_seen = ready;
        return true;
    }
    return false;
}

static void server_start(server *s)
{
    char port[16], store[512], logf[512];
    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(store, sizeof(store), "%s/js", s->dir);
    snprintf(logf, sizeof(logf), "%s/nats.log", s->dir);
    char *argv[] = {"nats-server", "-js", "-a", "127.0.0.1", "-p", port,
                    "-sd",         store, "-l", logf,        NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&s->pid, "nats-server", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fail_msg("cannot start nats-server (is it installed? scripts/bootstrap): %s", strerror(rc));
    }
    int64_t end = tb_now_ms() + 15000;
    while (!log_says_ready(s)) {
        if (tb_now_ms() > end) {
            fail_msg("nats-server on port %d did not become ready", s->port);
        }
        tb_sleep_ms(20);
    }
}

static void server_kill(server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static server *server_new(void)
{
    server *s = calloc(1, sizeof(*s));
    s->dir = dt_test_mkdtemp("dt-broker-reconnect");
    s->port = free_port();
    snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", s->port);
    return s;
}

static void server_free(server *s)
{
    server_kill(s);
    dt_test_rmtree(s->dir);
    free(s->dir);
    free(s);
}

typedef struct events {
    int disconnected; /* atomic counters */
    int reconnected;
    int closed;
} events;

static void on_disc(dt_broker *b, void *ctx)
{
    (void)b;
    __atomic_add_fetch(&((events *)ctx)->disconnected, 1, __ATOMIC_ACQ_REL);
}

static void on_reco(dt_broker *b, void *ctx)
{
    (void)b;
    __atomic_add_fetch(&((events *)ctx)->reconnected, 1, __ATOMIC_ACQ_REL);
}

static void on_closed(dt_broker *b, void *ctx)
{
    (void)b;
    __atomic_add_fetch(&((events *)ctx)->closed, 1, __ATOMIC_ACQ_REL);
}

static dt_broker *connect_to(const server *s, events *ev, bool retry)
{
    dt_broker_options o;
    dt_broker_options_init(&o);
    o.urls = s->url;
    o.name = "dt-reconnect-test";
    o.reconnect_min_ms = 50;
    o.reconnect_max_ms = 400;
    o.request_timeout_ms = 1000;
    o.retry_initial_connect = retry;
    o.on_disconnected = on_disc;
    o.on_reconnected = on_reco;
    o.on_closed = on_closed;
    o.cb_ctx = ev;
    dt_broker *b = NULL;
    char err[256] = "";
    TB_EXPECT(dt_broker_connect(&o, &b, err, sizeof(err)), DT_OK, err);
    return b;
}

static void wait_counter(int *counter, int want, int64_t timeout_ms, const char *what)
{
    int64_t end = tb_now_ms() + timeout_ms;
    while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < want) {
        if (tb_now_ms() > end) {
            fail_msg("no %s event within %lld ms", what, (long long)timeout_ms);
        }
        tb_sleep_ms(10);
    }
}

/* Adds messages id/<from..to) to the publisher and waits; returns the wait status. */
static dt_status publish_range(dt_broker_publisher *p, const char *subject, int from, int to,
                               int64_t wait_ms)
{
    for (int i = from; i < to; i++) {
        char id[32];
        snprintf(id, sizeof(id), "id/%d", i);
        dt_broker_outmsg m = {.subject = subject, .msg_id = id, .data = id, .len = strlen(id)};
        TB_EXPECT(dt_broker_publisher_add(p, &m, (uint64_t)i), DT_OK,
                  dt_broker_publisher_errmsg(p));
    }
    return dt_broker_publisher_wait(p, wait_ms);
}

/* Fetches until `want` distinct messages were seen (or 10 s passed), acking each. */
static int drain(dt_broker_consumer *c, int want)
{
    int got = 0;
    int64_t end = tb_now_ms() + 10000;
    while (got < want && tb_now_ms() < end) {
        dt_broker_msg *m[16];
        size_t n = 0;
        TB_EXPECT(dt_broker_consumer_fetch(c, 16, 500, m, &n), DT_OK, dt_broker_consumer_errmsg(c));
        for (size_t i = 0; i < n; i++) {
            TB_EXPECT(dt_broker_msg_ack_sync(m[i], 2000), DT_OK, "ack");
            dt_broker_msg_destroy(m[i]);
            got++;
        }
    }
    return got;
}

static void test_server_restart(void **state)
{
    (void)state;
    server *srv = server_new();
    server_start(srv);
    events ev = {0};
    dt_broker *b = connect_to(srv, &ev, false);
    dt_broker_hub_config hc;
    dt_broker_hub_config_init(&hc);
    hc.partitions = 2; /* file storage: the store survives the restart */
    TB_EXPECT(dt_broker_hub_create(b, "rc", &hc, NULL), DT_OK, dt_broker_errmsg(b));
    char stream[DT_BROKER_NAME_BUF], subject[DT_BROKER_NAME_BUF], bucket[DT_BROKER_NAME_BUF];
    dt_broker_stream_name("rc", DT_BROKER_STREAM_ORCH, stream, sizeof(stream));
    dt_broker_subject("rc", DT_BROKER_SUBJ_ORCH, "0", subject, sizeof(subject));
    dt_broker_bucket_name("rc", DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket));
    dt_broker_consumer_config cc;
    dt_broker_consumer_config_init(&cc);
    cc.stream = stream;
    cc.durable = "p0";
    cc.filter_subject = subject;
    dt_broker_consumer *c = NULL;
    TB_EXPECT(dt_broker_consumer_open(b, &cc, &c), DT_OK, dt_broker_errmsg(b));
    dt_broker_publisher_options po;
    dt_broker_publisher_options_init(&po);
    po.ack_timeout_ms = 1000;
    dt_broker_publisher *p = NULL;
    TB_EXPECT(dt_broker_publisher_create(b, &po, &p), DT_OK, dt_broker_errmsg(b));
    dt_broker_kv *kv = NULL;
    TB_EXPECT(dt_broker_kv_open(b, bucket, &kv), DT_OK, dt_broker_errmsg(b));
    dt_broker_kv_watcher *w = NULL;
    dt_broker_kv_watch_options wo = {.updates_only = true};
    TB_EXPECT(dt_broker_kv_watch(kv, "i.r", &wo, &w), DT_OK, dt_broker_kv_errmsg(kv));

    TB_EXPECT(publish_range(p, subject, 0, 5, 5000), DT_OK, dt_broker_publisher_errmsg(p));
    assert_int_equal(drain(c, 5), 5);
    TB_EXPECT(publish_range(p, subject, 5, 8, 5000), DT_OK, dt_broker_publisher_errmsg(p));

    /* Crash the server. Publishes made now have an unknown fate. */
    server_kill(srv);
    wait_counter(&ev.disconnected, 1, 5000, "disconnected");
    assert_false(dt_broker_is_connected(b));
    TB_EXPECT(publish_range(p, subject, 8, 11, 300), DT_ETIMEOUT, dt_broker_publisher_errmsg(p));
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r[i].status, DT_ETIMEOUT);
    }

    server_start(srv);
    wait_counter(&ev.reconnected, 1, 15000, "reconnected");
    assert_true(dt_broker_is_connected(b));
    /* Re-publish the unknown ones under their ids: whatever the reconnect buffer already
     * delivered is dropped as a duplicate. */
    TB_EXPECT(publish_range(p, subject, 8, 11, 5000), DT_OK, dt_broker_publisher_errmsg(p));
    r = dt_broker_publisher_results(p, &n);
    int dups = 0;
    for (size_t i = 0; i < n; i++) {
        dups += r[i].duplicate ? 1 : 0;
    }
    print_message("after restart: %d of 3 re-published messages were duplicates\n", dups);

    /* The same consumer handle carries on: 3 persisted before the crash + 3 re-published. */
    assert_int_equal(drain(c, 6), 6);
    dt_broker_msg *m[4];
    TB_EXPECT(dt_broker_consumer_fetch(c, 4, 300, m, &n), DT_OK, dt_broker_consumer_errmsg(c));
    assert_int_equal(n, 0);

    /* The KV watch started before the crash still wakes on updates. */
    dt_broker_kv_entry e = {0};
    TB_EXPECT(dt_broker_kv_put(kv, "i.r", "DONE", 4, NULL), DT_OK, dt_broker_kv_errmsg(kv));
    int64_t t0 = tb_now_ms();
    TB_EXPECT(dt_broker_kv_watcher_next(w, 20000, &e), DT_OK, dt_broker_kv_watcher_errmsg(w));
    print_message("watch after restart woke in %lld ms\n", (long long)(tb_now_ms() - t0));
    assert_string_equal(e.value, "DONE");
    dt_broker_kv_entry_clear(&e);

    dt_broker_kv_watcher_destroy(w);
    dt_broker_kv_close(kv);
    dt_broker_publisher_destroy(p);
    dt_broker_consumer_close(c);
    TB_EXPECT(dt_broker_hub_delete(b, "rc"), DT_OK, dt_broker_errmsg(b));
    dt_broker_close(b);
    assert_int_equal(ev.closed, 1);
    server_free(srv);
}

/* Adds w/<pub>/<from..to) to orch.0 without waiting (tag = index). */
static void add_range(dt_broker_publisher *p, const char *subject, int pub, int from, int to)
{
    for (int i = from; i < to; i++) {
        char id[32];
        snprintf(id, sizeof(id), "w/%d/%d", pub, i);
        dt_broker_outmsg m = {.subject = subject, .msg_id = id, .data = id, .len = strlen(id)};
        TB_EXPECT(dt_broker_publisher_add(p, &m, (uint64_t)i), DT_OK,
                  dt_broker_publisher_errmsg(p));
    }
}

/* After wait(): one outcome per message, in add() order, stored or fate unknown; re-publishes
 * the unknown ones under their ids until every message is stored. Returns how many were unknown. */
static int settle_and_republish(dt_broker_publisher *p, const char *subject, int pub, int n_msgs)
{
    size_t n = 0;
    const dt_broker_pub_result *r = dt_broker_publisher_results(p, &n);
    assert_int_equal(n, (size_t)n_msgs);
    static bool unknown[1024];
    int n_unknown = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r[i].tag, i);
        assert_true(r[i].status == DT_OK || r[i].status == DT_ETIMEOUT);
        unknown[i] = r[i].status != DT_OK;
        n_unknown += unknown[i] ? 1 : 0;
    }
    for (int i = 0; i < n_msgs; i++) {
        if (unknown[i]) {
            add_range(p, subject, pub, i, i + 1);
        }
    }
    if (n_unknown > 0) {
        TB_EXPECT(dt_broker_publisher_wait(p, 5000), DT_OK, dt_broker_publisher_errmsg(p));
    }
    return n_unknown;
}

/*
 * The server is killed while two publishers of one connection have windows in flight, and more
 * is added while it is down. Every message ends with exactly one outcome (stored, or timed out
 * with its fate unknown); after the restart, re-publishing the unknown ones under their ids
 * leaves each message stored exactly once.
 */
static void test_restart_mid_window(void **state)
{
    (void)state;
    enum { N = 300 };
    server *srv = server_new();
    server_start(srv);
    events ev = {0};
    dt_broker *b = connect_to(srv, &ev, false);
    dt_broker_hub_config hc;
    dt_broker_hub_config_init(&hc);
    hc.partitions = 1; /* file storage: the store survives the restart */
    TB_EXPECT(dt_broker_hub_create(b, "rw", &hc, NULL), DT_OK, dt_broker_errmsg(b));
    char stream[DT_BROKER_NAME_BUF], subject[DT_BROKER_NAME_BUF];
    dt_broker_stream_name("rw", DT_BROKER_STREAM_ORCH, stream, sizeof(stream));
    dt_broker_subject("rw", DT_BROKER_SUBJ_ORCH, "0", subject, sizeof(subject));
    dt_broker_publisher_options po;
    dt_broker_publisher_options_init(&po);
    po.window = 64;
    po.ack_timeout_ms = 1000;
    dt_broker_publisher *p[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        TB_EXPECT(dt_broker_publisher_create(b, &po, &p[k]), DT_OK, dt_broker_errmsg(b));
        add_range(p[k], subject, k, 0, N / 2);
    }
    server_kill(srv); /* replies of the first halves are partly in, partly lost */
    wait_counter(&ev.disconnected, 1, 5000, "disconnected");
    for (int k = 0; k < 2; k++) {
        add_range(p[k], subject, k, N / 2, N); /* buffered for the reconnection */
        dt_status st = dt_broker_publisher_wait(p[k], 1500);
        assert_true(st == DT_OK || st == DT_ETIMEOUT);
    }
    server_start(srv);
    wait_counter(&ev.reconnected, 1, 15000, "reconnected");
    for (int k = 0; k < 2; k++) {
        int unknown = settle_and_republish(p[k], subject, k, N);
        print_message("publisher %d: %d of %d messages had an unknown fate\n", k, unknown, N);
        assert_true(unknown > 0); /* at least the ones added while the server was down */
    }
    dt_broker_stream_info si;
    TB_EXPECT(dt_broker_stream_info_get(b, stream, &si), DT_OK, dt_broker_errmsg(b));
    assert_int_equal(si.msgs, 2 * N);
    for (int k = 0; k < 2; k++) {
        dt_broker_publisher_destroy(p[k]);
    }
    TB_EXPECT(dt_broker_hub_delete(b, "rw"), DT_OK, dt_broker_errmsg(b));
    dt_broker_close(b);
    server_free(srv);
}

/* A worker may start before the server: the connection comes up when the server does. */
static void test_retry_initial_connect(void **state)
{
    (void)state;
    server *srv = server_new();
    events ev = {0};
    dt_broker *b = connect_to(srv, &ev, true);
    assert_false(dt_broker_is_connected(b));
    tb_sleep_ms(300);
    server_start(srv);
    wait_counter(&ev.reconnected, 1, 15000, "connected");
    assert_true(dt_broker_is_connected(b));
    dt_broker_hub_config hc;
    dt_broker_hub_config_init(&hc);
    TB_EXPECT(dt_broker_hub_create(b, "late", &hc, NULL), DT_OK, dt_broker_errmsg(b));
    TB_EXPECT(dt_broker_hub_delete(b, "late"), DT_OK, dt_broker_errmsg(b));
    dt_broker_close(b);
    server_free(srv);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_restart),
        cmocka_unit_test(test_restart_mid_window),
        cmocka_unit_test(test_retry_initial_connect),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
