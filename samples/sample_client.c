/* Client-side helpers of the samples (see sample_client.h). */
#include "sample_client.h"

#include <stdio.h>
#include <string.h>

void sample_id(const sample_run *r, const char *prefix, int n, char out[DT_CLIENT_ID_BUF])
{
    snprintf(out, DT_CLIENT_ID_BUF, "%s-%s-%d", prefix, r->tag, n);
}

bool sample_start(sample_run *r, const char *orch, const char *id, const char *input)
{
    dt_client_start_options o = {
        .instance_id = id, .input = input, .input_len = input != NULL ? strlen(input) : 0};
    dt_status st = dt_client_schedule(r->client, orch, &o, NULL, 0);
    if (st != DT_OK) {
        fprintf(r->out, "  %-32s could not start %s: %s\n", id, orch, dt_client_errmsg(r->client));
        return false;
    }
    r->instances++;
    return true;
}

void sample_print(sample_run *r, const dt_client_instance *inst)
{
    double secs = (double)(inst->last_updated_at_ms - inst->created_at_ms) / 1000.0;
    fprintf(r->out, "  %-32s %-10s %6.2f s  ", inst->instance_id,
            dt_client_runtime_status_name(inst->runtime_status), secs);
    if (inst->failure != NULL) {
        fprintf(r->out, "%s: %s\n", inst->failure->type, inst->failure->message);
    } else {
        fprintf(r->out, "%.*s\n", (int)inst->output_len,
                inst->output != NULL ? (const char *)inst->output : "");
    }
}

/* Waits for the instance to start; says so when no worker picks it up for a while. */
static void wait_start(sample_run *r, const char *id)
{
    int64_t hint_ms = r->timeout_ms < 10000 ? r->timeout_ms : 10000;
    if (dt_client_wait_for_start(r->client, id, hint_ms, false, NULL) == DT_ETIMEOUT) {
        fprintf(r->out,
                "  %-32s still pending after %lld s: is a dt-samples-worker running for hub %s?\n",
                id, (long long)hint_ms / 1000, r->hub);
        fflush(r->out);
    }
}

bool sample_check(sample_run *r, const char *id, const char *want)
{
    wait_start(r, id);
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_wait_for_completion(r->client, id, r->timeout_ms, true, &inst);
    if (st != DT_OK) {
        fprintf(r->out, "  %-32s %s\n", id, dt_client_errmsg(r->client));
        return false;
    }
    sample_print(r, inst);
    bool ok = inst->runtime_status == DT_CLIENT_COMPLETED;
    if (ok && want != NULL) {
        ok = inst->output != NULL && inst->output_len == strlen(want) &&
             memcmp(inst->output, want, inst->output_len) == 0;
    }
    if (!ok) {
        fprintf(r->out, "  %-32s expected COMPLETED %s\n", "", want != NULL ? want : "");
    }
    dt_client_instance_free(inst);
    return ok;
}
