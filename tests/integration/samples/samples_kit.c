/* The fixture of the sample tests (see samples_kit.h). */
#include "samples_kit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_support.h"

static void quiet_log(dt_log_level level, const char *instance_id, const char *msg, void *ctx)
{
    (void)ctx;
    if (getenv("DT_TEST_VERBOSE") != NULL || level >= DT_LOG_ERROR) {
        fprintf(stderr, "[worker %d] %s%s%s\n", (int)level, instance_id != NULL ? instance_id : "",
                instance_id != NULL ? ": " : "", msg);
    }
}

/* A name unique enough for a test run: time and pid in base 36. */
static void unique(char *out, size_t len)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 20) ^ ++counter;
    size_t i = 0;
    for (; i + 1 < len && i < 8; i++, x /= 36) {
        out[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[x % 36];
    }
    out[i] = '\0';
}

static void make_hub(sk_env *e, const char *prefix)
{
    char rnd[16];
    unique(rnd, sizeof(rnd));
    snprintf(e->hub, sizeof(e->hub), "%s_%s", prefix, rnd);
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = e->url;
    o.hub = e->hub;
    char err[256] = "";
    if (dt_client_create(&o, &e->client, err, sizeof(err)) != DT_OK) {
        fail_msg("client: %s", err);
    }
    dt_client_hub_info h;
    dt_client_hub_info_init(&h);
    h.memory_storage = true;
    h.lease_ttl_ms = 3000;
    if (dt_client_hub_create(e->client, &h, NULL) != DT_OK) {
        fail_msg("hub create: %s", dt_client_errmsg(e->client));
    }
}

void sk_setup(sk_env *e, const char *prefix)
{
    memset(e, 0, sizeof(*e));
    e->url = dt_test_nats_url();
    if (e->url == NULL) {
        fail_msg("DT_TEST_NATS_URL is not set: run the tests through scripts/test");
    }
    make_hub(e, prefix);
    e->data_dir = dt_test_mkdtemp("dt-samples");
    assert_non_null(e->data_dir);
    dt_worker_options o = {
        .nats_url = e->url, .hub = e->hub, .data_dir = e->data_dir, .log = quiet_log};
    char err[256] = "";
    if (dt_worker_create(&o, &e->worker, err, sizeof(err)) != DT_OK) {
        fail_msg("worker: %s", err);
    }
    assert_int_equal(samples_add_all(e->worker), DT_OK);
    if (dt_worker_start(e->worker) != DT_OK) {
        fail_msg("worker start: %s", dt_worker_errmsg(e->worker));
    }
}

void sk_teardown(sk_env *e)
{
    dt_worker_destroy(e->worker);
    dt_client_hub_delete(e->client);
    dt_client_destroy(e->client);
    dt_test_rmtree(e->data_dir);
    free(e->data_dir);
}

int sk_group_setup(void **state)
{
    sk_env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    sk_setup(e, "smp");
    *state = e;
    return 0;
}

int sk_group_teardown(void **state)
{
    sk_teardown(*state);
    free(*state);
    return 0;
}

sample_run sk_run(sk_env *e)
{
    static char tags[8][16];
    static int next;
    char *tag = tags[next++ % 8];
    unique(tag, 16);
    return (sample_run){.client = e->client,
                        .nats_url = e->url,
                        .hub = e->hub,
                        .tag = tag,
                        .width = 50,
                        .timeout_ms = SK_WAIT_MS,
                        .out = stdout};
}

void sk_start(sk_env *e, const char *orch, const char *id, const char *input)
{
    dt_client_start_options o = {
        .instance_id = id, .input = input, .input_len = input != NULL ? strlen(input) : 0};
    if (dt_client_schedule(e->client, orch, &o, NULL, 0) != DT_OK) {
        fail_msg("start %s as %s: %s", orch, id, dt_client_errmsg(e->client));
    }
}

dt_client_instance *sk_wait(sk_env *e, const char *id)
{
    dt_client_instance *inst = NULL;
    if (dt_client_wait_for_completion(e->client, id, SK_WAIT_MS, true, &inst) != DT_OK) {
        fail_msg("wait for %s: %s", id, dt_client_errmsg(e->client));
    }
    return inst;
}

void sk_expect_output(dt_client_instance *inst, const char *want)
{
    const char *got = inst->output != NULL ? inst->output : "(none)";
    if (inst->runtime_status != DT_CLIENT_COMPLETED || strcmp(got, want) != 0) {
        fail_msg("%s: %s %s%s%s, expected COMPLETED %s", inst->instance_id,
                 dt_client_runtime_status_name(inst->runtime_status), got,
                 inst->failure != NULL ? " / " : "",
                 inst->failure != NULL ? inst->failure->message : "", want);
    }
    dt_client_instance_free(inst);
}

size_t sk_history_names(sk_env *e, const char *id, const char *type, char *out, size_t len)
{
    dt_client_history *h = NULL;
    if (dt_client_get_history(e->client, id, &h) != DT_OK) {
        fail_msg("history of %s: %s", id, dt_client_errmsg(e->client));
    }
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->events[i].type, type) == 0) {
            size_t used = strlen(out);
            const char *name = h->events[i].name != NULL ? h->events[i].name : "";
            snprintf(out + used, len - used, "%s%s", n++ > 0 ? "," : "", name);
        }
    }
    dt_client_history_free(h);
    return n;
}
