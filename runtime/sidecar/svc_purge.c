/*
 * svc_purge.c: PurgeInstances (dt_client_purge, _purge_recursive, _purge_where, and their
 * recursive forms): one instance, a filter (created time range and statuses; unfinished
 * statuses are ignored, as the runtime purges only finished instances) or a batch of IDs.
 *
 * An unknown instance purges nothing (deleted_instance_count 0, as the protocol's other
 * backends answer); an unfinished one is FAILED_PRECONDITION. The filter's timeout is not
 * applied: a purge runs partition by partition to its end (is_complete is always true).
 */
#include "common_int.h"
#include "sidecar_int.h"

static dt_status purge_one(dt__sidecar_svc *svc, const char *id, bool recursive, uint64_t *n)
{
    uint64_t k = 0;
    dt_status st = recursive ? dt_client_purge_recursive(svc->client, id, &k)
                             : dt_client_purge(svc->client, id);
    if (!recursive && st == DT_OK) {
        k = 1;
    }
    *n += k;
    return st == DT_ENOTFOUND ? DT_OK : st;
}

static dt_status purge_filter(dt__sidecar_svc *svc, const Dtproto__PurgeInstanceFilter *pf,
                              bool recursive, uint64_t *n)
{
    dt_client_runtime_status st_list[16];
    if (pf->n_runtime_status > 16) {
        return DT_EINVAL;
    }
    for (size_t i = 0; i < pf->n_runtime_status; i++) {
        st_list[i] = dt__svc_status_from_pb(pf->runtime_status[i]);
    }
    dt_client_filter f;
    dt_client_filter_init(&f);
    f.statuses = st_list;
    f.nstatuses = pf->n_runtime_status;
    f.created_from_ms = dt__svc_ts_ms(pf->created_time_from);
    f.created_to_ms = dt__svc_ts_ms(pf->created_time_to);
    return recursive ? dt_client_purge_where_recursive(svc->client, &f, n)
                     : dt_client_purge_where(svc->client, &f, n);
}

static void purge_instances(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__PurgeInstancesRequest *r = (Dtproto__PurgeInstancesRequest *)dt__svc_unpack(
        call, &dtproto__purge_instances_request__descriptor);
    if (r == NULL) {
        return;
    }
    uint64_t n = 0;
    dt_status st = DT_OK;
    switch (r->request_case) {
    case DTPROTO__PURGE_INSTANCES_REQUEST__REQUEST_INSTANCE_ID:
        st = purge_one(svc, r->instance_id, r->recursive, &n);
        break;
    case DTPROTO__PURGE_INSTANCES_REQUEST__REQUEST_PURGE_INSTANCE_FILTER:
        st = purge_filter(svc, r->purge_instance_filter, r->recursive, &n);
        break;
    case DTPROTO__PURGE_INSTANCES_REQUEST__REQUEST_INSTANCE_BATCH:
        for (size_t i = 0; i < r->instance_batch->n_instance_ids && st == DT_OK; i++) {
            st = purge_one(svc, r->instance_batch->instance_ids[i], r->recursive, &n);
        }
        break;
    default:
        dt__svc_invalid(call, "PurgeInstances needs an instance ID, a filter or a batch");
        goto out;
    }
    if (st != DT_OK) {
        dt__svc_fail(call, svc, st, "PurgeInstances");
        goto out;
    }
    Dtproto__PurgeInstancesResponse res = DTPROTO__PURGE_INSTANCES_RESPONSE__INIT;
    Dtproto__BoolValue complete = DTPROTO__BOOL_VALUE__INIT;
    complete.value = true;
    res.deleted_instance_count = n > INT32_MAX ? INT32_MAX : (int32_t)n;
    res.is_complete = &complete;
    dt__svc_reply(call, &res.base);
out:
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

const dt__sidecar_method dt__svc_purge_methods[] = {
    {"PurgeInstances", purge_instances},
    {NULL, NULL},
};
