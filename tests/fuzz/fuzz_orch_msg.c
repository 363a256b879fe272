/*
 * Fuzz target: dt__orch_msg_decode (runtime/protocol/protocol.c), the decoder of every work item
 * a partition consumes (dt.<hub>.orch.<p>: client starts and events, activity results, timers,
 * messages between instances, ingress routes), and what happens to an accepted one's event: it
 * is stored (packed) and read back with dt__arena_unpack, and shown by the client's history
 * listing (dt__client_event_from_pb).
 *
 * Properties of an accepted message: it has what the decoder promises (a valid instance ID, an
 * event with a type, a dedupe ID); packed again it decodes to an equal message; its event read
 * back from the stored form equals it.
 */
#include <string.h>

#include "client_int.h"
#include "fuzz.h"
#include "protocol_int.h"

static void check_event_roundtrip(dt__arena *a, const Dtpb__HistoryEvent *ev)
{
    size_t len = 0;
    uint8_t *stored = dt__pack(a, &ev->base, &len);
    FUZZ_CHECK(stored != NULL);
    ProtobufCMessage *back = dt__arena_unpack(a, &dtpb__history_event__descriptor, len, stored);
    char why[1024];
    if (!fuzz_pb_equal(&ev->base, back, why, sizeof(why))) {
        fuzz_fail("a work item's event does not survive storage: %s", why);
    }
    dt_client_event view;
    FUZZ_CHECK(dt__client_event_from_pb(a, ev, stored, len, &view) == DT_OK);
    FUZZ_CHECK(view.type != NULL && view.raw_len == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dt__arena *a = dt__arena_create(512);
    FUZZ_CHECK(a != NULL);
    Dtpb__OrchestrationMessage *m = NULL;
    if (dt__orch_msg_decode(a, data, size, &m) == DT_OK) {
        FUZZ_CHECK(dt__instance_id_valid(m->instance_id));
        FUZZ_CHECK(m->event != NULL &&
                   m->event->event_type_case != DTPB__HISTORY_EVENT__EVENT_TYPE__NOT_SET);
        FUZZ_CHECK(m->dedupe_id != NULL && m->dedupe_id[0] != '\0');
        FUZZ_CHECK(m->execution_id != NULL && m->result_subject != NULL);
        FUZZ_CHECK(dt__partition_of(m->instance_id, 16) < 16);
        size_t len = 0;
        uint8_t *again = dt__pack(a, &m->base, &len);
        Dtpb__OrchestrationMessage *m2 = NULL;
        FUZZ_CHECK(again != NULL && dt__orch_msg_decode(a, again, len, &m2) == DT_OK);
        char why[1024];
        if (!fuzz_pb_equal(&m->base, &m2->base, why, sizeof(why))) {
            fuzz_fail("a work item packed again decodes differently: %s", why);
        }
        check_event_roundtrip(a, m->event);
    }
    dt__arena_destroy(a);
    return 0;
}
