/*
 * Fuzz target: an instance's status record (an InstanceStatus in the DT_<hub>_STATUS bucket, or
 * published to a start's result subject) as the client reads it: decoded (dt__pb_unpack, as
 * runtime/client/status.c does) and converted to the public dt_client_instance
 * (dt__client_instance_from_pb, with and without payloads). Anyone who can write the bucket can
 * write a record.
 *
 * Properties: the conversion succeeds for every record that decodes; the public struct's strings
 * are never NULL (failure texts included, down the depth-bounded chain); the runtime's own "dt."
 * tags are never shown; payload copies are NUL-terminated.
 */
#include <string.h>

#include "client_int.h"
#include "fuzz.h"

static void check_failure(const dt_failure *f)
{
    for (int depth = 0; f != NULL; f = f->inner, depth++) {
        FUZZ_CHECK(depth < 64 && f->type != NULL && f->message != NULL);
        (void)strlen(f->type);
        (void)strlen(f->message);
        if (f->stack_trace != NULL) {
            (void)strlen(f->stack_trace);
        }
    }
}

static void check_payload(const void *p, size_t len)
{
    FUZZ_CHECK(p != NULL || len == 0);
    FUZZ_CHECK(p == NULL || ((const char *)p)[len] == '\0');
}

static void check(const dt_client_instance *in, bool with_payloads)
{
    FUZZ_CHECK(in->instance_id != NULL && in->execution_id != NULL && in->name != NULL);
    check_failure(in->failure);
    for (size_t i = 0; i < in->ntags; i++) {
        FUZZ_CHECK(in->tags[i].key != NULL && in->tags[i].value != NULL);
        FUZZ_CHECK(strncmp(in->tags[i].key, "dt.", 3) != 0);
    }
    if (with_payloads) {
        check_payload(in->input, in->input_len);
        check_payload(in->output, in->output_len);
        check_payload(in->custom_status, in->custom_status_len);
    } else {
        FUZZ_CHECK(in->input == NULL && in->output == NULL && in->custom_status == NULL);
    }
    if (in->version != NULL) {
        (void)strlen(in->version);
    }
    (void)dt_client_runtime_status_finished(in->runtime_status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dt__arena *a = dt__arena_create(512);
    FUZZ_CHECK(a != NULL);
    Dtpb__InstanceStatus *s =
        (Dtpb__InstanceStatus *)dt__pb_unpack(a, &dtpb__instance_status__descriptor, size, data);
    for (int with = 0; s != NULL && with < 2; with++) {
        dt_client_instance in;
        FUZZ_CHECK(dt__client_instance_from_pb(a, s, with != 0, &in) == DT_OK);
        check(&in, with != 0);
    }
    dt__arena_destroy(a);
    return 0;
}
