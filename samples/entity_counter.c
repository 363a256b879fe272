/*
 * Durable entities, 1: a counter driven by plain NATS publishes. A service with its own NATS
 * connection (plain nats.c: no durabletask library, no protobuf) publishes one message per event
 * to dt.<hub>.in.signal.counter, with the counter's key in Dt-Entity-Key and the operation in
 * Dt-Operation; the workers run each operation exactly once on the counter's state, which lives
 * in the hub (the partition log), not in a database of the service's. The runner reads the
 * counter back through the C client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "durabletask/entity.h"
#include "sample_client.h"
#include "samples.h"

#define EVENTS 20

/* ---- the worker side: the entity ---- */

/* "counter": add <n> (default 1), reset (deletes it), get (result: the value). */
static void counter(dt_entity_ctx *ctx, void *user_data)
{
    (void)user_data;
    const char *op = dt_entity_operation(ctx);
    const char *state = dt_entity_state(ctx, NULL), *in = dt_entity_input(ctx, NULL);
    long value = state != NULL ? strtol(state, NULL, 10) : 0;
    char buf[32];
    if (strcmp(op, "add") == 0) {
        int n = snprintf(buf, sizeof(buf), "%ld", value + (in != NULL ? strtol(in, NULL, 10) : 1));
        dt_entity_set_state(ctx, buf, (size_t)n);
    } else if (strcmp(op, "reset") == 0) {
        dt_entity_delete_state(ctx);
    } else if (strcmp(op, "get") == 0) {
        int n = snprintf(buf, sizeof(buf), "%ld", value);
        dt_entity_set_result(ctx, buf, (size_t)n);
    } else {
        dt_entity_fail(ctx, "UnknownOperation", op);
    }
}

static dt_status add(dt_worker *w)
{
    return dt_worker_add_entity(w, "counter", counter, NULL);
}

/* ---- the service side: plain nats.c ---- */

/* One event: a JetStream publish (a request for the PubAck) with the key and operation. */
static natsStatus publish_add(natsConnection *nc, const char *hub, const char *key, int n,
                              const char *msg_id)
{
    char subject[256], body[16];
    snprintf(subject, sizeof(subject), "dt.%s.in.signal.counter", hub);
    int len = snprintf(body, sizeof(body), "%d", n);
    natsMsg *m = NULL, *ack = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, body, len);
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(m, "Dt-Entity-Key", key);
    }
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(m, "Dt-Operation", "add");
    }
    if (s == NATS_OK) { /* the event's identity: a re-publish is applied once */
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    }
    if (s == NATS_OK) {
        s = natsConnection_RequestMsg(&ack, nc, m, 5000);
    }
    if (s == NATS_OK && natsMsg_GetDataLength(ack) > 0 &&
        strstr(natsMsg_GetData(ack), "\"error\"") != NULL) {
        s = NATS_ERR;
    }
    natsMsg_Destroy(ack);
    natsMsg_Destroy(m);
    return s;
}

/* ---- the runner ---- */

static bool run(sample_run *r)
{
    char key[DT_CLIENT_ID_BUF], msg_id[DT_CLIENT_ID_BUF + 16];
    sample_id(r, "page-views", 1, key);
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, r->nats_url);
    long want = 0;
    for (int i = 1; s == NATS_OK && i <= EVENTS; i++) {
        snprintf(msg_id, sizeof(msg_id), "%s-%d", key, i);
        s = publish_add(nc, r->hub, key, i, msg_id);
        want += i;
    }
    if (s == NATS_OK) { /* the same event again: dropped by its identity */
        snprintf(msg_id, sizeof(msg_id), "%s-%d", key, EVENTS);
        s = publish_add(nc, r->hub, key, EVENTS, msg_id);
    }
    natsConnection_Destroy(nc);
    if (s != NATS_OK) {
        fprintf(r->out, "  %-32s publish: %s\n", key, natsStatus_GetText(s));
        return false;
    }
    char got[32] = "";
    struct timespec pause = {0, 50 * 1000000L};
    for (int64_t waited = 0; waited < r->timeout_ms; waited += 50) {
        dt_entity_metadata *m = NULL;
        if (dt_client_get_entity(r->client, "counter", key, true, &m) == DT_OK) {
            snprintf(got, sizeof(got), "%.*s", (int)m->state_len, (const char *)m->state);
            dt_entity_metadata_free(m);
            if (strtol(got, NULL, 10) == want) {
                break;
            }
        }
        nanosleep(&pause, NULL);
    }
    bool ok = strtol(got, NULL, 10) == want;
    fprintf(r->out, "  @counter@%-22s %d publishes (+1 repeat) -> %s (expected %ld)\n", key, EVENTS,
            got[0] != '\0' ? got : "none", want);
    return ok;
}

const sample sample_entity_counter = {
    .name = "entity-counter",
    .title = "a durable entity (a counter) driven by plain NATS publishes",
    .add = add,
    .run = run,
};
