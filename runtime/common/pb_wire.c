/*
 * pb_wire.c: the check every protobuf input from outside passes before protobuf-c decodes it
 * (pb_int.h). protobuf-c 1.4.1 lets two things through that break the runtime:
 *
 *  - Nesting without bound. protobuf_c_message_unpack recurses once per nested message with
 *    about 800 bytes of stack, so a 34 KB OrchestrationMessage of nested TaskFailureDetails
 *    (the schema's one recursive type) overflows an 8 MiB stack: any publisher to a partition
 *    subject could crash every worker that takes the partition, again on each redelivery.
 *  - Field number 0 written as a key of more than one byte ("80 00"): protobuf-c checks for 0
 *    only in a one-byte key, keeps the field as an unknown one and writes it back in one byte,
 *    which it then refuses. A work item carrying one decodes, but its event, once stored, does
 *    not decode again (the instance's history becomes unreadable).
 *
 * The check walks the wire format guided by the descriptors, entering only length-delimited
 * fields declared as messages (protobuf-c keeps unknown fields as raw bytes, never parsing
 * them), so its own recursion is bounded by DT_PB_MAX_DEPTH. Malformed input otherwise passes:
 * protobuf-c refuses it itself.
 */
#include "pb_int.h"

/* A varint of at most 10 bytes; false when truncated or longer. */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

static bool wire_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                    int depth)
{
    if (depth > DT_PB_MAX_DEPTH) {
        return false;
    }
    while (p < end) {
        uint64_t key = 0, v = 0;
        if (!varint(&p, end, &key)) {
            return true; /* malformed: protobuf-c refuses it */
        }
        if (key >> 3 == 0) {
            return false;
        }
        switch (key & 7) {
        case 0:
            if (!varint(&p, end, &v)) {
                return true;
            }
            break;
        case 1:
        case 5: {
            size_t n = (key & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < n) {
                return true;
            }
            p += n;
            break;
        }
        case 2: {
            if (!varint(&p, end, &v) || v > (uint64_t)(end - p)) {
                return true;
            }
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
                    : NULL;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                !wire_ok(f->descriptor, p, p + v, depth + 1)) {
                return false;
            }
            p += v;
            break;
        }
        default:
            return true; /* groups and invalid wire types: protobuf-c refuses them */
        }
    }
    return true;
}

bool dt__pb_wire_ok(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len)
{
    return len == 0 || wire_ok(d, data, data + len, 1);
}

ProtobufCMessage *dt__pb_unpack(dt__arena *a, const ProtobufCMessageDescriptor *d, size_t len,
                                const uint8_t *data)
{
    if (len > 0 && (data == NULL || !dt__pb_wire_ok(d, data, len))) {
        return NULL;
    }
    return protobuf_c_message_unpack(d, dt__arena_pb_allocator(a), len, data);
}
