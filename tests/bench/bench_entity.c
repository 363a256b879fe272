/*
 * entity_counters: 100,000 signals ("add 1") to 1,000 counter entities, published at once, and
 * the time until every counter is exact. Two rounds on one worker process, each on fresh keys:
 * "direct", OrchestrationMessages published to the entities' partition subjects (what the C
 * client's dt_client_signal_entity sends, here pipelined), and "ingress", plain NATS publishes to
 * dt.<hub>.in.signal.counter with the key and operation in headers (what any NATS client does),
 * which the workers' ingress router moves to the partitions. Figures: operations/s from the first
 * publish until every counter read back exact (entity queries, every 100 ms), per round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "durabletask/client.h"
#include "durabletask/entity.h"
#include "protocol_int.h"

#define COUNTERS 1000
#define SIGNALS  100000
#define CHUNK    32768
#define WAIT_MS  600000
#define POLL_MS  100

static bool flush_chunk(dt_broker_publisher *p)
{
    dt_status st = dt_broker_publisher_wait(p, 60000);
    if (st != DT_OK) {
        bench_note("entity_counters publish: %s", dt_broker_publisher_errmsg(p));
    }
    return st == DT_OK;
}

/* Adds signal i (to counter "<round>-<i % counters>") to the publisher. */
static dt_status add_signal(bench_hub *h, dt_broker_publisher *p, const char *round, size_t i,
                            size_t counters, bool ingress, const char *in_subject)
{
    char key[64], id[DT_ENTITY_ID_MAX + 1], dedupe[DT_ENTITY_ID_MAX + 64];
    snprintf(key, sizeof(key), "%s-%zu", round, i % counters);
    snprintf(dedupe, sizeof(dedupe), "bench/%s/%zu", round, i);
    if (ingress) {
        dt_broker_header hd[2] = {{DT_HDR_ENTITY_KEY, key}, {DT_HDR_OPERATION, "add"}};
        dt_broker_outmsg m = {.subject = in_subject,
                              .msg_id = dedupe,
                              .headers = hd,
                              .nheaders = 2,
                              .data = "1",
                              .len = 1};
        return dt_broker_publisher_add(p, &m, i);
    }
    dt_entity_id("counter", key, id, sizeof(id));
    Dtpb__Payload in = DTPB__PAYLOAD__INIT;
    Dtpb__EntityOperationSignaledEvent s = DTPB__ENTITY_OPERATION_SIGNALED_EVENT__INIT;
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    in.value.data = (uint8_t *)"1";
    in.value.len = 1;
    s.request_id = dedupe;
    s.operation = "add";
    s.input = &in;
    ev.event_id = -1;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED;
    ev.entity_operation_signaled = &s;
    Dtpb__OrchestrationMessage om;
    dt__orch_msg_init(&om, id, "", &ev, dedupe);
    uint8_t buf[512];
    size_t len = dtpb__orchestration_message__pack(&om, buf);
    char tail[16], subject[DT_BROKER_NAME_BUF];
    snprintf(tail, sizeof(tail), "%u", dt__partition_of(id, h->partitions));
    dt_broker_subject(h->name, DT_BROKER_SUBJ_ORCH, tail, subject, sizeof(subject));
    dt_broker_outmsg m = {.subject = subject, .msg_id = dedupe, .data = buf, .len = len};
    return dt_broker_publisher_add(p, &m, i);
}

static bool publish_all(bench_hub *h, const char *round, size_t n, size_t counters, bool ingress)
{
    char in_subject[DT_BROKER_NAME_BUF];
    dt_broker_subject(h->name, DT_BROKER_SUBJ_IN, "signal.counter", in_subject, sizeof(in_subject));
    dt_broker_publisher *p = NULL;
    if (dt_broker_publisher_create(h->broker, NULL, &p) != DT_OK) {
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        ok = add_signal(h, p, round, i, counters, ingress, in_subject) == DT_OK;
        if (ok && (i + 1) % CHUNK == 0) {
            ok = flush_chunk(p);
        }
    }
    ok = ok && flush_chunk(p);
    dt_broker_publisher_destroy(p);
    return ok;
}

/* Reads every counter of the round: how many are exact (want each), and the sum. */
static dt_status read_round(dt_client *c, const char *round, size_t counters, long want,
                            size_t *exact, long *sum)
{
    dt_entity_query q;
    dt_entity_query_init(&q);
    q.name = "counter";
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s-", round);
    q.key_prefix = prefix;
    q.include_state = true;
    q.page_size = 1000;
    *exact = 0;
    *sum = 0;
    char *tok = NULL;
    dt_status st = DT_OK;
    do {
        q.page_token = tok;
        dt_entity_page *pg = NULL;
        st = dt_client_query_entities(c, &q, &pg);
        free(tok);
        tok = NULL;
        if (st != DT_OK) {
            break;
        }
        for (size_t i = 0; i < pg->n; i++) {
            long v = pg->entities[i].state != NULL ? strtol(pg->entities[i].state, NULL, 10) : 0;
            *sum += v;
            *exact += v == want;
        }
        tok = pg->next_token != NULL ? strdup(pg->next_token) : NULL;
        dt_entity_page_free(pg);
    } while (tok != NULL);
    (void)counters;
    return st;
}

/* One round: publish, then poll until exact. Returns the ms until exact (< 0 on failure). */
static double run_round(bench_hub *h, dt_client *c, const char *round, size_t n, size_t counters,
                        bool ingress, double *publish_ms)
{
    long want = (long)(n / counters);
    double t0 = bench_now_ms();
    if (!publish_all(h, round, n, counters, ingress)) {
        return -1;
    }
    *publish_ms = bench_now_ms() - t0;
    size_t exact = 0;
    long sum = 0;
    while (bench_now_ms() - t0 < WAIT_MS) {
        if (read_round(c, round, counters, want, &exact, &sum) == DT_OK && exact == counters) {
            return bench_now_ms() - t0;
        }
        if (sum > (long)n) {
            bench_note("%s: %ld operations applied for %zu signals", round, sum, n);
            return -1;
        }
        bench_sleep_ms(POLL_MS);
    }
    bench_note("%s: %zu of %zu counters exact (sum %ld) after %d ms", round, exact, counters, sum,
               WAIT_MS);
    return -1;
}

int bench_entity_counters(const bench_opts *o)
{
    size_t n = bench_scaled(o, SIGNALS), counters = bench_scaled(o, COUNTERS);
    n -= n % counters; /* every counter gets the same number */
    bench_setup s;
    if (!bench_setup_open(o, "bench_ent", 0, &s)) {
        return 1;
    }
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = o->url;
    co.hub = s.hub.name;
    dt_client *c = NULL;
    char err[256];
    int rc = dt_client_create(&co, &c, err, sizeof(err)) == DT_OK ? 0 : 1;
    double pub[2] = {0, 0}, ms[2] = {-1, -1};
    const char *rounds[2] = {"direct", "ingress"};
    for (int r = 0; rc == 0 && r < 2; r++) {
        ms[r] = run_round(&s.hub, c, rounds[r], n, counters, r == 1, &pub[r]);
        rc = ms[r] < 0 ? 1 : 0;
        if (rc == 0) {
            bench_note("entity_counters %s: %zu signals, %zu counters exact after %.0f ms "
                       "(published in %.0f ms)",
                       rounds[r], n, counters, ms[r], pub[r]);
        }
    }
    if (rc == 0) {
        bench_json j;
        bench_json_begin(&j, "entity_counters");
        bench_json_int(&j, "signals", (long long)n);
        bench_json_int(&j, "counters", (long long)counters);
        bench_json_num(&j, "direct_ops_per_s", (double)n * 1000.0 / ms[0], 0);
        bench_json_num(&j, "direct_ms_until_exact", ms[0], 0);
        bench_json_num(&j, "direct_publish_ms", pub[0], 0);
        bench_json_num(&j, "ingress_ops_per_s", (double)n * 1000.0 / ms[1], 0);
        bench_json_num(&j, "ingress_ms_until_exact", ms[1], 0);
        bench_json_num(&j, "ingress_publish_ms", pub[1], 0);
        bench_settings(&j, o, 0, 1);
        bench_json_end(&j);
    }
    dt_client_destroy(c);
    bench_setup_close(&s);
    return rc;
}
