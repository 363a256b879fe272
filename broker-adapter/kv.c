/*
 * Key-value buckets: reads through nats.c's kvStore; writes as JetStream publishes to
 * "$KV.<bucket>.<key>" and watches as ordered consumers, both done here.
 *
 * Why writes bypass kvStore_Create/_Update: those report a revision mismatch as a bare NATS_ERR,
 * indistinguishable from other failures. Publishing with the expected-last-subject-sequence
 * header ourselves returns JetStream error 10071 (wrong last sequence), which maps exactly to
 * DT_EEXIST (create) and DT_ECONFLICT (update, conditional delete). The wire format is the KV
 * protocol's: a delete is an empty message with header "KV-Operation: DEL".
 *
 * Why watches bypass kvStore_Watch: nats.c 3.4.1's kvWatcher_Next takes a message from its
 * subscription, then relocks the watcher and, if kvWatcher_Stop ran meanwhile, returns
 * NATS_ILLEGAL_STATE without destroying the message (fixed in nats.c 3.13.0, nats-io/nats.c#987).
 * kvWatcher_Stop is the only way to wake a blocked kvWatcher_Next from another thread, and the
 * lease keeper stops its watch that way while other workers' releases flow in: LeakSanitizer
 * caught the lost message in test_leases_basic (a delete marker, whose headers nats.c had parsed,
 * shows as indirect leaks only, the message and its header map pointing at each other). A watch
 * here is the ordered consumer kvStore_Watch creates (js_SubscribeSync, Ordered, the last value
 * per key unless include_history), read with natsSubscription_NextMsg, which either hands a
 * message it took to the caller or takes none when an unsubscribe wakes it; stop() is that
 * unsubscribe. The initial values are counted as kvWatcher counts them. Naming the stream saves
 * kvStore_Watch's lookup by subject; the consumer's info (one request) says whether there are
 * initial values at all, which kvWatcher reads from nats.c internals.
 */
#include "broker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_OP_HDR "KV-Operation"

dt_broker_kv_op dt__broker_kv_msg_op(natsMsg *m)
{
    const char *op = NULL;
    if (natsMsgHeader_Get(m, KV_OP_HDR, &op) != NATS_OK || op == NULL) {
        return DT_BROKER_KV_PUT;
    }
    return strcmp(op, "DEL") == 0     ? DT_BROKER_KV_DELETE
           : strcmp(op, "PURGE") == 0 ? DT_BROKER_KV_PURGE
                                      : DT_BROKER_KV_PUT;
}

struct dt_broker_kv {
    dt_broker *b;
    kvStore *kv;
    char *stream;   /* "KV_<bucket>" */
    char *subj_pre; /* "$KV.<bucket>." */
    char err[DT__BROKER_ERR_LEN];
};

struct dt_broker_kv_watcher {
    dt_broker *b;          /* borrowed: for the flush before the subscription is freed */
    natsSubscription *sub; /* ordered consumer on "$KV.<bucket>.<pattern>" */
    size_t pre_len;        /* strlen("$KV.<bucket>."): where the key starts in a subject */
    bool updates_only;
    bool ignore_deletes;
    bool initial_done;
    uint64_t received;     /* deliveries counted towards the initial values */
    uint64_t init_pending; /* the pending count of the first of them */
    int stopped;           /* atomic */
    char err[DT__BROKER_ERR_LEN];
};

void dt_broker_kv_entry_clear(dt_broker_kv_entry *e)
{
    if (e == NULL) {
        return;
    }
    dt_free(e->key);
    dt_free(e->value);
    memset(e, 0, sizeof(*e));
}

dt_status dt__broker_kv_entry_from(natsMsg *m, const char *key, uint64_t rev, int64_t ns,
                                   dt_broker_kv_entry *out)
{
    dt_broker_kv_entry r;
    memset(&r, 0, sizeof(r));
    int len = natsMsg_GetDataLength(m);
    r.key = dt_strdup(key);
    r.op = dt__broker_kv_msg_op(m);
    r.len = len > 0 && r.op == DT_BROKER_KV_PUT ? (size_t)len : 0;
    r.value = r.len > 0 ? dt_memdup(natsMsg_GetData(m), r.len) : NULL;
    if (r.key == NULL || (r.len > 0 && r.value == NULL)) {
        dt_broker_kv_entry_clear(&r);
        return DT_ENOMEM;
    }
    r.revision = rev;
    r.created_ns = ns;
    *out = r;
    return DT_OK;
}

/* The reply is "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>" (nats-server
 * 2.9); newer servers insert a domain and an account hash after "ACK" and may append a token. */
bool dt__broker_ack_meta(const char *reply, dt__ack_meta *out)
{
    const char *tok[16];
    size_t nt = 0;
    for (const char *p = reply; p != NULL && nt < DT__ARRAY_LEN(tok); nt++) {
        tok[nt] = p;
        p = strchr(p, '.');
        p = p != NULL ? p + 1 : NULL;
    }
    if (reply == NULL || nt < 9 || strncmp(reply, "$JS.ACK.", 8) != 0) {
        return false;
    }
    size_t at = nt == 9 ? 5 : 7; /* the stream sequence's token */
    if (at + 3 >= nt) {
        return false;
    }
    out->seq = strtoull(tok[at], NULL, 10);
    out->ns = strtoll(tok[at + 2], NULL, 10);
    out->pending = strtoull(tok[at + 3], NULL, 10);
    return out->seq > 0;
}

/* dt_alloc'd "<pre><a><post>", or NULL when longer than a name may be. */
static char *name_dup(const char *pre, const char *a, const char *post)
{
    char buf[DT_BROKER_NAME_BUF];
    int n = snprintf(buf, sizeof(buf), "%s%s%s", pre, a, post);
    return (n < 0 || (size_t)n >= sizeof(buf)) ? NULL : dt_strdup(buf);
}

dt_status dt_broker_kv_open(dt_broker *b, const char *bucket, dt_broker_kv **out)
{
    if (bucket == NULL || out == NULL) {
        return dt__broker_fail(b, DT_EINVAL, "kv open: bucket and out are required");
    }
    dt_broker_kv *kv = dt_calloc(1, sizeof(*kv));
    if (kv == NULL) {
        return dt__broker_fail(b, DT_ENOMEM, "kv open %s: out of memory", bucket);
    }
    kv->b = b;
    kv->stream = name_dup("KV_", bucket, "");
    kv->subj_pre = name_dup("$KV.", bucket, ".");
    natsStatus s = (kv->stream == NULL || kv->subj_pre == NULL) ? NATS_INVALID_ARG : NATS_OK;
    if (s == NATS_OK) {
        s = js_KeyValue(&kv->kv, b->js, bucket);
    }
    if (s != NATS_OK) {
        dt_status st = dt__broker_fail_nats(b, s, 0, "kv open %s", bucket);
        dt_broker_kv_close(kv);
        return st;
    }
    *out = kv;
    return DT_OK;
}

void dt_broker_kv_close(dt_broker_kv *kv)
{
    if (kv == NULL) {
        return;
    }
    kvStore_Destroy(kv->kv);
    dt_free(kv->stream);
    dt_free(kv->subj_pre);
    dt_free(kv);
}

const char *dt_broker_kv_errmsg(const dt_broker_kv *kv)
{
    return kv == NULL ? "" : kv->err;
}

static dt_broker_kv_op map_op(kvOperation op)
{
    switch (op) {
    case kvOp_Delete:
        return DT_BROKER_KV_DELETE;
    case kvOp_Purge:
        return DT_BROKER_KV_PURGE;
    default:
        return DT_BROKER_KV_PUT;
    }
}

/* Copies a nats.c entry into `out` (all or nothing). */
static dt_status entry_copy(kvEntry *e, dt_broker_kv_entry *out)
{
    dt_broker_kv_entry r;
    memset(&r, 0, sizeof(r));
    int len = kvEntry_ValueLen(e);
    r.key = dt_strdup(kvEntry_Key(e));
    r.len = len > 0 ? (size_t)len : 0;
    r.value = r.len > 0 ? dt_memdup(kvEntry_Value(e), r.len) : NULL;
    if (r.key == NULL || (r.len > 0 && r.value == NULL)) {
        dt_broker_kv_entry_clear(&r);
        return DT_ENOMEM;
    }
    r.revision = kvEntry_Revision(e);
    r.op = map_op(kvEntry_Operation(e));
    r.created_ns = kvEntry_Created(e);
    *out = r;
    return DT_OK;
}

dt_status dt_broker_kv_get(dt_broker_kv *kv, const char *key, dt_broker_kv_entry *out)
{
    if (!dt_broker_kv_key_valid(key) || out == NULL) {
        return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_EINVAL, "kv get: invalid key");
    }
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, kv->kv, key);
    if (s == NATS_NOT_FOUND) {
        return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_ENOTFOUND, "kv get %s: not found",
                                 key);
    }
    if (s != NATS_OK) {
        return dt__broker_nerr(kv->err, sizeof(kv->err), s, 0, "kv get %s", key);
    }
    dt_status st = entry_copy(e, out);
    kvEntry_Destroy(e);
    return st;
}

/* ------------------------------------------------------------------------------------------- */
/* Writes                                                                                      */

typedef struct write_req {
    const char *key;
    const void *data;
    size_t len;
    const char *op; /* NULL: put; "DEL": delete marker */
    uint64_t expect_rev;
    bool expect_none;
} write_req;

/* Publishes one KV write; *jerr receives the JetStream error code. */
static natsStatus kv_write(dt_broker_kv *kv, const write_req *w, uint64_t *out_rev, jsErrCode *jerr)
{
    char subject[DT_BROKER_NAME_BUF + 64];
    int n = snprintf(subject, sizeof(subject), "%s%s", kv->subj_pre, w->key);
    if (n < 0 || (size_t)n >= sizeof(subject)) {
        return NATS_INVALID_ARG;
    }
    dt_broker_header h = {KV_OP_HDR, w->op};
    dt_broker_outmsg m = {.subject = subject,
                          .headers = &h,
                          .nheaders = w->op != NULL ? 1 : 0,
                          .data = w->data,
                          .len = w->len,
                          .expect_last_subject_seq = w->expect_rev,
                          .expect_no_message = w->expect_none};
    natsMsg *nm = NULL;
    jsPubAck *pa = NULL;
    *jerr = 0;
    natsStatus s = dt__broker_natsmsg(&m, NULL, DT__OUT_EXPECT, &nm);
    if (s == NATS_OK) {
        s = js_PublishMsg(&pa, kv->b->js, nm, NULL, jerr);
    }
    if (s == NATS_OK && out_rev != NULL) {
        *out_rev = pa->Sequence;
    }
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(nm);
    return s;
}

static dt_status write_check(dt_broker_kv *kv, const char *what, const char *key, const void *data,
                             size_t len)
{
    if (!dt_broker_kv_key_valid(key)) {
        return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_EINVAL, "kv %s: invalid key '%s'",
                                 what, key != NULL ? key : "(null)");
    }
    if (len > (size_t)INT32_MAX || (len > 0 && data == NULL)) {
        return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_EINVAL, "kv %s %s: bad value", what,
                                 key);
    }
    return DT_OK;
}

dt_status dt_broker_kv_put(dt_broker_kv *kv, const char *key, const void *data, size_t len,
                           uint64_t *out_rev)
{
    dt_status st = write_check(kv, "put", key, data, len);
    if (st != DT_OK) {
        return st;
    }
    write_req w = {.key = key, .data = data, .len = len};
    jsErrCode jerr = 0;
    natsStatus s = kv_write(kv, &w, out_rev, &jerr);
    return s == NATS_OK ? DT_OK
                        : dt__broker_nerr(kv->err, sizeof(kv->err), s, jerr, "kv put %s", key);
}

/* Revision of the last message on `key` if it is a delete/purge marker, else 0. */
static uint64_t tombstone_rev(dt_broker_kv *kv, const char *key)
{
    char subject[DT_BROKER_NAME_BUF + 64];
    snprintf(subject, sizeof(subject), "%s%s", kv->subj_pre, key);
    natsMsg *m = NULL;
    if (js_GetLastMsg(&m, kv->b->js, kv->stream, subject, NULL, NULL) != NATS_OK) {
        return 0;
    }
    uint64_t rev = dt__broker_kv_msg_op(m) != DT_BROKER_KV_PUT ? natsMsg_GetSequence(m) : 0;
    natsMsg_Destroy(m);
    return rev;
}

dt_status dt_broker_kv_create(dt_broker_kv *kv, const char *key, const void *data, size_t len,
                              uint64_t *out_rev)
{
    dt_status st = write_check(kv, "create", key, data, len);
    if (st != DT_OK) {
        return st;
    }
    write_req w = {.key = key, .data = data, .len = len, .expect_none = true};
    jsErrCode jerr = 0;
    natsStatus s = kv_write(kv, &w, out_rev, &jerr);
    if (s != NATS_OK && jerr == JSStreamWrongLastSequenceErr) {
        /* The key has history: a deleted key may be created again over its marker. */
        uint64_t rev = tombstone_rev(kv, key);
        if (rev == 0) {
            return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_EEXIST,
                                     "kv create %s: key exists", key);
        }
        w.expect_none = false;
        w.expect_rev = rev;
        s = kv_write(kv, &w, out_rev, &jerr);
        if (s != NATS_OK && jerr == JSStreamWrongLastSequenceErr) {
            return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_EEXIST,
                                     "kv create %s: key was created concurrently", key);
        }
    }
    return s == NATS_OK ? DT_OK
                        : dt__broker_nerr(kv->err, sizeof(kv->err), s, jerr, "kv create %s", key);
}

dt_status dt_broker_kv_update(dt_broker_kv *kv, const char *key, const void *data, size_t len,
                              uint64_t expected_rev, uint64_t *out_rev)
{
    dt_status st = write_check(kv, "update", key, data, len);
    if (st != DT_OK) {
        return st;
    }
    if (expected_rev == 0) {
        return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_EINVAL,
                                 "kv update %s: expected revision must be > 0", key);
    }
    write_req w = {.key = key, .data = data, .len = len, .expect_rev = expected_rev};
    jsErrCode jerr = 0;
    natsStatus s = kv_write(kv, &w, out_rev, &jerr);
    if (s != NATS_OK && jerr == JSStreamWrongLastSequenceErr) {
        return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_ECONFLICT,
                                 "kv update %s: revision is not %llu", key,
                                 (unsigned long long)expected_rev);
    }
    return s == NATS_OK ? DT_OK
                        : dt__broker_nerr(kv->err, sizeof(kv->err), s, jerr, "kv update %s", key);
}

dt_status dt_broker_kv_delete(dt_broker_kv *kv, const char *key, uint64_t expected_rev)
{
    dt_status st = write_check(kv, "delete", key, NULL, 0);
    if (st != DT_OK) {
        return st;
    }
    write_req w = {.key = key, .op = "DEL", .expect_rev = expected_rev};
    jsErrCode jerr = 0;
    natsStatus s = kv_write(kv, &w, NULL, &jerr);
    if (s != NATS_OK && jerr == JSStreamWrongLastSequenceErr) {
        return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_ECONFLICT,
                                 "kv delete %s: revision is not %llu", key,
                                 (unsigned long long)expected_rev);
    }
    return s == NATS_OK ? DT_OK
                        : dt__broker_nerr(kv->err, sizeof(kv->err), s, jerr, "kv delete %s", key);
}

/* ------------------------------------------------------------------------------------------- */
/* Watches                                                                                     */

static bool pattern_valid(const char *p)
{
    if (p == NULL || p[0] == '\0' || p[0] == '.' || p[strlen(p) - 1] == '.') {
        return false;
    }
    for (const char *c = p; *c != '\0'; c++) {
        bool wild = (*c == '*' || *c == '>') && (c == p || c[-1] == '.') &&
                    (c[1] == '\0' || (c[1] == '.' && *c == '*'));
        bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '/' || *c == '=' ||
                     (*c == '.' && c[1] != '.');
        if (!wild && !plain) {
            return false;
        }
    }
    return true;
}

dt_status dt_broker_kv_watch(dt_broker_kv *kv, const char *pattern,
                             const dt_broker_kv_watch_options *o, dt_broker_kv_watcher **out)
{
    char subject[DT_BROKER_NAME_BUF + 3 * DT_BROKER_NAME_BUF];
    int n = pattern_valid(pattern)
                ? snprintf(subject, sizeof(subject), "%s%s", kv->subj_pre, pattern)
                : -1;
    if (n < 0 || (size_t)n >= sizeof(subject) || out == NULL) {
        return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_EINVAL,
                                 "kv watch: invalid pattern '%s'", pattern != NULL ? pattern : "");
    }
    dt_broker_kv_watcher *w = dt_calloc(1, sizeof(*w));
    if (w == NULL) {
        return dt__broker_errbuf(kv->err, sizeof(kv->err), DT_ENOMEM, "kv watch: out of memory");
    }
    w->b = kv->b;
    w->pre_len = strlen(kv->subj_pre);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = kv->stream; /* no lookup of the stream by subject */
    so.Ordered = true;
    if (o == NULL || !o->include_history) {
        so.Config.DeliverPolicy = js_DeliverLastPerSubject;
    }
    if (o != NULL) {
        w->updates_only = o->updates_only;
        w->ignore_deletes = o->ignore_deletes;
    }
    natsStatus s = js_SubscribeSync(&w->sub, kv->b->js, subject, NULL, &so, NULL);
    if (s == NATS_OK) {
        s = natsSubscription_SetPendingLimits(w->sub, -1, -1);
    }
    jsConsumerInfo *ci = NULL;
    if (s == NATS_OK) {
        s = natsSubscription_GetConsumerInfo(&ci, w->sub, NULL, NULL);
    }
    if (s == NATS_OK && ci->NumPending == 0 && ci->Delivered.Consumer == 0) {
        w->initial_done = true; /* nothing to report first */
    }
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        dt_status st = dt__broker_nerr(kv->err, sizeof(kv->err), s, 0, "kv watch %s", pattern);
        dt__broker_sub_destroy(w->b, w->sub);
        dt_free(w);
        return st;
    }
    *out = w;
    return DT_OK;
}

/* Counts a delivery towards the initial values as nats.c's kvWatcher does: the initial set ends
 * with the delivery after which nothing is pending, or once more deliveries came than the first
 * one said were pending. True if this delivery belongs to the initial set. */
static bool count_initial(dt_broker_kv_watcher *w, uint64_t pending)
{
    if (w->initial_done) {
        return false;
    }
    w->received++;
    if (w->init_pending == 0) {
        w->init_pending = pending;
    }
    if (w->received > w->init_pending || pending == 0) {
        w->initial_done = true;
    }
    return true;
}

dt_status dt_broker_kv_watcher_next(dt_broker_kv_watcher *w, int64_t timeout_ms,
                                    dt_broker_kv_entry *out)
{
    int64_t deadline = dt__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (__atomic_load_n(&w->stopped, __ATOMIC_ACQUIRE)) {
            return dt__broker_errbuf(w->err, sizeof(w->err), DT_ECLOSED, "watch stopped");
        }
        int64_t left = deadline - dt__mono_ms();
        natsMsg *m = NULL;
        /* A message this takes is ours even if a stop races with it (the file comment). */
        natsStatus s = natsSubscription_NextMsg(&m, w->sub, left > 0 ? left : 0);
        if (s == NATS_TIMEOUT) {
            return dt__broker_errbuf(w->err, sizeof(w->err), DT_ETIMEOUT, "watch: no update");
        }
        if (s != NATS_OK) {
            if (__atomic_load_n(&w->stopped, __ATOMIC_ACQUIRE)) {
                return dt__broker_errbuf(w->err, sizeof(w->err), DT_ECLOSED, "watch stopped");
            }
            return dt__broker_nerr(w->err, sizeof(w->err), s, 0, "watch");
        }
        dt__ack_meta meta;
        const char *subject = natsMsg_GetSubject(m);
        if (!dt__broker_ack_meta(natsMsg_GetReply(m), &meta) || strlen(subject) <= w->pre_len) {
            dt_status st = dt__broker_errbuf(w->err, sizeof(w->err), DT_EBROKER,
                                             "watch: not a KV delivery: '%s'", subject);
            natsMsg_Destroy(m);
            return st;
        }
        bool initial = count_initial(w, meta.pending);
        bool skip = (w->updates_only && initial) ||
                    (w->ignore_deletes && dt__broker_kv_msg_op(m) != DT_BROKER_KV_PUT);
        dt_status st =
            skip ? DT_OK
                 : dt__broker_kv_entry_from(m, subject + w->pre_len, meta.seq, meta.ns, out);
        natsMsg_Destroy(m);
        if (!skip) {
            return st == DT_OK
                       ? DT_OK
                       : dt__broker_errbuf(w->err, sizeof(w->err), st, "watch: out of memory");
        }
    }
}

bool dt_broker_kv_watcher_initial_done(const dt_broker_kv_watcher *w)
{
    return w->initial_done;
}

void dt_broker_kv_watcher_stop(dt_broker_kv_watcher *w)
{
    if (w != NULL && __atomic_exchange_n(&w->stopped, 1, __ATOMIC_ACQ_REL) == 0) {
        (void)natsSubscription_Unsubscribe(w->sub); /* wakes a blocked next() */
    }
}

const char *dt_broker_kv_watcher_errmsg(const dt_broker_kv_watcher *w)
{
    return w == NULL ? "" : w->err;
}

void dt_broker_kv_watcher_destroy(dt_broker_kv_watcher *w)
{
    if (w == NULL) {
        return;
    }
    dt_broker_kv_watcher_stop(w);
    dt__broker_sub_destroy(w->b, w->sub); /* flushes before the free: conn.c says why */
    dt_free(w);
}
