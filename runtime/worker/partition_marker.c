/*
 * The partition's birth certificate: a worker that has opened a partition's store makes sure the
 * hub's META bucket holds `partition.<p>` (when, by whom). A worker that finds the store file
 * missing while the record exists knows the partition had history, and refuses to start it
 * empty: recreating the file silently made its instances vanish (status records said RUNNING,
 * lists left them out, their events were accepted and then dropped). An operator who accepts the
 * loss sets recreate_missing_stores. Hubs from before the record get it when a worker next opens
 * an existing store.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common_int.h"
#include "partition_int.h"

static dt_status open_meta(dt_worker *w, dt_broker_kv **out, char *key, size_t keylen, uint32_t p)
{
    char bucket[DT_BROKER_NAME_BUF];
    snprintf(key, keylen, "partition.%" PRIu32, p);
    dt_status st = dt_broker_bucket_name(w->hub, DT_BROKER_BUCKET_META, bucket, sizeof(bucket));
    return st == DT_OK ? dt_broker_kv_open(w->broker, bucket, out) : st;
}

dt_status dt__partition_marker_check(dt__partition *pt, const char *db_path, char *err,
                                     size_t errlen)
{
    dt_worker *w = pt->w;
    if (w->opt.recreate_missing_stores) {
        return DT_OK;
    }
    dt_broker_kv *kv = NULL;
    char key[32];
    dt_status st = open_meta(w, &kv, key, sizeof(key), pt->p);
    dt_broker_kv_entry e = {0};
    if (st == DT_OK) {
        st = dt_broker_kv_get(kv, key, &e);
    }
    if (st == DT_OK) {
        dt__errf(err, errlen,
                 "store %s is missing, but the hub has history for this partition (%.*s); "
                 "restore the file, or start a worker with recreate_missing_stores to start the "
                 "partition empty (its instances are then lost)",
                 db_path, (int)e.len, e.value != NULL ? (const char *)e.value : "");
        st = DT_ENOTFOUND;
    } else if (st == DT_ENOTFOUND) {
        st = DT_OK; /* a new partition */
    } else {
        dt__errf(err, errlen, "reading the hub's record of the partition: %s",
                 kv != NULL ? dt_broker_kv_errmsg(kv) : dt_broker_errmsg(w->broker));
    }
    dt_broker_kv_entry_clear(&e);
    dt_broker_kv_close(kv);
    return st;
}

void dt__partition_marker_write(dt__partition *pt)
{
    dt_worker *w = pt->w;
    dt_broker_kv *kv = NULL;
    char key[32], rec[DT__LEASES_ID_MAX + 96];
    int n = snprintf(rec, sizeof(rec), "{\"created_ms\":%" PRId64 ",\"worker\":\"%s\"}",
                     dt__now_ms(), w->worker_id);
    dt_status st = open_meta(w, &kv, key, sizeof(key), pt->p);
    if (st == DT_OK) {
        st = dt_broker_kv_create(kv, key, rec, (size_t)n, NULL);
    }
    if (st != DT_OK && st != DT_EEXIST) {
        /* Best effort: written at the next open; until then a lost file goes unnoticed. */
        dt__worker_log(w, DT_LOG_WARN, NULL, "partition %u: the hub's record of it: %s", pt->p,
                       kv != NULL ? dt_broker_kv_errmsg(kv) : dt_broker_errmsg(w->broker));
    }
    dt_broker_kv_close(kv);
}
