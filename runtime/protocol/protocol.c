/* The wire protocol helpers (see protocol_int.h). */
#include "protocol_int.h"

#include "common_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

bool dt__instance_id_valid(const char *id)
{
    if (id == NULL || id[0] == '\0') {
        return false;
    }
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++, n++) {
        if (*p <= ' ' || *p > '~' || n >= DT_INSTANCE_ID_MAX) {
            return false;
        }
    }
    return true;
}

bool dt__status_finished(int32_t s)
{
    return s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED ||
           s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED ||
           s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED ||
           s == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CANCELED;
}

uint32_t dt__partition_of(const char *id, uint32_t partitions)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return partitions == 0 ? 0 : h % partitions;
}

static bool key_char_plain(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '/';
}

dt_status dt__status_key(const char *id, char *buf, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++) {
        size_t need = key_char_plain(*p) ? 1 : 3;
        if (o + need >= len) {
            return DT_ETOOLARGE;
        }
        if (need == 1) {
            buf[o++] = (char)*p;
        } else {
            buf[o++] = '=';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        }
    }
    if (o >= len) {
        return DT_ETOOLARGE;
    }
    buf[o] = '\0';
    return o > 0 ? DT_OK : DT_EINVAL;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

dt_status dt__status_key_decode(const char *key, char *buf, size_t len)
{
    size_t o = 0;
    for (const char *p = key; *p != '\0'; p++) {
        if (o + 1 >= len) {
            return DT_ETOOLARGE;
        }
        if (*p != '=') {
            buf[o++] = *p;
            continue;
        }
        int hi = hex_val(p[1]), lo = hi >= 0 ? hex_val(p[2]) : -1;
        if (lo < 0) {
            return DT_EINVAL;
        }
        buf[o++] = (char)(hi * 16 + lo);
        p += 2;
    }
    buf[o] = '\0';
    return DT_OK;
}

dt_status dt__msg_id(char *buf, size_t len, const char *instance_id, const char *execution_id,
                     const char *kind, int64_t n)
{
    int w = snprintf(buf, len, "%s/%s/%s/%lld", instance_id, execution_id, kind, (long long)n);
    return (w < 0 || (size_t)w >= len) ? DT_ETOOLARGE : DT_OK;
}

uint8_t *dt__pack(dt__arena *a, const ProtobufCMessage *m, size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = dt__arena_alloc(a, n > 0 ? n : 1);
    if (buf == NULL) {
        return NULL;
    }
    protobuf_c_message_pack(m, buf);
    *out_len = n;
    return buf;
}

void dt__orch_msg_init(Dtpb__OrchestrationMessage *m, const char *instance_id,
                       const char *execution_id, Dtpb__HistoryEvent *ev, const char *dedupe_id)
{
    dtpb__orchestration_message__init(m);
    m->instance_id = (char *)instance_id;
    m->execution_id = (char *)(execution_id != NULL ? execution_id : "");
    m->event = ev;
    m->dedupe_id = (char *)dedupe_id;
}

dt_status dt__orch_msg_decode(dt__arena *a, const void *data, size_t len,
                              Dtpb__OrchestrationMessage **out)
{
    Dtpb__OrchestrationMessage *m = (Dtpb__OrchestrationMessage *)dt__pb_unpack(
        a, &dtpb__orchestration_message__descriptor, len, data);
    if (m == NULL || !dt__instance_id_valid(m->instance_id) || m->event == NULL ||
        m->event->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE__NOT_SET ||
        m->dedupe_id == NULL || m->dedupe_id[0] == '\0') {
        return DT_EDECODE;
    }
    *out = m;
    return DT_OK;
}

dt_status dt__orch_batch_decode(dt__arena *a, const void *data, size_t len,
                                Dtpb__OrchestrationBatch **out)
{
    Dtpb__OrchestrationBatch *m = (Dtpb__OrchestrationBatch *)dt__pb_unpack(
        a, &dtpb__orchestration_batch__descriptor, len, data);
    if (m == NULL || m->n_messages == 0) {
        return DT_EDECODE;
    }
    *out = m;
    return DT_OK;
}

void dt__derived_uuid(const char *a, const char *b, char out[37])
{
    uint64_t h1 = dt__fnv1a64(dt__fnv1a64(DT__FNV64_OFFSET, a), "\x1f");
    h1 = dt__fnv1a64(h1, b);
    uint64_t h2 = dt__fnv1a64(dt__fnv1a64(0x84222325cbf29ce4ULL, b), a);
    dt__format_uuid(dt__mix64(h1), dt__mix64(h2 ^ h1), 5, out);
}

void dt__random_uuid(char out[37])
{
    uint64_t r[2] = {0, 0};
    /* One system call (getrandom, Linux 3.17) where an open/read/close of /dev/urandom took three:
     * every start draws one or two of these. */
    bool ok = getrandom(r, sizeof(r), 0) == (ssize_t)sizeof(r);
    if (!ok) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        ok = fd >= 0 && read(fd, r, sizeof(r)) == (ssize_t)sizeof(r);
        if (fd >= 0) {
            close(fd);
        }
    }
    if (!ok) { /* no urandom: time and address entropy, still unique enough per process */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r[0] = dt__mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid());
        r[1] = dt__mix64(r[0] ^ (uint64_t)(uintptr_t)out);
    }
    dt__format_uuid(r[0], r[1], 4, out);
}
