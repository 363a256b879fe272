/*
 * msgs5 (a diagnostic, not in the default list): what one hello5 orchestration costs the broker,
 * in messages. A core subscription to ">" on its own connection sees every message the server
 * routes while N hello5 instances run (publish-to-start, all at once); each is put in a class by
 * its subject and reply subject, and the JSON line gives the count of each class per
 * orchestration. Classes:
 *   pub_<stream>     JetStream publishes (a reply inbox waits for the PubAck), by stream
 *   deliver_<stream> messages a consumer delivered (reply $JS.ACK...), by stream; the status
 *                    bucket's deliveries go to the benchmark's own watch
 *   ack              acknowledgements ($JS.ACK... subjects)
 *   pull             pull requests ($JS.API.CONSUMER.MSG.NEXT...)
 *   api              other JetStream API requests
 *   inbox            replies to inboxes (PubAcks, API replies, fetch status messages)
 *   other            anything else (lease and membership heartbeats are left out)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MAX_CLASSES 32

typedef struct counter {
    pthread_mutex_t mu;
    char name[MAX_CLASSES][48];
    uint64_t n[MAX_CLASSES];
    size_t used;
    bool on;
} counter;

/* The stream name inside "$JS.ACK.<stream>.<consumer>...", shortened: "DT_<hub>_ORCH" -> "ORCH",
 * "KV_DT_<hub>_STATUS" -> "STATUS". */
static void stream_of(const char *ack, char *out, size_t len)
{
    const char *s = ack + strlen("$JS.ACK.");
    const char *dot = strchr(s, '.');
    size_t n = dot != NULL ? (size_t)(dot - s) : strlen(s);
    const char *us = s + n;
    while (us > s && us[-1] != '_') {
        us--;
    }
    snprintf(out, len, "%.*s", (int)(s + n - us), us);
}

static void classify(const char *subj, const char *reply, char *out, size_t len)
{
    char stream[40];
    if (strncmp(subj, "$JS.ACK.", 8) == 0) {
        snprintf(out, len, "ack");
    } else if (reply != NULL && strncmp(reply, "$JS.ACK.", 8) == 0) {
        stream_of(reply, stream, sizeof(stream));
        snprintf(out, len, "deliver_%s", stream);
    } else if (strncmp(subj, "$JS.API.CONSUMER.MSG.NEXT.", 26) == 0) {
        snprintf(out, len, "pull");
    } else if (strncmp(subj, "$JS.API.", 8) == 0) {
        snprintf(out, len, "api");
    } else if (strncmp(subj, "_INBOX.", 7) == 0) {
        snprintf(out, len, "inbox");
    } else if (strncmp(subj, "$KV.", 4) == 0 && strstr(subj, "_STATUS.") != NULL) {
        snprintf(out, len, "pub_STATUS");
    } else if (strncmp(subj, "dt.", 3) == 0 && reply != NULL) {
        const char *fam = strchr(subj + 3, '.'); /* ".orch.<p>", ".act.<q>", ".in...." */
        const char *end = fam != NULL ? strchr(fam + 1, '.') : NULL;
        int n = fam != NULL && end != NULL ? (int)(end - fam - 1) : 0;
        snprintf(out, len, "pub_%.*s", n, fam != NULL ? fam + 1 : "");
    } else {
        snprintf(out, len, "other");
    }
}

static void on_msg(dt_broker_msg *m, void *ctx)
{
    counter *c = ctx;
    const char *subj = dt_broker_msg_subject(m), *reply = dt_broker_msg_reply(m);
    char cls[48];
    classify(subj, reply, cls, sizeof(cls));
    pthread_mutex_lock(&c->mu);
    if (c->on && strstr(subj, "_LEASES.") == NULL) {
        size_t i = 0;
        while (i < c->used && strcmp(c->name[i], cls) != 0) {
            i++;
        }
        if (i == c->used && c->used < MAX_CLASSES) {
            snprintf(c->name[c->used++], sizeof(c->name[0]), "%s", cls);
        }
        if (i < c->used) {
            c->n[i]++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    dt_broker_msg_destroy(m);
}

static void print_counts(counter *c, size_t n)
{
    bench_json j;
    bench_json_begin(&j, "msgs5");
    bench_json_int(&j, "n", (long long)n);
    uint64_t total = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->used; i++) {
        bench_json_num(&j, c->name[i], (double)c->n[i] / (double)n, 2);
        total += c->n[i];
    }
    pthread_mutex_unlock(&c->mu);
    bench_json_num(&j, "total", (double)total / (double)n, 2);
    bench_json_str(&j, "measured", "messages the server routed, per hello5 orchestration");
    bench_json_end(&j);
}

int bench_msgs5(const bench_opts *o)
{
    size_t n = bench_scaled(o, 1000);
    counter *c = calloc(1, sizeof(*c));
    bench_setup st;
    if (c == NULL || !bench_setup_open(o, "bench_msg", 0, &st)) {
        free(c);
        return 1;
    }
    pthread_mutex_init(&c->mu, NULL);
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = o->url;
    bo.name = "dt-bench-spy";
    dt_broker *b = NULL;
    dt_broker_sub *sub = NULL;
    char err[256];
    bool ok = dt_broker_connect(&bo, &b, err, sizeof(err)) == DT_OK &&
              dt_broker_subscribe(b, ">", NULL, on_msg, c, &sub) == DT_OK &&
              dt_broker_flush(b, 2000) == DT_OK;
    bench_observer_round(st.ob, "msg", n);
    c->on = ok;
    ok = ok && bench_start_many(&st.hub, "hello5", "msg", 0, n, NULL) &&
         bench_observer_wait(st.ob, n, true, 120000) == n;
    bench_sleep_ms(200); /* the acks and deletes that follow the last writes */
    pthread_mutex_lock(&c->mu);
    c->on = false;
    pthread_mutex_unlock(&c->mu);
    dt_broker_sub_destroy(sub);
    dt_broker_close(b);
    bench_setup_close(&st);
    if (ok) {
        print_counts(c, n);
    }
    free(c);
    return ok ? 0 : 1;
}
