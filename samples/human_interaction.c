/*
 * Human interaction: an orchestration asks a person for something and waits for the answer as
 * an external event, with a timeout. The wait is a durable timer plus an event subscription: it
 * survives restarts, and the instance holds no thread while it waits (hours, days). No answer in
 * time, and the request is escalated.
 *
 *   orchestration approval {"request":"expense-17","timeout_ms":1000}
 *       -> {"request":"expense-17","decision":"approved","by":"manager"}   an "approval" event came
 *       -> {"request":"expense-17","decision":"escalated","to":"director"} it did not, in time
 *   activities    request_approval (notifies the manager), escalate (notifies the director)
 *
 * Alone: dt-samples human-interaction, or
 *   dtctl start approval --id exp-1 --input '{"request":"exp-1","timeout_ms":60000}'
 *   dtctl raise exp-1 approval --data '"approved"'
 */
#include <stdio.h>
#include <string.h>

#include "sample_client.h"
#include "sample_json.h"
#include "sample_out.h"
#include "samples.h"

static void request_approval(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    /* A real activity would send a mail or a chat message with a link that raises the event. */
    dt_activity_set_output(ctx, "\"manager notified\"", 18);
}

static void escalate(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    dt_activity_set_output(ctx, "\"director\"", 10);
}

static void approval(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char request[64] = "?";
    sjson_str(in, "request", request, sizeof(request));
    long timeout_ms = sjson_long(in, "timeout_ms", 24L * 3600 * 1000);

    dt_await(ctx, dt_call_activity(ctx, "request_approval", in, len, NULL), NULL);
    dt_set_custom_status(ctx, "\"waiting for the manager\"", 25);
    dt_task *answer = dt_wait_event_timeout(ctx, "approval", timeout_ms);
    bool answered = dt_try_await(ctx, answer) == DT_OK; /* else DT_ETIMEOUT */
    dt_set_custom_status(ctx, NULL, 0);
    if (answered) {
        sample_orch_output(ctx, "{\"request\":\"%s\",\"decision\":%s,\"by\":\"manager\"}", request,
                           (const char *)dt_task_output(answer, NULL));
        return;
    }
    const char *to = dt_await(ctx, dt_call_activity(ctx, "escalate", in, len, NULL), NULL);
    sample_orch_output(ctx, "{\"request\":\"%s\",\"decision\":\"escalated\",\"to\":%s}", request,
                       to);
}

static dt_status add(dt_worker *w)
{
    dt_status st = dt_worker_add_orchestrator(w, "approval", approval, NULL);
    if (st == DT_OK) {
        st = dt_worker_add_activity(w, "request_approval", NULL, request_approval, NULL);
    }
    return st != DT_OK ? st : dt_worker_add_activity(w, "escalate", NULL, escalate, NULL);
}

/* Two requests: the manager answers the first; nobody answers the second within 1 s. */
static bool run(sample_run *r)
{
    char answered[DT_CLIENT_ID_BUF], ignored[DT_CLIENT_ID_BUF];
    char in[DT_CLIENT_ID_BUF + 64], want[DT_CLIENT_ID_BUF + 128];
    sample_id(r, "approval", 1, answered);
    sample_id(r, "approval", 2, ignored);
    snprintf(in, sizeof(in), "{\"request\":\"%s\",\"timeout_ms\":30000}", answered);
    if (!sample_start(r, "approval", answered, in)) {
        return false;
    }
    snprintf(in, sizeof(in), "{\"request\":\"%s\",\"timeout_ms\":1000}", ignored);
    if (!sample_start(r, "approval", ignored, in)) {
        return false;
    }
    /* The manager's answer; an event raised before the wait begins is buffered. */
    if (dt_client_raise_event(r->client, answered, "approval", "\"approved\"", 10, NULL) != DT_OK) {
        fprintf(r->out, "  raise: %s\n", dt_client_errmsg(r->client));
        return false;
    }
    snprintf(want, sizeof(want),
             "{\"request\":\"%s\",\"decision\":\"approved\",\"by\":\"manager\"}", answered);
    bool ok = sample_check(r, answered, want);
    snprintf(want, sizeof(want),
             "{\"request\":\"%s\",\"decision\":\"escalated\",\"to\":\"director\"}", ignored);
    return sample_check(r, ignored, want) && ok;
}

const sample sample_human_interaction = {
    .name = "human-interaction",
    .title = "an approval event awaited with a timeout, escalated when none comes",
    .add = add,
    .run = run};
