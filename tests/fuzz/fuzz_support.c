/*
 * Helpers of the fuzz targets (fuzz.h): failing with a message, and a field-by-field comparison
 * of unpacked protobuf-c messages. Packing both and comparing bytes would miss differences the
 * packer hides: a oneof member set under the wrong case, a string that is NULL on one side and ""
 * on the other, a presence flag.
 */
#include <stdarg.h>
#include <string.h>

#include "fuzz.h"

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz property failed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static bool differ(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool differ(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return false;
}

/* Bytes one element of a field of type t takes in a repeated array or a struct. */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4; /* int32, sint32, sfixed32, uint32, fixed32, float, enum */
    }
}

static bool msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why, size_t len,
                      const char *path);

/* Compares one value of field f at pa and pb. */
static bool value_equal(const ProtobufCFieldDescriptor *f, const void *pa, const void *pb,
                        char *why, size_t len, const char *path)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
        if ((sa == NULL) != (sb == NULL) || (sa != NULL && strcmp(sa, sb) != 0)) {
            return differ(why, len, "%s: string \"%s\" vs \"%s\"", path, sa ? sa : "(null)",
                          sb ? sb : "(null)");
        }
        return true;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *ba = pa, *bb = pb;
        if (ba->len != bb->len || (ba->data == NULL) != (bb->data == NULL) ||
            (ba->len > 0 && memcmp(ba->data, bb->data, ba->len) != 0)) {
            return differ(why, len, "%s: bytes of %zu vs %zu (data %s vs %s)", path, ba->len,
                          bb->len, ba->data ? "set" : "NULL", bb->data ? "set" : "NULL");
        }
        return true;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return msg_equal(*(const ProtobufCMessage *const *)pa, *(const ProtobufCMessage *const *)pb,
                         why, len, path);
    default:
        if (memcmp(pa, pb, elem_size(f->type)) != 0) {
            return differ(why, len, "%s: scalar differs", path);
        }
        return true;
    }
}

static bool field_equal(const ProtobufCFieldDescriptor *f, const uint8_t *ma, const uint8_t *mb,
                        char *why, size_t len, const char *path)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t na = *(const size_t *)(ma + f->quantifier_offset);
        size_t nb = *(const size_t *)(mb + f->quantifier_offset);
        if (na != nb) {
            return differ(why, len, "%s: %zu vs %zu elements", path, na, nb);
        }
        const uint8_t *aa = *(uint8_t *const *)(ma + f->offset);
        const uint8_t *ab = *(uint8_t *const *)(mb + f->offset);
        for (size_t i = 0; i < na; i++) {
            size_t off = i * elem_size(f->type);
            if (!value_equal(f, aa + off, ab + off, why, len, path)) {
                return false;
            }
        }
        return true;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t ca = *(const uint32_t *)(ma + f->quantifier_offset);
        uint32_t cb = *(const uint32_t *)(mb + f->quantifier_offset);
        if (ca != cb) {
            return differ(why, len, "%s: oneof case %u vs %u", path, ca, cb);
        }
        if (ca != f->id) {
            return true; /* another member of the oneof is set: this one is not to be read */
        }
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0) {
        protobuf_c_boolean ha = *(const protobuf_c_boolean *)(ma + f->quantifier_offset);
        protobuf_c_boolean hb = *(const protobuf_c_boolean *)(mb + f->quantifier_offset);
        if (ha != hb) {
            return differ(why, len, "%s: presence %d vs %d", path, ha, hb);
        }
    }
    return value_equal(f, ma + f->offset, mb + f->offset, why, len, path);
}

static bool unknown_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why,
                          size_t len, const char *path)
{
    if (a->n_unknown_fields != b->n_unknown_fields) {
        return differ(why, len, "%s: %u vs %u unknown fields", path, a->n_unknown_fields,
                      b->n_unknown_fields);
    }
    for (unsigned i = 0; i < a->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *ua = &a->unknown_fields[i], *ub = &b->unknown_fields[i];
        if (ua->tag != ub->tag || ua->wire_type != ub->wire_type || ua->len != ub->len ||
            (ua->len > 0 && memcmp(ua->data, ub->data, ua->len) != 0)) {
            return differ(why, len, "%s: unknown field %u differs", path, i);
        }
    }
    return true;
}

static bool msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why, size_t len,
                      const char *path)
{
    if (a == NULL || b == NULL) {
        return a == b
                   ? true
                   : differ(why, len, "%s: %s vs %s", path, a ? "set" : "NULL", b ? "set" : "NULL");
    }
    const ProtobufCMessageDescriptor *d = a->descriptor;
    if (d != b->descriptor) {
        return differ(why, len, "%s: descriptors differ", path);
    }
    if (!unknown_equal(a, b, why, len, path)) {
        return false;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char sub[512];
        snprintf(sub, sizeof(sub), "%s.%s", path, f->name);
        if (!field_equal(f, (const uint8_t *)a, (const uint8_t *)b, why, len, sub)) {
            return false;
        }
    }
    return true;
}

bool fuzz_pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why, size_t len)
{
    const char *name = a != NULL ? a->descriptor->short_name : "message";
    return msg_equal(a, b, why, len, name);
}

uint8_t *fuzz_pb_pack(const ProtobufCMessage *m, size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(protobuf_c_message_pack(m, buf) == n);
    *out_len = n;
    return buf;
}
