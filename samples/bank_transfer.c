/*
 * Durable entities, 2: a bank transfer between two account entities in a critical section. Each
 * transfer orchestration locks both accounts (dt_lock_entities: sorted, so two transfers in
 * opposite directions cannot deadlock), withdraws from one and deposits to the other with calls
 * that only it can make while it holds the locks, and unlocks. Many transfers run at once between
 * the same accounts; no money is created or lost, and a transfer that would overdraw is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "durabletask/entity.h"
#include "sample_client.h"
#include "sample_json.h"
#include "sample_out.h"
#include "samples.h"

#define ACCOUNTS  3
#define TRANSFERS 12
#define OPENING   100

/* ---- the worker side ---- */

/* "account": deposit <n>, withdraw <n> (fails when it would overdraw), balance. */
static void account(dt_entity_ctx *ctx, void *user_data)
{
    (void)user_data;
    const char *op = dt_entity_operation(ctx);
    const char *state = dt_entity_state(ctx, NULL), *in = dt_entity_input(ctx, NULL);
    long balance = state != NULL ? strtol(state, NULL, 10) : 0;
    long amount = in != NULL ? strtol(in, NULL, 10) : 0;
    char buf[32];
    if (strcmp(op, "withdraw") == 0 && amount > balance) {
        dt_entity_fail(ctx, "InsufficientFunds", "the balance is too low");
        return;
    }
    if (strcmp(op, "deposit") == 0 || strcmp(op, "withdraw") == 0) {
        balance += strcmp(op, "deposit") == 0 ? amount : -amount;
        int n = snprintf(buf, sizeof(buf), "%ld", balance);
        dt_entity_set_state(ctx, buf, (size_t)n);
    } else if (strcmp(op, "balance") == 0) {
        int n = snprintf(buf, sizeof(buf), "%ld", balance);
        dt_entity_set_result(ctx, buf, (size_t)n);
    } else {
        dt_entity_fail(ctx, "UnknownOperation", op);
    }
}

/* Input {"from":"...","to":"...","amount":N}: output "moved" or "refused". */
static void transfer(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    const char *in = dt_orch_input(ctx, NULL);
    char from[64] = "", to[64] = "", amount[24] = "0";
    sjson_str(in, "from", from, sizeof(from));
    sjson_str(in, "to", to, sizeof(to));
    snprintf(amount, sizeof(amount), "%ld", sjson_long(in, "amount", 0));
    dt_entity_ref both[2] = {{"account", from}, {"account", to}};
    dt_await(ctx, dt_lock_entities(ctx, both, 2), NULL);
    bool moved = dt_try_await(ctx, dt_call_entity(ctx, "account", from, "withdraw", amount,
                                                  strlen(amount))) == DT_OK;
    if (moved) {
        dt_await(ctx, dt_call_entity(ctx, "account", to, "deposit", amount, strlen(amount)), NULL);
    }
    dt_unlock_entities(ctx);
    sample_orch_output(ctx, "\"%s\"", moved ? "moved" : "refused");
}

static dt_status add(dt_worker *w)
{
    dt_status st = dt_worker_add_entity(w, "account", account, NULL);
    return st != DT_OK ? st : dt_worker_add_orchestrator(w, "transfer", transfer, NULL);
}

/* ---- the runner ---- */

static long balance_of(sample_run *r, const char *key)
{
    dt_entity_metadata *m = NULL;
    long b = -1;
    if (dt_client_get_entity(r->client, "account", key, true, &m) == DT_OK) {
        b = m->state != NULL && m->locked_by == NULL ? strtol(m->state, NULL, 10) : -1;
        dt_entity_metadata_free(m);
    }
    return b;
}

static bool run(sample_run *r)
{
    char keys[ACCOUNTS][DT_CLIENT_ID_BUF];
    for (int i = 0; i < ACCOUNTS; i++) {
        sample_id(r, "acct", i, keys[i]);
        char amt[16];
        int n = snprintf(amt, sizeof(amt), "%d", OPENING);
        if (dt_client_signal_entity(r->client, "account", keys[i], "deposit", amt, (size_t)n,
                                    NULL) != DT_OK) {
            fprintf(r->out, "  deposit: %s\n", dt_client_errmsg(r->client));
            return false;
        }
    }
    bool ok = true;
    char ids[TRANSFERS][DT_CLIENT_ID_BUF];
    for (int t = 0; t < TRANSFERS && ok; t++) { /* all at once, both directions */
        char input[3 * DT_CLIENT_ID_BUF];
        int from = t % ACCOUNTS, to = (from + 1 + (t / ACCOUNTS) % 2) % ACCOUNTS;
        snprintf(input, sizeof(input), "{\"from\":\"%s\",\"to\":\"%s\",\"amount\":%d}", keys[from],
                 keys[to], 10 + 5 * t);
        sample_id(r, "transfer", t, ids[t]);
        ok = sample_start(r, "transfer", ids[t], input);
    }
    for (int t = 0; t < TRANSFERS && ok; t++) {
        ok = sample_check(r, ids[t], NULL);
    }
    long total = 0;
    struct timespec pause = {0, 50 * 1000000L};
    for (int i = 0; i < ACCOUNTS && ok; i++) {
        long b = -1;
        for (int64_t waited = 0; b < 0 && waited < r->timeout_ms; waited += 50) {
            if ((b = balance_of(r, keys[i])) < 0) {
                nanosleep(&pause, NULL);
            }
        }
        fprintf(r->out, "  @account@%-22s balance %ld\n", keys[i], b);
        total += b;
    }
    fprintf(r->out, "  %d transfers: total %ld (opened with %d)\n", TRANSFERS, total,
            ACCOUNTS * OPENING);
    return ok && total == (long)ACCOUNTS * OPENING;
}

const sample sample_bank_transfer = {
    .name = "bank-transfer",
    .title = "two durable entities (accounts) changed together in a critical section",
    .add = add,
    .run = run,
};
