/*
 * /api/hub and /api/overview: the hub's settings; instances by status and by name, throughput
 * now (from the live feed), the backlog of every queue (consumer info of the hub's ORCH, ACT and
 * IN streams) and the workers with the partitions they hold (the leases bucket, docs/leases.md).
 *
 * Each part is read independently: a part that fails (say, a partition without a worker makes
 * the counts impossible) carries an "error" text and the others are still shown.
 */
#include <stdlib.h>
#include <string.h>

#include "common_int.h"
#include "dash_int.h"
#include "durabletask/alloc.h"
#include "jconv.h"

#define OVERVIEW_READ_PAGE 1000
#define LEASE_KEYS_MAX     4096
#define LEASE_WAIT_MS      300

enum MHD_Result dt__dash_api_hub(dt_dashboard *d, dt__dash_req *r)
{
    dt_client_hub_info h;
    dt_status st = dt_client_hub_get(d->c, &h);
    if (st != DT_OK) {
        return dt__dash_reply_client(d, r->conn, st);
    }
    json_t *o = json_pack(
        "{s:s,s:i,s:i,s:i,s:I,s:I,s:s,s:I}", "hub", d->hub, "partitions", (int)h.partitions,
        "replicas", (int)h.replicas, "max_msg_size", (int)h.max_msg_size, "duplicate_window_ms",
        (json_int_t)h.duplicate_window_ms, "lease_ttl_ms", (json_int_t)h.lease_ttl_ms, "storage",
        h.memory_storage ? "memory" : "file", "created_at_ms", (json_int_t)h.created_at_ms);
    return dt__dash_reply_json(r->conn, MHD_HTTP_OK, o);
}

static void bump(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    json_object_set_new(obj, key, json_integer(v != NULL ? json_integer_value(v) + 1 : 1));
}

/* {"by_status":{...},"by_name":{"<name>":{"total":n,"<STATUS>":n}},"scanned":n,"truncated":b} */
static json_t *counts(dt_dashboard *d)
{
    json_t *by_status = json_object(), *by_name = json_object();
    size_t scanned = 0;
    char *token = NULL;
    dt_status st = DT_OK;
    do {
        dt_client_page *pg = NULL;
        st = dt_client_list(d->c, NULL, token, OVERVIEW_READ_PAGE, false, &pg);
        dt_free(token);
        token = NULL;
        if (st != DT_OK) {
            break;
        }
        for (size_t i = 0; i < pg->n; i++) {
            const dt_client_instance *in = &pg->instances[i];
            const char *s = dt_client_runtime_status_name(in->runtime_status);
            bump(by_status, s);
            json_t *n = json_object_get(by_name, in->name);
            if (n == NULL) {
                json_object_set_new(by_name, in->name, n = json_object());
            }
            bump(n, "total");
            bump(n, s);
        }
        scanned += pg->n;
        token = pg->next_page_token != NULL ? dt_strdup(pg->next_page_token) : NULL;
        dt_client_page_free(pg);
    } while (token != NULL && scanned < DT__DASH_SCAN_MAX);
    bool truncated = token != NULL;
    dt_free(token);
    json_t *o = json_pack("{s:o,s:o,s:I,s:b}", "by_status", by_status, "by_name", by_name,
                          "scanned", (json_int_t)scanned, "truncated", truncated);
    if (o != NULL && st != DT_OK) {
        char msg[512];
        dt_client_errmsg_copy(d->c, msg, sizeof(msg));
        json_object_set_new(o, "error", dt__jconv_str(msg));
    }
    return o;
}

void dt__dash_each_consumer(dt_dashboard *d,
                            void (*fn)(const char *kind, const char *stream,
                                       const dt_broker_consumer_stat *c, void *ctx),
                            void *ctx)
{
    static const struct {
        dt_broker_stream s;
        const char *kind;
    } streams[] = {{DT_BROKER_STREAM_ORCH, "orchestration"},
                   {DT_BROKER_STREAM_ACT, "activity"},
                   {DT_BROKER_STREAM_IN, "ingress"}};
    /* 68 KiB: not on the stack (a request thread of libmicrohttpd's pool). */
    static _Thread_local dt_broker_consumer_stat stats[DT__DASH_CONSUMERS_MAX];
    for (size_t k = 0; k < sizeof(streams) / sizeof(streams[0]); k++) {
        char name[DT_BROKER_NAME_BUF];
        size_t n = 0;
        if (dt_broker_stream_name(d->hub, streams[k].s, name, sizeof(name)) != DT_OK ||
            dt_broker_consumer_stats(d->b, name, stats, DT__DASH_CONSUMERS_MAX, &n) != DT_OK) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            fn(streams[k].kind, name, &stats[i], ctx);
        }
    }
}

static void add_backlog(const char *kind, const char *stream, const dt_broker_consumer_stat *c,
                        void *ctx)
{
    json_t *arr = ctx;
    int64_t now = dt__now_ms();
    json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "kind", kind,
                                         "stream", stream, "consumer", c->name, "filter", c->filter,
                                         "num_pending", (json_int_t)c->num_pending,
                                         "num_ack_pending", (json_int_t)c->num_ack_pending,
                                         "num_redelivered", (json_int_t)c->num_redelivered,
                                         "num_waiting", (json_int_t)c->num_waiting, "oldest_ms",
                                         (json_int_t)c->oldest_ms, "oldest_age_ms",
                                         (json_int_t)(c->oldest_ms > 0 ? now - c->oldest_ms : 0)));
}

static json_t *backlog(dt_dashboard *d)
{
    json_t *arr = json_array();
    if (arr != NULL) {
        dt__dash_each_consumer(d, add_backlog, arr);
    }
    return arr;
}

/* Adds one lease record (w.<id> or p.<p>, JSON) to workers{id: {...}}. */
static void add_lease(json_t *workers, const char *key, const void *value, size_t len)
{
    json_t *v = json_loadb(value, len, 0, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return;
    }
    const char *id = NULL;
    if (strncmp(key, "w.", 2) == 0) {
        id = json_string_value(json_object_get(v, "worker_id"));
    } else if (strncmp(key, "p.", 2) == 0) {
        id = json_string_value(json_object_get(v, "owner"));
    }
    if (id == NULL) {
        json_decref(v);
        return;
    }
    json_t *w = json_object_get(workers, id);
    if (w == NULL) {
        w = json_pack("{s:s,s:[]}", "worker_id", id, "partitions");
        json_object_set_new(workers, id, w);
    }
    if (w != NULL && key[0] == 'w') {
        json_object_set(w, "started_at_ms", json_object_get(v, "started_at_ms"));
        json_object_set(w, "at_ms", json_object_get(v, "at_ms"));
        json_t *ex = json_object_get(v, "excluded");
        if (ex != NULL) {
            json_object_set(w, "excluded", ex);
        }
    } else if (w != NULL) {
        json_t *p = json_object_get(v, "partition");
        if (json_is_integer(p)) {
            json_array_append(json_object_get(w, "partitions"), p);
        }
    }
    json_decref(v);
}

/* {"list":[{"worker_id","started_at_ms","at_ms","partitions":[...]}],"unowned":[...]} */
static json_t *workers(dt_dashboard *d)
{
    char bucket[DT_BROKER_NAME_BUF];
    dt_broker_kv *kv = NULL;
    dt_broker_kv_watcher *w = NULL;
    json_t *by_id = json_object();
    if (dt_broker_bucket_name(d->hub, DT_BROKER_BUCKET_LEASES, bucket, sizeof(bucket)) != DT_OK ||
        dt_broker_kv_open(d->b, bucket, &kv) != DT_OK) {
        json_decref(by_id);
        return json_pack("{s:s}", "error", "the leases bucket cannot be read");
    }
    dt_broker_kv_watch_options wo = {.ignore_deletes = true};
    if (dt_broker_kv_watch(kv, ">", &wo, &w) == DT_OK) {
        /* The current values come first; stop once they are all in (or nothing comes). */
        for (size_t i = 0; i < LEASE_KEYS_MAX && !dt_broker_kv_watcher_initial_done(w); i++) {
            dt_broker_kv_entry e = {0};
            if (dt_broker_kv_watcher_next(w, LEASE_WAIT_MS, &e) != DT_OK) {
                break;
            }
            if (e.op == DT_BROKER_KV_PUT && e.value != NULL) {
                add_lease(by_id, e.key, e.value, e.len);
            }
            dt_broker_kv_entry_clear(&e);
        }
    }
    dt_broker_kv_watcher_destroy(w);
    dt_broker_kv_close(kv);
    json_t *list = json_array(), *unowned = json_array();
    bool *owned = dt_calloc(d->partitions + 1, sizeof(bool));
    const char *id;
    json_t *v;
    json_object_foreach(by_id, id, v)
    {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(v, "partitions"), i, p)
        {
            json_int_t pi = json_integer_value(p);
            if (owned != NULL && pi >= 0 && pi < (json_int_t)d->partitions) {
                owned[pi] = true;
            }
        }
        json_array_append(list, v);
    }
    for (uint32_t p = 0; owned != NULL && p < d->partitions; p++) {
        if (!owned[p]) {
            json_array_append_new(unowned, json_integer(p));
        }
    }
    dt_free(owned);
    json_decref(by_id);
    return json_pack("{s:o,s:o}", "list", list, "unowned", unowned);
}

static json_t *build(dt_dashboard *d)
{
    double changes = 0, finished = 0;
    dt__dash_live_rates(d->live, &changes, &finished);
    json_t *o = json_pack("{s:s,s:i,s:I,s:o,s:{s:f,s:f,s:i},s:o,s:o}", "hub", d->hub, "partitions",
                          (int)d->partitions, "now_ms", (json_int_t)dt__now_ms(), "instances",
                          counts(d), "throughput", "finished_per_s", finished, "changes_per_s",
                          changes, "window_s", 10, "backlog", backlog(d), "workers", workers(d));
    return o;
}

enum MHD_Result dt__dash_api_overview(dt_dashboard *d, dt__dash_req *r)
{
    /* Built under the lock: requests that arrive meanwhile wait for it instead of reading the
     * whole hub again. The cache holds the text (each reply copies it), never a json_t that
     * threads would share. */
    pthread_mutex_lock(&d->ov_mu);
    int64_t now = dt__mono_ms();
    if (d->ov == NULL || now - d->ov_at_ms >= DT__DASH_OVERVIEW_TTL_MS) {
        json_t *o = build(d);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (text != NULL) {
            free(d->ov); /* jansson's malloc */
            d->ov = text;
            d->ov_at_ms = now;
        }
    }
    enum MHD_Result ret = d->ov != NULL ? dt__dash_reply_text(r->conn, MHD_HTTP_OK, d->ov) : MHD_NO;
    pthread_mutex_unlock(&d->ov_mu);
    return ret;
}
