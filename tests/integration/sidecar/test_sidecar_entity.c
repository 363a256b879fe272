/*
 * test_sidecar_entity.c: durable entities through dt-sidecar with @microsoft/durabletask-js
 * (tests/js/sidecar_entity.mjs): the entity client RPCs against a C entity; an entity written in
 * JS, run by the SDK worker (runtime/remote, remote_entity.c), signalled by the client and by
 * another JS entity, called and signalled from a JS orchestration and from a C orchestration; a
 * critical section from JS over a JS and a C entity, and one its orchestration never releases;
 * an SDK worker that dies holding an entity operation; malformed entity input.
 *
 * The C entity and the C orchestration are on the sidecar's own worker (as in test_sidecar_sdk:
 * the worker that owns the partitions runs them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "durabletask/client.h"
#include "durabletask/entity.h"
#include "durabletask/orchestration.h"
#include "durabletask/worker.h"
#include "sidecar_kit.h"
#include "sidecar_node.h"
#include "test_support.h"

/* A counter whose state is a JSON number: add (returns the new value), get, delete. */
static void c_counter(dt_entity_ctx *ctx, void *ud)
{
    (void)ud;
    const char *op = dt_entity_operation(ctx);
    const char *in = dt_entity_input(ctx, NULL);
    const char *cur = dt_entity_state(ctx, NULL);
    long v = cur != NULL ? strtol(cur, NULL, 10) : 0;
    char buf[32];
    if (strcmp(op, "add") == 0) {
        int n = snprintf(buf, sizeof buf, "%ld", v + (in != NULL ? strtol(in, NULL, 10) : 1));
        dt_entity_set_state(ctx, buf, (size_t)n);
        dt_entity_set_result(ctx, buf, (size_t)n);
    } else if (strcmp(op, "get") == 0) {
        int n = snprintf(buf, sizeof buf, "%ld", v);
        dt_entity_set_result(ctx, buf, (size_t)n);
    } else if (strcmp(op, "delete") == 0) {
        dt_entity_delete_state(ctx);
    } else {
        dt_entity_fail(ctx, "UnknownOperation", op);
    }
}

/* Input: a JSON string, the key of a JS entity "JsCounter": calls its "add" with 42 (which
 * returns the new count), then signals it "add" 1; output: the call's result. */
static void c_calls_js_entity(dt_orch_ctx *ctx, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char key[DT_ENTITY_KEY_MAX + 1];
    if (in == NULL || len < 2 || len - 2 > DT_ENTITY_KEY_MAX) {
        dt_orch_fail(ctx, "BadInput", "a JSON string key expected", NULL);
        return;
    }
    memcpy(key, in + 1, len - 2);
    key[len - 2] = '\0';
    const void *out = dt_await(ctx, dt_call_entity(ctx, "JsCounter", key, "add", "42", 2), &len);
    dt_signal_entity(ctx, "JsCounter", key, "add", "1", 1, 0);
    dt_orch_set_output(ctx, out, len);
}

static dt_status setup(dt_worker *w, void *ctx)
{
    (void)ctx;
    dt_status st = dt_worker_add_entity(w, "CCounter", c_counter, NULL);
    return st != DT_OK ? st
                       : dt_worker_add_orchestrator(w, "CCallsJsEntity", c_calls_js_entity, NULL);
}

static void test_sdk_entities(void **state)
{
    (void)state;
    const char *url = dt_test_nats_url();
    assert_non_null(url);
    char hub[64];
    snprintf(hub, sizeof hub, "sdkent%ld", (long)getpid());
    dt_client *c = sidecar_kit_hub(url, hub);

    char *dir = dt_test_mkdtemp("sdkent");
    dt__sidecar_options so = {
        .nats_url = url, .hub = hub, .listen = "127.0.0.1:0", .data_dir = dir, .setup = setup};
    char port[16];
    dt__sidecar *s = sidecar_kit_start(&so, port);
    int rc = sidecar_run_node("sidecar_entity.mjs", port, NULL);
    dt__sidecar_stop(s);
    assert_int_equal(dt_client_hub_delete(c), DT_OK);
    dt_client_destroy(c);
    dt_test_rmtree(dir);
    free(dir);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdk_entities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
