/*
 * The partition query service (runtime/worker/query/query*.c) answering the client's list, history
 * and purge over a real nats-server, from real SQLite stores filled with dt__store_commit: three
 * partitions, filters and paging across them, payloads on request, history round trip, purge of
 * one instance and by filter (with the status records), refusals (running instance, fenced
 * epoch), malformed requests, and a partition without an owner.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "history/store_int.h"
#include "test_client.h"
#include "worker/query/query_int.h"

#define P 3

typedef struct qfix {
    tc_fixture *t;
    char *dir;
    dt__store *stores[P];
    uint64_t epochs[P];
    dt__query_service *svc[P];
} qfix;

typedef struct seed {
    const char *id;
    const char *name;
    int32_t status;
    int64_t created_ms;
} seed;

/* 15 instances; their partitions come from the hash: 0 gets 6, 1 gets 6, 2 gets 3 (order-07,
 * ship-07, audit-3). */
static const seed seeds[] = {
    {"order-01", "Order", DT_CLIENT_RUNNING, 1000},
    {"order-02", "Order", DT_CLIENT_COMPLETED, 1100},
    {"order-03", "Order", DT_CLIENT_FAILED, 1200},
    {"order-04", "Order", DT_CLIENT_COMPLETED, 1300},
    {"order-05", "Order", DT_CLIENT_TERMINATED, 1400},
    {"order-06", "Order", DT_CLIENT_PENDING, 1500},
    {"order-07", "Order", DT_CLIENT_COMPLETED, 1600},
    {"ship-01", "Ship", DT_CLIENT_RUNNING, 2000},
    {"ship-02", "Ship", DT_CLIENT_COMPLETED, 2100},
    {"ship-03", "Ship", DT_CLIENT_SUSPENDED, 2200},
    {"ship-04", "Ship", DT_CLIENT_COMPLETED, 2300},
    {"ship-07", "Ship", DT_CLIENT_RUNNING, 2400},
    {"audit-1", "Audit", DT_CLIENT_CANCELED, 3000},
    {"audit-2", "Audit", DT_CLIENT_RUNNING, 3100},
    {"audit-3", "Audit", DT_CLIENT_FAILED, 3200},
};
#define NSEEDS DT__ARRAY_LEN(seeds)

static uint32_t part(const char *id)
{
    return dt__partition_of(id, P);
}

static void start_service(qfix *q, uint32_t p)
{
    char path[512], err[256] = "";
    snprintf(path, sizeof(path), "%s/p%03u.db", q->dir, p);
    dt_status st = dt__query_service_start(q->t->b, q->t->hub, p, path, NULL, q->epochs[p],
                                           &q->svc[p], err, sizeof(err));
    if (st != DT_OK) {
        fail_msg("query service %u: %s (%s)", p, dt_status_name(st), err);
    }
}

/* The start record the worker keeps in the tags column (a packed ExecutionStartedEvent), with
 * a user tag and one of the runtime's own ("dt." prefix, not shown to clients). */
static dt__blob start_record(qfix *q)
{
    Dtpb__ExecutionStartedEvent__TagsEntry t0, t1;
    dtpb__execution_started_event__tags_entry__init(&t0);
    t0.key = "team";
    t0.value = "ops";
    dtpb__execution_started_event__tags_entry__init(&t1);
    t1.key = "dt.result_subject";
    t1.value = "results.x";
    Dtpb__ExecutionStartedEvent__TagsEntry *tags[] = {&t0, &t1};
    Dtpb__ExecutionStartedEvent es;
    dtpb__execution_started_event__init(&es);
    es.name = "Ship";
    es.n_tags = 2;
    es.tags = tags;
    size_t len = 0;
    uint8_t *b = dt__pack(q->t->a, &es.base, &len);
    return (dt__blob){b, len};
}

/* Commits every seed into its partition's store, with input "in-<id>", and a status record. */
static void seed_all(qfix *q)
{
    for (size_t i = 0; i < NSEEDS; i++) {
        const seed *s = &seeds[i];
        char *input = dt__arena_alloc(q->t->a, 64);
        snprintf(input, 64, "in-%s", s->id);
        dt__instance_row row = {.instance_id = s->id,
                                .execution_id = "exec-1",
                                .name = s->name,
                                .runtime_status = s->status,
                                .created_ms = s->created_ms,
                                .last_updated_ms = s->created_ms + 5,
                                .input = {(const uint8_t *)input, strlen(input)}};
        if (strcmp(s->id, "ship-02") == 0) {
            row.tags = start_record(q);
        }
        dt__episode_commit e = {.instance = &row};
        uint32_t p = part(s->id);
        TB_EXPECT(dt__store_commit(q->stores[p], q->epochs[p], &e, 1), DT_OK,
                  dt__store_errmsg(q->stores[p]));
        tc_put_simple(q->t, s->id, s->status);
    }
}

static int setup(void **state)
{
    qfix *q = calloc(1, sizeof(*q));
    q->t = tc_fixture_new("query", P, 0);
    q->dir = dt_test_mkdtemp("dt-query");
    assert_non_null(q->dir);
    for (uint32_t p = 0; p < P; p++) {
        char path[512], err[256] = "";
        snprintf(path, sizeof(path), "%s/p%03u.db", q->dir, p);
        assert_int_equal(dt__store_open(path, NULL, &q->stores[p], err, sizeof(err)), DT_OK);
        assert_int_equal(dt__store_claim(q->stores[p], "test-worker", &q->epochs[p]), DT_OK);
        start_service(q, p);
    }
    seed_all(q);
    *state = q;
    return 0;
}

static int teardown(void **state)
{
    qfix *q = *state;
    for (uint32_t p = 0; p < P; p++) {
        dt__query_service_stop(q->svc[p]);
        dt__store_close(q->stores[p]);
    }
    dt_test_rmtree(q->dir);
    free(q->dir);
    tc_fixture_free(q->t);
    free(q);
    return 0;
}

/* Lists with `flt`, `limit` per page, following tokens; returns the ids joined by ',' sorted
 * (the order across partitions is by partition) and the number of pages. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *list_all(qfix *q, const dt_client_filter *flt, size_t limit, int *out_pages,
                            char *buf, size_t len)
{
    const char *ids[64];
    size_t n = 0;
    int pages = 0;
    char token[1024] = "";
    do {
        dt_client_page *pg = NULL;
        TC_EXPECT(q->t, dt_client_list(q->t->c, flt, token, limit, false, &pg), DT_OK);
        pages++;
        assert_true(pg->n <= (limit > 0 ? limit : DT_CLIENT_PAGE_DEFAULT));
        for (size_t i = 0; i < pg->n; i++) {
            assert_true(n < DT__ARRAY_LEN(ids));
            ids[n++] = dt__arena_strdup(q->t->a, pg->instances[i].instance_id);
            assert_null(pg->instances[i].input);
        }
        snprintf(token, sizeof(token), "%s", pg->next_page_token ? pg->next_page_token : "");
        dt_client_page_free(pg);
        assert_true(pages < 100);
    } while (token[0] != '\0');
    qsort(ids, n, sizeof(ids[0]), cmp_str);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i > 0 ? "," : "", ids[i]);
    }
    if (out_pages != NULL) {
        *out_pages = pages;
    }
    return buf;
}

static void test_list_all_pages_across_partitions(void **state)
{
    qfix *q = *state;
    char buf[1024];
    int pages = 0;
    const char *all = "audit-1,audit-2,audit-3,order-01,order-02,order-03,order-04,order-05,"
                      "order-06,order-07,ship-01,ship-02,ship-03,ship-04,ship-07";
    assert_string_equal(list_all(q, NULL, 0, &pages, buf, sizeof(buf)), all);
    assert_int_equal(pages, 1);
    /* Pages of 2 and of 5: no repeats, no gaps (list_all checks the union). */
    assert_string_equal(list_all(q, NULL, 2, &pages, buf, sizeof(buf)), all);
    assert_true(pages >= 8);
    assert_string_equal(list_all(q, NULL, 5, &pages, buf, sizeof(buf)), all);
    assert_true(pages >= 3);

    /* One page's order: partition by partition, instance ID order inside. */
    dt_client_page *pg = NULL;
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, NULL, 0, true, &pg), DT_OK);
    assert_int_equal(pg->n, NSEEDS);
    assert_null(pg->next_page_token);
    for (size_t i = 1; i < pg->n; i++) {
        uint32_t pa = part(pg->instances[i - 1].instance_id),
                 pb = part(pg->instances[i].instance_id);
        assert_true(pa < pb || (pa == pb && strcmp(pg->instances[i - 1].instance_id,
                                                   pg->instances[i].instance_id) < 0));
    }
    /* Fields and payloads. */
    for (size_t i = 0; i < pg->n; i++) {
        const dt_client_instance *in = &pg->instances[i];
        char want[64];
        snprintf(want, sizeof(want), "in-%s", in->instance_id);
        assert_string_equal(in->input, want);
        assert_string_equal(in->execution_id, "exec-1");
        assert_true(in->last_updated_at_ms == in->created_at_ms + 5);
        if (strcmp(in->instance_id, "ship-02") == 0) {
            assert_int_equal(in->ntags, 1);
            assert_string_equal(in->tags[0].key, "team");
            assert_string_equal(in->tags[0].value, "ops");
        } else {
            assert_int_equal(in->ntags, 0);
        }
    }
    dt_client_page_free(pg);
}

static void test_list_filters(void **state)
{
    qfix *q = *state;
    char buf[1024];
    dt_client_runtime_status done[] = {DT_CLIENT_COMPLETED};
    dt_client_filter f1 = {.statuses = done, .nstatuses = 1};
    assert_string_equal(list_all(q, &f1, 2, NULL, buf, sizeof(buf)),
                        "order-02,order-04,order-07,ship-02,ship-04");
    dt_client_runtime_status live[] = {DT_CLIENT_RUNNING, DT_CLIENT_SUSPENDED, DT_CLIENT_PENDING};
    dt_client_filter f2 = {.statuses = live, .nstatuses = 3, .name = "Order"};
    assert_string_equal(list_all(q, &f2, 0, NULL, buf, sizeof(buf)), "order-01,order-06");
    dt_client_filter f3 = {.instance_id_prefix = "ship-0"};
    assert_string_equal(list_all(q, &f3, 1, NULL, buf, sizeof(buf)),
                        "ship-01,ship-02,ship-03,ship-04,ship-07");
    dt_client_filter f4 = {.created_from_ms = 1200, .created_to_ms = 2100};
    assert_string_equal(list_all(q, &f4, 3, NULL, buf, sizeof(buf)),
                        "order-03,order-04,order-05,order-06,order-07,ship-01");
    dt_client_filter f5 = {.name = "Nope"};
    assert_string_equal(list_all(q, &f5, 0, NULL, buf, sizeof(buf)), "");
}

static void test_list_bad_arguments(void **state)
{
    qfix *q = *state;
    dt_client_page *pg = NULL;
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, "garbage", 0, false, &pg), DT_EINVAL);
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, "7:", 0, false, &pg), DT_EINVAL);
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, "1:abc", 0, false, &pg), DT_EINVAL);
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, NULL, DT_CLIENT_PAGE_MAX + 1, false, &pg),
              DT_EINVAL);
    dt_client_runtime_status bad[] = {(dt_client_runtime_status)99};
    dt_client_filter f = {.statuses = bad, .nstatuses = 1};
    TC_EXPECT(q->t, dt_client_list(q->t->c, &f, NULL, 0, false, &pg), DT_EINVAL);
    /* A token naming a partition start is accepted. */
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, "2:", 0, false, &pg), DT_OK);
    assert_int_equal(pg->n, 3);
    for (size_t i = 0; i < pg->n; i++) {
        assert_int_equal(part(pg->instances[i].instance_id), 2);
    }
    dt_client_page_free(pg);
}

/* Packs an event into the fixture arena as a blob. */
static dt__blob event_blob(qfix *q, Dtpb__HistoryEvent *e, int32_t id, int64_t ts)
{
    e->event_id = id;
    e->timestamp = tc_ts(q->t, ts);
    size_t len = 0;
    uint8_t *b = dt__pack(q->t->a, &e->base, &len);
    return (dt__blob){b, len};
}

static void test_history_round_trip(void **state)
{
    qfix *q = *state;
    const char *id = "order-04";
    Dtpb__ExecutionStartedEvent es;
    dtpb__execution_started_event__init(&es);
    es.name = "Order";
    es.input = tc_payload(q->t, "in-order-04");
    Dtpb__TaskScheduledEvent ts;
    dtpb__task_scheduled_event__init(&ts);
    ts.name = "Charge";
    ts.input = tc_payload(q->t, "42");
    Dtpb__TaskCompletedEvent tc;
    dtpb__task_completed_event__init(&tc);
    tc.task_scheduled_id = 0;
    tc.result = tc_payload(q->t, "\"ok\"");
    Dtpb__ExecutionCompletedEvent ec;
    dtpb__execution_completed_event__init(&ec);
    ec.orchestration_status = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
    ec.result = tc_payload(q->t, "done");
    Dtpb__HistoryEvent e[4];
    for (int i = 0; i < 4; i++) {
        dtpb__history_event__init(&e[i]);
    }
    e[0].event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    e[0].execution_started = &es;
    e[1].event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED;
    e[1].task_scheduled = &ts;
    e[2].event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED;
    e[2].task_completed = &tc;
    e[3].event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED;
    e[3].execution_completed = &ec;
    dt__blob blobs[4] = {event_blob(q, &e[0], -1, 5000), event_blob(q, &e[1], 0, 5001),
                         event_blob(q, &e[2], -1, 5002), event_blob(q, &e[3], -1, 5003)};
    dt__instance_row row = {.instance_id = id,
                            .execution_id = "exec-1",
                            .name = "Order",
                            .runtime_status = DT_CLIENT_COMPLETED,
                            .created_ms = 1300,
                            .last_updated_ms = 5003};
    dt__episode_commit c = {.instance = &row, .new_events = blobs, .n_new_events = 4};
    uint32_t p = part(id);
    TB_EXPECT(dt__store_commit(q->stores[p], q->epochs[p], &c, 1), DT_OK,
              dt__store_errmsg(q->stores[p]));

    dt_client_history *h = NULL;
    TC_EXPECT(q->t, dt_client_get_history(q->t->c, id, &h), DT_OK);
    assert_int_equal(h->n, 4);
    const char *types[] = {"ExecutionStarted", "TaskScheduled", "TaskCompleted",
                           "ExecutionCompleted"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(h->events[i].type, types[i]);
        assert_int_equal(h->events[i].timestamp_ms, 5000 + (int64_t)i);
        assert_int_equal(h->events[i].raw_len, blobs[i].len);
        assert_memory_equal(h->events[i].raw, blobs[i].data, blobs[i].len);
    }
    assert_string_equal(h->events[0].name, "Order");
    assert_string_equal(h->events[0].payload, "in-order-04");
    assert_int_equal(h->events[1].event_id, 0);
    assert_string_equal(h->events[1].name, "Charge");
    assert_int_equal(h->events[1].task_id, -1);
    assert_int_equal(h->events[2].task_id, 0);
    assert_string_equal(h->events[2].payload, "\"ok\"");
    assert_string_equal(h->events[3].payload, "done");
    dt_client_history_free(h);

    /* An instance without events has an empty history; an unknown one is not found. */
    TC_EXPECT(q->t, dt_client_get_history(q->t->c, "order-01", &h), DT_OK);
    assert_int_equal(h->n, 0);
    assert_null(h->events);
    dt_client_history_free(h);
    TC_EXPECT(q->t, dt_client_get_history(q->t->c, "nobody", &h), DT_ENOTFOUND);
    tc_errmsg_has(q->t, "no instance 'nobody'");
}

/* Replies are bounded by the server's max payload (1 MiB here): a listing with large payloads
 * is cut into several replies that the client follows; a history too large for one reply is
 * refused with DT_ETOOLARGE. */
static void test_large_replies(void **state)
{
    qfix *q = *state;
    enum { BIG = 400 * 1024, N = 6 }; /* partition 2 gets three: 1.2 MiB */
    uint8_t *big = dt__arena_alloc(q->t->a, BIG);
    memset(big, 'b', BIG);
    /* big-0's history: one event larger than any reply (histories are read a page at a time,
     * so only a single event can be too large). */
    enum { HUGE = 1200 * 1024 };
    uint8_t *huge = dt__arena_alloc(q->t->a, HUGE);
    memset(huge, 'h', HUGE);
    dt__blob events[1] = {{huge, HUGE}};
    for (int i = 0; i < N; i++) {
        char *id = dt__arena_alloc(q->t->a, 16);
        snprintf(id, 16, "big-%d", i);
        dt__instance_row row = {.instance_id = id,
                                .execution_id = "e",
                                .name = "Big",
                                .runtime_status = DT_CLIENT_RUNNING,
                                .created_ms = 9000,
                                .input = {big, BIG}};
        dt__episode_commit c = {
            .instance = &row, .new_events = i == 0 ? events : NULL, .n_new_events = i == 0 ? 1 : 0};
        uint32_t p = part(id);
        TB_EXPECT(dt__store_commit(q->stores[p], q->epochs[p], &c, 1), DT_OK,
                  dt__store_errmsg(q->stores[p]));
    }
    dt_client_filter f = {.name = "Big"};
    dt_client_page *pg = NULL;
    TC_EXPECT(q->t, dt_client_list(q->t->c, &f, NULL, 0, true, &pg), DT_OK);
    assert_int_equal(pg->n, N);
    assert_null(pg->next_page_token);
    for (size_t i = 0; i < pg->n; i++) {
        assert_int_equal(pg->instances[i].input_len, BIG);
    }
    dt_client_page_free(pg);
    dt_client_history *h = NULL;
    TC_EXPECT(q->t, dt_client_get_history(q->t->c, "big-0", &h), DT_ETOOLARGE);
    tc_errmsg_has(q->t, "larger than a reply may be");
}

static void test_purge_one(void **state)
{
    qfix *q = *state;
    TC_EXPECT(q->t, dt_client_purge(q->t->c, "order-02"), DT_OK);
    dt__instance_row row;
    uint32_t p = part("order-02");
    assert_int_equal(dt__store_get_instance(q->stores[p], "order-02", q->t->a, &row), DT_ENOTFOUND);
    assert_null(tc_get_status(q->t, "order-02"));
    TC_EXPECT(q->t, dt_client_purge(q->t->c, "order-02"), DT_ENOTFOUND);

    /* Not finished: refused, nothing deleted. */
    TC_EXPECT(q->t, dt_client_purge(q->t->c, "order-01"), DT_ESTATE);
    tc_errmsg_has(q->t, "instance 'order-01' is RUNNING");
    p = part("order-01");
    assert_int_equal(dt__store_get_instance(q->stores[p], "order-01", q->t->a, &row), DT_OK);
    assert_non_null(tc_get_status(q->t, "order-01"));
    TC_EXPECT(q->t, dt_client_purge(q->t->c, "ship-03"), DT_ESTATE); /* suspended */

    /* A finished status record whose instance is already gone from the store (a purge cut short
     * between the store and the bucket) is completed by the next purge. */
    tc_put_simple(q->t, "orphan", DT_CLIENT_COMPLETED);
    TC_EXPECT(q->t, dt_client_purge(q->t->c, "orphan"), DT_OK);
    assert_null(tc_get_status(q->t, "orphan"));
}

static void test_purge_by_filter(void **state)
{
    qfix *q = *state;
    char buf[1024];
    /* Completed ones created before 2200, plus statuses that cannot be purged (ignored). */
    dt_client_runtime_status sts[] = {DT_CLIENT_COMPLETED, DT_CLIENT_RUNNING};
    dt_client_filter f = {.statuses = sts, .nstatuses = 2, .created_to_ms = 2200};
    uint64_t n = 0;
    TC_EXPECT(q->t, dt_client_purge_where(q->t->c, &f, &n), DT_OK);
    assert_int_equal(n, 4); /* order-02, order-04, order-07, ship-02 */
    assert_null(tc_get_status(q->t, "order-04"));
    assert_non_null(tc_get_status(q->t, "ship-04"));
    assert_string_equal(list_all(q, NULL, 0, NULL, buf, sizeof(buf)),
                        "audit-1,audit-2,audit-3,order-01,order-03,order-05,order-06,ship-01,"
                        "ship-03,ship-04,ship-07");
    /* Only unpurgeable statuses: nothing. */
    dt_client_runtime_status live[] = {DT_CLIENT_RUNNING};
    dt_client_filter fl = {.statuses = live, .nstatuses = 1};
    TC_EXPECT(q->t, dt_client_purge_where(q->t->c, &fl, &n), DT_OK);
    assert_int_equal(n, 0);
    /* No filter: every finished one. */
    TC_EXPECT(q->t, dt_client_purge_where(q->t->c, NULL, &n), DT_OK);
    assert_int_equal(n, 5); /* order-03, order-05, ship-04, audit-1, audit-3 */
    assert_string_equal(list_all(q, NULL, 0, NULL, buf, sizeof(buf)),
                        "audit-2,order-01,order-06,ship-01,ship-03,ship-07");
}

static void test_purge_fenced(void **state)
{
    qfix *q = *state;
    uint32_t p = part("ship-02");
    uint64_t newer = 0;
    assert_int_equal(dt__store_claim(q->stores[p], "other-worker", &newer), DT_OK);
    TC_EXPECT(q->t, dt_client_purge(q->t->c, "ship-02"), DT_EFENCED);
    assert_non_null(tc_get_status(q->t, "ship-02"));
}

/* Sends raw bytes to a partition's query subject and decodes the reply. */
static Dtpb__QueryResponse *raw_query(qfix *q, uint32_t p, const void *data, size_t len)
{
    char subject[DT_BROKER_NAME_BUF], tail[8];
    snprintf(tail, sizeof(tail), "%u", p);
    dt_broker_subject(q->t->hub, DT_BROKER_SUBJ_QUERY, tail, subject, sizeof(subject));
    dt_broker_outmsg m = {.subject = subject, .data = data, .len = len};
    dt_broker_msg *reply = NULL;
    TB_EXPECT(dt_broker_request(q->t->b, &m, 5000, &reply), DT_OK, dt_broker_errmsg(q->t->b));
    Dtpb__QueryResponse *r = dtpb__query_response__unpack(
        dt__arena_pb_allocator(q->t->a), dt_broker_msg_len(reply), dt_broker_msg_data(reply));
    dt_broker_msg_destroy(reply);
    assert_non_null(r);
    return r;
}

static void test_malformed_requests(void **state)
{
    qfix *q = *state;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x0a, 0x99, 0x01, 0x02};
    Dtpb__QueryResponse *r = raw_query(q, 0, garbage, sizeof(garbage));
    assert_int_equal(r->status, DT_EDECODE);
    assert_non_null(strstr(r->error, "malformed"));
    r = raw_query(q, 1, "", 0); /* decodes to a request with no operation */
    assert_int_equal(r->status, DT_EDECODE);
    assert_int_equal(r->result_case, DTPB__QUERY_RESPONSE__RESULT__NOT_SET);
    /* A history request with an invalid ID, and a list with an unknown status. */
    Dtpb__HistoryRequest hr;
    dtpb__history_request__init(&hr);
    hr.instance_id = "has space";
    Dtpb__QueryRequest req;
    dtpb__query_request__init(&req);
    req.kind_case = DTPB__QUERY_REQUEST__KIND_HISTORY;
    req.history = &hr;
    size_t len = 0;
    uint8_t *buf = dt__pack(q->t->a, &req.base, &len);
    r = raw_query(q, 2, buf, len);
    assert_int_equal(r->status, DT_EINVAL);
    /* The service still answers afterwards. */
    dt_client_page *pg = NULL;
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, NULL, 0, false, &pg), DT_OK);
    assert_int_equal(pg->n, NSEEDS);
    dt_client_page_free(pg);
}

static void test_partition_without_owner(void **state)
{
    qfix *q = *state;
    dt__query_service_stop(q->svc[1]);
    q->svc[1] = NULL;
    dt_client_page *pg = NULL;
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, NULL, 0, false, &pg), DT_EBUSY);
    tc_errmsg_has(q->t, "partition 1 has no running worker");
    /* Starting at partition 2 needs only partition 2. */
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, "2:", 0, false, &pg), DT_OK);
    assert_int_equal(pg->n, 3);
    dt_client_page_free(pg);
    uint64_t n = 0;
    TC_EXPECT(q->t, dt_client_purge_where(q->t->c, NULL, &n), DT_EBUSY);
    tc_errmsg_has(q->t, "purged before");
    /* The owner comes back. */
    start_service(q, 1);
    TC_EXPECT(q->t, dt_client_list(q->t->c, NULL, NULL, 0, false, &pg), DT_OK);
    dt_client_page_free(pg);
}

static void test_service_start_errors(void **state)
{
    qfix *q = *state;
    dt__query_service *s = NULL;
    char err[256] = "";
    assert_int_equal(
        dt__query_service_start(q->t->b, "bad.hub", 0, "/tmp/x.db", NULL, 1, &s, err, sizeof(err)),
        DT_EINVAL);
    char path[512];
    snprintf(path, sizeof(path), "%s/missing/dir/p.db", q->dir);
    assert_int_not_equal(
        dt__query_service_start(q->t->b, q->t->hub, 0, path, NULL, 1, &s, err, sizeof(err)), DT_OK);
    assert_true(err[0] != '\0');
    snprintf(path, sizeof(path), "%s/p000.db", q->dir);
    assert_int_equal(
        dt__query_service_start(q->t->b, "no_such_hub_q", 0, path, NULL, 1, &s, err, sizeof(err)),
        DT_ENOTFOUND);
    dt__query_service_stop(NULL);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_all_pages_across_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_by_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_fenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partition_without_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_start_errors, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
