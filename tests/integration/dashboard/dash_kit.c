/* The dashboard tests' shared set-up: see dash_kit.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dash_kit.h"
#include "durabletask/activity.h"
#include "durabletask/orchestration.h"

#define REPLY_MAX (4 * 1024 * 1024)

static void act_work(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    long ms = in != NULL ? strtol(in, NULL, 10) : 0;
    usleep((useconds_t)(ms > 0 && ms < 5000 ? ms : 0) * 1000);
    dt_activity_set_output(ctx, "\"worked\"", 8);
}

static void act_boom(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    dt_activity_fail(ctx, "BoomError", "the activity blew up", NULL);
}

static void orch_child(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const void *out = dt_await(ctx, dt_call_activity(ctx, "dash_work", "60", 2, NULL), &len);
    dt_orch_set_output(ctx, out, len);
}

static void orch_tour(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_set_custom_status(ctx, "{\"step\":\"work\"}", 15);
    dt_await(ctx, dt_call_activity(ctx, "dash_work", "120", 3, NULL), NULL);
    dt_await(ctx, dt_sleep(ctx, 250), NULL);
    dt_await(ctx, dt_call_sub_orchestrator(ctx, "dash_child", NULL, 0, NULL), NULL);
    dt_set_custom_status(ctx, "{\"step\":\"waiting\"}", 18);
    dt_await(ctx, dt_wait_event(ctx, "go"), NULL);
    dt_orch_set_output(ctx, "\"toured\"", 8);
}

static void orch_wait(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_wait_event(ctx, "never"), NULL);
}

static void orch_fail(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_call_activity(ctx, "dash_boom", NULL, 0, NULL), NULL);
}

void dk_setup(dk_env *env, const char *prefix, const char *token)
{
    memset(env, 0, sizeof(*env));
    wk_setup(&env->wk, prefix, 2, 3000);
    dt_worker_options o = wk_options(&env->wk);
    char err[512] = "";
    assert_int_equal(dt_worker_create(&o, &env->w, err, sizeof(err)), DT_OK);
    dt_worker_add_orchestrator(env->w, "dash_tour", orch_tour, NULL);
    dt_worker_add_orchestrator(env->w, "dash_child", orch_child, NULL);
    dt_worker_add_orchestrator(env->w, "dash_wait", orch_wait, NULL);
    dt_worker_add_orchestrator(env->w, "dash_fail", orch_fail, NULL);
    dt_worker_add_activity(env->w, "dash_work", NULL, act_work, NULL);
    dt_worker_add_activity(env->w, "dash_boom", NULL, act_boom, NULL);
    assert_int_equal(dt_worker_start(env->w), DT_OK);
    env->c = wk_client(&env->wk);
    dt_dashboard_options d;
    dt_dashboard_options_init(&d);
    d.nats_url = env->wk.url;
    d.hub = env->wk.hub;
    d.port = DT_DASHBOARD_PORT_ANY;
    d.token = token;
    dt_status st = dt_dashboard_create(&d, &env->d, err, sizeof(err));
    if (st != DT_OK) {
        fail_msg("dashboard: %s (%s)", err, dt_status_name(st));
    }
    env->port = dt_dashboard_port(env->d);
    /* Lists need a worker on every partition: wait until one answers for all. */
    for (int i = 0; i < 150; i++) {
        dt_client_page *pg = NULL;
        if (dt_client_list(env->c, NULL, NULL, 1, false, &pg) == DT_OK) {
            dt_client_page_free(pg);
            return;
        }
        usleep(100 * 1000);
    }
    fail_msg("the worker did not take the partitions: %s", dt_client_errmsg(env->c));
}

void dk_teardown(dk_env *env)
{
    dt_dashboard_destroy(env->d);
    dt_client_destroy(env->c);
    dt_worker_stop(env->w, 10000);
    dt_worker_destroy(env->w);
    wk_teardown(&env->wk);
}

void dk_schedule(dk_env *env, const char *name, const char *id, const char *input)
{
    dt_client_start_options so = {
        .instance_id = id, .input = input, .input_len = input != NULL ? strlen(input) : 0};
    dt_status st = dt_client_schedule(env->c, name, &so, NULL, 0);
    if (st != DT_OK) {
        fail_msg("schedule %s: %s", id, dt_client_errmsg(env->c));
    }
}

void dk_wait_status(dk_env *env, const char *id, int status, int64_t timeout_ms)
{
    for (int64_t waited = 0; waited <= timeout_ms; waited += 50) {
        dt_client_instance *in = NULL;
        if (dt_client_get_status(env->c, id, false, &in) == DT_OK) {
            int s = (int)in->runtime_status;
            dt_client_instance_free(in);
            if (s == status) {
                return;
            }
        }
        usleep(50 * 1000);
    }
    fail_msg("%s did not reach status %s", id,
             dt_client_runtime_status_name((dt_client_runtime_status)status));
}

static int connect_to(const dk_env *env)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(env->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until the server closes; returns a malloc'd NUL-terminated buffer. */
static char *read_all(int fd, size_t *out_len)
{
    char *buf = malloc(REPLY_MAX + 1);
    assert_non_null(buf);
    size_t n = 0;
    ssize_t k;
    while (n < REPLY_MAX && (k = read(fd, buf + n, REPLY_MAX - n)) > 0) {
        n += (size_t)k;
    }
    buf[n] = '\0';
    *out_len = n;
    return buf;
}

static int status_of(const char *reply)
{
    int code = 0;
    return sscanf(reply, "HTTP/1.%*d %d", &code) == 1 ? code : 0;
}

/* Undoes chunked transfer coding in place (the event stream and unknown-size replies). */
static size_t unchunk(char *p, size_t n)
{
    size_t o = 0, i = 0;
    while (i < n) {
        char *end = NULL;
        unsigned long len = strtoul(p + i, &end, 16);
        if (end == p + i || len == 0) {
            break;
        }
        char *data = strstr(end, "\r\n");
        if (data == NULL || (size_t)(data + 2 - p) + len > n) {
            break;
        }
        memmove(p + o, data + 2, len);
        o += len;
        i = (size_t)(data + 2 - p) + len + 2;
    }
    p[o] = '\0';
    return o;
}

int dk_http(const dk_env *env, const char *method, const char *path, const char *body,
            const char *auth, json_t **out_body, char *raw, size_t rawlen)
{
    int fd = connect_to(env);
    if (fd < 0) {
        return 0;
    }
    char head[2048];
    int hn = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                      "Content-Length: %zu\r\n%s%s%s\r\n",
                      method, path, body != NULL ? strlen(body) : 0,
                      auth != NULL ? "Authorization: " : "", auth != NULL ? auth : "",
                      auth != NULL ? "\r\n" : "");
    assert_true(hn > 0 && (size_t)hn < sizeof(head));
    assert_int_equal(write(fd, head, (size_t)hn), hn);
    if (body != NULL && body[0] != '\0') {
        assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    }
    size_t n = 0;
    char *reply = read_all(fd, &n);
    close(fd);
    int code = status_of(reply);
    char *b = strstr(reply, "\r\n\r\n");
    b = b != NULL ? b + 4 : reply + n;
    size_t blen = (size_t)(reply + n - b);
    if (strstr(reply, "Transfer-Encoding: chunked") != NULL ||
        strstr(reply, "transfer-encoding: chunked") != NULL) {
        blen = unchunk(b, blen);
    }
    if (raw != NULL && rawlen > 0) {
        snprintf(raw, rawlen, "%s", b);
    }
    if (out_body != NULL) {
        *out_body = json_loadb(b, blen, 0, NULL);
    }
    free(reply);
    return code;
}

int dk_http_raw(const dk_env *env, const char *bytes, size_t len)
{
    int fd = connect_to(env);
    if (fd < 0) {
        return 0;
    }
    /* A request cut short may be held open by the server until its idle timeout (60 s) rather
     * than closed at once: that is no stall of the server, and waiting 3 s for a reply tells
     * both cases apart. */
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t w = write(fd, bytes, len);
    (void)w;
    shutdown(fd, SHUT_WR);
    size_t n = 0;
    char *reply = read_all(fd, &n);
    close(fd);
    int code = status_of(reply);
    free(reply);
    return code;
}
