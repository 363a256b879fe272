/*
 * The activity work item as received: the checks an ActivityRequest must pass before it may run
 * (activity_int.h, "Bounds and failure rules"). Pure: no broker, no pool state, so that the
 * decoder's fuzz target (tests/fuzz/fuzz_activity_request.c) reaches it.
 */
#include <string.h>

#include "activity_int.h"
#include "protocol_int.h"

const char *dt__act_request_problem(dt__arena *a, const char *orch_prefix,
                                    const Dtpb__ActivityRequest *req)
{
    if (req == NULL) {
        return "body is not an ActivityRequest (protobuf decoding failed)";
    }
    if (!dt__instance_id_valid(req->instance_id)) {
        return "instance_id missing or invalid (1..256 printable ASCII characters, no spaces)";
    }
    if (req->name == NULL || req->name[0] == '\0') {
        return "name missing";
    }
    const char *r = req->reply_subject;
    size_t pl = strlen(orch_prefix);
    if (r == NULL || strncmp(r, orch_prefix, pl) != 0 || !dt_broker_token_valid(r + pl)) {
        return "reply_subject missing or not a partition subject (dt.<hub>.orch.<p>) of this hub";
    }
    if (dt__act_result_id(a, req) == NULL) {
        return "instance_id and execution_id too long for a result identity";
    }
    return NULL;
}
