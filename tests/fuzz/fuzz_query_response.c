/*
 * Fuzz target: the client's reading of a query service reply (runtime/client/scatter.c): a
 * QueryResponse from whoever answers on dt.<hub>.query.<p>, decoded (dt__pb_unpack), then each
 * listed status converted (dt__client_instance_from_pb) and each history event packed again and
 * converted (dt__client_event_from_pb), as dt_client_list and dt_client_get_history do.
 *
 * Properties: every conversion of a decoded reply succeeds; event views have a type and their
 * raw bytes decode to an equal event.
 */
#include <string.h>

#include "client_int.h"
#include "fuzz.h"

static void history(dt__arena *a, const Dtpb__HistoryResponse *hr)
{
    for (size_t i = 0; i < hr->n_events; i++) {
        size_t len = 0;
        uint8_t *raw = dt__pack(a, &hr->events[i]->base, &len);
        dt_client_event ev;
        FUZZ_CHECK(raw != NULL &&
                   dt__client_event_from_pb(a, hr->events[i], raw, len, &ev) == DT_OK);
        FUZZ_CHECK(ev.type != NULL && ev.raw_len == len);
        FUZZ_CHECK(ev.payload == NULL || ((const char *)ev.payload)[ev.payload_len] == '\0');
        Dtpb__HistoryEvent *back =
            dtpb__history_event__unpack(dt__arena_pb_allocator(a), ev.raw_len, ev.raw);
        FUZZ_CHECK(back != NULL);
        char why[1024];
        if (!fuzz_pb_equal(&hr->events[i]->base, &back->base, why, sizeof(why))) {
            fuzz_fail("a history event's raw bytes decode differently: %s", why);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dt__arena *a = dt__arena_create(512);
    FUZZ_CHECK(a != NULL);
    Dtpb__QueryResponse *r =
        (Dtpb__QueryResponse *)dt__pb_unpack(a, &dtpb__query_response__descriptor, size, data);
    if (r != NULL && r->result_case == DTPB__QUERY_RESPONSE__RESULT_LIST) {
        for (size_t i = 0; i < r->list->n_instances; i++) {
            dt_client_instance in;
            FUZZ_CHECK(dt__client_instance_from_pb(a, r->list->instances[i], true, &in) == DT_OK);
            FUZZ_CHECK(in.instance_id != NULL && in.name != NULL);
        }
        (void)strlen(r->list->next_page_token);
    } else if (r != NULL && r->result_case == DTPB__QUERY_RESPONSE__RESULT_HISTORY) {
        history(a, r->history);
    }
    if (r != NULL) {
        (void)dt_status_str((dt_status)r->status);
        (void)strlen(r->error);
    }
    dt__arena_destroy(a);
    return 0;
}
