/*
 * svc_query.c: QueryInstances and ListInstanceIds (dt_client_list: asked of the workers that own
 * the partitions). Continuation tokens are dt_client_list's page tokens, passed through.
 *
 * QueryInstances: runtime statuses, created time range, instance ID prefix, page size
 * (max_instance_count, at most DT_CLIENT_PAGE_MAX) and payloads map onto the client filter;
 * task hub names other than this hub's give an empty page. ListInstanceIds: the runtime has no
 * completion time of its own, so the completed time range is applied to the last update of
 * finished instances (the time they finished), within each page; a page may then be short.
 */
#include <string.h>

#include "common_int.h"
#include "sidecar_int.h"

static size_t page_limit(int32_t n)
{
    if (n <= 0) {
        return DT_CLIENT_PAGE_DEFAULT;
    }
    return (size_t)n > DT_CLIENT_PAGE_MAX ? DT_CLIENT_PAGE_MAX : (size_t)n;
}

static bool statuses(dt_client_runtime_status *out, const Dtproto__OrchestrationStatus *in,
                     size_t n)
{
    if (n > 16) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = dt__svc_status_from_pb(in[i]);
    }
    return true;
}

static bool other_hub(dt__sidecar_svc *svc, const Dtproto__InstanceQuery *q)
{
    if (q->n_task_hub_names == 0) {
        return false;
    }
    for (size_t i = 0; i < q->n_task_hub_names; i++) {
        if (q->task_hub_names[i] != NULL &&
            strcmp(q->task_hub_names[i]->value, dt_client_hub(svc->client)) == 0) {
            return false;
        }
    }
    return true;
}

static void reply_page(dt__grpc_call *call, const dt_client_page *page, bool payloads)
{
    Dtproto__QueryInstancesResponse res = DTPROTO__QUERY_INSTANCES_RESPONSE__INIT;
    dt__arena *a = dt__arena_create(0);
    if (a == NULL) {
        dt__grpc_call_finish(call, DT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    size_t n = page != NULL ? page->n : 0;
    res.orchestration_state =
        n > 0 ? dt__arena_calloc(a, n, sizeof *res.orchestration_state) : NULL;
    for (size_t i = 0; i < n; i++) {
        res.orchestration_state[i] = dt__svc_state(a, &page->instances[i], payloads);
        if (res.orchestration_state[i] == NULL) {
            dt__grpc_call_finish(call, DT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            dt__arena_destroy(a);
            return;
        }
    }
    res.n_orchestration_state = n;
    res.continuation_token = page != NULL ? dt__svc_sv(a, page->next_page_token) : NULL;
    dt__svc_reply(call, &res.base);
    dt__arena_destroy(a);
}

static void query_instances(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__QueryInstancesRequest *r = (Dtproto__QueryInstancesRequest *)dt__svc_unpack(
        call, &dtproto__query_instances_request__descriptor);
    if (r == NULL) {
        return;
    }
    Dtproto__InstanceQuery empty = DTPROTO__INSTANCE_QUERY__INIT;
    const Dtproto__InstanceQuery *q = r->query != NULL ? r->query : &empty;
    dt_client_runtime_status st_list[16];
    if (!statuses(st_list, q->runtime_status, q->n_runtime_status)) {
        dt__svc_invalid(call, "too many runtime statuses");
        goto out;
    }
    if (other_hub(svc, q)) {
        reply_page(call, NULL, false);
        goto out;
    }
    dt_client_filter f;
    dt_client_filter_init(&f);
    f.statuses = st_list;
    f.nstatuses = q->n_runtime_status;
    f.instance_id_prefix = q->instance_id_prefix != NULL ? q->instance_id_prefix->value : NULL;
    f.created_from_ms = dt__svc_ts_ms(q->created_time_from);
    f.created_to_ms = dt__svc_ts_ms(q->created_time_to);
    const char *token = q->continuation_token != NULL && q->continuation_token->value[0] != 0
                            ? q->continuation_token->value
                            : NULL;
    dt_client_page *page = NULL;
    dt_status st = dt_client_list(svc->client, &f, token, page_limit(q->max_instance_count),
                                  q->fetch_inputs_and_outputs, &page);
    if (st != DT_OK) {
        dt__svc_fail(call, svc, st, "QueryInstances");
    } else {
        reply_page(call, page, q->fetch_inputs_and_outputs);
    }
    dt_client_page_free(page);
out:
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

/* Keeps the finished instances whose finishing time lies in [from, to) (0: no bound). */
static bool in_completed_range(const dt_client_instance *inst, int64_t from, int64_t to)
{
    if (from == 0 && to == 0) {
        return true;
    }
    if (!dt_client_runtime_status_finished(inst->runtime_status)) {
        return false;
    }
    return (from == 0 || inst->last_updated_at_ms >= from) &&
           (to == 0 || inst->last_updated_at_ms < to);
}

/* The IDs one ListInstanceIds answer collects (copies: each client page is freed in turn). */
typedef struct id_page {
    char **ids; /* room for `want` (at most DT_CLIENT_PAGE_MAX) */
    size_t n;
    char *token; /* where the next call goes on; NULL: nothing is left */
} id_page;

static void id_page_fini(id_page *p)
{
    for (size_t i = 0; i < p->n; i++) {
        dt_free(p->ids[i]);
    }
    dt_free(p->ids);
    dt_free(p->token);
}

/* Bounds the instances one call reads while it looks for finished ones in the completed-time
 * range: a narrow range over a large hub answers a short page and its token (the SDKs page on)
 * instead of scanning the whole hub in one call. */
#define LIST_SCAN_MAX 10000

/* Fills up to `want` IDs from the client's pages, starting at `token`. The completed-time range is
 * not a filter of dt_client_list, so the pages are read until the answer holds `want` matching
 * IDs: an answer of only the first page's matches would miss instances that match (a page of 100
 * finished instances might hold none of the range's), and the SDKs read one page when they ask
 * for one. Each client page asks for no more than what is still wanted, so the token returned
 * resumes exactly after the last instance examined. */
static dt_status collect_ids(dt__sidecar_svc *svc, const dt_client_filter *f, const char *token,
                             size_t want, int64_t from, int64_t to, id_page *out)
{
    char *cur = token != NULL ? dt_strdup(token) : NULL;
    if (token != NULL && cur == NULL) {
        return DT_ENOMEM;
    }
    out->ids = dt_calloc(want, sizeof *out->ids);
    if (out->ids == NULL) {
        dt_free(cur);
        return DT_ENOMEM;
    }
    size_t scanned = 0;
    dt_status st = DT_OK;
    for (;;) {
        dt_client_page *page = NULL;
        st = dt_client_list(svc->client, f, cur, want - out->n, false, &page);
        if (st != DT_OK) {
            break;
        }
        scanned += page->n;
        for (size_t i = 0; i < page->n; i++) {
            if (!in_completed_range(&page->instances[i], from, to)) {
                continue;
            }
            out->ids[out->n] = dt_strdup(page->instances[i].instance_id);
            if (out->ids[out->n] == NULL) {
                st = DT_ENOMEM;
                break;
            }
            out->n++;
        }
        dt_free(cur);
        cur = page->next_page_token != NULL ? dt_strdup(page->next_page_token) : NULL;
        bool lost = page->next_page_token != NULL && cur == NULL;
        dt_client_page_free(page);
        if (lost) {
            st = DT_ENOMEM;
        }
        if (st != DT_OK || cur == NULL || out->n >= want || scanned >= LIST_SCAN_MAX) {
            break;
        }
    }
    out->token = cur;
    return st;
}

static void list_instance_ids(dt__grpc_call *call, void *ctx)
{
    dt__sidecar_svc *svc = ctx;
    Dtproto__ListInstanceIdsRequest *r = (Dtproto__ListInstanceIdsRequest *)dt__svc_unpack(
        call, &dtproto__list_instance_ids_request__descriptor);
    if (r == NULL) {
        return;
    }
    dt_client_runtime_status st_list[16];
    if (!statuses(st_list, r->runtime_status, r->n_runtime_status)) {
        dt__svc_invalid(call, "too many runtime statuses");
        goto out;
    }
    dt_client_filter f;
    dt_client_filter_init(&f);
    f.statuses = st_list;
    f.nstatuses = r->n_runtime_status;
    const char *token = r->last_instance_key != NULL && r->last_instance_key->value[0] != 0
                            ? r->last_instance_key->value
                            : NULL;
    int64_t from = dt__svc_ts_ms(r->completed_time_from), to = dt__svc_ts_ms(r->completed_time_to);
    id_page ids = {0};
    dt_status st = collect_ids(svc, &f, token, page_limit(r->page_size), from, to, &ids);
    if (st != DT_OK) {
        dt__svc_fail(call, svc, st, "ListInstanceIds");
    } else {
        Dtproto__ListInstanceIdsResponse res = DTPROTO__LIST_INSTANCE_IDS_RESPONSE__INIT;
        res.instance_ids = ids.ids;
        res.n_instance_ids = ids.n;
        Dtproto__StringValue key = DTPROTO__STRING_VALUE__INIT;
        if (ids.token != NULL) {
            key.value = ids.token;
            res.last_instance_key = &key;
        }
        dt__svc_reply(call, &res.base);
    }
    id_page_fini(&ids);
out:
    protobuf_c_message_free_unpacked(&r->base, dt__pb_allocator());
}

const dt__sidecar_method dt__svc_query_methods[] = {
    {"QueryInstances", query_instances},
    {"ListInstanceIds", list_instance_ids},
    {NULL, NULL},
};
