/*
 * A status record from the wire: the InstanceStatus message a worker publishes to a start's
 * result subject (Dt-Result-Subject) and keeps in the status bucket, decoded into the public
 * dt_client_instance without a client, so that programs that receive it need no generated
 * protobuf code.
 */
#include "client_int.h"

dt_status dt_client_instance_decode(const void *data, size_t len, dt_client_instance **out)
{
    if ((data == NULL && len > 0) || out == NULL) {
        return DT_EINVAL;
    }
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        return DT_ENOMEM;
    }
    /* dt__arena_unpack checks the wire format first (nesting depth, field 0). */
    Dtpb__InstanceStatus *s = (Dtpb__InstanceStatus *)dt__arena_unpack(
        a, &dtpb__instance_status__descriptor, len, data != NULL ? data : (const void *)"");
    if (s == NULL || s->instance_id == NULL || s->instance_id[0] == '\0') {
        dt__arena_destroy(a);
        return DT_EDECODE;
    }
    dt_client_instance *inst = dt__client_instance_new(a);
    if (inst == NULL || dt__client_instance_from_pb(a, s, true, inst) != DT_OK) {
        dt__arena_destroy(a);
        return DT_ENOMEM;
    }
    *out = inst;
    return DT_OK;
}
