/*
 * Publish-to-start from a second, independent client: Node.js scripts (tests/js/, npm package
 * `nats` 2.x) publish to dt.<hub>.in.start.<name> and dt.<hub>.in.raise.<event> with the headers
 * of docs/protocol.md, and this test checks through the C client that a real worker ran the
 * orchestration to the expected output. (The plain C JetStream publish of the same requests, with
 * no library helper, is worker_kit's wk_start / wk_raise; one test runs both and compares.)
 *
 * Node and tests/js/node_modules are installed by scripts/bootstrap; when either is missing the
 * tests fail with a message that says so (they never skip).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common_int.h"
#include "durabletask/client.h"
#include "durabletask/entity.h"
#include "durabletask/worker.h"
#include "worker_kit.h"

#ifndef DT_JS_DIR
#error "DT_JS_DIR (the tests/js folder) must be defined by the build"
#endif

#define WAIT_MS    20000
#define NODE_MS    30000
#define OUTPUT_MAX 4096

extern char **environ;

/* ---- the worker's side ---- */

/* Greets its input through an activity. */
static void greet(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    const char *r = dt_await(ctx, dt_call_activity(ctx, "hello", in, len, NULL), NULL);
    dt_orch_set_output(ctx, r, strlen(r));
}

/* Waits for event "approve"; outputs "<version>:<event data>". */
static void approval(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    const char *v = dt_orch_version(ctx);
    const char *d = dt_await(ctx, dt_wait_event(ctx, "approve"), NULL);
    char out[512];
    int n = snprintf(out, sizeof(out), "%s:%s", v != NULL ? v : "-", d != NULL ? d : "");
    dt_orch_set_output(ctx, out, (size_t)n);
}

/* A counter entity: "add <n>" to a decimal state. */
static void counter(dt_entity_ctx *ctx, void *ud)
{
    (void)ud;
    const char *s = dt_entity_state(ctx, NULL), *in = dt_entity_input(ctx, NULL);
    long v = (s != NULL ? strtol(s, NULL, 10) : 0) + (in != NULL ? strtol(in, NULL, 10) : 1);
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld", v);
    dt_entity_set_state(ctx, buf, (size_t)n);
}

typedef struct fixture {
    wk_env env;
    dt_worker *w;
    dt_client *c;
    char node[4200]; /* path of the node binary */
} fixture;

/* ---- running node ---- */

/* Finds `node` on PATH; fails the test with a clear message when it is not installed. */
static void find_node(fixture *f)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s", path != NULL ? path : "/usr/local/bin:/usr/bin:/bin");
    for (char *d = dirs, *end = NULL; d != NULL; d = end != NULL ? end + 1 : NULL) {
        end = strchr(d, ':');
        if (end != NULL) {
            *end = '\0';
        }
        snprintf(f->node, sizeof(f->node), "%s/node", d[0] != '\0' ? d : ".");
        if (access(f->node, X_OK) == 0) {
            break;
        }
        f->node[0] = '\0';
    }
    if (f->node[0] == '\0') {
        fail_msg("node (Node.js) is not on PATH: these tests need it; scripts/bootstrap installs "
                 "it (Debian packages nodejs, npm)");
    }
    struct stat sb;
    if (stat(DT_JS_DIR "/node_modules/nats/package.json", &sb) != 0) {
        fail_msg("%s/node_modules has no 'nats' package: run scripts/bootstrap (it runs "
                 "npm ci --prefix tests/js)",
                 DT_JS_DIR);
    }
}

/* Reads the child's stdout into out until EOF or the deadline; false on timeout. */
static bool read_all(int fd, char *out, size_t outlen, int64_t deadline)
{
    size_t used = 0;
    for (;;) {
        int64_t left = deadline - dt__mono_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
            return false;
        }
        char buf[512];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        size_t take = (size_t)n < outlen - 1 - used ? (size_t)n : outlen - 1 - used;
        memcpy(out + used, buf, take);
        used += take;
    }
    out[used] = '\0';
    return true;
}

/*
 * Runs `node DT_JS_DIR/<script> <url> <hub> args...` (args NULL-terminated) and returns its exit
 * code; its stdout goes to out (OUTPUT_MAX bytes), its stderr to ours. Fails the test when node
 * cannot be started or runs longer than NODE_MS.
 */
static int run_node(fixture *f, const char *hub, char *out, const char *script, ...)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", DT_JS_DIR, script);
    const char *argv[16] = {"node", path, f->env.url, hub};
    size_t argc = 4;
    va_list ap;
    va_start(ap, script);
    for (const char *a = va_arg(ap, const char *); a != NULL && argc < 15;
         a = va_arg(ap, const char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, f->node, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        fail_msg("cannot run %s: %s", f->node, strerror(rc));
    }
    bool done = read_all(fds[0], out, OUTPUT_MAX, dt__mono_ms() + NODE_MS);
    close(fds[0]);
    if (!done) {
        kill(pid, SIGKILL);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!done) {
        fail_msg("node %s ran longer than %d ms", script, NODE_MS);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs a script against the fixture's hub; it must succeed. Returns its stdout in out. */
static void node_ok(fixture *f, char *out, const char *script, const char *a1, const char *a2,
                    const char *a3, const char *a4, const char *a5)
{
    int rc = run_node(f, f->env.hub, out, script, a1, a2, a3, a4, a5, (const char *)NULL);
    if (rc != 0) {
        fail_msg("node %s exited with %d (stdout: %s)", script, rc, out);
    }
}

/* ---- fixture ---- */

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    *state = f; /* for teardown, also when a check below fails */
    find_node(f);
    wk_setup(&f->env, "node", 4, 3000);
    dt_worker_options o = wk_options(&f->env);
    char err[256] = "";
    assert_int_equal(dt_worker_create(&o, &f->w, err, sizeof(err)), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "greet", greet, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(f->w, "approval", approval, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(f->w, "hello", NULL, wk_act_hello, NULL), DT_OK);
    assert_int_equal(dt_worker_add_entity(f->w, "counter", counter, NULL), DT_OK);
    if (dt_worker_start(f->w) != DT_OK) {
        fail_msg("worker start: %s", dt_worker_errmsg(f->w));
    }
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = f->env.url;
    co.hub = f->env.hub;
    if (dt_client_create(&co, &f->c, err, sizeof(err)) != DT_OK) {
        fail_msg("client: %s", err);
    }
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f == NULL) {
        return 0;
    }
    dt_client_destroy(f->c);
    dt_worker_destroy(f->w);
    if (f->env.broker != NULL) {
        wk_teardown(&f->env);
    }
    free(f);
    return 0;
}

/* ---- checks ---- */

/* Waits until the instance finished and returns it (with payloads). The instance may not exist
 * yet: a worker first routes the ingress request. */
static dt_client_instance *finished(fixture *f, const char *id)
{
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    dt_client_instance *inst = NULL;
    dt_status st = DT_ENOTFOUND;
    while (st == DT_ENOTFOUND && dt__mono_ms() < deadline) {
        st = dt_client_wait_for_completion(f->c, id, deadline - dt__mono_ms(), true, &inst);
        if (st == DT_ENOTFOUND) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (st != DT_OK) {
        fail_msg("%s did not finish: %s", id, dt_client_errmsg(f->c));
    }
    return inst;
}

static void has(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL) {
        fail_msg("'%s' does not contain '%s'", text, needle);
    }
}

/* ---- tests ---- */

static void test_node_publish_to_start(void **state)
{
    fixture *f = *state;
    char out[OUTPUT_MAX], stream[128];
    node_ok(f, out, "publish_start.mjs", "greet", "node-1", "{\"name\":\"Ada\"}", NULL, NULL);
    snprintf(stream, sizeof(stream), "\"stream\":\"DT_%s_IN\"", f->env.hub);
    has(out, stream);
    has(out, "\"duplicate\":false");
    dt_client_instance *inst = finished(f, "node-1");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_string_equal(inst->name, "greet");
    assert_string_equal((const char *)inst->output, "Hello {\"name\":\"Ada\"}");
    assert_int_equal(inst->input_len, 14);
    assert_memory_equal(inst->input, "{\"name\":\"Ada\"}", 14);
    assert_null(inst->version);

    /* The same request again (same Nats-Msg-Id): JetStream drops it; no new execution. */
    node_ok(f, out, "publish_start.mjs", "greet", "node-1", "{\"name\":\"Ada\"}", NULL, NULL);
    has(out, "\"duplicate\":true");
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    dt_client_instance *again = NULL;
    assert_int_equal(dt_client_get_status(f->c, "node-1", false, &again), DT_OK);
    assert_int_equal(again->runtime_status, DT_CLIENT_COMPLETED);
    assert_string_equal(again->execution_id, inst->execution_id);
    dt_client_instance_free(again);
    dt_client_instance_free(inst);
}

static void test_node_version_and_event(void **state)
{
    fixture *f = *state;
    char out[OUTPUT_MAX];
    node_ok(f, out, "publish_start.mjs", "approval", "node-2", "--version", "2.1", NULL);
    int64_t deadline = dt__mono_ms() + WAIT_MS;
    dt_status st = DT_ENOTFOUND;
    while (st == DT_ENOTFOUND && dt__mono_ms() < deadline) {
        st = dt_client_wait_for_start(f->c, "node-2", 1000, false, NULL);
        if (st == DT_ENOTFOUND) { /* not routed yet */
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (st != DT_OK) {
        fail_msg("node-2 did not start: %s", dt_client_errmsg(f->c));
    }
    node_ok(f, out, "raise_event.mjs", "approve", "node-2", "{\"ok\":true}", NULL, NULL);
    has(out, "\"duplicate\":false");
    dt_client_instance *inst = finished(f, "node-2");
    assert_int_equal(inst->runtime_status, DT_CLIENT_COMPLETED);
    assert_string_equal((const char *)inst->output, "2.1:{\"ok\":true}");
    assert_non_null(inst->version);
    assert_string_equal(inst->version, "2.1");
    assert_null(inst->input); /* no body: no input */
    dt_client_instance_free(inst);
}

/* The Node client and the plain C publish of worker_kit send equivalent requests. */
static void test_node_and_c_agree(void **state)
{
    fixture *f = *state;
    char out[OUTPUT_MAX];
    node_ok(f, out, "publish_start.mjs", "greet", "same-js", "[1,2]", NULL, NULL);
    wk_start(&f->env, "greet", "same-c", "[1,2]", NULL, NULL);
    dt_client_instance *a = finished(f, "same-js"), *b = finished(f, "same-c");
    assert_int_equal(a->runtime_status, DT_CLIENT_COMPLETED);
    assert_int_equal(b->runtime_status, DT_CLIENT_COMPLETED);
    assert_string_equal((const char *)a->output, "Hello [1,2]");
    assert_string_equal((const char *)a->output, (const char *)b->output);
    dt_client_history *ha = NULL, *hb = NULL;
    assert_int_equal(dt_client_get_history(f->c, "same-js", &ha), DT_OK);
    assert_int_equal(dt_client_get_history(f->c, "same-c", &hb), DT_OK);
    assert_int_equal(ha->n, hb->n);
    for (size_t i = 0; i < ha->n; i++) {
        assert_string_equal(ha->events[i].type, hb->events[i].type);
    }
    dt_client_history_free(ha);
    dt_client_history_free(hb);
    dt_client_instance_free(a);
    dt_client_instance_free(b);
}

static void test_node_errors(void **state)
{
    fixture *f = *state;
    char out[OUTPUT_MAX], hub[96];
    snprintf(hub, sizeof(hub), "%.60s_none", f->env.hub);
    /* No such hub: no stream takes the subject; the script fails instead of hanging. */
    assert_int_equal(run_node(f, hub, out, "publish_start.mjs", "greet", "x", "{}", NULL), 1);
    /* Usage errors: a body that is not JSON, a name that is not a subject token. */
    assert_int_equal(run_node(f, f->env.hub, out, "publish_start.mjs", "greet", "x", "{bad", NULL),
                     2);
    assert_int_equal(run_node(f, f->env.hub, out, "raise_event.mjs", "a.b", "x", NULL), 2);
    dt_client_instance *inst = NULL;
    assert_int_equal(dt_client_get_status(f->c, "x", false, &inst), DT_ENOTFOUND);
}

/* Entity signals from the Node client (dt.<hub>.in.signal.<name>): applied once each, a repeated
 * message ID once in all. */
static void test_node_signal_entity(void **state)
{
    fixture *f = *state;
    char out[OUTPUT_MAX];
    node_ok(f, out, "signal_entity.mjs", "counter", "js-1", "add", "5", NULL);
    has(out, "\"duplicate\":false");
    node_ok(f, out, "signal_entity.mjs", "Counter", "js-1", "add", "2", "--msg-id=sig-a");
    node_ok(f, out, "signal_entity.mjs", "counter", "js-1", "add", "2", "--msg-id=sig-a");
    has(out, "\"duplicate\":true");
    char got[32] = "";
    for (int64_t waited = 0; waited < WAIT_MS && strcmp(got, "7") != 0; waited += 50) {
        dt_entity_metadata *m = NULL;
        if (dt_client_get_entity(f->c, "counter", "js-1", true, &m) == DT_OK) {
            snprintf(got, sizeof(got), "%.*s", (int)m->state_len, (const char *)m->state);
            dt_entity_metadata_free(m);
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_string_equal(got, "7");
    assert_int_equal(run_node(f, f->env.hub, out, "signal_entity.mjs", "bad.name", "k", "add",
                              (const char *)NULL),
                     2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_publish_to_start), cmocka_unit_test(test_node_version_and_event),
        cmocka_unit_test(test_node_and_c_agree),      cmocka_unit_test(test_node_errors),
        cmocka_unit_test(test_node_signal_entity),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dt_broker_global_shutdown();
    return rc;
}
