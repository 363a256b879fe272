/*
 * The client handle: connection, errors, the hub's config (read once, on first use), hub
 * management, validation of IDs and names, random IDs, and the one publish path of every
 * OrchestrationMessage the client sends.
 */
#include "client_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define DEFAULT_WAIT_MISSING_MS 10000
#define DEFAULT_TIMEOUT_MS      5000

/* The public limits and enums restate the protocol's; keep them equal. */
_Static_assert(DT_CLIENT_ID_MAX == DT_INSTANCE_ID_MAX, "instance ID limit");
_Static_assert(DT_CLIENT_NAME_MAX == DT_NAME_MAX, "name limit");
_Static_assert((int)DT_CLIENT_SUSPENDED ==
                   (int)DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_SUSPENDED,
               "runtime status values");
_Static_assert((int)DT_CLIENT_PENDING ==
                   (int)DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING,
               "runtime status values");
_Static_assert((int)DT_CLIENT_REUSE_TERMINATE_AND_REPLACE ==
                   (int)DTPB__INSTANCE_ID_REUSE_POLICY__REUSE_POLICY_TERMINATE_AND_REPLACE,
               "reuse policy values");

void dt__client_seterr(dt_client *c, const char *fmt, ...)
{
    char text[sizeof(c->err)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&c->err_mu);
    memcpy(c->err, text, sizeof(text));
    pthread_mutex_unlock(&c->err_mu);
}

const char *dt__client_berr(dt_client *c, char *buf, size_t len)
{
    dt_broker_errmsg_copy(c->b, buf, len);
    return buf;
}

static void on_reconnected(dt_broker *b, void *ctx)
{
    (void)b;
    dt__client_waits_reconnected(ctx);
}

void dt_client_options_init(dt_client_options *o)
{
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
    o->request_timeout_ms = DEFAULT_TIMEOUT_MS;
}

dt_status dt_client_create(const dt_client_options *user, dt_client **out, char *errbuf,
                           size_t errlen)
{
    dt_client_options copy; /* the caller's struct as this release lays it out */
    const dt_client_options *o = NULL;
    if (user != NULL) {
        dt_status rs = dt__options_read(&copy, sizeof(copy), user, sizeof(copy));
        if (rs != DT_OK) {
            dt__errf(errbuf, errlen,
                     "client: options from a newer release set fields this one "
                     "does not know, or struct_size is invalid");
            return rs;
        }
        o = &copy;
    }
    if (o == NULL || out == NULL || o->hub == NULL || !dt_broker_hub_name_valid(o->hub)) {
        dt__errf(errbuf, errlen, "client: a hub name of 1..%d characters [A-Za-z0-9_-] is required",
                 DT_BROKER_HUB_NAME_MAX);
        return DT_EINVAL;
    }
    if (o->request_timeout_ms < 0) {
        dt__errf(errbuf, errlen, "client: request_timeout_ms must be >= 0");
        return DT_EINVAL;
    }
    dt_client *c = dt_calloc(1, sizeof(*c));
    if (c == NULL) {
        dt__errf(errbuf, errlen, "client: out of memory");
        return DT_ENOMEM;
    }
    memcpy(c->hub, o->hub, strlen(o->hub) + 1);
    c->request_timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    c->wait_missing_ms = o->wait_missing_ms != 0 ? o->wait_missing_ms : DEFAULT_WAIT_MISSING_MS;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->pub_mu, NULL);
    pthread_mutex_init(&c->err_mu, NULL);
    dt__client_waits_init(&c->waits);
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = o->nats_url;
    bo.name = o->connection_name != NULL ? o->connection_name : "dt-client";
    bo.request_timeout_ms = c->request_timeout_ms;
    bo.security = o->security;
    /* A client sends few messages, each on someone's critical path: write them at once instead
     * of after nats.c's 1 ms coalescing (a start and its record leave through a publisher,
     * which does not flush). */
    bo.send_asap = true;
    bo.on_reconnected = on_reconnected;
    bo.cb_ctx = c;
    dt_status st = dt_broker_connect(&bo, &c->b, errbuf, errlen);
    if (st != DT_OK) {
        dt__client_waits_destroy(c);
        pthread_mutex_destroy(&c->mu);
        pthread_mutex_destroy(&c->pub_mu);
        pthread_mutex_destroy(&c->err_mu);
        dt_free(c);
        return st;
    }
    (void)dt__tracer_from_env("durabletask-client", &c->tracer); /* failed: tracing off */
    *out = c;
    return DT_OK;
}

void dt_client_destroy(dt_client *c)
{
    if (c == NULL) {
        return;
    }
    dt__client_waits_destroy(c);
    for (size_t i = 0; i < c->npubs; i++) {
        dt_broker_publisher_destroy(c->pubs[i]);
    }
    dt_broker_kv_close(c->status_kv);
    dt_broker_close(c->b);
    dt__tracer_destroy(c->tracer); /* posts what is queued */
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->pub_mu);
    pthread_mutex_destroy(&c->err_mu);
    dt_free(c);
}

const char *dt_client_errmsg(const dt_client *c)
{
    return c == NULL ? "no client" : c->err;
}

void dt_client_errmsg_copy(const dt_client *c, char *buf, size_t len)
{
    if (buf == NULL || len == 0) {
        return;
    }
    if (c == NULL) {
        snprintf(buf, len, "no client");
        return;
    }
    pthread_mutex_lock((pthread_mutex_t *)&c->err_mu);
    snprintf(buf, len, "%s", c->err);
    pthread_mutex_unlock((pthread_mutex_t *)&c->err_mu);
}

dt_status dt__client_pub_take(dt_client *c, dt_broker_publisher **out)
{
    pthread_mutex_lock(&c->pub_mu);
    dt_broker_publisher *p = c->npubs > 0 ? c->pubs[--c->npubs] : NULL;
    pthread_mutex_unlock(&c->pub_mu);
    if (p != NULL) {
        *out = p;
        return DT_OK;
    }
    dt_broker_publisher_options po;
    dt_broker_publisher_options_init(&po);
    po.window = 2; /* one start and its record */
    po.max_batch = 2;
    po.ack_timeout_ms = c->request_timeout_ms;
    dt_status st = dt_broker_publisher_create(c->b, &po, out);
    return st == DT_OK ? DT_OK : dt__client_fail(c, st, "start: publisher: %s", DT__CLIENT_BERR(c));
}

void dt__client_pub_put(dt_client *c, dt_broker_publisher *p)
{
    pthread_mutex_lock(&c->pub_mu);
    bool kept = c->npubs < DT__CLIENT_PUB_POOL;
    if (kept) {
        c->pubs[c->npubs++] = p;
    }
    pthread_mutex_unlock(&c->pub_mu);
    if (!kept) {
        dt_broker_publisher_destroy(p);
    }
}

const char *dt_client_hub(const dt_client *c)
{
    return c->hub;
}

static void forget_hub(dt_client *c)
{
    pthread_mutex_lock(&c->mu);
    dt_broker_kv_close(c->status_kv);
    c->status_kv = NULL;
    __atomic_store_n(&c->have_cfg, false, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&c->mu);
}

static dt_status read_hub(dt_client *c);

dt_status dt__client_ensure_hub(dt_client *c)
{
    if (__atomic_load_n(&c->have_cfg, __ATOMIC_ACQUIRE)) {
        return DT_OK;
    }
    pthread_mutex_lock(&c->mu);
    dt_status st = c->have_cfg ? DT_OK : read_hub(c);
    pthread_mutex_unlock(&c->mu);
    return st;
}

/* Reads the config and opens the status bucket (under c->mu). */
static dt_status read_hub(dt_client *c)
{
    dt_status st = dt_broker_hub_get(c->b, c->hub, &c->cfg);
    if (st == DT_ENOTFOUND) {
        return dt__client_fail(c, st, "no task hub '%s' (create it with `dtctl hub create`)",
                               c->hub);
    }
    if (st != DT_OK) {
        return dt__client_fail(c, st, "%s", DT__CLIENT_BERR(c)); /* "hub <hub>: ..." */
    }
    char bucket[DT_BROKER_NAME_BUF];
    st = dt_broker_bucket_name(c->hub, DT_BROKER_BUCKET_STATUS, bucket, sizeof(bucket));
    if (st == DT_OK) {
        st = dt_broker_kv_open(c->b, bucket, &c->status_kv);
    }
    if (st == DT_OK) {
        memcpy(c->status_bucket, bucket, sizeof(bucket));
        snprintf(c->status_prefix, sizeof(c->status_prefix), "$KV.%s.", bucket);
    }
    if (st != DT_OK) {
        return dt__client_fail(c, st, "hub %s: status bucket: %s", c->hub, DT__CLIENT_BERR(c));
    }
    __atomic_store_n(&c->have_cfg, true, __ATOMIC_RELEASE);
    return DT_OK;
}

/* ---- hubs ---- */

static void info_from_cfg(const dt_broker_hub_config *h, dt_client_hub_info *out)
{
    out->partitions = h->partitions;
    out->replicas = h->replicas;
    out->max_msg_size = h->max_msg_size;
    out->duplicate_window_ms = h->duplicate_window_ms;
    out->lease_ttl_ms = h->lease_ttl_ms;
    out->memory_storage = h->storage == DT_BROKER_STORAGE_MEMORY;
    out->created_at_ms = h->created_at_ms;
    out->format_version = h->format_version;
}

void dt_client_hub_info_init(dt_client_hub_info *h)
{
    dt_broker_hub_config d;
    dt_broker_hub_config_init(&d);
    memset(h, 0, sizeof(*h));
    h->struct_size = sizeof(*h);
    info_from_cfg(&d, h);
}

/* The hub's settings into the caller's struct, no more of it than its struct_size says. */
static void info_out(const dt_broker_hub_config *cfg, dt_client_hub_info *out)
{
    dt_client_hub_info full;
    dt_client_hub_info_init(&full);
    info_from_cfg(cfg, &full);
    dt__options_write(out, &full, sizeof(full), sizeof(full));
}

dt_status dt_client_hub_create(dt_client *c, const dt_client_hub_info *settings,
                               dt_client_hub_info *out)
{
    dt_broker_hub_config in, got;
    dt_broker_hub_config_init(&in);
    dt_client_hub_info copy;
    if (settings != NULL) {
        dt_status rs = dt__options_read(&copy, sizeof(copy), settings, sizeof(copy));
        if (rs != DT_OK) {
            return dt__client_fail(c, rs, "hub settings: struct_size %s",
                                   rs == DT_EVERSION ? "of a newer release with fields set"
                                                     : "invalid");
        }
        settings = &copy;
        in.partitions = settings->partitions;
        in.replicas = settings->replicas;
        in.max_msg_size = settings->max_msg_size;
        in.duplicate_window_ms = settings->duplicate_window_ms;
        in.lease_ttl_ms = settings->lease_ttl_ms;
        in.storage = settings->memory_storage ? DT_BROKER_STORAGE_MEMORY : DT_BROKER_STORAGE_FILE;
    }
    dt_status st = dt_broker_hub_create(c->b, c->hub, &in, &got);
    if (st != DT_OK) {
        return dt__client_fail(c, st, "%s", DT__CLIENT_BERR(c)); /* "create hub <hub>: ..." */
    }
    forget_hub(c);
    if (out != NULL) {
        info_out(&got, out);
    }
    return DT_OK;
}

dt_status dt_client_hub_get(dt_client *c, dt_client_hub_info *out)
{
    dt_broker_hub_config got;
    dt_status st = dt_broker_hub_get(c->b, c->hub, &got);
    if (st == DT_ENOTFOUND) {
        return dt__client_fail(c, st, "no task hub '%s'", c->hub);
    }
    if (st != DT_OK) {
        return dt__client_fail(c, st, "%s", DT__CLIENT_BERR(c)); /* "hub <hub>: ..." */
    }
    info_out(&got, out);
    return DT_OK;
}

dt_status dt_client_hub_stats_get(dt_client *c, dt_client_hub_stats *out)
{
    static const dt_broker_stream streams[] = {DT_BROKER_STREAM_ORCH, DT_BROKER_STREAM_ACT,
                                               DT_BROKER_STREAM_IN, DT_BROKER_STREAM_DEAD};
    uint64_t counts[DT__ARRAY_LEN(streams)];
    for (size_t i = 0; i < DT__ARRAY_LEN(streams); i++) {
        char name[DT_BROKER_NAME_BUF];
        dt_broker_stream_info si;
        dt_status st = dt_broker_stream_name(c->hub, streams[i], name, sizeof(name));
        if (st == DT_OK) {
            st = dt_broker_stream_info_get(c->b, name, &si);
        }
        if (st != DT_OK) {
            return dt__client_fail(c, st, "hub %s: %s", c->hub, DT__CLIENT_BERR(c));
        }
        counts[i] = si.msgs;
    }
    out->orchestration_msgs = counts[0];
    out->activity_msgs = counts[1];
    out->ingress_msgs = counts[2];
    out->dead_msgs = counts[3];
    return DT_OK;
}

dt_status dt_client_hub_delete(dt_client *c)
{
    forget_hub(c);
    dt_status st = dt_broker_hub_delete(c->b, c->hub);
    if (st == DT_ENOTFOUND) {
        return dt__client_fail(c, st, "no task hub '%s'", c->hub);
    }
    if (st != DT_OK) {
        return dt__client_fail(c, st, "%s", DT__CLIENT_BERR(c)); /* "delete hub <hub>: ..." */
    }
    return DT_OK;
}

/* ---- validation and IDs ---- */

dt_status dt__client_check_id(dt_client *c, const char *what, const char *id)
{
    if (!dt__instance_id_valid(id)) {
        return dt__client_fail(c, DT_EINVAL,
                               "invalid %s '%.64s%s': use 1..%d printable ASCII characters "
                               "without spaces",
                               what, id != NULL ? id : "(null)",
                               id != NULL && strlen(id) > 64 ? "..." : "", DT_INSTANCE_ID_MAX);
    }
    return DT_OK;
}

dt_status dt__client_check_name(dt_client *c, const char *what, const char *name)
{
    if (name == NULL || !dt_broker_token_valid(name) || strlen(name) > DT_NAME_MAX) {
        return dt__client_fail(c, DT_EINVAL,
                               "invalid %s '%.64s': use 1..%d printable ASCII characters without "
                               "spaces, '.', '*' or '>'",
                               what, name != NULL ? name : "(null)", DT_NAME_MAX);
    }
    return DT_OK;
}

static dt_status random_bytes(dt_client *c, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return dt__client_fail(c, DT_EIO, "getrandom: %s", strerror(errno));
        }
        got += (size_t)r;
    }
    return DT_OK;
}

dt_status dt__client_rand63(dt_client *c, int64_t *out)
{
    uint64_t v = 0;
    dt_status st = random_bytes(c, (uint8_t *)&v, sizeof(v));
    if (st == DT_OK) {
        *out = (int64_t)(v >> 1);
    }
    return st;
}

/* ---- publishing ---- */

dt_status dt__client_partition_subject(dt_client *c, dt_broker_family f, uint32_t p, char *buf,
                                       size_t len)
{
    char tail[16];
    snprintf(tail, sizeof(tail), "%u", p);
    dt_status st = dt_broker_subject(c->hub, f, tail, buf, len);
    return st == DT_OK ? DT_OK : dt__client_fail(c, st, "subject of partition %u", p);
}

dt_status dt__client_pack_checked(dt_client *c, dt__arena *a, const ProtobufCMessage *m,
                                  const char *what, uint8_t **out, size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    size_t limit =
        c->cfg.max_msg_size > DT__CLIENT_HEADROOM ? c->cfg.max_msg_size - DT__CLIENT_HEADROOM : 0;
    if (n > limit) {
        return dt__client_fail(c, DT_ETOOLARGE,
                               "%s message of %zu bytes exceeds the hub's limit of %zu bytes "
                               "(max_msg_size %u less %d bytes for headers)",
                               what, n, limit, c->cfg.max_msg_size, DT__CLIENT_HEADROOM);
    }
    uint8_t *buf = dt__pack(a, m, out_len);
    if (buf == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "%s: out of memory", what);
    }
    *out = buf;
    return DT_OK;
}

dt_status dt__client_orch_outmsg(dt_client *c, dt__arena *a, const Dtpb__OrchestrationMessage *m,
                                 char *subject, dt_broker_outmsg *out)
{
    uint32_t p = dt__partition_of(m->instance_id, c->cfg.partitions);
    dt_status st =
        dt__client_partition_subject(c, DT_BROKER_SUBJ_ORCH, p, subject, DT_BROKER_NAME_BUF);
    uint8_t *data = NULL;
    size_t len = 0;
    if (st == DT_OK) {
        st = dt__client_pack_checked(c, a, &m->base, "orchestration", &data, &len);
    }
    if (st == DT_OK) {
        *out = (dt_broker_outmsg){
            .subject = subject, .msg_id = m->dedupe_id, .data = data, .len = len};
        out->nheaders = dt__client_trace_headers(a, m, &out->headers);
    }
    return st;
}

dt_status dt__client_publish_orch(dt_client *c, dt__arena *a, const Dtpb__OrchestrationMessage *m,
                                  dt_broker_puback *out_ack)
{
    char subject[DT_BROKER_NAME_BUF];
    dt_broker_outmsg om;
    dt_status st = dt__client_orch_outmsg(c, a, m, subject, &om);
    if (st != DT_OK) {
        return st;
    }
    st = dt_broker_publish(c->b, &om, out_ack);
    if (st != DT_OK) {
        return dt__client_fail(c, st, "%s", DT__CLIENT_BERR(c)); /* "publish to <subject>: ..." */
    }
    return DT_OK;
}

void dt__client_ts_set(Dtpb__Timestamp *ts, int64_t ms)
{
    dtpb__timestamp__init(ts);
    int64_t s = ms / 1000, r = ms % 1000;
    if (r < 0) {
        s -= 1;
        r += 1000;
    }
    ts->seconds = s;
    ts->nanos = (int32_t)(r * 1000000);
}
