/* Seeds of fuzz_query_request, fuzz_query_response and fuzz_status_record: requests a client
 * sends, and what the worker's query service answers over a store holding the recorded
 * histories (fuzz_seeds.h). */
#include <string.h>

#include "fuzz.h"
#include "fuzz_seeds.h"

static void ask(dt__store *s, const char *name, Dt__QueryRequest *req)
{
    seed_put_msg("fuzz_query_request", name, &req->base);
    dt__arena *a = dt__arena_create(0);
    FUZZ_CHECK(a != NULL);
    Dt__QueryResponse resp = DT__QUERY_RESPONSE__INIT;
    char err[512] = "";
    dt_status st = fuzz_query_answer(s, a, req, &resp, err, sizeof(err));
    resp.status = (int32_t)st;
    if (st != DT_OK) {
        resp.error = err;
    }
    seed_put_msg("fuzz_query_response", name, &resp.base);
    for (size_t i = 0;
         resp.result_case == DT__QUERY_RESPONSE__RESULT_LIST && i < resp.list->n_instances; i++) {
        char rec[160];
        snprintf(rec, sizeof(rec), "%s-%s", name, resp.list->instances[i]->instance_id);
        seed_put_msg("fuzz_status_record", rec, &resp.list->instances[i]->base);
    }
    dt__arena_destroy(a);
}

static void lists(dt__store *s)
{
    Dt__QueryRequest req = DT__QUERY_REQUEST__INIT;
    Dt__ListRequest lr = DT__LIST_REQUEST__INIT;
    Dt__InstanceFilter f = DT__INSTANCE_FILTER__INIT;
    req.kind_case = DT__QUERY_REQUEST__KIND_LIST;
    req.list = &lr;
    ask(s, "list-all", &req);
    lr.with_payloads = 1;
    ask(s, "list-payloads", &req);
    lr.limit = 2;
    lr.page_token = "order-2";
    ask(s, "list-page", &req);
    Dt__OrchestrationStatus sts[] = {DT__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED,
                                     DT__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED};
    Dt__Timestamp from = DT__TIMESTAMP__INIT, to = DT__TIMESTAMP__INIT;
    from.seconds = 1;
    to.seconds = 4000000000LL;
    to.nanos = 500000000;
    f.n_statuses = 2;
    f.statuses = sts;
    f.name = "fuzz_main";
    f.created_from = &from;
    f.created_to = &to;
    f.instance_id_prefix = "order-";
    lr.filter = &f;
    lr.page_token = "";
    lr.limit = 0;
    ask(s, "list-filter", &req);
}

static void histories(dt__store *s, const fuzz_history *h, size_t n)
{
    Dt__QueryRequest req = DT__QUERY_REQUEST__INIT;
    Dt__HistoryRequest hr = DT__HISTORY_REQUEST__INIT;
    req.kind_case = DT__QUERY_REQUEST__KIND_HISTORY;
    req.history = &hr;
    for (size_t i = 0; i < n; i++) {
        char name[160];
        snprintf(name, sizeof(name), "history-%s", h[i].instance_id);
        hr.instance_id = h[i].instance_id;
        ask(s, name, &req);
    }
    hr.instance_id = "no such instance";
    ask(s, "history-invalid-id", &req);
}

static void purges(void)
{
    Dt__QueryRequest req = DT__QUERY_REQUEST__INIT;
    Dt__PurgeRequest pr = DT__PURGE_REQUEST__INIT;
    Dt__InstanceFilter f = DT__INSTANCE_FILTER__INIT;
    Dt__OrchestrationStatus st = DT__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED;
    req.kind_case = DT__QUERY_REQUEST__KIND_PURGE;
    req.purge = &pr;
    pr.instance_id = "order-3";
    seed_put_msg("fuzz_query_request", "purge-one", &req.base);
    pr.instance_id = "";
    f.n_statuses = 1;
    f.statuses = &st;
    pr.filter = &f;
    seed_put_msg("fuzz_query_request", "purge-filter", &req.base);
    Dt__QueryResponse resp = DT__QUERY_RESPONSE__INIT;
    Dt__PurgeResponse p = DT__PURGE_RESPONSE__INIT;
    p.deleted = 3;
    resp.result_case = DT__QUERY_RESPONSE__RESULT_PURGE;
    resp.purge = &p;
    seed_put_msg("fuzz_query_response", "purge-3", &resp.base);
}

void seeds_queries(const fuzz_history *h, size_t n)
{
    char *dir = NULL;
    dt__store *s = fuzz_store_create(h, n, &dir);
    lists(s);
    histories(s, h, n);
    purges();
    fuzz_store_destroy(s, dir);
}
