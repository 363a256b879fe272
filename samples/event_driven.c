/*
 * Event-driven start: a service that knows nothing of durabletask starts an orchestration with
 * ONE NATS message and gets the result on a subject of its own choosing. It needs no client
 * library, no partition hash and no protobuf to send: the body is the input, the rest is in
 * headers (docs/protocol.md, "publish-to-start"). A worker routes the request to the instance's
 * partition; when the instance finishes, the worker publishes its final InstanceStatus
 * (schema/dt_work.proto) to the Dt-Result-Subject.
 *
 *   orchestration welcome_user {"user":"ada"}
 *       -> {"user":"ada","account":"acct-ada","email":"sent"}
 *   activities    create_account, send_welcome_email
 *
 * The same from the shell with the nats CLI:
 *   nats sub signup.results.ada &
 *   nats req dt.samples.in.start.welcome_user '{"user":"ada"}' \
 *       -H Dt-Instance-Id:welcome-ada -H Nats-Msg-Id:welcome-ada \
 *       -H Dt-Result-Subject:signup.results.ada
 *
 * Alone: dt-samples event-driven.
 */
#include <stdio.h>
#include <string.h>

#include <nats/nats.h>

#include "event_driven.h"
#include "sample_client.h"
#include "sample_json.h"
#include "sample_out.h"
#include "samples.h"

/* ---- the worker side ---- */

static void create_account(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    char user[64] = "?";
    sjson_str(dt_activity_input(ctx, NULL), "user", user, sizeof(user));
    sample_activity_output(ctx, "\"acct-%s\"", user);
}

static void send_welcome_email(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    dt_activity_set_output(ctx, "\"sent\"", 6);
}

static void welcome_user(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char user[64] = "?";
    sjson_str(in, "user", user, sizeof(user));
    const char *account =
        dt_await(ctx, dt_call_activity(ctx, "create_account", in, len, NULL), NULL);
    const char *email = dt_await(
        ctx, dt_call_activity(ctx, "send_welcome_email", account, strlen(account), NULL), NULL);
    sample_orch_output(ctx, "{\"user\":\"%s\",\"account\":%s,\"email\":%s}", user, account, email);
}

static dt_status add(dt_worker *w)
{
    dt_status st = dt_worker_add_orchestrator(w, "welcome_user", welcome_user, NULL);
    if (st == DT_OK) {
        st = dt_worker_add_activity(w, "create_account", NULL, create_account, NULL);
    }
    return st != DT_OK
               ? st
               : dt_worker_add_activity(w, "send_welcome_email", NULL, send_welcome_email, NULL);
}

/* ---- the service side: plain nats.c ---- */

/* The one message: input as body; instance ID, identity and result subject as headers. A
 * request rather than a plain publish, so JetStream's PubAck says the start is stored. */
static natsStatus publish_start(natsConnection *nc, const char *hub, const char *instance_id,
                                const char *input, const char *result_subject)
{
    char subject[256];
    snprintf(subject, sizeof(subject), "dt.%s.in.start.welcome_user", hub);
    natsMsg *m = NULL, *ack = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, input, (int)strlen(input));
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(m, "Dt-Instance-Id", instance_id);
    }
    if (s == NATS_OK) { /* the request's identity: a re-publish is dropped, not started twice */
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", instance_id);
    }
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(m, "Dt-Result-Subject", result_subject);
    }
    if (s == NATS_OK) {
        s = natsConnection_RequestMsg(&ack, nc, m, 5000);
    }
    if (s == NATS_OK) { /* {"stream":"DT_<hub>_IN","seq":17}, or {"error":{...}} */
        char reply[256];
        snprintf(reply, sizeof(reply), "%.*s", natsMsg_GetDataLength(ack), natsMsg_GetData(ack));
        s = strstr(reply, "\"error\"") == NULL ? NATS_OK : NATS_ERR;
    }
    natsMsg_Destroy(ack);
    natsMsg_Destroy(m);
    return s;
}

int welcome_service_request(const char *nats_url, const char *hub, const char *instance_id,
                            const char *input, const char *result_subject, int64_t timeout_ms,
                            dt_client_instance **out, char *err, size_t errlen)
{
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    natsMsg *result = NULL;
    const char *step = "connect";
    natsStatus s = natsConnection_ConnectTo(&nc, nats_url);
    if (s == NATS_OK) { /* listen before starting, so the result cannot be missed */
        step = "subscribe";
        s = natsConnection_SubscribeSync(&sub, nc, result_subject);
    }
    if (s == NATS_OK) {
        step = "publish the start";
        s = publish_start(nc, hub, instance_id, input, result_subject);
    }
    if (s == NATS_OK) {
        step = "wait for the result";
        s = natsSubscription_NextMsg(&result, sub, timeout_ms);
    }
    dt_client_instance *st = NULL;
    dt_status ds = DT_OK;
    if (s == NATS_OK) {
        step = "decode the result";
        ds = dt_client_instance_decode(natsMsg_GetData(result),
                                       (size_t)natsMsg_GetDataLength(result), &st);
    }
    if (st == NULL) {
        snprintf(err, errlen, "%s: %s", step,
                 s != NATS_OK ? natsStatus_GetText(s) : dt_status_str(ds));
    }
    natsMsg_Destroy(result);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    *out = st;
    return st != NULL ? 0 : -1;
}

/* ---- the runner ---- */

static bool run(sample_run *r)
{
    char id[DT_CLIENT_ID_BUF], subject[DT_CLIENT_ID_BUF + 32], err[256];
    sample_id(r, "welcome", 1, id);
    snprintf(subject, sizeof(subject), "signup.results.%s", id);
    dt_client_instance *st = NULL;
    r->instances++;
    if (welcome_service_request(r->nats_url, r->hub, id, "{\"user\":\"ada\"}", subject,
                                r->timeout_ms, &st, err, sizeof(err)) != 0) {
        fprintf(r->out, "  %-32s %s\n", id, err);
        return false;
    }
    const char *want = "{\"user\":\"ada\",\"account\":\"acct-ada\",\"email\":\"sent\"}";
    bool ok = st->runtime_status == DT_CLIENT_COMPLETED && st->output != NULL &&
              st->output_len == strlen(want) && memcmp(st->output, want, st->output_len) == 0;
    fprintf(r->out, "  %-32s %-10s on %s: %.*s\n", st->instance_id,
            dt_client_runtime_status_name(st->runtime_status), subject, (int)st->output_len,
            st->output != NULL ? (const char *)st->output : "");
    dt_client_instance_free(st);
    return ok;
}

const sample sample_event_driven = {
    .name = "event-driven",
    .title = "one NATS message starts it; the result comes back on a chosen subject",
    .add = add,
    .run = run};
