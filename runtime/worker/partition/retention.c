/*
 * Retention: the partition purges its instances that finished longer ago than the hub's policy
 * allows (runtime/protocol/retention.c; set with dt_client_retention_set or dtctl hub
 * retention). Checked every retention_check_ms (the policy is read again each time, so a change
 * applies from the next check); a check purges at most RETENTION_BATCH instances, each through
 * the partition log like a purge by hand, then deletes its status record. Runs on the partition
 * thread between batches, so it needs no lock and never races an episode of the same instance.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "partition_int.h"
#include "purge_int.h"

#define RETENTION_BATCH 256

#define ST(x) (1u << DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_##x)

/* Opens bucket `k` of the hub into *kv unless open (tried again at the next check). */
static dt_status open_kv(dt__partition *pt, dt_broker_bucket k, dt_broker_kv **kv)
{
    char name[DT_BROKER_NAME_BUF];
    if (*kv != NULL) {
        return DT_OK;
    }
    dt_status st = dt_broker_bucket_name(pt->w->hub, k, name, sizeof(name));
    return st == DT_OK ? dt_broker_kv_open(pt->w->broker, name, kv) : st;
}

/* The hub's policy; false when there is none (or it cannot be read now: next time). */
static bool read_policy(dt__partition *pt, dt__retention *out)
{
    dt_broker_kv_entry e = {0};
    dt_status st = dt_broker_kv_get(pt->meta_kv, DT__RETENTION_KEY, &e);
    bool ok = st == DT_OK && dt__retention_decode(e.value, e.len, out) == DT_OK;
    if (st == DT_OK && !ok) {
        dt__worker_log(pt->w, DT_LOG_WARN, NULL,
                       "partition %u: the hub's retention record is not a policy; ignored", pt->p);
    }
    dt_broker_kv_entry_clear(&e);
    return ok;
}

/* Purges one finished instance (store, log and status record); false when it could not. */
static bool purge_one(dt__partition *pt, const char *id, uint32_t mask)
{
    dt_status record = DT_OK;
    if (dt__purge_instance(pt->journal, pt->store, pt->epoch, pt->status_kv, id, mask, &record) !=
        DT_OK) {
        return false; /* restarted meanwhile (DT_ESTATE), gone, or the log refused: next time */
    }
    dt__row_cache_drop(pt->rows, id);
    dt__engine_evict(pt->engine, id);
    if (record != DT_OK) {
        dt__worker_log(pt->w, DT_LOG_WARN, id,
                       "partition %u: retention purged the instance but not its status record",
                       pt->p);
    }
    return true;
}

/* Purges up to `room` instances with a status in `mask` that finished before `before`. */
static size_t purge_older(dt__partition *pt, uint32_t mask, int64_t before, size_t room)
{
    dt__arena *a = dt__arena_create((size_t)16 * 1024);
    dt__instance_filter f = {.status_mask = mask, .completed_to_ms = before};
    dt__instance_page page = {0};
    size_t n = 0;
    if (a != NULL && dt__store_query(pt->store, &f, NULL, room, false, a, &page) == DT_OK) {
        for (size_t i = 0; i < page.n && !dt__journal_behind(pt->journal); i++) {
            n += purge_one(pt, page.rows[i].instance_id, mask) ? 1 : 0;
        }
    }
    dt__arena_destroy(a);
    return n;
}

void dt__retention_tick(dt__partition *pt)
{
    int64_t mono = dt__mono_ms();
    if (mono - pt->retention_checked_ms < pt->w->opt.retention_check_ms) {
        return;
    }
    pt->retention_checked_ms = mono;
    dt__retention r;
    /* The buckets are opened on first use, not at start-up: most hubs never set a policy. */
    if (open_kv(pt, DT_BROKER_BUCKET_META, &pt->meta_kv) != DT_OK || !read_policy(pt, &r) ||
        open_kv(pt, DT_BROKER_BUCKET_STATUS, &pt->status_kv) != DT_OK) {
        return;
    }
    const struct {
        uint32_t mask;
        int64_t age;
        const char *what;
    } rules[] = {{ST(COMPLETED), r.completed_ms, "completed"},
                 {ST(FAILED), r.failed_ms, "failed"},
                 {ST(TERMINATED) | ST(CANCELED), r.terminated_ms, "terminated"}};
    int64_t now = dt__now_ms();
    size_t left = RETENTION_BATCH;
    for (size_t k = 0; k < sizeof(rules) / sizeof(rules[0]) && left > 0; k++) {
        if (rules[k].age <= 0) {
            continue;
        }
        size_t n = purge_older(pt, rules[k].mask, now - rules[k].age, left);
        left -= n;
        if (n > 0) {
            dt__worker_log(pt->w, DT_LOG_INFO, NULL,
                           "partition %u: retention purged %zu %s instance(s) finished more than "
                           "%" PRId64 " ms ago",
                           pt->p, n, rules[k].what, rules[k].age);
        }
    }
}
