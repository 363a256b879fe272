/* The orchestrations of the cluster test (cluster_work.h). */
#include "cluster_work.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int (*runs)[CW_MAX_SLOTS]; /* runs[i][slot] */
static int n_instances;
static char fx_subject[256];

void cw_init(int n, const char *subject)
{
    runs = calloc((size_t)n, sizeof(*runs));
    if (runs == NULL) {
        abort();
    }
    n_instances = n;
    snprintf(fx_subject, sizeof(fx_subject), "%s", subject);
}

void cw_fini(void)
{
    free(runs);
    runs = NULL;
}

static const char *const kinds[CW_KINDS] = {"chain", "fanout", "timer", "event"};

const char *cw_kind(int i)
{
    return kinds[i % CW_KINDS];
}

long cw_expected(int i)
{
    switch (i % CW_KINDS) {
    case 0:
        return i + 6L; /* + 1 + 2 + 3 */
    case 1:
        return 4L * i + 6; /* (i + 0) + ... + (i + 3) */
    case 2:
        return i + 1000L;
    default:
        return 3L * i; /* i + the event's 2i */
    }
}

int cw_slots(int i)
{
    static const int slots[CW_KINDS] = {3, 4, 1, 1};
    return slots[i % CW_KINDS];
}

int cw_steps(int i)
{
    return i % CW_KINDS == 0 ? 3 : 1;
}

int cw_runs(int i, int slot)
{
    return atomic_load(&runs[i][slot]);
}

/* ---- the work ---- */

static long input_num(dt_orch_ctx *ctx)
{
    const char *in = dt_orch_input(ctx, NULL);
    return in != NULL ? strtol(in, NULL, 10) : 0;
}

/* "add": input "<instance> <slot> <a> <b>", output a + b; counts its run. */
static void add(dt_activity_ctx *ctx, void *ud)
{
    (void)ud;
    long i = -1, slot = -1, a = 0, b = 0;
    const char *in = dt_activity_input(ctx, NULL);
    if (in == NULL || sscanf(in, "%ld %ld %ld %ld", &i, &slot, &a, &b) != 4 || i < 0 ||
        i >= n_instances || slot < 0 || slot >= CW_MAX_SLOTS) {
        dt_activity_fail(ctx, "cluster.BadInput", in != NULL ? in : "(none)", true);
        return;
    }
    atomic_fetch_add(&runs[i][slot], 1);
    char out[32];
    int n = snprintf(out, sizeof(out), "%ld", a + b);
    dt_activity_set_output(ctx, out, (size_t)n);
}

static dt_task *call_add(dt_orch_ctx *ctx, int slot, long a, long b)
{
    char in[96];
    int n = snprintf(in, sizeof(in), "%ld %d %ld %ld", input_num(ctx), slot, a, b);
    return dt_call_activity(ctx, "add", in, (size_t)n, NULL);
}

static long await_num(dt_orch_ctx *ctx, dt_task *t)
{
    return strtol(dt_await(ctx, t, NULL), NULL, 10);
}

/* The durable side effect of a state transition: "c-<i>.<step>". */
static void publish_step(dt_orch_ctx *ctx, int step)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%s.%d", dt_orch_instance_id(ctx), step);
    dt_publish(ctx, fx_subject, NULL, NULL, 0, body, (size_t)n);
}

static void finish(dt_orch_ctx *ctx, long result)
{
    publish_step(ctx, 0);
    char out[32];
    int n = snprintf(out, sizeof(out), "%ld", result);
    dt_orch_set_output(ctx, out, (size_t)n);
}

static void chain(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long v = input_num(ctx);
    for (int k = 1; k <= 3; k++) {
        v = await_num(ctx, call_add(ctx, k - 1, v, k));
        if (k < 3) {
            publish_step(ctx, k);
        }
    }
    finish(ctx, v);
}

static void fanout(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long v = input_num(ctx);
    dt_task *t[4];
    for (int k = 0; k < 4; k++) {
        t[k] = call_add(ctx, k, v, k);
    }
    dt_await(ctx, dt_when_all(ctx, t, 4), NULL);
    long sum = 0;
    for (int k = 0; k < 4; k++) {
        sum += strtol(dt_task_output(t[k], NULL), NULL, 10);
    }
    finish(ctx, sum);
}

static void timer(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    dt_await(ctx, dt_sleep(ctx, 1000), NULL);
    finish(ctx, await_num(ctx, call_add(ctx, 0, input_num(ctx), 1000)));
}

static void event(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    long go = strtol(dt_await(ctx, dt_wait_event(ctx, "go"), NULL), NULL, 10);
    finish(ctx, await_num(ctx, call_add(ctx, 0, input_num(ctx), go)));
}

void cw_register(dt_worker *w)
{
    dt_worker_add_orchestrator(w, "chain", chain, NULL);
    dt_worker_add_orchestrator(w, "fanout", fanout, NULL);
    dt_worker_add_orchestrator(w, "timer", timer, NULL);
    dt_worker_add_orchestrator(w, "event", event, NULL);
    dt_worker_add_activity(w, "add", NULL, add, NULL);
}
