/*
 * Fuzz target: the worker's query service (runtime/worker/query/query.c, query_ops.c) answering a
 * QueryRequest that any client may publish to dt.<hub>.query.<p>: decoded, then listed (filters,
 * page tokens, limits, payloads) or a history read, over a real store holding the recorded
 * histories of fuzz_world.h. Purges are decoded but not run (they change the store and need the
 * status bucket); their filter is the list filter, which is.
 *
 * Properties: the reply packs and decodes (as the client will read it); a list never returns more
 * instances than asked for, and only ones that match the instance ID prefix; a failed request
 * carries an error text and no partial result.
 */
#include <string.h>

#include "fuzz.h"
#include "fuzz_world.h"
#include "query_int.h"

static dt__store *store;
static char *store_dir;

static void cleanup(void)
{
    fuzz_store_destroy(store, store_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    size_t n = 0;
    fuzz_history *h = fuzz_world_record(&n);
    store = fuzz_store_create(h, n, &store_dir);
    fuzz_world_free(h, n);
    atexit(cleanup);
    return 0;
}

static void check_list(const Dtpb__QueryRequest *req, const Dtpb__QueryResponse *back)
{
    const Dtpb__ListRequest *lr = req->list;
    size_t limit = lr->limit == 0 ? DT__QUERY_PAGE_DEFAULT : lr->limit;
    FUZZ_CHECK(back->list->n_instances <= limit);
    const char *prefix = lr->filter != NULL ? lr->filter->instance_id_prefix : "";
    for (size_t i = 0; i < back->list->n_instances; i++) {
        FUZZ_CHECK(strncmp(back->list->instances[i]->instance_id, prefix, strlen(prefix)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dt__arena *a = dt__arena_create(0);
    FUZZ_CHECK(a != NULL);
    Dtpb__QueryRequest *req = dtpb__query_request__unpack(dt__arena_pb_allocator(a), size, data);
    if (req != NULL && req->kind_case != DTPB__QUERY_REQUEST__KIND_PURGE) {
        Dtpb__QueryResponse r = DTPB__QUERY_RESPONSE__INIT;
        char err[512] = "";
        dt_status st = fuzz_query_answer(store, a, req, &r, err, sizeof(err));
        r.status = (int32_t)st;
        if (st != DT_OK) { /* as query.c replies */
            r.error = err;
            r.result_case = DTPB__QUERY_RESPONSE__RESULT__NOT_SET;
        }
        size_t len = 0;
        uint8_t *packed = fuzz_pb_pack(&r.base, &len);
        Dtpb__QueryResponse *back = dtpb__query_response__unpack(NULL, len, packed);
        FUZZ_CHECK(back != NULL && back->status == (int32_t)st);
        FUZZ_CHECK(st == DT_OK || (back->error[0] != '\0' && back->result_case == 0));
        if (back->result_case == DTPB__QUERY_RESPONSE__RESULT_LIST) {
            check_list(req, back);
        }
        dtpb__query_response__free_unpacked(back, NULL);
        free(packed);
    }
    dt__arena_destroy(a);
    return 0;
}
