/*
 * The hub's retention policy (runtime/protocol/retention.c): read and written in the hub's META
 * bucket; the workers apply it.
 */
#include <string.h>

#include "client_int.h"
#include "protocol_int.h"

static dt_status meta(dt_client *c, dt_broker_kv **out)
{
    char bucket[DT_BROKER_NAME_BUF];
    dt_status st = dt__client_ensure_hub(c);
    if (st == DT_OK) {
        st = dt_broker_bucket_name(c->hub, DT_BROKER_BUCKET_META, bucket, sizeof(bucket));
    }
    if (st == DT_OK) {
        st = dt_broker_kv_open(c->b, bucket, out);
        if (st != DT_OK) {
            return dt__client_fail(c, st, "retention: %s", DT__CLIENT_BERR(c));
        }
    }
    return st;
}

dt_status dt_client_retention_get(dt_client *c, dt_client_retention *out)
{
    memset(out, 0, sizeof(*out));
    dt_broker_kv *kv = NULL;
    dt_status st = meta(c, &kv);
    if (st != DT_OK) {
        return st;
    }
    dt_broker_kv_entry e = {0};
    st = dt_broker_kv_get(kv, DT__RETENTION_KEY, &e);
    if (st == DT_ENOTFOUND) {
        st = DT_OK; /* never set: keep everything */
    } else if (st != DT_OK) {
        st = dt__client_fail(c, st, "retention: %s", dt_broker_kv_errmsg(kv));
    } else {
        dt__retention r;
        st = dt__retention_decode(e.value, e.len, &r);
        if (st != DT_OK) {
            st = dt__client_fail(c, st, "retention: the hub's record is not a policy");
        }
        out->completed_ms = r.completed_ms;
        out->failed_ms = r.failed_ms;
        out->terminated_ms = r.terminated_ms;
    }
    dt_broker_kv_entry_clear(&e);
    dt_broker_kv_close(kv);
    return st;
}

dt_status dt_client_retention_set(dt_client *c, const dt_client_retention *r)
{
    dt__retention p = {r->completed_ms, r->failed_ms, r->terminated_ms};
    char *text = NULL;
    size_t len = 0;
    dt_status st = dt__retention_encode(&p, &text, &len);
    if (st != DT_OK) {
        return dt__client_fail(c, st,
                               st == DT_EINVAL ? "retention: ages must be >= 0 (0: keep)"
                                               : "retention: out of memory");
    }
    dt_broker_kv *kv = NULL;
    st = meta(c, &kv);
    if (st == DT_OK) {
        st = dt_broker_kv_put(kv, DT__RETENTION_KEY, text, len, NULL);
        if (st != DT_OK) {
            st = dt__client_fail(c, st, "retention: %s", dt_broker_kv_errmsg(kv));
        }
        dt_broker_kv_close(kv);
    }
    dt_free(text);
    return st;
}
