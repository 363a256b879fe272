/* The entities of the entity tests (entity_funcs.h). */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "entity_funcs.h"

static long num(const char *s, long dflt)
{
    return s != NULL ? strtol(s, NULL, 10) : dflt;
}

static void set_num(dt_entity_ctx *ctx, long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld", v);
    dt_entity_set_state(ctx, buf, (size_t)n);
}

void ef_counter(dt_entity_ctx *ctx, void *ud)
{
    (void)ud;
    const char *op = dt_entity_operation(ctx);
    const char *in = dt_entity_input(ctx, NULL);
    long cur = num(dt_entity_state(ctx, NULL), 0);
    if (strcmp(op, "add") == 0) {
        set_num(ctx, cur + num(in, 1));
    } else if (strcmp(op, "get") == 0) {
        size_t len = 0;
        const void *s = dt_entity_state(ctx, &len);
        dt_entity_set_result(ctx, s != NULL ? s : "0", s != NULL ? len : 1);
    } else if (strcmp(op, "reset") == 0) {
        dt_entity_delete_state(ctx);
    } else if (strcmp(op, "fill") == 0) {
        size_t n = (size_t)num(in, 0);
        char *big = malloc(n + 1);
        if (big != NULL) {
            memset(big, 'x', n);
            dt_entity_set_state(ctx, big, n);
            free(big);
        }
    } else if (strcmp(op, "fail") == 0) {
        set_num(ctx, cur + 1000);
        dt_entity_fail(ctx, "CounterFailed", "failed on purpose");
    } else {
        dt_entity_fail(ctx, "UnknownOperation", op);
    }
}

void ef_account(dt_entity_ctx *ctx, void *ud)
{
    (void)ud;
    const char *op = dt_entity_operation(ctx);
    long cur = num(dt_entity_state(ctx, NULL), 0), amount = num(dt_entity_input(ctx, NULL), 0);
    if (strcmp(op, "deposit") == 0) {
        set_num(ctx, cur + amount);
    } else if (strcmp(op, "withdraw") == 0) {
        if (amount > cur) {
            dt_entity_fail(ctx, "InsufficientFunds", "not enough money");
            return;
        }
        set_num(ctx, cur - amount);
    } else if (strcmp(op, "balance") == 0) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%ld", cur);
        dt_entity_set_result(ctx, buf, (size_t)n);
    } else {
        dt_entity_fail(ctx, "UnknownOperation", op);
    }
}
