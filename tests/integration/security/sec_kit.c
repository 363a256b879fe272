/* Helpers of the connection-security tests (sec_kit.h). */
#include "sec_kit.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_support.h"

#ifndef DT_JS_DIR
#error "DT_JS_DIR (the tests/js folder) must be defined by the build"
#endif
#ifndef SK_MAKE_TLS
#error "SK_MAKE_TLS (make_tls.sh) must be defined by the build"
#endif

#define WAIT_MS 30000

char *sk_mkdir(void)
{
    char *dir = dt_test_mkdtemp("dt-sec");
    assert_non_null(dir);
    return dir;
}

void sk_rmdir(char *dir)
{
    dt_test_rmtree(dir);
    free(dir);
}

const char *sk_path(const char *dir, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

char *sk_slurp(const char *dir, const char *name)
{
    char p[512];
    char *text = dt_test_read_file(sk_path(dir, name, p, sizeof(p)));
    if (text == NULL) {
        fail_msg("cannot read %s", p);
    }
    return text;
}

void sk_fail(const char *fmt, ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    dt_test_nats_print_logs();
    fail_msg("%s", why);
}

void sk_start(dt_test_nats *s, const char *extra)
{
    /* nats-server says why it refused a client ("Signature missing", "User JWT not valid", ...)
     * only at debug level: without it a refusal's log line names no cause. */
    size_t n = (extra != NULL ? strlen(extra) : 0) + sizeof("\ndebug: true\n");
    char *conf = malloc(n);
    assert_non_null(conf);
    snprintf(conf, n, "%s\ndebug: true\n", extra != NULL ? extra : "");
    bool up = dt_test_nats_start(s, conf);
    free(conf);
    if (!up) {
        fail_msg("nats-server with the test's configuration did not start (log above)");
    }
}

void sk_make_tls(const char *dir)
{
    char *argv[] = {"bash", SK_MAKE_TLS, (char *)dir, NULL};
    if (dt_test_run(argv, NULL, NULL, NULL) != 0) {
        fail_msg("make_tls.sh failed (is openssl installed?)");
    }
}

/* node DT_JS_DIR/make_auth.mjs kind dir > dir/<kind>.out */
static void make_auth(const char *kind, const char *dir)
{
    char out[512], err[512];
    sk_path(dir, kind, out, sizeof(out));
    strcat(out, ".out");
    sk_path(dir, "node.err", err, sizeof(err));
    char *argv[] = {"node", DT_JS_DIR "/make_auth.mjs", (char *)kind, (char *)dir, NULL};
    if (dt_test_run(argv, NULL, out, err) != 0) {
        char *e = dt_test_read_file(err);
        fail_msg("make_auth.mjs %s failed (node and tests/js/node_modules come from "
                 "scripts/bootstrap): %s",
                 kind, e != NULL ? e : "");
    }
}

void sk_make_nkey(const char *dir, char *pub, size_t len)
{
    make_auth("nkey", dir);
    char *out = sk_slurp(dir, "nkey.out");
    out[strcspn(out, "\r\n")] = '\0';
    assert_true(out[0] == 'U' && strlen(out) == 56);
    snprintf(pub, len, "%s", out);
    free(out);
}

void sk_make_creds(const char *dir)
{
    make_auth("creds", dir);
}

/* ---- worker logs ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[1 << 16];

void sk_log_sink(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    (void)level;
    (void)instance_id;
    (void)ctx;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(log_buf);
    snprintf(log_buf + n, sizeof(log_buf) - n, "%s\n", msg);
    pthread_mutex_unlock(&log_mu);
    if (getenv("DT_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "worker: %s\n", msg);
    }
}

const char *sk_log_text(void)
{
    return log_buf;
}

void sk_log_reset(void)
{
    pthread_mutex_lock(&log_mu);
    log_buf[0] = '\0';
    pthread_mutex_unlock(&log_mu);
}

void sk_assert_no_secret(const char *text, const char *secret)
{
    if (secret != NULL && strstr(text, secret) != NULL) {
        fail_msg("a secret shows in: %s", text);
    }
}

/* ---- an orchestration end to end ---- */

static void hello(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_activity_input(ctx, &len);
    char out[256];
    int n = snprintf(out, sizeof(out), "Hello %.*s", (int)len, in != NULL ? in : "");
    dt_activity_set_output(ctx, out, (size_t)n);
}

static void greet(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    size_t rlen = 0;
    const char *r = dt_await(ctx, dt_call_activity(ctx, "hello", in, len, NULL), &rlen);
    dt_orch_set_output(ctx, r, rlen);
}

static void random_hub(char *hub, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(hub, len, "sec_%d_%ld", (int)getpid(), (long)(ts.tv_nsec / 1000));
}

/*
 * The steps below report a failure as text in why (false returned) instead of failing the test
 * on the spot: the caller frees what it holds first, so a failed test leaks nothing, and then
 * fails with the servers' logs printed (sk_fail).
 */

static bool make_worker(const char *url, const dt_nats_security *sec, const char *hub,
                        const char *data_dir, uint32_t attempts, dt_worker **out, char *why,
                        size_t len)
{
    dt_worker_options o = {.nats_url = url,
                           .security = *sec,
                           .connect_attempts = attempts,
                           .hub = hub,
                           .data_dir = data_dir,
                           .log = sk_log_sink};
    char err[512];
    if (dt_worker_create(&o, out, err, sizeof(err)) != DT_OK) {
        snprintf(why, len, "dt_worker_create: %s", err);
        return false;
    }
    sk_register(*out);
    return true;
}

void sk_register(dt_worker *w)
{
    assert_int_equal(dt_worker_add_orchestrator(w, "greet", greet, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(w, "hello", NULL, hello, NULL), DT_OK);
}

static bool make_client(const char *url, const dt_nats_security *sec, const char *hub,
                        dt_client **out, char *why, size_t len)
{
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = url;
    o.hub = hub;
    o.security = *sec;
    char err[512];
    if (dt_client_create(&o, out, err, sizeof(err)) != DT_OK) {
        snprintf(why, len, "dt_client_create: %s", err);
        return false;
    }
    return true;
}

static bool greet_once(dt_client *c, char *why, size_t len)
{
    char id[DT_CLIENT_ID_BUF];
    dt_client_start_options so = {.input = "ada", .input_len = 3};
    dt_status st = dt_client_schedule(c, "greet", &so, id, sizeof(id));
    if (st != DT_OK) {
        snprintf(why, len, "schedule: %s: %s", dt_status_name(st), dt_client_errmsg(c));
        return false;
    }
    dt_client_instance *in = NULL;
    if (dt_client_wait_for_completion(c, id, WAIT_MS, true, &in) != DT_OK) {
        snprintf(why, len, "wait: %s", dt_client_errmsg(c));
        return false;
    }
    bool ok = in->runtime_status == DT_CLIENT_COMPLETED && in->output_len == strlen("Hello ada") &&
              memcmp(in->output, "Hello ada", in->output_len) == 0;
    if (!ok) {
        snprintf(why, len, "greet ended with status %d and output '%.*s'", (int)in->runtime_status,
                 (int)in->output_len, in->output != NULL ? (const char *)in->output : "");
    }
    dt_client_instance_free(in);
    return ok;
}

void sk_greet(const char *url, const dt_nats_security *sec, const char *hub)
{
    char why[1024] = "";
    dt_client *c = NULL;
    bool ok = make_client(url, sec, hub, &c, why, sizeof(why)) && greet_once(c, why, sizeof(why));
    dt_client_destroy(c);
    if (!ok) {
        sk_fail("%s", why);
    }
}

/* Hub, worker and one orchestration on the client c; the hub is deleted again. */
static bool run_on(dt_client *c, const char *url, const dt_nats_security *sec, const char *hub,
                   const char *data, char *why, size_t len)
{
    if (dt_client_hub_create(c, NULL, NULL) != DT_OK) {
        snprintf(why, len, "hub create: %s", dt_client_errmsg(c));
        return false;
    }
    dt_worker *w = NULL;
    bool ok = make_worker(url, sec, hub, data, 0, &w, why, len);
    if (ok && dt_worker_start(w) != DT_OK) {
        snprintf(why, len, "dt_worker_start: %s", dt_worker_errmsg(w));
        ok = false;
    }
    ok = ok && greet_once(c, why, len);
    dt_worker_destroy(w);
    if (dt_client_hub_delete(c) != DT_OK && ok) {
        snprintf(why, len, "hub delete: %s", dt_client_errmsg(c));
        ok = false;
    }
    return ok;
}

void sk_run_orchestration(const char *url, const dt_nats_security *sec, const char *secret)
{
    char hub[48], why[1024] = "";
    random_hub(hub, sizeof(hub));
    char *data = sk_mkdir();
    sk_log_reset();
    dt_client *c = NULL;
    bool ok = make_client(url, sec, hub, &c, why, sizeof(why)) &&
              run_on(c, url, sec, hub, data, why, sizeof(why));
    dt_client_destroy(c);
    sk_rmdir(data);
    if (!ok) {
        sk_fail("%s", why);
    }
    sk_assert_no_secret(sk_log_text(), secret);
}

/* A worker (at most 2 connect attempts) must fail to start with want; no secret in its texts. */
static bool worker_refused(const char *url, const dt_nats_security *sec, dt_status want,
                           const char *secret, const char *data, char *why, size_t len)
{
    sk_log_reset();
    dt_worker *w = NULL;
    bool ok = make_worker(url, sec, "refused", data, 2, &w, why, len);
    dt_status st = ok ? dt_worker_start(w) : DT_OK;
    if (ok && st != want) {
        snprintf(why, len, "worker: want %s, got %s: %s", dt_status_name(want), dt_status_name(st),
                 dt_worker_errmsg(w));
        ok = false;
    }
    if (ok && secret != NULL &&
        (strstr(dt_worker_errmsg(w), secret) != NULL || strstr(sk_log_text(), secret) != NULL)) {
        snprintf(why, len, "a secret shows in the worker's error text or log: %s\n%s",
                 dt_worker_errmsg(w), sk_log_text());
        ok = false;
    }
    dt_worker_destroy(w);
    return ok;
}

void sk_expect_refused(const char *url, const dt_nats_security *sec, dt_status want,
                       const char *secret, char *err, size_t len)
{
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = url;
    o.hub = "refused";
    o.security = *sec;
    dt_client *c = NULL;
    err[0] = '\0';
    dt_status st = dt_client_create(&o, &c, err, len);
    dt_client_destroy(c); /* NULL unless it was not refused */
    if (st != want) {
        sk_fail("client: want %s, got %s: %s", dt_status_name(want), dt_status_name(st), err);
    }
    assert_true(err[0] != '\0');
    sk_assert_no_secret(err, secret);

    char why[1024] = "";
    char *data = sk_mkdir();
    bool ok = worker_refused(url, sec, want, secret, data, why, sizeof(why));
    sk_rmdir(data);
    if (!ok) {
        sk_fail("%s", why);
    }
}
