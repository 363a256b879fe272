/* Seeds of fuzz_query_request, fuzz_query_response and fuzz_status_record: requests a client
 * sends, and what the worker's query service answers over a store holding the recorded
 * histories (fuzz_seeds.h). */
#include <string.h>

#include "fuzz.h"
#include "fuzz_seeds.h"

static void ask(dt__store *s, const char *name, Dtpb__QueryRequest *req)
{
    seed_put_msg("fuzz_query_request", name, &req->base);
    dt__arena *a = dt__arena_create(0);
    FUZZ_CHECK(a != NULL);
    Dtpb__QueryResponse resp = DTPB__QUERY_RESPONSE__INIT;
    char err[512] = "";
    dt_status st = fuzz_query_answer(s, a, req, &resp, err, sizeof(err));
    resp.status = (int32_t)st;
    if (st != DT_OK) {
        resp.error = err;
    }
    seed_put_msg("fuzz_query_response", name, &resp.base);
    for (size_t i = 0;
         resp.result_case == DTPB__QUERY_RESPONSE__RESULT_LIST && i < resp.list->n_instances; i++) {
        char rec[160];
        snprintf(rec, sizeof(rec), "%s-%s", name, resp.list->instances[i]->instance_id);
        seed_put_msg("fuzz_status_record", rec, &resp.list->instances[i]->base);
    }
    dt__arena_destroy(a);
}

static void lists(dt__store *s)
{
    Dtpb__QueryRequest req = DTPB__QUERY_REQUEST__INIT;
    Dtpb__ListRequest lr = DTPB__LIST_REQUEST__INIT;
    Dtpb__InstanceFilter f = DTPB__INSTANCE_FILTER__INIT;
    req.kind_case = DTPB__QUERY_REQUEST__KIND_LIST;
    req.list = &lr;
    ask(s, "list-all", &req);
    lr.with_payloads = 1;
    ask(s, "list-payloads", &req);
    lr.limit = 2;
    lr.page_token = "order-2";
    ask(s, "list-page", &req);
    Dtpb__OrchestrationStatus sts[] = {DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED,
                                       DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED};
    Dtpb__Timestamp from = DTPB__TIMESTAMP__INIT, to = DTPB__TIMESTAMP__INIT;
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
    Dtpb__QueryRequest req = DTPB__QUERY_REQUEST__INIT;
    Dtpb__HistoryRequest hr = DTPB__HISTORY_REQUEST__INIT;
    req.kind_case = DTPB__QUERY_REQUEST__KIND_HISTORY;
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
    Dtpb__QueryRequest req = DTPB__QUERY_REQUEST__INIT;
    Dtpb__PurgeRequest pr = DTPB__PURGE_REQUEST__INIT;
    Dtpb__InstanceFilter f = DTPB__INSTANCE_FILTER__INIT;
    Dtpb__OrchestrationStatus st = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_TERMINATED;
    req.kind_case = DTPB__QUERY_REQUEST__KIND_PURGE;
    req.purge = &pr;
    pr.instance_id = "order-3";
    seed_put_msg("fuzz_query_request", "purge-one", &req.base);
    pr.instance_id = "";
    f.n_statuses = 1;
    f.statuses = &st;
    pr.filter = &f;
    seed_put_msg("fuzz_query_request", "purge-filter", &req.base);
    Dtpb__QueryResponse resp = DTPB__QUERY_RESPONSE__INIT;
    Dtpb__PurgeResponse p = DTPB__PURGE_RESPONSE__INIT;
    p.deleted = 3;
    resp.result_case = DTPB__QUERY_RESPONSE__RESULT_PURGE;
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
