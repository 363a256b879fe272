/*
 * Fuzz target: dt__arena_unpack (runtime/common/arena_pb.c), the one-pass decoder of stored
 * history events (its caller: the worker's episode, on a cache miss).
 *
 * Property: it gives exactly what protobuf_c_message_unpack gives, NULL for NULL and otherwise an
 * equal message field by field (fuzz_pb_equal), whether it decoded the input itself or handed it
 * to protobuf-c; except that it refuses (NULL) what dt__pb_wire_ok refuses, nesting deeper than
 * DT_PB_MAX_DEPTH and fields numbered 0, which protobuf-c is then not even asked (it would
 * recurse without bound). The input is decoded from a heap copy that is freed before the
 * comparison, so a result that points into the input (the contract says it never does) is a
 * use-after-free. Arenas of the smallest block size put many decodes across block boundaries.
 */
#include <string.h>

#include "arena_int.h"
#include "dt_history.pb-c.h"
#include "fuzz.h"
#include "pb_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCMessageDescriptor *d = &dtpb__history_event__descriptor;
    uint8_t *copy = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    dt__arena *a = dt__arena_create(512);
    FUZZ_CHECK(a != NULL);
    ProtobufCMessage *mine = dt__arena_unpack(a, d, size, copy);
    free(copy);
    if (!dt__pb_wire_ok(d, data, size)) {
        FUZZ_CHECK(mine == NULL);
        dt__arena_destroy(a);
        return 0;
    }
    ProtobufCMessage *ref = protobuf_c_message_unpack(d, NULL, size, data);
    FUZZ_CHECK((mine == NULL) == (ref == NULL));
    char why[1024] = "";
    if (!fuzz_pb_equal(mine, ref, why, sizeof(why))) {
        fuzz_fail("dt__arena_unpack and protobuf-c differ: %s", why);
    }
    if (ref != NULL) {
        protobuf_c_message_free_unpacked(ref, NULL);
    }
    dt__arena_destroy(a);
    return 0;
}
