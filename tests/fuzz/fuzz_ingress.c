/*
 * Fuzz target: the ingress router's routing of one request (dt__ingress_route,
 * runtime/worker/ingress/ingress_route.c). Any NATS client publishes to dt.<hub>.in.> with any
 * subject tail, header block and body; the router reads the kind and name from the subject, the
 * Dt-Instance-Id, Nats-Msg-Id, Dt-Version, Dt-Start-At, Dt-Reuse-Policy and Dt-Result-Subject
 * headers, and makes an OrchestrationMessage of it, or refuses it with a reason.
 *
 * Input: the partition count (1 byte, 1..64), the subject tail's length (1 byte), the tail, the
 * header block's length (2 bytes, little endian), the block and the body, as nats-server
 * delivers an HMSG (the message is built with nats.c's natsMsg_create, as fuzz_msg_headers does).
 *
 * Properties: a routed request is a work item the partitions take (it decodes with the work-item
 * decoder, its instance ID is valid, its subject is the instance's partition's, its identity is
 * the routed Nats-Msg-Id, a start has an execution ID and a known reuse policy); a refused one
 * has a reason.
 */
#include <string.h>

#include "broker_int.h"
#include "fuzz.h"
#include "ingress_int.h"
#include "protocol_int.h"

natsStatus natsMsg_create(natsMsg **newMsg, const char *subject, int subjLen, const char *reply,
                          int replyLen, const char *buf, int bufLen, int hdrLen);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(dt__broker_global_init() == DT_OK);
    return 0;
}

static void check_routed(const dt__routed *r, uint32_t partitions, dt__arena *a)
{
    Dtpb__OrchestrationMessage *om = NULL;
    FUZZ_CHECK(dt__orch_msg_decode(a, r->data, r->len, &om) == DT_OK);
    FUZZ_CHECK(dt__instance_id_valid(om->instance_id));
    FUZZ_CHECK(strcmp(om->dedupe_id, r->dedupe) == 0);
    char want[DT_BROKER_NAME_BUF];
    snprintf(want, sizeof(want), "dt.fuzz.orch.%u", dt__partition_of(om->instance_id, partitions));
    if (strcmp(r->subject, want) != 0) {
        fuzz_fail("routed to %s, want %s", r->subject, want);
    }
    if (om->event->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED) {
        FUZZ_CHECK(om->execution_id != NULL && om->execution_id[0] != '\0');
        FUZZ_CHECK(om->reuse_policy >= DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_ERROR &&
                   om->reuse_policy <= DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_IGNORE);
        FUZZ_CHECK(om->event->execution_started->name != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > 65536) {
        return 0;
    }
    uint32_t partitions = (uint32_t)(data[0] % 64) + 1;
    size_t tl = data[1], n = size - 2;
    tl = tl < n ? tl : n;
    char subject[300];
    int sl = snprintf(subject, sizeof(subject), "dt.fuzz.in.%.*s", (int)tl, (const char *)data + 2);
    if (memchr(subject, '\0', (size_t)sl) != NULL) {
        return 0; /* a subject never holds a NUL */
    }
    const uint8_t *rest = data + 2 + tl;
    n -= tl;
    if (n < 2) {
        return 0;
    }
    size_t hl = (size_t)rest[0] | (size_t)rest[1] << 8;
    n -= 2;
    hl = hl < n ? hl : n;
    natsMsg *nm = NULL;
    FUZZ_CHECK(natsMsg_create(&nm, subject, sl, NULL, 0, (const char *)rest + 2, (int)n, (int)hl) ==
               NATS_OK);
    dt_broker_msg *m = dt__broker_msg_wrap(nm, DT__MSG_CORE, NULL, NULL);
    FUZZ_CHECK(m != NULL);
    dt__arena *a = dt__arena_create(0);
    FUZZ_CHECK(a != NULL);
    dt__ingress_routing g = {"dt.fuzz.in.", "fuzz", partitions};
    dt__routed r;
    memset(&r, 0, sizeof(r));
    const char *why = dt__ingress_route(&g, a, m, &r);
    if (why == NULL) {
        check_routed(&r, partitions, a);
    } else {
        FUZZ_CHECK(why[0] != '\0');
    }
    dt__arena_destroy(a);
    dt_broker_msg_destroy(m); /* destroys nm */
    return 0;
}
