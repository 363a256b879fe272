/*
 * query_int.h: the query service of one partition (internal, dt__query_ prefix).
 *
 * The worker that owns partition p answers the partition's rich reads over core NATS
 * request/reply on dt.<hub>.query.<p>: list (filter + keyset paging), history, and purge of
 * finished instances (one, or a batch by filter). Requests are Dtpb__QueryRequest, replies
 * Dtpb__QueryResponse (schema/dt_work.proto); docs/protocol.md describes them for other clients.
 *
 * The service opens its own dt__store handle on the partition's database: SQLite in WAL mode
 * lets it read while the partition thread writes, and purges are fenced by the epoch the owner
 * claimed (a purge after ownership moved fails with DT_EFENCED). Purging an instance also
 * deletes its record from the status bucket.
 *
 * Replies are bounded by the server's max payload: a list page is cut short (with a page token)
 * where the next instance would not fit; a history that does not fit is DT_ETOOLARGE. A purge by
 * filter deletes at most DT__QUERY_PURGE_BATCH instances per request; clients repeat the
 * request until it reports 0. A malformed request gets a DT_EDECODE reply.
 *
 * Threads: the store handle and the status bucket handle are used only on the subscription's
 * callback thread (nats.c delivers one message at a time). start and stop are called by the
 * partition thread; stop returns once no callback runs or will run.
 */
#ifndef DT_QUERY_INT_H
#define DT_QUERY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dt_broker.h"
#include "durabletask/status.h"
#include "journal/journal_int.h"

typedef struct dt__query_service dt__query_service;

/* Most instances one purge-by-filter request deletes. */
#define DT__QUERY_PURGE_BATCH 500
/* Page size of a list request with limit 0. */
#define DT__QUERY_PAGE_DEFAULT 100

/*
 * Subscribes to dt.<hub>.query.<partition> and starts answering. `b` is borrowed and must
 * outlive the service; hub and db_path are copied. epoch is the fencing epoch of the caller's
 * claim on the partition (purges are written with it). journal (borrowed, may be NULL) is the
 * partition's log, which every purge goes through like any store write; NULL writes purges to the
 * store only (tests of the service on its own). On DT_OK *out is the service (stop it
 * with dt__query_service_stop); on failure err (may be NULL) says why: DT_EINVAL, DT_EIO /
 * DT_ECORRUPT / DT_EVERSION from opening the store, DT_ENOTFOUND (no status bucket: no hub),
 * DT_EBROKER.
 */
dt_status dt__query_service_start(dt_broker *b, const char *hub, uint32_t partition,
                                  const char *db_path, dt__journal *journal, uint64_t epoch,
                                  dt__query_service **out, char *err, size_t errlen);

/* Unsubscribes (waiting for a running callback), closes the store and frees `q`. NULL accepted.
 * Must not be called from the service's own callback. */
void dt__query_service_stop(dt__query_service *q);

/* ---------------------------------------------------------------------------------------------
 * Internals shared by query.c (lifecycle, dispatch) and query_ops.c (the handlers) only.
 * ------------------------------------------------------------------------------------------- */

#include "arena_int.h"
#include "dt_work.pb-c.h"
#include "history/store_int.h"

struct dt__query_service {
    dt_broker *b;
    char hub[DT_BROKER_HUB_NAME_MAX + 1];
    uint32_t partition;
    uint64_t epoch;
    dt__journal *journal;    /* borrowed; NULL: purges go to the store only */
    dt__store *store;        /* callback thread only */
    dt_broker_kv *status_kv; /* callback thread only */
    dt_broker_sub *sub;
};

/* One request being answered: results go into r (arena memory), error text into err. */
typedef struct dt__query_ctx {
    dt__query_service *q;
    dt__arena *a;
    Dtpb__QueryResponse *r;
    char *err;
    size_t errlen;
    size_t budget; /* bytes the packed reply may take */
} dt__query_ctx;

dt_status dt__query_list(dt__query_ctx *x, const Dtpb__ListRequest *req);
dt_status dt__query_history(dt__query_ctx *x, const Dtpb__HistoryRequest *req);
dt_status dt__query_purge(dt__query_ctx *x, const Dtpb__PurgeRequest *req);
/* query_payload.c */
dt_status dt__query_payload(dt__query_ctx *x, const Dtpb__PayloadRequest *req);

#endif
