/*
 * Status reads and waits, served by the hub's status bucket (DT_<hub>_STATUS), which the worker
 * owning an instance writes on every status change. Waiting is a watch of the instance's key
 * (the broker adapter's single-key watch: one round trip to arm, no stream lookup, no consumer
 * delete when done): it reports the current record first and then every change, so nothing is
 * missed between the caller's call and the watch, and nothing polls. A wait that may not block
 * (timeout 0) is a plain read instead.
 */
#include "client_int.h"

#include <string.h>
#include <strings.h>

/* The longest a single watch wait runs when the caller gave no bound (it is then renewed). */
#define UNBOUNDED_SLICE_MS 3600000

static const char *const status_names[] = {"RUNNING", "COMPLETED", "CONTINUED_AS_NEW",
                                           "FAILED",  "CANCELED",  "TERMINATED",
                                           "PENDING", "SUSPENDED"};

const char *dt_client_runtime_status_name(dt_client_runtime_status s)
{
    return ((unsigned)s < DT__ARRAY_LEN(status_names)) ? status_names[s] : "UNKNOWN";
}

dt_status dt_client_runtime_status_parse(const char *name, dt_client_runtime_status *out)
{
    for (size_t i = 0; name != NULL && i < DT__ARRAY_LEN(status_names); i++) {
        if (strcasecmp(name, status_names[i]) == 0) {
            *out = (dt_client_runtime_status)i;
            return DT_OK;
        }
    }
    return DT_EINVAL;
}

bool dt__client_status_finished(int32_t s)
{
    return s == DT_CLIENT_COMPLETED || s == DT_CLIENT_FAILED || s == DT_CLIENT_CANCELED ||
           s == DT_CLIENT_TERMINATED;
}

bool dt_client_runtime_status_finished(dt_client_runtime_status s)
{
    return dt__client_status_finished((int32_t)s);
}

static dt_status decode_record(dt_client *c, dt__arena *a, const char *id,
                               const dt_broker_kv_entry *e, Dt__InstanceStatus **out)
{
    Dt__InstanceStatus *s = (Dt__InstanceStatus *)dt__pb_unpack(a, &dt__instance_status__descriptor,
                                                                e->len, (const uint8_t *)e->value);
    if (s == NULL) {
        return dt__client_fail(c, DT_ECORRUPT, "the status record of '%s' is malformed", id);
    }
    *out = s;
    return DT_OK;
}

/* The status-bucket key of `id` into key (DT__CLIENT_KEY_BUF bytes). */
static dt_status status_key(dt_client *c, const char *id, char *key)
{
    dt_status st = dt__status_key(id, key, DT__CLIENT_KEY_BUF);
    return st == DT_OK ? st : dt__client_fail(c, st, "no status key for '%s'", id);
}

dt_status dt__client_status_read(dt_client *c, dt__arena *a, const char *id,
                                 Dt__InstanceStatus **out, uint64_t *out_rev)
{
    char key[DT__CLIENT_KEY_BUF];
    dt_status st = status_key(c, id, key);
    if (st != DT_OK) {
        return st;
    }
    dt_broker_kv_entry e = {0};
    st = dt_broker_kv_get(c->status_kv, key, &e);
    if (st == DT_ENOTFOUND) {
        return dt__client_fail(c, st, "no instance '%s'", id);
    }
    if (st != DT_OK) {
        return dt__client_fail(c, st, "read status of '%s': %s", id,
                               dt_broker_kv_errmsg(c->status_kv));
    }
    st = decode_record(c, a, id, &e, out);
    if (st == DT_OK && out_rev != NULL) {
        *out_rev = e.revision;
    }
    dt_broker_kv_entry_clear(&e);
    return st;
}

dt_status dt__client_status_last(dt_client *c, dt__arena *a, const char *id,
                                 Dt__InstanceStatus **out, uint64_t *out_rev)
{
    char key[DT__CLIENT_KEY_BUF];
    dt_status st = status_key(c, id, key);
    if (st != DT_OK) {
        return st;
    }
    dt_broker_kv_entry e = {0};
    st = dt_broker_kv_key_last(c->b, c->status_bucket, key, &e);
    if (st == DT_ENOTFOUND) {
        *out = NULL;
        *out_rev = 0;
        return DT_OK;
    }
    if (st != DT_OK) {
        return dt__client_fail(c, st, "read status of '%s': %s", id, dt_broker_errmsg(c->b));
    }
    *out = NULL;
    if (e.op == DT_BROKER_KV_PUT) {
        st = decode_record(c, a, id, &e, out);
    }
    *out_rev = e.revision;
    dt_broker_kv_entry_clear(&e);
    return st;
}

/* Builds the public object from a decoded record; takes `a` (destroyed on failure). */
static dt_status make_instance(dt_client *c, dt__arena *a, Dt__InstanceStatus *s,
                               bool with_payloads, dt_client_instance **out)
{
    if (with_payloads && s->payloads_omitted) {
        /* The record had to leave them out to fit a message: read them from the owner. */
        dt_status st = dt__client_status_complete(c, a, s);
        if (st != DT_OK) {
            dt__arena_destroy(a);
            return st;
        }
    }
    dt_client_instance *inst = dt__client_instance_new(a);
    if (inst == NULL || dt__client_instance_from_pb(a, s, with_payloads, inst) != DT_OK) {
        dt__arena_destroy(a);
        return dt__client_fail(c, DT_ENOMEM, "status: out of memory");
    }
    *out = inst;
    return DT_OK;
}

static dt_status begin(dt_client *c, const char *id, dt__arena **out_a)
{
    dt_status st = dt__client_check_id(c, "instance ID", id);
    if (st == DT_OK) {
        st = dt__client_ensure_hub(c);
    }
    if (st != DT_OK) {
        return st;
    }
    *out_a = dt__arena_create(0);
    return *out_a != NULL ? DT_OK : dt__client_fail(c, DT_ENOMEM, "out of memory");
}

dt_status dt_client_get_status(dt_client *c, const char *instance_id, bool with_payloads,
                               dt_client_instance **out)
{
    dt__arena *a = NULL;
    Dt__InstanceStatus *s = NULL;
    dt_status st = begin(c, instance_id, &a);
    if (st == DT_OK) {
        st = dt__client_status_read(c, a, instance_id, &s, NULL);
    }
    if (st != DT_OK) {
        dt__arena_destroy(a);
        return st;
    }
    return make_instance(c, a, s, with_payloads, out);
}

typedef bool (*wait_pred)(int32_t status);

static bool started(int32_t s)
{
    return s != DT_CLIENT_PENDING;
}

/* A wait: what to wait for, until when, and the text for a timeout. */
typedef struct wait_req {
    const char *id;
    wait_pred pred;
    int64_t timeout_ms; /* < 0: no bound */
    int64_t deadline;   /* monotonic ms */
    const char *what;   /* "start" / "complete" */
} wait_req;

/* Takes the watch's next entry into *io_rec: DT_OK (a record), DT_ETIMEOUT, DT_ENOTFOUND (no
 * record: unknown, or deleted by a purge) or a watch failure. *io_rec is NULL until the first
 * record. */
static dt_status watch_next(dt_client *c, dt__arena *a, dt_broker_kv_key_watch *w,
                            const wait_req *r, Dt__InstanceStatus **io_rec)
{
    dt_status st = DT_ETIMEOUT;
    dt_broker_kv_entry e = {0};
    do {
        int64_t left = r->timeout_ms < 0 ? UNBOUNDED_SLICE_MS : r->deadline - dt__mono_ms();
        st = left > 0 ? dt_broker_kv_key_watch_next(w, left, &e) : DT_ETIMEOUT;
    } while (st == DT_ETIMEOUT && r->timeout_ms < 0);
    if (st == DT_ETIMEOUT) {
        return dt__client_fail(c, st, "instance '%s' did not %s within %lld ms (status %s)", r->id,
                               r->what, (long long)r->timeout_ms,
                               *io_rec == NULL
                                   ? "unknown"
                                   : dt_client_runtime_status_name(
                                         (dt_client_runtime_status)(*io_rec)->runtime_status));
    }
    if (st == DT_OK && e.op == DT_BROKER_KV_PUT) {
        st = decode_record(c, a, r->id, &e, io_rec);
    } else if (st == DT_OK || st == DT_ENOTFOUND) {
        st = *io_rec == NULL ? dt__client_fail(c, DT_ENOTFOUND, "no instance '%s'", r->id)
                             : dt__client_fail(c, DT_ENOTFOUND, "instance '%s' was purged", r->id);
    } else {
        st = dt__client_fail(c, st, "watch status of '%s': %s", r->id,
                             dt_broker_kv_key_watch_errmsg(w));
    }
    dt_broker_kv_entry_clear(&e);
    return st;
}

/* Waits on a watch of the instance's key until the predicate holds for a record (*io_rec). The
 * watch reports the current record first, then every change. */
static dt_status watch_until(dt_client *c, dt__arena *a, const wait_req *r,
                             Dt__InstanceStatus **io_rec)
{
    char key[DT__CLIENT_KEY_BUF];
    dt_broker_kv_key_watch *w = NULL;
    dt_status st = dt__status_key(r->id, key, sizeof(key));
    if (st == DT_OK) {
        st = dt_broker_kv_key_watch_open(c->b, c->status_bucket, key, 0, &w);
    }
    if (st != DT_OK) {
        return dt__client_fail(c, st, "watch status of '%s': %s", r->id, dt_broker_errmsg(c->b));
    }
    do {
        st = watch_next(c, a, w, r, io_rec);
    } while (st == DT_OK && !r->pred((*io_rec)->runtime_status));
    dt_broker_kv_key_watch_close(w);
    return st;
}

/* timeout_ms 0: one read, no watch. */
static dt_status check_once(dt_client *c, dt__arena *a, const wait_req *r, Dt__InstanceStatus **out)
{
    dt_status st = dt__client_status_read(c, a, r->id, out, NULL);
    if (st == DT_OK && !r->pred((*out)->runtime_status)) {
        st = dt__client_fail(
            c, DT_ETIMEOUT, "instance '%s' did not %s yet (status %s)", r->id, r->what,
            dt_client_runtime_status_name((dt_client_runtime_status)(*out)->runtime_status));
    }
    return st;
}

static dt_status wait_for(dt_client *c, const char *id, int64_t timeout_ms, bool with_payloads,
                          wait_pred pred, const char *what, dt_client_instance **out)
{
    dt__arena *a = NULL;
    Dt__InstanceStatus *s = NULL;
    dt_status st = begin(c, id, &a);
    if (st == DT_OK) {
        wait_req r = {.id = id,
                      .pred = pred,
                      .timeout_ms = timeout_ms,
                      .deadline = dt__mono_ms() + timeout_ms,
                      .what = what};
        st = timeout_ms == 0 ? check_once(c, a, &r, &s) : watch_until(c, a, &r, &s);
    }
    if (st != DT_OK || out == NULL) {
        dt__arena_destroy(a);
        return st;
    }
    return make_instance(c, a, s, with_payloads, out);
}

dt_status dt_client_wait_for_start(dt_client *c, const char *instance_id, int64_t timeout_ms,
                                   bool with_payloads, dt_client_instance **out)
{
    return wait_for(c, instance_id, timeout_ms, with_payloads, started, "start", out);
}

dt_status dt_client_wait_for_completion(dt_client *c, const char *instance_id, int64_t timeout_ms,
                                        bool with_payloads, dt_client_instance **out)
{
    return wait_for(c, instance_id, timeout_ms, with_payloads, dt__client_status_finished,
                    "complete", out);
}
