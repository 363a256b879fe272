/*
 * Status reads and the record writes of the client, served by the hub's status bucket
 * (DT_<hub>_STATUS), which the worker owning an instance writes on every status change. Reads
 * take the key's last entry (delete markers included, so a revision names a state); writes are
 * JetStream publishes to "$KV.<bucket>.<key>" with the expectation a KV create, update or delete
 * makes; both are thread-safe broker calls. Waiting is in waits.c; a wait that may not block
 * (timeout 0) is a plain read.
 */
#include "client_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

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

dt_status dt__client_decode_record(dt_client *c, dt__arena *a, const char *id, const void *value,
                                   size_t len, Dtpb__InstanceStatus **out)
{
    Dtpb__InstanceStatus *s = (Dtpb__InstanceStatus *)dt__pb_unpack(
        a, &dtpb__instance_status__descriptor, len, (const uint8_t *)value);
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
                                 Dtpb__InstanceStatus **out, uint64_t *out_rev)
{
    Dtpb__InstanceStatus *s = NULL;
    uint64_t rev = 0;
    dt_status st = dt__client_status_last(c, a, id, &s, &rev);
    if (st == DT_OK && s == NULL) {
        return dt__client_fail(c, DT_ENOTFOUND, "no instance '%s'", id);
    }
    if (st == DT_OK) {
        *out = s;
        if (out_rev != NULL) {
            *out_rev = rev;
        }
    }
    return st;
}

dt_status dt__client_status_last(dt_client *c, dt__arena *a, const char *id,
                                 Dtpb__InstanceStatus **out, uint64_t *out_rev)
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
        return dt__client_fail(c, st, "read status of '%s': %s", id, DT__CLIENT_BERR(c));
    }
    *out = NULL;
    if (e.op == DT_BROKER_KV_PUT) {
        st = dt__client_decode_record(c, a, id, e.value, e.len, out);
    }
    *out_rev = e.revision;
    dt_broker_kv_entry_clear(&e);
    return st;
}

dt_status dt__client_kv_outmsg(dt_client *c, const char *key, const void *data, size_t len,
                               uint64_t expect_rev, char *subject, dt_broker_outmsg *out)
{
    int n = snprintf(subject, (size_t)2 * DT_BROKER_NAME_BUF, "%s%s", c->status_prefix, key);
    if (n < 0 || (size_t)n >= (size_t)2 * DT_BROKER_NAME_BUF) {
        return dt__client_fail(c, DT_ETOOLARGE, "status key '%.64s' too long", key);
    }
    *out = (dt_broker_outmsg){.subject = subject,
                              .data = data,
                              .len = len,
                              .expect_last_subject_seq = expect_rev,
                              .expect_no_message = expect_rev == 0};
    return DT_OK;
}

/* One conditional publish of a record or delete marker (see dt__client_kv_write). */
static dt_status kv_publish(dt_client *c, const char *key, const void *data, size_t len,
                            uint64_t expect_rev, bool expect_none, bool del, uint64_t *out_rev)
{
    static const dt_broker_header del_hdr = {"KV-Operation", "DEL"};
    char subject[2 * DT_BROKER_NAME_BUF];
    dt_broker_outmsg om;
    dt_status st = dt__client_kv_outmsg(c, key, data, len, expect_rev, subject, &om);
    if (st != DT_OK) {
        return st;
    }
    om.expect_no_message = expect_none;
    if (del) {
        om.headers = &del_hdr;
        om.nheaders = 1;
    }
    dt_broker_puback ack;
    st = dt_broker_publish(c->b, &om, &ack);
    if (st == DT_OK && out_rev != NULL) {
        *out_rev = ack.stream_seq;
    }
    return st;
}

dt_status dt__client_kv_write(dt_client *c, const char *key, const void *data, size_t len,
                              uint64_t expect_rev, bool del, uint64_t *out_rev)
{
    if (expect_rev > 0 || del) {
        return kv_publish(c, key, data, len, expect_rev, false, del, out_rev);
    }
    /* A create: the key must have no entry, or a delete marker (written at the marker's
     * revision), as a KV create does. */
    dt_status st = kv_publish(c, key, data, len, 0, true, false, out_rev);
    if (st != DT_ECONFLICT) {
        return st;
    }
    dt_broker_kv_entry e = {0};
    st = dt_broker_kv_key_last(c->b, c->status_bucket, key, &e);
    if (st == DT_OK && e.op != DT_BROKER_KV_PUT) {
        st = kv_publish(c, key, data, len, e.revision, false, false, out_rev);
    } else if (st == DT_OK) {
        st = DT_EEXIST;
    }
    dt_broker_kv_entry_clear(&e);
    return st == DT_ECONFLICT ? DT_EEXIST : st;
}

/* Builds the public object from a decoded record; takes `a` (destroyed on failure). */
static dt_status make_instance(dt_client *c, dt__arena *a, Dtpb__InstanceStatus *s,
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
    Dtpb__InstanceStatus *s = NULL;
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

static bool started(int32_t s)
{
    return s != DT_CLIENT_PENDING;
}

/* timeout_ms 0: one read, no watch. */
static dt_status check_once(dt_client *c, dt__arena *a, const char *id, dt__client_wait_pred pred,
                            const char *what, Dtpb__InstanceStatus **out)
{
    dt_status st = dt__client_status_read(c, a, id, out, NULL);
    if (st == DT_OK && !pred((*out)->runtime_status)) {
        st = dt__client_fail(
            c, DT_ETIMEOUT, "instance '%s' did not %s yet (status %s)", id, what,
            dt_client_runtime_status_name((dt_client_runtime_status)(*out)->runtime_status));
    }
    return st;
}

static dt_status wait_for(dt_client *c, const char *id, int64_t timeout_ms, bool with_payloads,
                          dt__client_wait_pred pred, const char *what, dt_client_instance **out)
{
    if (dt__client_wait_enter(c) != DT_OK) {
        return DT_ECLOSED; /* destroy began: the client's error text may be gone */
    }
    dt__arena *a = NULL;
    Dtpb__InstanceStatus *s = NULL;
    dt_status st = begin(c, id, &a);
    if (st == DT_OK) {
        st = timeout_ms == 0 ? check_once(c, a, id, pred, what, &s)
                             : dt__client_wait(c, a, id, timeout_ms, pred, what, &s);
    }
    if (st != DT_OK || out == NULL) {
        dt__arena_destroy(a);
    } else {
        st = make_instance(c, a, s, with_payloads, out);
    }
    dt__client_wait_leave(c);
    return st;
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
