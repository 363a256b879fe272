/*
 * purge_int.h: deleting one finished instance, the same way for a purge asked by a client
 * (query_ops.c) and for the hub's retention policy (retention.c). Internal to runtime/worker.
 */
#ifndef DT_PURGE_INT_H
#define DT_PURGE_INT_H

#include "dt_broker.h"
#include "history/store_int.h"
#include "journal/journal_int.h"

/*
 * Deletes instance `id` if its status is in `mask`: from the store through the partition log
 * (`j` NULL: the store alone, for tests), then its status record from `status_kv`. DT_ENOTFOUND
 * (absent) and DT_ESTATE (another status) change nothing; DT_EBUSY while the log is being read
 * back; other failures of the store or log. On DT_OK *record_st is the outcome of deleting the
 * status record (not DT_OK: the instance is gone, its record is not; purging it again finishes).
 */
dt_status dt__purge_instance(dt__journal *j, dt__store *s, uint64_t epoch, dt_broker_kv *status_kv,
                             const char *id, uint32_t mask, dt_status *record_st);

#endif
