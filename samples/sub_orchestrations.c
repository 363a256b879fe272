/*
 * Sub-orchestrations: an orchestration starts other orchestrations and awaits them like
 * activities. Each child is an instance of its own (with its own history, status and ID,
 * "<parent>:<execution>:<task number>"), may run on another worker, and can be queried on its own;
 * the parent only records that it started and how it ended.
 *
 *   orchestration process_orders {"orders":3}
 *       -> {"orders":3,"total":60}      (one process_order child per order, run in parallel)
 *   orchestration process_order {"order":"o-2","qty":2,"price":10}
 *       -> {"order":"o-2","charged":20} (reserve_stock, then charge_payment)
 *
 * Alone: dt-samples sub-orchestrations, or dtctl start process_orders --input '{"orders":5}'.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sample_client.h"
#include "sample_json.h"
#include "sample_out.h"
#include "samples.h"

#define ORDERS_MAX 100

static void reserve_stock(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    dt_activity_set_output(ctx, "true", 4);
}

static void charge_payment(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    const char *in = dt_activity_input(ctx, NULL);
    sample_activity_output(ctx, "%ld", sjson_long(in, "qty", 0) * sjson_long(in, "price", 0));
}

/* The child: one order. */
static void process_order(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char order[64] = "?";
    sjson_str(in, "order", order, sizeof(order));
    dt_await(ctx, dt_call_activity(ctx, "reserve_stock", in, len, NULL), NULL);
    const char *charged =
        dt_await(ctx, dt_call_activity(ctx, "charge_payment", in, len, NULL), NULL);
    sample_orch_output(ctx, "{\"order\":\"%s\",\"charged\":%s}", order, charged);
}

/* The parent: one child per order, all at once. */
static void process_orders(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    long n = sjson_long(dt_orch_input(ctx, NULL), "orders", 3);
    if (n < 1 || n > ORDERS_MAX) {
        dt_orch_fail(ctx, "sample.BadInput", "orders must be 1..100", NULL);
    }
    dt_task *children[ORDERS_MAX];
    for (long i = 0; i < n; i++) {
        char in[128];
        int len = snprintf(in, sizeof(in), "{\"order\":\"o-%ld\",\"qty\":%ld,\"price\":10}", i + 1,
                           i + 1);
        children[i] = dt_call_sub_orchestrator(ctx, "process_order", in, (size_t)len, NULL);
    }
    dt_await(ctx, dt_when_all(ctx, children, (size_t)n), NULL);
    long total = 0;
    for (long i = 0; i < n; i++) {
        total += sjson_long(dt_task_output(children[i], NULL), "charged", 0);
    }
    sample_orch_output(ctx, "{\"orders\":%ld,\"total\":%ld}", n, total);
}

static dt_status add(dt_worker *w)
{
    dt_status st = dt_worker_add_orchestrator(w, "process_orders", process_orders, NULL);
    if (st == DT_OK) {
        st = dt_worker_add_orchestrator(w, "process_order", process_order, NULL);
    }
    if (st == DT_OK) {
        st = dt_worker_add_activity(w, "reserve_stock", NULL, reserve_stock, NULL);
    }
    return st != DT_OK ? st
                       : dt_worker_add_activity(w, "charge_payment", NULL, charge_payment, NULL);
}

static bool run(sample_run *r)
{
    char id[DT_CLIENT_ID_BUF];
    sample_id(r, "orders", 1, id);
    if (!sample_start(r, "process_orders", id, "{\"orders\":3}")) {
        return false;
    }
    r->instances += 3; /* the children */
    return sample_check(r, id, "{\"orders\":3,\"total\":60}");
}

const sample sample_sub_orchestrations = {
    .name = "sub-orchestrations",
    .title = "a parent orchestration runs one child orchestration per order",
    .add = add,
    .run = run};
