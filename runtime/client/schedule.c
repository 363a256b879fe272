/*
 * Starting instances: validate, apply the reuse policy, publish the ExecutionStarted message to
 * the instance's partition and record the instance as PENDING in the status bucket.
 *
 * Round trips. The start and the PENDING record travel together: both go through a publisher
 * of the client's pool (sent at once, the connection writes without coalescing), the start
 * first, the record's KV create right behind it; then both PubAcks are collected. One round trip
 * instead of two. The status record is read first only where the reuse policy may refuse the
 * start (a caller-given ID with policy ERROR, REPLACE_IF_FINISHED or IGNORE), so that a refused
 * start is never published; a generated ID cannot be taken, and TERMINATE_AND_REPLACE is never
 * refused, so those start in one round trip and look at the record only when its create fails.
 * Why that read cannot be saved without giving up a guarantee below: docs/design.md, "The
 * client's start and wait". Once the client's status feed is open, the start registers its key
 * with it before sending (dt__client_track_begin), so that a wait for the instance needs no read
 * (waits.c).
 *
 * Why this order is safe. The start precedes its record on the connection, so a client that dies
 * between the two leaves at most a start without a record, which the worker writes when it runs
 * the instance. A record whose start JetStream refused (or did not acknowledge in time) is taken
 * back: the created record deleted, an updated one restored, each at the revision written, so a
 * newer record of the worker's is never touched. Records are written with create (or, replacing
 * a finished execution, update at the revision read), never with a blind put. A failed record
 * write does not fail the call: the start is accepted and the worker writes the record.
 *
 * Racing starts of one ID: the start's PubAck decides. Where the record is read first, the
 * start's identity (Nats-Msg-Id and dedupe_id) is derived from the instance ID and the revision
 * of the state read ("<id>/@<rev>/start/0"; a deleted record counts by its delete marker's
 * revision, a key never written as 0), not from the execution ID. Callers that read the same
 * state send the same identity, so JetStream stores exactly one of their starts and tells the
 * others "duplicate": the stored one's caller gets DT_OK, the others DT_EEXIST, and the worker
 * sees a single start, so it has nothing of this race to dead-letter. A caller that read a
 * later state reads a record the winner's start caused (its PENDING record, a loser's, or the
 * placeholder below), which the policy refuses. The records follow the decision: a loser whose
 * record write landed replaces it (update at its revision) with a placeholder (PENDING, no
 * execution, no name); a winner whose write found a record overwrites a PENDING record of
 * another execution (a loser's, or the placeholder) at its revision, and leaves its own or a
 * worker's newer one alone. Every one of these writes is conditional on a revision, so none
 * undoes a newer one. A retry of the same start (same execution ID) that finds its own PENDING
 * record sends the identity the record keeps in the tag "dt.start_id" (readers drop "dt."
 * tags), so JetStream drops the repeat; one that finds a worker's record sends the execution's
 * identity, which the worker applies to the current execution once.
 *
 * Crash safety. "Wrong" would be: a caller told DT_OK whose start is not stored or is refused
 * because of another start of the race, or, once a worker has applied every stored start of the
 * instance, a record that does not name the execution the worker runs. A client dying before
 * its start is stored leaves nothing; after, and before its record, a start without a record,
 * which the worker writes, while racers reading the same state are told "duplicate". A winner
 * dying before it corrects the record leaves a loser's PENDING record or the placeholder: both
 * say "a start is pending", so every later start the policy may refuse is refused, and the
 * worker's first write for the stored start (an unconditional put) replaces them. Limits, as
 * before this scheme: a start whose PubAck did not come is in doubt and its record is taken
 * back, so until it is retried a racer may be told DT_OK and then be refused by the worker; a
 * loser that dies before writing its placeholder leaves its PENDING record, and a retry of that
 * same losing start made before the winner or the worker rewrites the record is told DT_OK
 * (both callers would have to fail mid-call); and past the hub's duplicate window (2 minutes) a
 * start whose record was never written no longer shares its identity with later readers.
 * Generated IDs (cannot be taken) and TERMINATE_AND_REPLACE (never refused) keep the
 * execution's identity "<id>/<execution>/start/0" and skip the read.
 */
#include "client_int.h"

#include <stdio.h>
#include <string.h>

typedef struct start_ids {
    char instance[DT_CLIENT_ID_BUF];
    char execution[DT_CLIENT_ID_BUF];
    char dedupe[2 * DT_CLIENT_ID_BUF + 32];
} start_ids;

static dt_status check_tags(dt_client *c, const dt_client_start_options *o)
{
    if (o->ntags > DT_CLIENT_TAGS_MAX || (o->ntags > 0 && o->tags == NULL)) {
        return dt__client_fail(c, DT_EINVAL, "at most %d tags, given as an array",
                               DT_CLIENT_TAGS_MAX);
    }
    for (size_t i = 0; i < o->ntags; i++) {
        if (o->tags[i].key == NULL || o->tags[i].key[0] == '\0' || o->tags[i].value == NULL) {
            return dt__client_fail(c, DT_EINVAL, "tag %zu needs a non-empty key and a value", i);
        }
        if (strncmp(o->tags[i].key, "dt.", 3) == 0) {
            /* The runtime's own (START_ID_TAG); readers drop them, so it would vanish silently. */
            return dt__client_fail(c, DT_EINVAL,
                                   "tag key '%s': keys starting with 'dt.' are reserved",
                                   o->tags[i].key);
        }
    }
    return DT_OK;
}

static bool subject_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= DT_BROKER_NAME_BUF || s[0] == '.' || s[n - 1] == '.') {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p <= ' ' || *p > '~' || (p[0] == '.' && p[1] == '.')) {
            return false;
        }
    }
    return true;
}

static dt_status check_options(dt_client *c, const char *name, const dt_client_start_options *o)
{
    dt_status st = dt__client_check_name(c, "orchestration name", name);
    if (st == DT_OK && o->instance_id != NULL) {
        st = dt__client_check_id(c, "instance ID", o->instance_id);
    }
    if (st == DT_OK && o->instance_id != NULL && o->instance_id[0] == '@') {
        st = dt__client_fail(c, DT_EINVAL,
                             "invalid instance ID '%.64s': IDs starting with '@' are entity IDs",
                             o->instance_id);
    }
    if (st == DT_OK && o->execution_id != NULL) {
        st = dt__client_check_id(c, "execution ID", o->execution_id);
    }
    if (st != DT_OK) {
        return st;
    }
    if (o->version != NULL && strlen(o->version) > DT_NAME_MAX) {
        return dt__client_fail(c, DT_EINVAL, "version longer than %d bytes", DT_NAME_MAX);
    }
    if (o->input == NULL && o->input_len > 0) {
        return dt__client_fail(c, DT_EINVAL, "input_len without input");
    }
    if ((unsigned)o->reuse_policy > DT_CLIENT_REUSE_IGNORE) {
        return dt__client_fail(c, DT_EINVAL, "unknown reuse policy %d", (int)o->reuse_policy);
    }
    if (o->start_at_ms < 0) {
        return dt__client_fail(c, DT_EINVAL, "start_at_ms must be >= 0");
    }
    if (o->result_subject != NULL && !subject_valid(o->result_subject)) {
        return dt__client_fail(c, DT_EINVAL, "invalid result subject '%.64s'", o->result_subject);
    }
    return check_tags(c, o);
}

static dt_status make_ids(dt_client *c, const dt_client_start_options *o, start_ids *ids)
{
    if (o->instance_id != NULL) {
        memcpy(ids->instance, o->instance_id, strlen(o->instance_id) + 1);
    } else {
        dt__random_uuid(ids->instance);
    }
    if (o->execution_id != NULL) {
        memcpy(ids->execution, o->execution_id, strlen(o->execution_id) + 1);
    } else {
        dt__random_uuid(ids->execution);
        dt__uuid_compact(ids->execution); /* the form of execution IDs */
    }
    dt_status st =
        dt__msg_id(ids->dedupe, sizeof(ids->dedupe), ids->instance, ids->execution, "start", 0);
    return st == DT_OK ? DT_OK : dt__client_fail(c, st, "start: message identity too long");
}

static Dtpb__Payload *payload_new(dt__arena *a, const void *data, size_t len)
{
    Dtpb__Payload *p = dt__arena_alloc(a, sizeof(*p));
    if (p != NULL) {
        dtpb__payload__init(p);
        p->value.data = (uint8_t *)data;
        p->value.len = len;
    }
    return p;
}

/* Tags as map entries of ExecutionStartedEvent (n may be 0). */
static Dtpb__ExecutionStartedEvent__TagsEntry **tags_new(dt__arena *a,
                                                         const dt_client_start_options *o)
{
    Dtpb__ExecutionStartedEvent__TagsEntry **t = dt__arena_calloc(a, o->ntags + 1, sizeof(*t));
    for (size_t i = 0; t != NULL && i < o->ntags; i++) {
        t[i] = dt__arena_alloc(a, sizeof(*t[i]));
        if (t[i] == NULL) {
            return NULL;
        }
        dtpb__execution_started_event__tags_entry__init(t[i]);
        t[i]->key = (char *)o->tags[i].key;
        t[i]->value = (char *)o->tags[i].value;
    }
    return t;
}

/* The ExecutionStarted event's body; everything in `a` (strings borrowed). NULL: no memory. */
static Dtpb__ExecutionStartedEvent *
started_new(dt__arena *a, const char *name, const dt_client_start_options *o, const start_ids *ids)
{
    Dtpb__ExecutionStartedEvent *es = dt__arena_alloc(a, sizeof(*es));
    Dtpb__OrchestrationInstance *oi = dt__arena_alloc(a, sizeof(*oi));
    Dtpb__Payload *exec = payload_new(a, ids->execution, strlen(ids->execution));
    Dtpb__ExecutionStartedEvent__TagsEntry **tags = tags_new(a, o);
    if (es == NULL || oi == NULL || exec == NULL || tags == NULL) {
        return NULL;
    }
    dtpb__orchestration_instance__init(oi);
    oi->instance_id = (char *)ids->instance;
    oi->execution_id = exec;
    dtpb__execution_started_event__init(es);
    es->name = (char *)name;
    es->orchestration_instance = oi;
    es->n_tags = o->ntags;
    es->tags = tags;
    bool ok = true;
    if (o->version != NULL) {
        ok = (es->version = payload_new(a, o->version, strlen(o->version))) != NULL;
    }
    if (o->input != NULL) {
        ok = (es->input = payload_new(a, o->input, o->input_len)) != NULL && ok;
    }
    if (o->start_at_ms > 0) {
        ok = (es->scheduled_start_timestamp = dt__ts_from_ms(a, o->start_at_ms)) != NULL && ok;
    }
    return ok ? es : NULL;
}

/* The OrchestrationMessage carrying ExecutionStarted; everything in `a`. */
static dt_status build_start(dt_client *c, dt__arena *a, const char *name,
                             const dt_client_start_options *o, const start_ids *ids,
                             Dtpb__OrchestrationMessage **out)
{
    Dtpb__OrchestrationMessage *m = dt__arena_alloc(a, sizeof(*m));
    Dtpb__HistoryEvent *ev = dt__emit_new(a, -1, dt__now_ms());
    Dtpb__ExecutionStartedEvent *es = started_new(a, name, o, ids);
    if (m == NULL || ev == NULL || es == NULL) {
        return dt__client_fail(c, DT_ENOMEM, "start: out of memory");
    }
    ev->event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev->execution_started = es;
    dt__orch_msg_init(m, ids->instance, ids->execution, ev, ids->dedupe);
    m->reuse_policy = (Dtpb__InstanceIdReusePolicy)o->reuse_policy;
    m->result_subject = (char *)(o->result_subject != NULL ? o->result_subject : "");
    *out = m;
    return DT_OK;
}

/* The tag of a client-written PENDING record that holds its start's identity when that came
 * from the state read, so that a retry of the start (which then reads this record) sends the
 * same identity. Tags under "dt." are the runtime's: workers and the client's readers drop them. */
#define START_ID_TAG "dt.start_id"

/* The PENDING status record of the new execution (shares the start message's fields); with
 * `start_id`, the START_ID_TAG tag too. */
static dt_status build_pending(dt_client *c, dt__arena *a, const Dtpb__OrchestrationMessage *m,
                               const char *start_id, uint8_t **out, size_t *out_len)
{
    const Dtpb__ExecutionStartedEvent *es = m->event->execution_started;
    Dtpb__InstanceStatus s;
    dtpb__instance_status__init(&s);
    s.instance_id = m->instance_id;
    s.name = es->name;
    s.execution_id = m->execution_id;
    s.runtime_status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING;
    s.created_at = m->event->timestamp;
    s.last_updated_at = m->event->timestamp;
    s.input = es->input;
    s.version = es->version;
    /* Same layout of the map entry (key = 1, value = 2) in both messages. */
    size_t n = es->n_tags + (start_id != NULL ? 1 : 0);
    Dtpb__InstanceStatus__TagsEntry **t = dt__arena_calloc(a, n + 1, sizeof(*t));
    for (size_t i = 0; t != NULL && i < n; i++) {
        t[i] = dt__arena_alloc(a, sizeof(*t[i]));
        if (t[i] == NULL) {
            t = NULL;
            break;
        }
        dtpb__instance_status__tags_entry__init(t[i]);
        t[i]->key = i < es->n_tags ? es->tags[i]->key : START_ID_TAG;
        t[i]->value = i < es->n_tags ? es->tags[i]->value : (char *)start_id;
    }
    s.n_tags = n;
    s.tags = t;
    *out = t != NULL ? dt__pack(a, &s.base, out_len) : NULL;
    return *out != NULL ? DT_OK : dt__client_fail(c, DT_ENOMEM, "start: out of memory");
}

/* What goes with the start message: the status-record write the reuse policy chose. */
typedef enum rec_write {
    REC_CREATE, /* no record seen: create the PENDING record */
    REC_UPDATE, /* a finished execution's record: replace it at the revision read */
    REC_NONE    /* leave the record: a retry of this start, or a running instance replaced */
} rec_write;

/* One start in flight. Everything is in the call's arena or the struct. */
typedef struct start_req {
    start_ids ids;
    char key[DT__CLIENT_KEY_BUF];
    dt_client_reuse_policy policy;
    Dtpb__OrchestrationMessage *m;
    uint8_t *rec; /* the packed PENDING record */
    size_t rec_len;
    rec_write write;
    uint64_t read_rev;   /* REC_UPDATE: the revision of the record read */
    uint64_t create_rev; /* REC_CREATE after a read: the delete marker's revision (0: none) */
    uint8_t *prev;       /* REC_UPDATE: that record, packed (to restore it) */
    size_t prev_len;
    dt_status write_st;   /* outcome of the record write */
    uint64_t written_rev; /* its revision when write_st is DT_OK */
    /* The record was read first and the start's identity derived from the state read (see the
     * file comment): a duplicate PubAck then means another start for that state was stored. */
    bool state_id;
    bool duplicate; /* the start's PubAck said "duplicate" */
    bool ignored;   /* policy IGNORE found an unfinished instance: nothing is sent */
} start_req;

static bool same_execution(const Dtpb__InstanceStatus *cur, const start_ids *ids)
{
    return cur->execution_id != NULL && strcmp(cur->execution_id, ids->execution) == 0;
}

/* A retry that finds its own PENDING record sends the identity the record holds (the one its
 * first attempt derived from the state it read); otherwise, and once a worker rewrote the
 * record, the execution's own identity (the worker applies a start of the current execution
 * once). */
static void retry_identity(start_req *r, const Dtpb__InstanceStatus *cur)
{
    for (size_t i = 0; i < cur->n_tags; i++) {
        const char *v = cur->tags[i]->value;
        if (strcmp(cur->tags[i]->key, START_ID_TAG) == 0 && v != NULL &&
            strlen(v) < sizeof(r->ids.dedupe)) {
            memcpy(r->ids.dedupe, v, strlen(v) + 1);
            return;
        }
    }
}

/* Applies the reuse policy to the record `cur` (revision rev): DT_OK with r->write (and the
 * record kept for a restore) chosen, or DT_EEXIST. */
static dt_status decide(dt_client *c, dt__arena *a, start_req *r, Dtpb__InstanceStatus *cur,
                        uint64_t rev)
{
    if (same_execution(cur, &r->ids)) {
        r->write = REC_NONE; /* a retry of this start: its identity drops the repeat */
        retry_identity(r, cur);
        return DT_OK;
    }
    bool finished = dt__client_status_finished(cur->runtime_status);
    if (finished && r->policy != DT_CLIENT_REUSE_ERROR) {
        r->write = REC_UPDATE;
        r->read_rev = rev;
        r->prev = dt__pack(a, &cur->base, &r->prev_len);
        return r->prev != NULL ? DT_OK : dt__client_fail(c, DT_ENOMEM, "start: out of memory");
    }
    if (r->policy == DT_CLIENT_REUSE_TERMINATE_AND_REPLACE) {
        r->write = REC_NONE; /* running: the worker terminates it and writes the new record */
        return DT_OK;
    }
    if (r->policy == DT_CLIENT_REUSE_IGNORE) {
        r->write = REC_NONE;
        r->ignored = true; /* it stays as it is: nothing to send */
        return DT_OK;
    }
    return dt__client_fail(
        c, DT_EEXIST, "instance '%s' already exists (status %s)%s", r->ids.instance,
        dt_client_runtime_status_name((dt_client_runtime_status)cur->runtime_status),
        finished ? "; use reuse policy replace to start it again" : "");
}

/* The identity of a start decided on the state at revision `rev` (0: the key never had an
 * entry): every caller that read the same state sends the same identity, so JetStream stores
 * exactly one of their starts. */
static dt_status state_identity(dt_client *c, start_req *r, uint64_t rev)
{
    int n = snprintf(r->ids.dedupe, sizeof(r->ids.dedupe), "%s/@%llu/start/0", r->ids.instance,
                     (unsigned long long)rev);
    if (n < 0 || (size_t)n >= sizeof(r->ids.dedupe)) {
        return dt__client_fail(c, DT_ETOOLARGE, "start: message identity too long");
    }
    r->state_id = true;
    return DT_OK;
}

/* Reads the record (deletes included) and applies the policy to it; no record: create one. A
 * start that may go ahead on what was read takes its identity from that state. */
static dt_status check_reuse(dt_client *c, dt__arena *a, start_req *r)
{
    Dtpb__InstanceStatus *cur = NULL;
    uint64_t rev = 0;
    dt_status st = dt__client_status_last(c, a, r->ids.instance, &cur, &rev);
    if (st == DT_OK && cur == NULL) {
        r->write = REC_CREATE;
        r->create_rev = rev;
    } else if (st == DT_OK) {
        st = decide(c, a, r, cur, rev);
    }
    if (st != DT_OK || r->write == REC_NONE) {
        return st; /* refused, or a retry of this start: its own identity drops the repeat */
    }
    return state_identity(c, r, rev);
}

/* The record write chosen, made alone (synchronous): outcome in r->write_st, revision in
 * r->written_rev. */
static void write_record(dt_client *c, start_req *r)
{
    uint64_t expect = r->write == REC_CREATE ? r->create_rev : r->read_rev;
    r->write_st =
        dt__client_kv_write(c, r->key, r->rec, r->rec_len, expect, false, &r->written_rev);
    if (r->write == REC_CREATE && r->write_st == DT_ECONFLICT) {
        r->write_st = DT_EEXIST; /* written since the read */
    }
}

/* Takes back the record written for a start JetStream did not accept: deletes a created one,
 * restores a replaced one; either only while it is still ours (the revision written). */
static void take_back_record(dt_client *c, const start_req *r)
{
    if (r->write_st != DT_OK) {
        return;
    }
    if (r->write == REC_CREATE) {
        (void)dt__client_kv_write(c, r->key, NULL, 0, r->written_rev, true, NULL);
    } else {
        (void)dt__client_kv_write(c, r->key, r->prev, r->prev_len, r->written_rev, false, NULL);
    }
}

/* The record write's outcome from its PubAck: a create (expected: no entry, or the delete
 * marker read) that conflicts found a record, DT_EEXIST as a KV create says it; without a read
 * the conflict may be a delete marker, which a KV create overwrites: try that alone. */
static void record_outcome(dt_client *c, start_req *r, const dt_broker_pub_result *res)
{
    r->write_st = res->status;
    r->written_rev = res->status == DT_OK ? res->stream_seq : 0;
    if (r->write != REC_CREATE || r->write_st != DT_ECONFLICT) {
        return;
    }
    if (r->state_id) {
        r->write_st = DT_EEXIST; /* written since the read */
    } else {
        write_record(c, r); /* create_rev is 0: a KV create */
    }
}

/* The start's failure from the publisher's result (it names the subject), into c->err. */
static dt_status start_failed(dt_client *c, dt_broker_publisher *pub, dt_status st)
{
    size_t n = 0;
    const dt_broker_pub_result *res = dt_broker_publisher_results(pub, &n);
    return dt__client_fail(c, st, "%s",
                           n >= 1 && res[0].status != DT_OK && res[0].error != NULL
                               ? res[0].error
                               : dt_broker_publisher_errmsg(pub));
}

/* Adds the start and its record write to `pub` and waits for both PubAcks (one round trip: the
 * client's connection writes at once). The start's outcome is returned, the record's is in r. */
static dt_status send_both(dt_client *c, dt_broker_publisher *pub, const dt_broker_outmsg *start,
                           start_req *r)
{
    char subject[2 * DT_BROKER_NAME_BUF];
    dt_broker_outmsg rec;
    uint64_t expect = r->write == REC_CREATE ? r->create_rev : r->read_rev;
    dt_status st = dt_broker_publisher_add(pub, start, 0);
    if (st != DT_OK) {
        return dt__client_fail(c, st, "%s", dt_broker_publisher_errmsg(pub));
    }
    r->write_st = dt__client_kv_outmsg(c, r->key, r->rec, r->rec_len, expect, subject, &rec);
    if (r->write_st == DT_OK) {
        r->write_st = dt_broker_publisher_add(pub, &rec, 1);
    }
    (void)dt_broker_publisher_wait(pub, c->request_timeout_ms);
    size_t n = 0;
    const dt_broker_pub_result *res = dt_broker_publisher_results(pub, &n);
    if (n == 2) {
        record_outcome(c, r, &res[1]);
    }
    if (n < 1 || res[0].status != DT_OK) {
        take_back_record(c, r);
        return start_failed(c, pub, n >= 1 ? res[0].status : DT_EBROKER);
    }
    r->duplicate = res[0].duplicate;
    return DT_OK;
}

/*
 * Sends the start and, behind it, the record write, through a publisher of the client's pool;
 * returns the start's outcome (the record's is in r->write_st). Both leave in this order on the
 * connection, so a client that dies between them leaves at most a start without its record.
 */
static dt_status send_start(dt_client *c, dt__arena *a, start_req *r)
{
    if (r->write == REC_NONE) {
        return dt__client_publish_orch(c, a, r->m, NULL);
    }
    char subject[DT_BROKER_NAME_BUF];
    dt_broker_outmsg om;
    dt_broker_publisher *pub = NULL;
    dt_status st = dt__client_orch_outmsg(c, a, r->m, subject, &om);
    if (st == DT_OK) {
        st = dt__client_pub_take(c, &pub);
    }
    if (st == DT_OK) {
        st = send_both(c, pub, &om, r);
        dt__client_pub_put(c, pub);
    }
    return st;
}

/* The record a losing start leaves in place of its own: PENDING, no execution, no name. It says
 * what is true (a start of this instance is pending; its caller writes the real record) and
 * never names an execution that will not run. */
static dt_status build_placeholder(dt_client *c, dt__arena *a, const start_req *r, uint8_t **out,
                                   size_t *out_len)
{
    Dtpb__InstanceStatus s;
    dtpb__instance_status__init(&s);
    s.instance_id = (char *)r->ids.instance;
    s.runtime_status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING;
    s.created_at = r->m->event->timestamp;
    s.last_updated_at = r->m->event->timestamp;
    *out = dt__pack(a, &s.base, out_len);
    return *out != NULL ? DT_OK : dt__client_fail(c, DT_ENOMEM, "start: out of memory");
}

/* This start lost: another one for the same state was stored. A record it wrote is turned into
 * the placeholder at the revision written (a conflict: the winner or the worker wrote since). */
static dt_status lost_race(dt_client *c, dt__arena *a, const start_req *r)
{
    uint8_t *ph = NULL;
    size_t len = 0;
    if (r->write_st == DT_OK && build_placeholder(c, a, r, &ph, &len) == DT_OK) {
        (void)dt__client_kv_write(c, r->key, ph, len, r->written_rev, false, NULL);
    }
    return dt__client_fail(c, DT_EEXIST,
                           "instance '%s' was started by another caller at the same time; this "
                           "start was not stored",
                           r->ids.instance);
}

/* Whether the winner may overwrite `cur`: a PENDING record of another execution is a losing
 * caller's (or its placeholder), since this start is the one stored for the state read. */
static bool overwritable(const Dtpb__InstanceStatus *cur, const start_req *r)
{
    return cur->runtime_status == DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_PENDING &&
           !same_execution(cur, &r->ids);
}

/* How often the winner retries its record against concurrent writes (each retry means another
 * writer got in between; two racers need at most two). */
#define WIN_ATTEMPTS 4

/* This start won but its record write found another: make the record name this execution,
 * unless it already does or the worker wrote a newer one. Failures leave it to the worker. */
static void won_race(dt_client *c, dt__arena *a, start_req *r)
{
    for (int i = 0; i < WIN_ATTEMPTS; i++) {
        Dtpb__InstanceStatus *cur = NULL;
        uint64_t rev = 0;
        if (dt__client_status_last(c, a, r->ids.instance, &cur, &rev) != DT_OK) {
            return;
        }
        dt_status st;
        if (cur == NULL) {
            st = dt__client_kv_write(c, r->key, r->rec, r->rec_len, 0, false, NULL);
        } else if (overwritable(cur, r)) {
            st = dt__client_kv_write(c, r->key, r->rec, r->rec_len, rev, false, NULL);
        } else {
            return; /* ours already, or the worker's */
        }
        if (st != DT_EEXIST && st != DT_ECONFLICT) {
            return;
        }
    }
}

/*
 * After the start was accepted: a create that found a record nobody read means the worker
 * already wrote this execution's record, or another caller started the same ID at this moment;
 * apply the policy to what is there. Other write failures are left to the worker.
 */
static dt_status settle_record(dt_client *c, dt__arena *a, start_req *r)
{
    if (r->state_id && r->duplicate) {
        return lost_race(c, a, r);
    }
    if (r->state_id) {
        if (r->write_st == DT_EEXIST || r->write_st == DT_ECONFLICT) {
            won_race(c, a, r);
        }
        return DT_OK;
    }
    if (r->write != REC_CREATE || r->write_st != DT_EEXIST) {
        return DT_OK;
    }
    Dtpb__InstanceStatus *cur = NULL;
    uint64_t rev = 0;
    if (dt__client_status_read(c, a, r->ids.instance, &cur, &rev) != DT_OK) {
        return DT_OK; /* deleted meanwhile, or unreadable: the worker writes its record */
    }
    dt_status st = decide(c, a, r, cur, rev);
    if (st == DT_EEXIST) {
        return dt__client_fail(
            c, st,
            "instance '%s' was started by another caller at the same time (status %s); this "
            "start was stored and the worker refuses the later of the two",
            r->ids.instance,
            dt_client_runtime_status_name((dt_client_runtime_status)cur->runtime_status));
    }
    if (st == DT_OK && r->write == REC_UPDATE) {
        write_record(c, r); /* DT_ECONFLICT: the worker wrote meanwhile, and its record wins */
    }
    /* The start is stored: only the race is worth failing for (a retry would start again). */
    return st == DT_EEXIST ? st : DT_OK;
}

/* Builds the start message, its PENDING record and the status key into `r`. */
static dt_status prepare(dt_client *c, dt__arena *a, const char *name,
                         const dt_client_start_options *o, start_req *r)
{
    r->policy = o->reuse_policy;
    r->write = REC_CREATE;
    dt_status st = make_ids(c, o, &r->ids);
    if (st == DT_OK) {
        st = build_start(c, a, name, o, &r->ids, &r->m);
    }
    if (st == DT_OK && dt__status_key(r->ids.instance, r->key, sizeof(r->key)) != DT_OK) {
        st = dt__client_fail(c, DT_EINVAL, "no status key for '%s'", r->ids.instance);
    }
    return st;
}

/* Whether the policy may refuse this start, so that the record must be read before it is sent:
 * a random UUID cannot be taken, and terminate-and-replace is never refused. */
static bool read_first(const dt_client_start_options *o)
{
    return o->instance_id != NULL && o->reuse_policy != DT_CLIENT_REUSE_TERMINATE_AND_REPLACE;
}

dt_status dt_client_schedule(dt_client *c, const char *name, const dt_client_start_options *user,
                             char *out_id, size_t out_len)
{
    dt_client_start_options copy; /* the caller's struct as this release lays it out */
    dt_client_start_options_init(&copy);
    if (user != NULL) {
        dt_status rs = dt__options_read(&copy, sizeof(copy), user, sizeof(copy));
        if (rs != DT_OK) {
            return dt__client_fail(c, rs, "start options: struct_size %s",
                                   rs == DT_EVERSION ? "of a newer release with fields set"
                                                     : "invalid");
        }
    }
    const dt_client_start_options *o = &copy;
    if (out_id != NULL && out_len < DT_CLIENT_ID_BUF) {
        return dt__client_fail(c, DT_EINVAL, "out_id needs %d bytes", DT_CLIENT_ID_BUF);
    }
    dt_status st = check_options(c, name, o);
    if (st == DT_OK) {
        st = dt__client_ensure_hub(c);
    }
    if (st != DT_OK) {
        return st;
    }
    dt__arena *a = dt__arena_create(0);
    start_req *r = a != NULL ? dt__arena_calloc(a, 1, sizeof(*r)) : NULL;
    if (r == NULL) {
        dt__arena_destroy(a);
        return dt__client_fail(c, DT_ENOMEM, "start: out of memory");
    }
    st = prepare(c, a, name, o, r);
    dt__span *span = st == DT_OK ? dt__client_trace_start(c, a, name, o, r->m) : NULL;
    if (st == DT_OK && read_first(o)) {
        st = check_reuse(c, a, r);
    }
    if (st == DT_OK && !r->ignored) {
        st = build_pending(c, a, r->m, r->state_id ? r->ids.dedupe : NULL, &r->rec, &r->rec_len);
    }
    dt__client_waiter *track = NULL;
    if (st == DT_OK && !r->ignored) {
        /* Registered before the start is sent: a wait for it then needs no read (waits.c). */
        track = r->write != REC_NONE ? dt__client_track_begin(c, r->key) : NULL;
        st = send_start(c, a, r);
    }
    if (st == DT_OK && !r->ignored) {
        st = settle_record(c, a, r);
    }
    /* Tracked only where the record is the PENDING one this start wrote, at written_rev. */
    bool own_record = st == DT_OK && !r->duplicate && r->write != REC_NONE && r->write_st == DT_OK;
    dt__client_track_end(c, track, own_record ? r->rec : NULL, r->rec_len,
                         own_record ? r->written_rev : 0);
    if (st == DT_EEXIST && r->policy == DT_CLIENT_REUSE_IGNORE) {
        st = DT_OK; /* another start of the ID won a race: this one has no effect, as asked */
    }
    dt__client_trace_end(span, st);
    if (st == DT_OK && out_id != NULL) {
        memcpy(out_id, r->ids.instance, strlen(r->ids.instance) + 1);
    }
    dt__arena_destroy(a);
    return st;
}
