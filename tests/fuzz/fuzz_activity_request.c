/*
 * Fuzz target: the activity work item (dt.<hub>.act.<queue>) as the activity pool receives it:
 * decoded (dtpb__activity_request__unpack into the batch arena,
 * runtime/worker/activity/activity_loop.c), checked (dt__act_request_problem) and, when it passes,
 * answered: the result message of a run that completed, failed, or produced more than the hub takes
 * (dt__act_result_pack).
 *
 * Properties: a request that passes the checks gets a result for every outcome, and each result
 * is a work item the partition accepts (dt__orch_msg_decode) for the same instance and
 * execution, identified by the result identity, sent to the request's own reply subject.
 */
#include <string.h>

#include "activity_int.h"
#include "fuzz.h"
#include "protocol_int.h"

static void check_result(dt__arena *a, const Dtpb__ActivityRequest *req, const dt__act_result *r)
{
    Dtpb__OrchestrationMessage *m = NULL;
    FUZZ_CHECK(dt__orch_msg_decode(a, r->data, r->len, &m) == DT_OK);
    FUZZ_CHECK(strcmp(m->instance_id, req->instance_id) == 0);
    FUZZ_CHECK(strcmp(m->execution_id, req->execution_id) == 0);
    FUZZ_CHECK(strcmp(m->dedupe_id, r->msg_id) == 0);
    FUZZ_CHECK(r->subject == req->reply_subject);
    Dtpb__HistoryEvent__EventTypeCase c = m->event->event_type_case;
    FUZZ_CHECK(c == DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED ||
               c == DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED);
}

static void answer(dt__arena *a, const Dtpb__ActivityRequest *req)
{
    const Dtpb__Payload *in = req->input;
    dt__act_outcome ok = {.has_output = in != NULL,
                          .output = in != NULL ? in->value.data : NULL,
                          .output_len = in != NULL ? in->value.len : 0};
    dt__act_outcome failed;
    dt__act_failure(a, &failed, "app.Failed", false, "activity '%s' (task %d) failed", req->name,
                    (int)req->task_id);
    dt__act_result r;
    FUZZ_CHECK(dt__act_result_pack(a, req, &ok, 1024 * 1024, &r) == DT_OK);
    check_result(a, req, &r);
    FUZZ_CHECK(dt__act_result_pack(a, req, &failed, 1024 * 1024, &r) == DT_OK);
    check_result(a, req, &r);
    /* A hub limit the output does not fit: a dt.OutputTooLarge failure, or DT_ETOOLARGE when
     * even that does not fit. */
    dt_status st = dt__act_result_pack(a, req, &ok, 600, &r);
    FUZZ_CHECK(st == DT_OK || st == DT_ETOOLARGE);
    if (st == DT_OK) {
        check_result(a, req, &r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dt__arena *a = dt__arena_create(512);
    FUZZ_CHECK(a != NULL);
    Dtpb__ActivityRequest *req =
        dtpb__activity_request__unpack(dt__arena_pb_allocator(a), size, data);
    const char *why = dt__act_request_problem(a, FUZZ_ORCH_PREFIX, req);
    FUZZ_CHECK((req == NULL) == (why != NULL && strstr(why, "decoding") != NULL));
    if (why == NULL) {
        answer(a, req);
    }
    dt__arena_destroy(a);
    return 0;
}
