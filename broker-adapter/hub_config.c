/*
 * The hub config record stored under key "config" in DT_<hub>_META, its defaults, validation and
 * comparison.
 *
 * PERSISTED: the record is JSON so that any NATS tool can read it (`nats kv get DT_H_META
 * config`). Format 1 is one flat object with exactly these keys:
 *   format_version, partitions, replicas, max_msg_size, duplicate_window_ms, lease_ttl_ms
 *   (integers), storage ("file" | "memory"), created_at_ms (integer, Unix ms).
 * Readers ignore unknown keys (a later format may add some without bumping the version) and
 * refuse a newer format_version with DT_EVERSION. Never rename or re-type a key.
 */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

void dt_broker_hub_config_init(dt_broker_hub_config *c)
{
    memset(c, 0, sizeof(*c));
    c->partitions = 4;
    c->replicas = 1;
    c->max_msg_size = 1024 * 1024;
    c->duplicate_window_ms = 120000;
    c->lease_ttl_ms = 10000;
    c->storage = DT_BROKER_STORAGE_FILE;
}

static const char *storage_str(dt_broker_storage s)
{
    return s == DT_BROKER_STORAGE_MEMORY ? "memory" : "file";
}

dt_status dt__broker_hub_config_check(const dt_broker_hub_config *c, char *err, size_t len)
{
    if (c->partitions < 1 || c->partitions > DT_BROKER_MAX_PARTITIONS) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "partitions must be 1..%u, not %u",
                                 DT_BROKER_MAX_PARTITIONS, c->partitions);
    }
    if (c->replicas < 1 || c->replicas > 5) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "replicas must be 1..5, not %u", c->replicas);
    }
    if (c->max_msg_size < 1024 || c->max_msg_size > (uint32_t)INT32_MAX) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "max_msg_size must be >= 1024, not %u",
                                 c->max_msg_size);
    }
    if (c->duplicate_window_ms < 1000 || c->lease_ttl_ms < 1000) {
        return dt__broker_errbuf(err, len, DT_EINVAL,
                                 "duplicate_window_ms and lease_ttl_ms must be >= 1000");
    }
    if (c->storage != DT_BROKER_STORAGE_FILE && c->storage != DT_BROKER_STORAGE_MEMORY) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "storage must be file or memory");
    }
    return DT_OK;
}

bool dt__broker_hub_config_diff(const dt_broker_hub_config *have, const dt_broker_hub_config *want,
                                char *buf, size_t len)
{
    if (have->partitions != want->partitions) {
        dt__errf(buf, len, "partitions is %u, requested %u", have->partitions, want->partitions);
    } else if (have->replicas != want->replicas) {
        dt__errf(buf, len, "replicas is %u, requested %u", have->replicas, want->replicas);
    } else if (have->max_msg_size != want->max_msg_size) {
        dt__errf(buf, len, "max_msg_size is %u, requested %u", have->max_msg_size,
                 want->max_msg_size);
    } else if (have->duplicate_window_ms != want->duplicate_window_ms) {
        dt__errf(buf, len, "duplicate_window_ms is %lld, requested %lld",
                 (long long)have->duplicate_window_ms, (long long)want->duplicate_window_ms);
    } else if (have->lease_ttl_ms != want->lease_ttl_ms) {
        dt__errf(buf, len, "lease_ttl_ms is %lld, requested %lld", (long long)have->lease_ttl_ms,
                 (long long)want->lease_ttl_ms);
    } else if (have->storage != want->storage) {
        dt__errf(buf, len, "storage is %s, requested %s", storage_str(have->storage),
                 storage_str(want->storage));
    } else {
        return false;
    }
    return true;
}

dt_status dt__broker_hub_config_encode(const dt_broker_hub_config *c, char *buf, size_t len,
                                       size_t *out_len)
{
    int n = snprintf(buf, len,
                     "{\"format_version\":%u,\"partitions\":%u,\"replicas\":%u,"
                     "\"max_msg_size\":%u,\"duplicate_window_ms\":%lld,\"lease_ttl_ms\":%lld,"
                     "\"storage\":\"%s\",\"created_at_ms\":%lld}",
                     c->format_version, c->partitions, c->replicas, c->max_msg_size,
                     (long long)c->duplicate_window_ms, (long long)c->lease_ttl_ms,
                     storage_str(c->storage), (long long)c->created_at_ms);
    if (n < 0 || (size_t)n >= len) {
        return DT_ETOOLARGE;
    }
    *out_len = (size_t)n;
    return DT_OK;
}

/* ------------------------------------------------------------------------------------------- */
/* Decoding: one flat object (json.c); nested values of unknown keys are skipped.              */

enum { F_VERSION, F_PARTS, F_REPL, F_MAXMSG, F_DUP, F_TTL, F_STORAGE, F_CREATED, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "format_version",      "partitions",   "replicas", "max_msg_size",
    "duplicate_window_ms", "lease_ttl_ms", "storage",  "created_at_ms"};

static int field_of(const char *k, size_t n)
{
    for (int i = 0; i < F_COUNT; i++) {
        if (strlen(field_names[i]) == n && memcmp(field_names[i], k, n) == 0) {
            return i;
        }
    }
    return -1;
}

/* Reads the value of known field f into vals[f] (storage as 0/1). */
static bool read_field(dt__json *c, int f, int64_t *vals)
{
    if (f != F_STORAGE) {
        return dt__json_int(c, &vals[f]);
    }
    const char *s;
    size_t n;
    if (!dt__json_string(c, &s, &n)) {
        return false;
    }
    if (n == 4 && memcmp(s, "file", 4) == 0) {
        vals[f] = DT_BROKER_STORAGE_FILE;
    } else if (n == 6 && memcmp(s, "memory", 6) == 0) {
        vals[f] = DT_BROKER_STORAGE_MEMORY;
    } else {
        return false;
    }
    return true;
}

typedef struct parsed {
    int64_t *vals;
    unsigned seen; /* bit set of the known fields found */
} parsed;

static bool on_field(dt__json *c, const char *k, size_t n, void *ctx)
{
    parsed *pr = ctx;
    int f = field_of(k, n);
    if (f < 0) {
        return dt__json_skip(c);
    }
    pr->seen |= 1u << f;
    return read_field(c, f, pr->vals);
}

/* Parses the object into vals[]; seen is a bit set of the known fields found. */
static bool parse_object(const char *data, size_t len, int64_t *vals, unsigned *seen)
{
    dt__json c;
    dt__json_init(&c, data, len);
    parsed pr = {vals, 0};
    bool ok = dt__json_object(&c, on_field, &pr) && dt__json_end(&c);
    *seen = pr.seen;
    return ok;
}

static bool in_u32(int64_t v)
{
    return v >= 0 && v <= (int64_t)UINT32_MAX;
}

dt_status dt__broker_hub_config_decode(const char *data, size_t len, dt_broker_hub_config *out,
                                       char *err, size_t err_len)
{
    int64_t v[F_COUNT] = {0};
    unsigned seen = 0;
    if (!parse_object(data, len, v, &seen) || !(seen & (1u << F_VERSION))) {
        return dt__broker_errbuf(err, err_len, DT_ECORRUPT, "hub config record is not valid");
    }
    if (v[F_VERSION] > (int64_t)DT_BROKER_HUB_FORMAT_VERSION) {
        return dt__broker_errbuf(err, err_len, DT_EVERSION,
                                 "hub config format %lld is newer than this build's %u",
                                 (long long)v[F_VERSION], DT_BROKER_HUB_FORMAT_VERSION);
    }
    if (v[F_VERSION] < 1 || seen != (1u << F_COUNT) - 1 || !in_u32(v[F_PARTS]) ||
        !in_u32(v[F_REPL]) || !in_u32(v[F_MAXMSG])) {
        return dt__broker_errbuf(err, err_len, DT_ECORRUPT, "hub config record lacks fields");
    }
    dt_broker_hub_config c = {
        .partitions = (uint32_t)v[F_PARTS],
        .replicas = (uint32_t)v[F_REPL],
        .max_msg_size = (uint32_t)v[F_MAXMSG],
        .duplicate_window_ms = v[F_DUP],
        .lease_ttl_ms = v[F_TTL],
        .storage = (dt_broker_storage)v[F_STORAGE],
        .created_at_ms = v[F_CREATED],
        .format_version = (uint32_t)v[F_VERSION],
    };
    if (dt__broker_hub_config_check(&c, err, err_len) != DT_OK) {
        return DT_ECORRUPT;
    }
    *out = c;
    return DT_OK;
}
