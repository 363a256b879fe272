/*
 * Task hubs: the four streams and three KV buckets of hub H (layout in DESIGN.md, "JetStream
 * layout of a task hub"), created idempotently, verified, read and deleted.
 *
 * Idempotence is decided here, not left to the server: each object is looked up first and its
 * settings compared field by field with what the hub config implies, so that a difference is
 * reported by name (DT_ECONFLICT) and nothing is ever changed silently. Missing objects are
 * created, which also completes a hub whose creation was interrupted. The config record in
 * DT_H_META is written last with create-if-absent, so concurrent creators agree on one record.
 */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

#define N_STREAMS 5
#define N_BUCKETS 3

static const char *const stream_subject_tail[N_STREAMS] = {"*", "*", ">", ">", ">"};
static const dt_broker_family stream_family[N_STREAMS] = {DT_BROKER_SUBJ_ORCH, DT_BROKER_SUBJ_ACT,
                                                          DT_BROKER_SUBJ_IN, DT_BROKER_SUBJ_DEAD,
                                                          DT_BROKER_SUBJ_LOG};

typedef struct hub_names {
    const char *hub;
    char stream[N_STREAMS][DT_BROKER_NAME_BUF];
    char subject[N_STREAMS][DT_BROKER_NAME_BUF];
    char bucket[N_BUCKETS][DT_BROKER_NAME_BUF];
    char kv_stream[N_BUCKETS][DT_BROKER_NAME_BUF];  /* KV_<bucket> */
    char kv_subject[N_BUCKETS][DT_BROKER_NAME_BUF]; /* $KV.<bucket>.> */
} hub_names;

/* One object's expected settings, in the server's terms. */
typedef struct want_obj {
    jsStreamConfig sc;
    const char *subjects[1];
    bool is_kv;
    kvConfig kc;
} want_obj;

static dt_status names_make(const char *hub, hub_names *n, char *err, size_t len)
{
    if (!dt_broker_hub_name_valid(hub)) {
        return dt__broker_errbuf(err, len, DT_EINVAL,
                                 "invalid hub name '%s' (1..%d characters of A-Z a-z 0-9 _ -)",
                                 hub != NULL ? hub : "(null)", DT_BROKER_HUB_NAME_MAX);
    }
    n->hub = hub;
    for (int i = 0; i < N_STREAMS; i++) {
        dt_broker_stream_name(hub, (dt_broker_stream)i, n->stream[i], sizeof(n->stream[i]));
        dt_broker_subject(hub, stream_family[i], stream_subject_tail[i], n->subject[i],
                          sizeof(n->subject[i]));
    }
    for (int k = 0; k < N_BUCKETS; k++) {
        dt_broker_bucket_name(hub, (dt_broker_bucket)k, n->bucket[k], sizeof(n->bucket[k]));
        /* Hub names are at most DT_BROKER_HUB_NAME_MAX long: nothing is cut here. */
        dt__errf(n->kv_stream[k], sizeof(n->kv_stream[k]), "KV_%s", n->bucket[k]);
        dt__errf(n->kv_subject[k], sizeof(n->kv_subject[k]), "$KV.%s.>", n->bucket[k]);
    }
    return DT_OK;
}

static void want_stream(const hub_names *n, int i, const dt_broker_hub_config *c, want_obj *w)
{
    memset(w, 0, sizeof(*w));
    jsStreamConfig_Init(&w->sc);
    w->subjects[0] = n->subject[i];
    w->sc.Name = n->stream[i];
    w->sc.Subjects = w->subjects;
    w->sc.SubjectsLen = 1;
    bool limits = i == DT_BROKER_STREAM_DEAD || i == DT_BROKER_STREAM_LOG;
    w->sc.Retention = limits ? js_LimitsPolicy : js_WorkQueuePolicy;
    /* The log is read by subject (a partition's last entry, the next one after a position). */
    w->sc.AllowDirect = i == DT_BROKER_STREAM_LOG;
    w->sc.Storage = c->storage == DT_BROKER_STORAGE_MEMORY ? js_MemoryStorage : js_FileStorage;
    w->sc.Replicas = c->replicas;
    w->sc.MaxMsgSize = (int32_t)c->max_msg_size;
    w->sc.Duplicates = dt__broker_ms_to_ns(c->duplicate_window_ms);
}

/* A bucket as nats.c's js_CreateKeyValue builds its stream (history 1, limits retention). */
static void want_bucket(const hub_names *n, int k, const dt_broker_hub_config *c, want_obj *w)
{
    memset(w, 0, sizeof(*w));
    w->is_kv = true;
    kvConfig_Init(&w->kc);
    w->kc.Bucket = n->bucket[k];
    w->kc.History = 1;
    w->kc.StorageType = c->storage == DT_BROKER_STORAGE_MEMORY ? js_MemoryStorage : js_FileStorage;
    w->kc.Replicas = (int)c->replicas;
    w->kc.TTL = k == DT_BROKER_BUCKET_LEASES ? dt__broker_ms_to_ns(c->lease_ttl_ms) : 0;
    w->kc.MaxValueSize = k == DT_BROKER_BUCKET_STATUS ? (int32_t)c->max_msg_size : -1;
    jsStreamConfig_Init(&w->sc);
    w->subjects[0] = n->kv_subject[k];
    w->sc.Name = n->kv_stream[k];
    w->sc.Subjects = w->subjects;
    w->sc.SubjectsLen = 1;
    w->sc.Retention = js_LimitsPolicy;
    w->sc.Storage = w->kc.StorageType;
    w->sc.Replicas = w->kc.Replicas;
    w->sc.MaxMsgSize = w->kc.MaxValueSize;
    w->sc.MaxAge = w->kc.TTL;
    w->sc.MaxMsgsPerSubject = 1;
}

static const char *retention_str(jsRetentionPolicy r)
{
    return r == js_WorkQueuePolicy ? "workqueue" : r == js_InterestPolicy ? "interest" : "limits";
}

/* Names the first difference between an existing stream and the expected one. */
static bool stream_diff(const jsStreamConfig *h, const want_obj *w, char *buf, size_t len)
{
    const jsStreamConfig *x = &w->sc;
    const char *what = w->is_kv ? "bucket" : "stream";
    const char *name = w->is_kv ? w->kc.Bucket : x->Name;
    if (h->SubjectsLen != 1 || strcmp(h->Subjects[0], x->Subjects[0]) != 0) {
        dt__errf(buf, len, "%s %s: subjects differ from '%s'", what, name, x->Subjects[0]);
    } else if (h->Retention != x->Retention) {
        dt__errf(buf, len, "%s %s: retention is %s, expected %s", what, name,
                 retention_str(h->Retention), retention_str(x->Retention));
    } else if (h->Storage != x->Storage) {
        dt__errf(buf, len, "%s %s: storage is %s, expected %s", what, name,
                 h->Storage == js_MemoryStorage ? "memory" : "file",
                 x->Storage == js_MemoryStorage ? "memory" : "file");
    } else if (h->Replicas != x->Replicas) {
        dt__errf(buf, len, "%s %s: replicas is %lld, expected %lld", what, name,
                 (long long)h->Replicas, (long long)x->Replicas);
    } else if (h->MaxMsgSize != x->MaxMsgSize) {
        dt__errf(buf, len, "%s %s: max message size is %d, expected %d", what, name,
                 (int)h->MaxMsgSize, (int)x->MaxMsgSize);
    } else if (h->MaxAge != x->MaxAge) {
        dt__errf(buf, len, "%s %s: max age (TTL) is %lld ms, expected %lld ms", what, name,
                 (long long)(h->MaxAge / 1000000), (long long)(x->MaxAge / 1000000));
    } else if (!w->is_kv && h->Duplicates != x->Duplicates) {
        dt__errf(buf, len, "%s %s: duplicate window is %lld ms, expected %lld ms", what, name,
                 (long long)(h->Duplicates / 1000000), (long long)(x->Duplicates / 1000000));
    } else if (w->is_kv && h->MaxMsgsPerSubject != x->MaxMsgsPerSubject) {
        dt__errf(buf, len, "%s %s: history is %lld, expected %lld", what, name,
                 (long long)h->MaxMsgsPerSubject, (long long)x->MaxMsgsPerSubject);
    } else {
        return false;
    }
    return true;
}

/* Compares an existing object with the expected one: DT_OK, DT_ENOTFOUND or DT_ECONFLICT. */
static dt_status check_obj(dt_broker *b, const want_obj *w, char *err, size_t len)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, b->js, w->sc.Name, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        return dt__broker_errbuf(err, len, DT_ENOTFOUND, "%s %s is missing",
                                 w->is_kv ? "bucket" : "stream",
                                 w->is_kv ? w->kc.Bucket : w->sc.Name);
    }
    if (s != NATS_OK) {
        return dt__broker_nerr(err, len, s, jerr, "stream info %s", w->sc.Name);
    }
    dt_status st = stream_diff(si->Config, w, err, len) ? DT_ECONFLICT : DT_OK;
    jsStreamInfo_Destroy(si);
    return st;
}

static dt_status create_obj(dt_broker *b, const want_obj *w, char *err, size_t len)
{
    want_obj copy = *w; /* nats.c takes non-const configs */
    jsErrCode jerr = 0;
    natsStatus s;
    if (w->is_kv) {
        kvStore *kv = NULL;
        s = js_CreateKeyValue(&kv, b->js, &copy.kc);
        kvStore_Destroy(kv);
    } else {
        jsStreamInfo *si = NULL;
        s = js_AddStream(&si, b->js, &copy.sc, NULL, &jerr);
        jsStreamInfo_Destroy(si);
    }
    if (s == NATS_OK) {
        return DT_OK;
    }
    if (jerr == JSStreamSubjectOverlapErr) {
        return dt__broker_errbuf(err, len, DT_ECONFLICT,
                                 "stream %s: subjects %s overlap another stream's", w->sc.Name,
                                 w->sc.Subjects[0]);
    }
    /* Created concurrently, possibly with other settings (js_CreateKeyValue hides the code). */
    dt_status st = check_obj(b, w, err, len);
    if (st == DT_ENOTFOUND) {
        st = dt__broker_nerr(err, len, s, jerr, "create %s", w->sc.Name);
    }
    return st;
}

static dt_status ensure_obj(dt_broker *b, const want_obj *w, char *err, size_t len)
{
    dt_status st = check_obj(b, w, err, len);
    return st == DT_ENOTFOUND ? create_obj(b, w, err, len) : st;
}

/* Visits the 7 objects of the hub in the order streams, LEASES, STATUS, META. */
static dt_status for_each_obj(dt_broker *b, const hub_names *n, const dt_broker_hub_config *c,
                              dt_status (*fn)(dt_broker *, const want_obj *, char *, size_t),
                              char *err, size_t len)
{
    static const int bucket_order[N_BUCKETS] = {DT_BROKER_BUCKET_LEASES, DT_BROKER_BUCKET_STATUS,
                                                DT_BROKER_BUCKET_META};
    want_obj w;
    for (int i = 0; i < N_STREAMS; i++) {
        want_stream(n, i, c, &w);
        dt_status st = fn(b, &w, err, len);
        if (st != DT_OK) {
            return st;
        }
    }
    for (int k = 0; k < N_BUCKETS; k++) {
        want_bucket(n, bucket_order[k], c, &w);
        dt_status st = fn(b, &w, err, len);
        if (st != DT_OK) {
            return st;
        }
    }
    return DT_OK;
}

/* ------------------------------------------------------------------------------------------- */
/* The config record                                                                           */

/* Reads the record: DT_ENOTFOUND when the META bucket or the key is absent. */
static dt_status read_record(dt_broker *b, const hub_names *n, dt_broker_hub_config *out, char *err,
                             size_t len)
{
    dt_broker_kv *kv = NULL;
    dt_broker_kv_entry e = {0};
    dt_status st = dt_broker_kv_open(b, n->bucket[DT_BROKER_BUCKET_META], &kv);
    if (st == DT_OK) {
        st = dt_broker_kv_get(kv, "config", &e);
        if (st != DT_OK && st != DT_ENOTFOUND) {
            dt__errf(err, len, "%s", dt_broker_kv_errmsg(kv));
        }
    } else if (st != DT_ENOTFOUND) {
        dt_broker_errmsg_copy(b, err, len);
    }
    if (st == DT_ENOTFOUND) {
        dt__errf(err, len, "no hub named '%s'", n->hub);
    }
    if (st == DT_OK) {
        st = dt__broker_hub_config_decode(e.value, e.len, out, err, len);
    }
    dt_broker_kv_entry_clear(&e);
    dt_broker_kv_close(kv);
    return st;
}

/* Writes the record if absent; DT_EEXIST if another creator was first. */
static dt_status write_record(dt_broker *b, const hub_names *n, const dt_broker_hub_config *c,
                              char *err, size_t len)
{
    char json[512];
    size_t json_len = 0;
    dt_broker_kv *kv = NULL;
    dt_status st = dt__broker_hub_config_encode(c, json, sizeof(json), &json_len);
    if (st == DT_OK) {
        st = dt_broker_kv_open(b, n->bucket[DT_BROKER_BUCKET_META], &kv);
        if (st != DT_OK) {
            dt_broker_errmsg_copy(b, err, len);
        }
    }
    if (st == DT_OK) {
        st = dt_broker_kv_create(kv, "config", json, json_len, NULL);
        if (st != DT_OK) {
            dt__errf(err, len, "%s", dt_broker_kv_errmsg(kv));
        }
    }
    dt_broker_kv_close(kv);
    return st;
}

/* ------------------------------------------------------------------------------------------- */
/* Public operations                                                                           */

static dt_status create_checks(dt_broker *b, const dt_broker_hub_config *c, char *err, size_t len)
{
    if (c == NULL) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "hub config is NULL");
    }
    dt_status st = dt__broker_hub_config_check(c, err, len);
    if (st != DT_OK) {
        return st;
    }
    int64_t max_payload = dt_broker_max_payload(b);
    if (max_payload > 0 && (int64_t)c->max_msg_size > max_payload) {
        return dt__broker_errbuf(err, len, DT_EINVAL,
                                 "max_msg_size %u exceeds the server's max_payload %lld",
                                 c->max_msg_size, (long long)max_payload);
    }
    return DT_OK;
}

/* Compares a stored record with the requested settings (DT_ECONFLICT names the difference). */
static dt_status record_matches(const hub_names *n, const dt_broker_hub_config *have,
                                const dt_broker_hub_config *want, char *err, size_t len)
{
    char diff[160];
    if (dt__broker_hub_config_diff(have, want, diff, sizeof(diff))) {
        return dt__broker_errbuf(err, len, DT_ECONFLICT, "hub '%s' exists with other settings: %s",
                                 n->hub, diff);
    }
    return DT_OK;
}

static dt_status hub_create(dt_broker *b, const char *hub, const dt_broker_hub_config *c,
                            dt_broker_hub_config *out, char *err, size_t len)
{
    hub_names n;
    dt_broker_hub_config have;
    dt_status st = names_make(hub, &n, err, len);
    if (st == DT_OK) {
        st = create_checks(b, c, err, len);
    }
    if (st != DT_OK) {
        return st;
    }
    st = read_record(b, &n, &have, err, len);
    if (st == DT_OK) {
        st = record_matches(&n, &have, c, err, len);
        if (st == DT_OK) {
            st = for_each_obj(b, &n, &have, ensure_obj, err, len);
        }
        *out = have;
        return st;
    }
    if (st != DT_ENOTFOUND) {
        return st;
    }
    st = for_each_obj(b, &n, c, ensure_obj, err, len);
    if (st != DT_OK) {
        return st;
    }
    dt_broker_hub_config rec = *c;
    rec.format_version = DT_BROKER_HUB_FORMAT_VERSION;
    rec.created_at_ms = dt__now_ms();
    st = write_record(b, &n, &rec, err, len);
    if (st == DT_EEXIST) { /* a concurrent creator won: its record must match ours */
        st = read_record(b, &n, &rec, err, len);
        if (st == DT_OK) {
            st = record_matches(&n, &rec, c, err, len);
        }
    }
    *out = rec;
    return st;
}

dt_status dt_broker_hub_create(dt_broker *b, const char *hub, const dt_broker_hub_config *c,
                               dt_broker_hub_config *out_cfg)
{
    char err[DT__BROKER_ERR_LEN] = "";
    dt_broker_hub_config stored;
    dt_status st = hub_create(b, hub, c, &stored, err, sizeof(err));
    if (st != DT_OK) {
        return dt__broker_fail(b, st, "create hub %s: %s", hub != NULL ? hub : "(null)", err);
    }
    if (out_cfg != NULL) {
        *out_cfg = stored;
    }
    return DT_OK;
}

dt_status dt_broker_hub_get(dt_broker *b, const char *hub, dt_broker_hub_config *out_cfg)
{
    char err[DT__BROKER_ERR_LEN] = "";
    hub_names n;
    dt_broker_hub_config c;
    dt_status st = names_make(hub, &n, err, sizeof(err));
    if (st == DT_OK) {
        st = read_record(b, &n, &c, err, sizeof(err));
    }
    if (st != DT_OK) {
        return dt__broker_fail(b, st, "hub %s: %s", hub != NULL ? hub : "(null)", err);
    }
    if (out_cfg != NULL) {
        *out_cfg = c;
    }
    return DT_OK;
}

dt_status dt_broker_hub_verify(dt_broker *b, const char *hub, dt_broker_hub_config *out_cfg)
{
    char err[DT__BROKER_ERR_LEN] = "";
    hub_names n;
    dt_broker_hub_config c;
    dt_status st = names_make(hub, &n, err, sizeof(err));
    if (st == DT_OK) {
        st = read_record(b, &n, &c, err, sizeof(err));
    }
    if (st == DT_OK) {
        st = for_each_obj(b, &n, &c, check_obj, err, sizeof(err));
    }
    if (st != DT_OK) {
        return dt__broker_fail(b, st, "verify hub %s: %s", hub != NULL ? hub : "(null)", err);
    }
    if (out_cfg != NULL) {
        *out_cfg = c;
    }
    return DT_OK;
}

/* Deletes one stream: 1 if deleted, 0 if absent, -1 on error (text in err). */
static int delete_stream(dt_broker *b, const char *stream, char *err, size_t len)
{
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteStream(b->js, stream, NULL, &jerr);
    if (s == NATS_OK) {
        return 1;
    }
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        return 0;
    }
    dt__broker_nerr(err, len, s, jerr, "delete %s", stream);
    return -1;
}

dt_status dt_broker_hub_delete(dt_broker *b, const char *hub)
{
    char err[DT__BROKER_ERR_LEN] = "";
    hub_names n;
    dt_status st = names_make(hub, &n, err, sizeof(err));
    if (st != DT_OK) {
        return dt__broker_fail(b, st, "delete hub: %s", err);
    }
    /* META first: an interrupted delete must not leave a hub that looks complete. */
    const char *order[N_BUCKETS + N_STREAMS] = {n.kv_stream[DT_BROKER_BUCKET_META],
                                                n.stream[0],
                                                n.stream[1],
                                                n.stream[2],
                                                n.stream[3],
                                                n.stream[4],
                                                n.kv_stream[DT_BROKER_BUCKET_LEASES],
                                                n.kv_stream[DT_BROKER_BUCKET_STATUS]};
    int found = 0;
    bool failed = false;
    for (size_t i = 0; i < DT__ARRAY_LEN(order); i++) {
        int r = delete_stream(b, order[i], err, sizeof(err));
        found += r > 0 ? r : 0;
        failed = failed || r < 0;
    }
    if (failed) {
        return dt__broker_fail(b, DT_EBROKER, "delete hub %s: %s", hub, err);
    }
    if (found == 0) {
        return dt__broker_fail(b, DT_ENOTFOUND, "delete hub: no hub named '%s'", hub);
    }
    return DT_OK;
}

dt_status dt_broker_stream_info_get(dt_broker *b, const char *stream, dt_broker_stream_info *out)
{
    if (stream == NULL || out == NULL) {
        return dt__broker_fail(b, DT_EINVAL, "stream info: stream and out are required");
    }
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, b->js, stream, NULL, &jerr);
    if (s != NATS_OK) {
        return dt__broker_fail_nats(b, s, jerr, "stream info %s", stream);
    }
    out->msgs = si->State.Msgs;
    out->bytes = si->State.Bytes;
    out->first_seq = si->State.FirstSeq;
    out->last_seq = si->State.LastSeq;
    out->consumers = si->State.Consumers;
    jsStreamInfo_Destroy(si);
    return DT_OK;
}
