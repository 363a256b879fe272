/*
 * test_sidecar_grpc.c: the sidecar's gRPC transport (runtime/sidecar/grpc) driven by real
 * clients: @grpc/grpc-js for calls, node:http2 and raw sockets for malformed input
 * (tests/js/grpc_transport.mjs). The server here serves a few test methods; the script checks
 * the statuses and messages it gets and that the server keeps serving after each bad input, and
 * this file checks what the handlers saw (cancellations) and that nothing leaks.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "grpc_server.h"
#include "sidecar_node.h"

typedef struct stats {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int cancels_seen; /* Hang handlers that saw their call cancelled */
    int wakes_seen;
} stats;

static stats g_stats = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void echo(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    size_t len;
    const uint8_t *req = dt__grpc_call_request(call, &len);
    dt_status st = dt__grpc_call_send(call, req, len);
    dt__grpc_call_finish(call, st == DT_OK ? DT_GRPC_OK : DT_GRPC_INTERNAL, NULL);
}

/* Request: a decimal count; sends that many messages "message <i>". */
static void stream(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    size_t len;
    const uint8_t *req = dt__grpc_call_request(call, &len);
    char num[16] = {0};
    memcpy(num, req, len < 15 ? len : 15);
    long n = strtol(num, NULL, 10);
    for (long i = 0; i < n; i++) {
        char msg[64];
        int k = snprintf(msg, sizeof msg, "message %ld", i);
        if (dt__grpc_call_send(call, msg, (size_t)k) != DT_OK) {
            dt__grpc_call_finish(call, DT_GRPC_CANCELLED, NULL);
            return;
        }
    }
    dt__grpc_call_finish(call, DT_GRPC_OK, NULL);
}

static void failing(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    dt__grpc_call_finish(call, DT_GRPC_INVALID_ARGUMENT, "bad input: 100% wrong, \xc3\xbc");
}

/* Sends one message, then waits until the client cancels or goes away. */
static void hang(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    dt__grpc_call_send(call, "started", 7);
    while (dt__grpc_call_wait(call, -1)) {
    }
    pthread_mutex_lock(&g_stats.mu);
    g_stats.cancels_seen++;
    pthread_cond_broadcast(&g_stats.cond);
    pthread_mutex_unlock(&g_stats.mu);
    dt__grpc_call_finish(call, DT_GRPC_CANCELLED, "cancelled");
}

/* A thread of its own wakes the call three times; each wake-up sends a message. */
static void *waker(void *arg)
{
    for (int i = 0; i < 3; i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        dt__grpc_call_wake(arg);
    }
    return NULL;
}

static void woken(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    pthread_t t;
    pthread_create(&t, NULL, waker, call);
    int got = 0;
    while (got < 3 && dt__grpc_call_wait(call, 10000)) {
        got++;
        dt__grpc_call_send(call, "woken", 5);
    }
    pthread_join(t, NULL);
    dt__grpc_call_finish(call, got == 3 ? DT_GRPC_OK : DT_GRPC_INTERNAL, NULL);
}

/* Returns without finishing: the transport must end the call itself. */
static void forgetful(dt__grpc_call *call, void *ctx)
{
    (void)call;
    (void)ctx;
}

/* Tries to send more than max_message. */
static void too_big(dt__grpc_call *call, void *ctx)
{
    (void)ctx;
    static uint8_t big[70000];
    dt_status st = dt__grpc_call_send(call, big, sizeof big);
    dt__grpc_call_finish(call, st == DT_ETOOLARGE ? DT_GRPC_RESOURCE_EXHAUSTED : DT_GRPC_OK,
                         "response too large");
}

static void wait_cancels(int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&g_stats.mu);
    while (g_stats.cancels_seen < n) {
        if (pthread_cond_timedwait(&g_stats.cond, &g_stats.mu, &until) != 0) {
            break;
        }
    }
    int seen = g_stats.cancels_seen;
    pthread_mutex_unlock(&g_stats.mu);
    assert_int_equal(seen, n);
}

static void test_transport(void **state)
{
    (void)state;
    dt__grpc_server_options o = {.listen = "127.0.0.1:0",
                                 .max_message = 65536,
                                 .keepalive_ms = 500,
                                 .keepalive_wait_ms = 1000};
    dt__grpc_server *s = NULL;
    char err[256];
    assert_int_equal(dt__grpc_server_create(&o, &s, err, sizeof err), DT_OK);
    assert_int_equal(dt__grpc_server_add_method(s, "/test.T/Echo", echo, NULL), DT_OK);
    assert_int_equal(dt__grpc_server_add_method(s, "/test.T/Echo", echo, NULL), DT_EEXIST);
    assert_int_equal(dt__grpc_server_add_method(s, "/test.T/Stream", stream, NULL), DT_OK);
    assert_int_equal(dt__grpc_server_add_method(s, "/test.T/Fail", failing, NULL), DT_OK);
    assert_int_equal(dt__grpc_server_add_method(s, "/test.T/Hang", hang, NULL), DT_OK);
    assert_int_equal(dt__grpc_server_add_method(s, "/test.T/Woken", woken, NULL), DT_OK);
    assert_int_equal(dt__grpc_server_add_method(s, "/test.T/Forgetful", forgetful, NULL), DT_OK);
    assert_int_equal(dt__grpc_server_add_method(s, "/test.T/TooBig", too_big, NULL), DT_OK);
    assert_int_equal(dt__grpc_server_start(s), DT_OK);
    char port[16];
    snprintf(port, sizeof port, "%d", dt__grpc_server_port(s));

    assert_int_equal(sidecar_run_node("grpc_transport.mjs", port, NULL), 0);
    /* The script cancelled one Hang call, let one pass its deadline and killed a client
     * holding a third: each handler saw its call end. */
    wait_cancels(3);
    dt__grpc_server_destroy(s);
}

/* A handler blocked in a wait when the server stops is released (its call is cancelled), with
 * the client still connected. */
static void test_destroy_while_waiting(void **state)
{
    (void)state;
    dt__grpc_server_options o = {.listen = "127.0.0.1:0"};
    dt__grpc_server *s = NULL;
    assert_int_equal(dt__grpc_server_create(&o, &s, NULL, 0), DT_OK);
    assert_int_equal(dt__grpc_server_add_method(s, "/test.T/Hang", hang, NULL), DT_OK);
    assert_int_equal(dt__grpc_server_start(s), DT_OK);
    char port[16];
    snprintf(port, sizeof port, "%d", dt__grpc_server_port(s));
    pthread_mutex_lock(&g_stats.mu);
    int before = g_stats.cancels_seen;
    pthread_mutex_unlock(&g_stats.mu);
    /* The script opens a Hang call, prints "started" once the first message came, and holds it. */
    pid_t pid;
    int fd;
    sidecar_spawn_node(&pid, &fd, "grpc_transport.mjs", port, "hang-forever", NULL);
    char line[64] = {0};
    size_t got = 0;
    while (got < sizeof line - 1 && strchr(line, '\n') == NULL) {
        ssize_t n = read(fd, line + got, sizeof line - 1 - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    assert_non_null(strstr(line, "started"));
    dt__grpc_server_destroy(s); /* returns: the Hang handler was cancelled and ended */
    pthread_mutex_lock(&g_stats.mu);
    assert_int_equal(g_stats.cancels_seen, before + 1);
    pthread_mutex_unlock(&g_stats.mu);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static void test_bad_listen(void **state)
{
    (void)state;
    dt__grpc_server *s = NULL;
    char err[256];
    dt__grpc_server_options o = {.listen = "nowhere"};
    assert_int_equal(dt__grpc_server_create(&o, &s, err, sizeof err), DT_EINVAL);
    assert_non_null(strstr(err, "nowhere"));
    o.listen = "127.0.0.1:99999";
    assert_int_equal(dt__grpc_server_create(&o, &s, err, sizeof err), DT_EINVAL);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_transport),
        cmocka_unit_test(test_destroy_while_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
