/*
 * scenario.h: runs one engine test scenario in three worlds (cache large, cache of one instance,
 * cache disabled) and checks that all three wrote byte-identical histories: every feature test
 * thereby also proves that a cache hit and a full replay take the same decisions.
 */
#ifndef DT_TEST_SCENARIO_H
#define DT_TEST_SCENARIO_H

#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "durabletask/alloc.h"
#include "harness.h"
#include "test_support.h"

typedef void (*scenario_fn)(hw_world *w);

static inline void run_scenario(scenario_fn fn)
{
    dt_test_alloc_install();
    long before = dt_test_alloc_outstanding();
    hw_world *worlds[3] = {hw_create(64), hw_create(1), hw_create(0)};
    for (int i = 0; i < 3; i++) {
        fn(worlds[i]);
    }
    char why[256];
    for (int i = 1; i < 3; i++) {
        if (!hw_same(worlds[0], worlds[i], why, sizeof(why))) {
            fail_msg("cache-hit and replay worlds differ: %s", why);
        }
    }
    for (int i = 0; i < 3; i++) {
        hw_destroy(worlds[i]);
    }
    /* Every arena, coroutine and table the engine allocated is gone with the worlds. */
    assert_int_equal(dt_test_alloc_outstanding(), before);
    dt_set_allocator(NULL);
}

/* Fake activities used across the tests. */
static inline char *test_strdup(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

/* Returns "<prefix>(<input>)", prefix being the user data string. */
static inline void act_wrap(hw_world *w, const char *input, hw_act_result *r, void *ud)
{
    (void)w;
    const char *prefix = ud != NULL ? ud : "f";
    size_t n = strlen(prefix) + (input != NULL ? strlen(input) : 4) + 3;
    r->output = malloc(n);
    snprintf(r->output, n, "%s(%s)", prefix, input != NULL ? input : "null");
}

/* Always fails with type "app.Boom" and message "boom: <input>". */
static inline void act_boom(hw_world *w, const char *input, hw_act_result *r, void *ud)
{
    (void)w;
    (void)ud;
    r->failed = true;
    r->error_type = test_strdup("app.Boom");
    size_t n = (input != NULL ? strlen(input) : 0) + 8;
    r->error_message = malloc(n);
    snprintf(r->error_message, n, "boom: %s", input != NULL ? input : "");
}

#define ST_RUNNING    DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING
#define ST_COMPLETED  DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED
#define ST_FAILED     DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED
#define ST_TERMINATED DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED

#endif
