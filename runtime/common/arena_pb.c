/*
 * arena_pb.c: dt__arena_unpack, a protobuf decoder into an arena for the messages the runtime
 * reads in bulk (the stored history of an instance on a cache miss).
 *
 * protobuf_c_message_unpack is generic: it first scans all the members of a message into a
 * temporary array, then parses them, then walks the descriptor's whole field list; with its
 * allocations that came to ~2,500 instructions per history event (3-4 small nested messages,
 * callgrind, replay10k). This decoder takes one pass over the bytes and writes each field into
 * the struct as it reads it, guided by the same protoc-c descriptors (no per-schema code):
 * ~1,070 instructions per event, and memory only for the structs and their strings and bytes.
 *
 * It decodes only the plain case: singular scalar, enum, string, bytes and message fields, each
 * present at most once, with the wire type of its declaration. Anything else (an unknown or
 * repeated field, a field present twice, a malformed or truncated input, nesting deeper than
 * MAX_DEPTH) sends the whole message to protobuf_c_message_unpack instead, through
 * dt__pb_unpack, so the result, and the NULL for bad input, is always the one protobuf-c gives
 * (tests/unit/test_arena_pb.c compares the two on valid and on damaged inputs;
 * tests/fuzz/fuzz_arena_pb on any input), except for what dt__pb_unpack refuses: nesting deeper
 * than DT_PB_MAX_DEPTH and fields numbered 0 (pb_wire.c says why). The memory of an abandoned
 * fast attempt stays in the arena until it is destroyed.
 *
 * Proto3 only: a proto2 message type with required fields would need protobuf-c's check that
 * they are all present, which this decoder does not make (debug builds assert there are none).
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "arena_int.h"
#include "pb_int.h"

#define MAX_DEPTH 32

typedef struct reader {
    const uint8_t *p, *end;
} reader;

/* A varint of at most 10 bytes; false when truncated or longer. */
static bool read_varint(reader *r, uint64_t *out)
{
    if (r->p < r->end && *r->p < 0x80) { /* most keys, lengths and small numbers */
        *out = *r->p++;
        return true;
    }
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70 && r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1) {
            return false; /* bits past 64, which protobuf-c reads differently for bools */
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* A field key or a length prefix: protobuf-c reads at most 5 bytes for these and rejects longer
 * ones, so a longer one (valid varint or not) goes to protobuf-c too. */
static bool read_short_varint(reader *r, uint64_t *out)
{
    const uint8_t *start = r->p;
    return read_varint(r, out) && r->p - start <= 5;
}

/* The index in d->fields of the field numbered `id`, or n_fields when there is none. protoc-c
 * lists a descriptor's fields in field-number order and packers write them in that order, so the
 * one after the previous field (`next`) is tried first. */
static size_t find_field(const ProtobufCMessageDescriptor *d, uint64_t id, size_t next)
{
    if (next < d->n_fields && d->fields[next].id == id) {
        return next;
    }
    size_t lo = 0, hi = d->n_fields;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->fields[mid].id == id) {
            return mid;
        }
        if (d->fields[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return d->n_fields;
}

#ifndef NDEBUG
/* Whether `d` has required fields, whose absence protobuf-c reports and this decoder does not
 * look for: proto3 has none, and the schema is proto3 (tests/unit/test_arena_pb.c checks every
 * message type of it). */
static bool has_required(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < d->n_fields; i++) {
        if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED) {
            return true;
        }
    }
    return false;
}
#endif

static void *decode(dt__arena *a, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                    int depth);

/* Stores a varint into a field of the varint types this decoder handles. */
static bool put_varint(const ProtobufCFieldDescriptor *f, void *m, uint64_t v)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_ENUM:
        *(uint32_t *)m = (uint32_t)v; /* protobuf-c keeps the low 32 bits, as here */
        return true;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        *(uint64_t *)m = v;
        return true;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)m = v != 0;
        return true;
    default: /* sint*, fixed*, float, double: left to protobuf-c */
        return false;
    }
}

/* Stores a length-delimited field [p, p+n) of string, bytes or message type. */
static bool put_bytes(dt__arena *a, const ProtobufCFieldDescriptor *f, void *m, const uint8_t *p,
                      size_t n, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char *s = dt__arena_memdup(a, p, n);
        *(char **)m = s;
        return s != NULL;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bd = m;
        bd->len = n;
        bd->data = n > 0 ? dt__arena_alloc(a, n) : NULL; /* protobuf-c: NULL when empty */
        if (n > 0 && bd->data != NULL) {
            memcpy(bd->data, p, n);
        }
        return n == 0 || bd->data != NULL;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        void *sub = decode(a, f->descriptor, p, n, depth + 1);
        *(void **)m = sub;
        return sub != NULL;
    }
    default:
        return false;
    }
}

/* Reads one field (key already read) into message m; false sends the message to protobuf-c. */
static bool read_field(dt__arena *a, reader *r, uint8_t *m, const ProtobufCFieldDescriptor *f,
                       unsigned wire, int depth)
{
    if (wire == 0) {
        uint64_t v = 0;
        if (!read_varint(r, &v) || !put_varint(f, m + f->offset, v)) {
            return false;
        }
    } else if (wire == 2) {
        uint64_t n = 0;
        if (!read_short_varint(r, &n) || n > (uint64_t)(r->end - r->p) ||
            !put_bytes(a, f, m + f->offset, r->p, (size_t)n, depth)) {
            return false;
        }
        r->p += n;
    } else {
        return false;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        *(uint32_t *)(m + f->quantifier_offset) = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0) {
        *(protobuf_c_boolean *)(m + f->quantifier_offset) = 1;
    }
    return true;
}

/* The fast path: the message, or NULL when it must go to protobuf-c (or memory ran out). */
static void *decode(dt__arena *a, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                    int depth)
{
    assert(!has_required(d));
    if (depth > MAX_DEPTH || d->n_fields > 64) {
        return NULL;
    }
    uint8_t *m = dt__arena_alloc(a, d->sizeof_message);
    if (m == NULL) {
        return NULL;
    }
    d->message_init((ProtobufCMessage *)m);
    uint64_t seen = 0; /* bit i: d->fields[i] was read */
    size_t next = 0;
    reader r = {p, len > 0 ? p + len : p};
    while (r.p < r.end) {
        uint64_t key = 0;
        if (!read_short_varint(&r, &key)) {
            return NULL;
        }
        size_t i = find_field(d, key >> 3, next);
        if (i == d->n_fields) {
            return NULL; /* unknown: protobuf-c keeps it */
        }
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        uint64_t bit = (uint64_t)1 << i;
        bool oneof_taken =
            (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(m + f->quantifier_offset) != 0; /* another member came first */
        if (f->label == PROTOBUF_C_LABEL_REPEATED || (seen & bit) || oneof_taken ||
            !read_field(a, &r, m, f, (unsigned)(key & 7), depth)) {
            return NULL;
        }
        seen |= bit;
        next = i + 1;
    }
    return m;
}

ProtobufCMessage *dt__arena_unpack(dt__arena *a, const ProtobufCMessageDescriptor *d, size_t len,
                                   const uint8_t *data)
{
    if (d != NULL && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC &&
        (len == 0 || data != NULL)) {
        ProtobufCMessage *m = decode(a, d, data, len, 0);
        if (m != NULL) {
            return m;
        }
    }
    return dt__pb_unpack(a, d, len, data);
}
