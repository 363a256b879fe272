/*
 * Durable pull consumers and batched fetch.
 *
 * open() makes the server-side consumer match the caller's config (create, or update the
 * updatable settings) and then *binds* to it (jsSubOptions.Stream + .Consumer), so nats.c never
 * creates a consumer itself and never deletes one on unsubscribe.
 *
 * The handle is reference-counted: one reference for the handle, one per live message. Acking a
 * message dereferences its natsSubscription (NATS-NOTES fact 9 is the extreme case), so the
 * subscription is destroyed only when the handle is closed and the last message is gone.
 *
 * fetch() takes each natsMsg out of nats.c's list before natsMsgList_Destroy (which would destroy
 * them, NATS-NOTES fact 2) and hands it to the caller wrapped. An empty fetch is NATS_TIMEOUT in
 * nats.c and DT_OK with zero messages here.
 *
 * Measured on nats.c 3.4.1 / nats-server 2.9.10: fetching from a durable that was deleted (or
 * lost by a restart of a memory-storage server) also returns a plain NATS_TIMEOUT, forever. So
 * an empty fetch after a reconnection, or after liveness_check_ms of idleness, asks the server
 * whether the durable exists, and re-creates and re-binds it if not.
 */
#include "broker_int.h"

#include <string.h>

#define GRAVEYARD_MAX 256

struct dt_broker_consumer {
    dt_broker *b;
    natsSubscription *sub;
    dt_broker_consumer_config cfg; /* strings point to the copies below */
    char *stream;
    char *durable;
    char *filter;
    /* Subscriptions replaced by a re-bind, kept until no message can still ack through them. */
    natsSubscription **retired;
    size_t nretired;
    unsigned seen_reconnects;
    int64_t last_check_ms;
    int refs; /* atomic */
    /* Messages destroyed by the caller (on any thread), freed in one burst before the next
     * fetch (graveyard.c says why); bounded by GRAVEYARD_MAX. */
    dt__graveyard dead;
    char err[DT__BROKER_ERR_LEN];
};

void dt_broker_consumer_config_init(dt_broker_consumer_config *c)
{
    memset(c, 0, sizeof(*c));
    c->ack_wait_ms = 30000;
    c->max_deliver = -1;
    c->max_ack_pending = 10000;
    c->liveness_check_ms = 5000;
}

static bool durable_valid(const char *d)
{
    /* Same alphabet as hub names: no '.', '*', '>' or spaces in a consumer name. */
    if (d == NULL || d[0] == '\0' || strlen(d) > 128) {
        return false;
    }
    for (const char *p = d; *p != '\0'; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

static dt_status config_check(const dt_broker_consumer_config *c, char *err, size_t len)
{
    if (c == NULL || c->stream == NULL || c->stream[0] == '\0') {
        return dt__broker_errbuf(err, len, DT_EINVAL, "consumer: no stream");
    }
    if (!durable_valid(c->durable)) {
        return dt__broker_errbuf(err, len, DT_EINVAL, "consumer: invalid durable name '%s'",
                                 c->durable != NULL ? c->durable : "(null)");
    }
    if (c->ack_wait_ms <= 0 || c->max_ack_pending <= 0 || c->liveness_check_ms <= 0) {
        return dt__broker_errbuf(
            err, len, DT_EINVAL,
            "consumer %s: ack_wait_ms, max_ack_pending and liveness_check_ms must be > 0",
            c->durable);
    }
    return DT_OK;
}

static void to_nats_config(const dt_broker_consumer_config *c, jsConsumerConfig *cc)
{
    jsConsumerConfig_Init(cc);
    cc->Durable = c->durable;
    cc->AckPolicy = js_AckExplicit;
    cc->DeliverPolicy = js_DeliverAll;
    cc->AckWait = dt__broker_ms_to_ns(c->ack_wait_ms);
    cc->MaxDeliver = c->max_deliver > 0 ? c->max_deliver : -1;
    cc->MaxAckPending = c->max_ack_pending;
    cc->FilterSubject = c->filter_subject;
}

static bool same_filter(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* Updates ack wait / max deliver / max ack pending when the server's values differ. */
static dt_status reconcile(dt_broker_consumer *c, const jsConsumerConfig *have)
{
    jsConsumerConfig want;
    to_nats_config(&c->cfg, &want);
    if (!same_filter(have->FilterSubject, want.FilterSubject)) {
        return dt__broker_errbuf(c->err, sizeof(c->err), DT_ECONFLICT,
                                 "consumer %s on %s filters '%s', requested '%s'", c->durable,
                                 c->stream, have->FilterSubject != NULL ? have->FilterSubject : "",
                                 c->filter != NULL ? c->filter : "");
    }
    int64_t have_md = have->MaxDeliver > 0 ? have->MaxDeliver : -1;
    if (have->AckWait == want.AckWait && have_md == want.MaxDeliver &&
        have->MaxAckPending == want.MaxAckPending) {
        return DT_OK;
    }
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_UpdateConsumer(&ci, c->b->js, c->stream, &want, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        return dt__broker_nerr(c->err, sizeof(c->err), s, jerr, "update consumer %s on %s",
                               c->durable, c->stream);
    }
    return DT_OK;
}

/* Makes the durable consumer exist with the handle's config. */
static dt_status ensure(dt_broker_consumer *c)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, c->b->js, c->stream, c->durable, NULL, &jerr);
    if (s == NATS_OK) {
        dt_status st = reconcile(c, ci->Config);
        jsConsumerInfo_Destroy(ci);
        return st;
    }
    if (s != NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        dt_status st = dt__broker_nerr(c->err, sizeof(c->err), s, jerr, "consumer %s on %s",
                                       c->durable, c->stream);
        return jerr == JSStreamNotFoundErr ? DT_ENOTFOUND : st;
    }
    jsConsumerConfig want;
    to_nats_config(&c->cfg, &want);
    jerr = 0;
    s = js_AddConsumer(&ci, c->b->js, c->stream, &want, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK && jerr != JSConsumerNameExistErr) {
        dt_status st = dt__broker_nerr(c->err, sizeof(c->err), s, jerr, "create consumer %s on %s",
                                       c->durable, c->stream);
        return jerr == JSStreamNotFoundErr ? DT_ENOTFOUND : st;
    }
    return DT_OK; /* created, or created concurrently by another process */
}

static dt_status bind(dt_broker_consumer *c)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->stream;
    so.Consumer = c->durable;
    so.ManualAck = true;
    jsErrCode jerr = 0;
    /* nats.c wants a subject; with a bound consumer it is only compared with the filter. */
    const char *subject = c->filter != NULL ? c->filter : ">";
    natsStatus s = js_PullSubscribe(&c->sub, c->b->js, subject, c->durable, NULL, &so, &jerr);
    if (s != NATS_OK) {
        c->sub = NULL;
        return dt__broker_nerr(c->err, sizeof(c->err), s, jerr, "bind consumer %s on %s",
                               c->durable, c->stream);
    }
    return DT_OK;
}

static void destroy_retired(dt_broker_consumer *c)
{
    for (size_t i = 0; i < c->nretired; i++) {
        dt__broker_sub_destroy(c->b, c->retired[i]);
    }
    dt_free(c->retired);
    c->retired = NULL;
    c->nretired = 0;
}

static void consumer_free(dt_broker_consumer *c)
{
    dt__graveyard_fini(&c->dead);
    /* A pull request may still be delivering (a fetch returns at its first message). */
    dt__broker_sub_destroy(c->b, c->sub);
    destroy_retired(c);
    dt_free(c->stream);
    dt_free(c->durable);
    dt_free(c->filter);
    dt_free(c);
}

static dt_broker_consumer *consumer_new(dt_broker *b, const dt_broker_consumer_config *cfg)
{
    dt_broker_consumer *c = dt_calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->b = b;
    c->refs = 1;
    dt__graveyard_init(&c->dead, GRAVEYARD_MAX, DT__GRAVEYARD_MAX_BYTES);
    c->cfg = *cfg;
    c->stream = dt_strdup(cfg->stream);
    c->durable = dt_strdup(cfg->durable);
    c->filter = cfg->filter_subject != NULL ? dt_strdup(cfg->filter_subject) : NULL;
    if (c->stream == NULL || c->durable == NULL ||
        (cfg->filter_subject != NULL && c->filter == NULL)) {
        consumer_free(c);
        return NULL;
    }
    c->cfg.stream = c->stream;
    c->cfg.durable = c->durable;
    c->cfg.filter_subject = c->filter;
    c->seen_reconnects = __atomic_load_n(&b->reconnects, __ATOMIC_ACQUIRE);
    c->last_check_ms = dt__mono_ms();
    return c;
}

dt_status dt_broker_consumer_open(dt_broker *b, const dt_broker_consumer_config *cfg,
                                  dt_broker_consumer **out)
{
    char err[DT__BROKER_ERR_LEN];
    dt_status st = config_check(cfg, err, sizeof(err));
    if (st != DT_OK || out == NULL) {
        return dt__broker_fail(b, DT_EINVAL, "%s", st != DT_OK ? err : "consumer: out is NULL");
    }
    dt_broker_consumer *c = consumer_new(b, cfg);
    if (c == NULL) {
        return dt__broker_fail(b, DT_ENOMEM, "consumer %s: out of memory", cfg->durable);
    }
    st = ensure(c);
    if (st == DT_OK) {
        st = bind(c);
    }
    if (st != DT_OK) {
        dt__broker_fail(b, st, "%s", c->err);
        consumer_free(c);
        return st;
    }
    *out = c;
    return DT_OK;
}

void dt__broker_consumer_bury(dt_broker_consumer *c, natsMsg *nm)
{
    dt__graveyard_bury(&c->dead, nm);
}

void dt__broker_consumer_release(dt_broker_consumer *c)
{
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        consumer_free(c);
    }
}

void dt_broker_consumer_close(dt_broker_consumer *c)
{
    if (c != NULL) {
        dt__broker_consumer_release(c);
    }
}

const char *dt_broker_consumer_errmsg(const dt_broker_consumer *c)
{
    return c == NULL ? "" : c->err;
}

/* ------------------------------------------------------------------------------------------- */
/* Fetch                                                                                       */

/* Moves the messages of `list` into out[] as wrapped JetStream messages; returns the count. */
static size_t take_messages(dt_broker_consumer *c, natsMsgList *list, dt_broker_msg **out)
{
    size_t n = 0;
    for (int i = 0; i < list->Count; i++) {
        dt_broker_msg *m = dt__broker_msg_wrap(list->Msgs[i], DT__MSG_JS, c->b, c);
        if (m == NULL) {
            continue; /* out of memory: destroyed with the list, redelivered after ack wait */
        }
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
        list->Msgs[i] = NULL; /* ours now: natsMsgList_Destroy must not destroy it */
        out[n++] = m;
    }
    natsMsgList_Destroy(list);
    return n;
}

/* True when a fetch failure says the durable consumer no longer exists on the server. */
static bool consumer_gone(natsStatus s, jsErrCode jerr)
{
    if (s == NATS_NO_RESPONDERS || jerr == JSConsumerNotFoundErr) {
        return true;
    }
    const char *text = s == NATS_ERR ? nats_GetLastError(NULL) : NULL;
    return text != NULL && strstr(text, "Consumer Deleted") != NULL;
}

/* After an empty fetch: is it time to check that the durable still exists? */
static bool liveness_due(dt_broker_consumer *c)
{
    unsigned r = __atomic_load_n(&c->b->reconnects, __ATOMIC_ACQUIRE);
    int64_t now = dt__mono_ms();
    if (r == c->seen_reconnects && now - c->last_check_ms < c->cfg.liveness_check_ms) {
        return false;
    }
    c->seen_reconnects = r;
    c->last_check_ms = now;
    return true;
}

/* True if the server positively says the durable (or its stream) does not exist. */
static bool durable_missing(dt_broker_consumer *c)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, c->b->js, c->stream, c->durable, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    return s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr;
}

/*
 * Replaces the subscription after the consumer vanished. Live messages still point to the old
 * natsSubscription, so it is only unsubscribed and kept until no message is left (refs == 1).
 */
static dt_status rebind(dt_broker_consumer *c)
{
    if (__atomic_load_n(&c->refs, __ATOMIC_ACQUIRE) == 1) {
        destroy_retired(c);
    }
    if (c->sub != NULL) {
        natsSubscription **r = dt_realloc(c->retired, (c->nretired + 1) * sizeof(*r));
        if (r == NULL) {
            return dt__broker_errbuf(c->err, sizeof(c->err), DT_ENOMEM, "rebind: out of memory");
        }
        (void)natsSubscription_Unsubscribe(c->sub);
        c->retired = r;
        c->retired[c->nretired++] = c->sub;
        c->sub = NULL;
    }
    dt_status st = ensure(c);
    return st == DT_OK ? bind(c) : st;
}

/*
 * nats.c 3.4.1's natsSubscription_Fetch writes past its own array of `batch` messages when
 * messages already wait on the subscription (late answers to a pull request whose fetch had timed
 * out) and they number more than half the batch: it takes them, asks the server for the rest
 * (batch - taken), and then loops until its count equals that smaller number, which the count has
 * already passed, so every further arrival is stored beyond the array (fixed upstream in 3.8.2,
 * nats-io/nats.c#749). ASan caught it in a benchmark worker (take_messages reading Msgs[256] of a
 * 256-slot list), and it is the likely cause of the glibc heap aborts seen under heavy load.
 * When more than half the batch waits, fetching exactly that many takes them all and sends no
 * request, which cannot overrun (the list only grows meanwhile: this thread is its only reader);
 * with half or fewer waiting, nats.c's loop ends at its count as it should.
 */
static int waiting_messages(dt_broker_consumer *c)
{
    int n = 0;
    return natsSubscription_GetPending(c->sub, &n, NULL) == NATS_OK ? n : 0;
}

static natsStatus fetch_once(dt_broker_consumer *c, size_t max, int64_t timeout_ms,
                             natsMsgList *list, jsErrCode *jerr)
{
    memset(list, 0, sizeof(*list));
    *jerr = 0;
    /* Only when more than half the batch waits: the count includes status messages (a pull
     * request's late 408 after every fetch that timed out), and fetching just those few each
     * time throttled a partition to a message or two per fetch (test_multi_worker stalled). */
    size_t waiting = (size_t)waiting_messages(c);
    int batch = 2 * waiting > max ? (int)(waiting < max ? waiting : max) : (int)max;
    return natsSubscription_Fetch(list, c->sub, batch, timeout_ms, jerr);
}

const char *dt_broker_consumer_inbox(const dt_broker_consumer *c)
{
    return c == NULL || c->sub == NULL ? NULL : natsSubscription_GetSubject(c->sub);
}

int dt_broker_consumer_waiting(dt_broker_consumer *c)
{
    return c == NULL || c->sub == NULL ? 0 : waiting_messages(c);
}

dt_status dt_broker_consumer_fetch(dt_broker_consumer *c, size_t max, int64_t timeout_ms,
                                   dt_broker_msg **out_msgs, size_t *out_n)
{
    if (max == 0 || max > DT_BROKER_FETCH_MAX || timeout_ms <= 0 || out_msgs == NULL ||
        out_n == NULL) {
        return dt__broker_errbuf(c->err, sizeof(c->err), DT_EINVAL,
                                 "fetch: need 1 <= max <= %u and timeout > 0", DT_BROKER_FETCH_MAX);
    }
    dt__graveyard_flush(&c->dead);
    if (c->sub == NULL) {
        dt_status st = rebind(c); /* a previous re-creation failed */
        if (st != DT_OK) {
            return st;
        }
    }
    natsMsgList list;
    jsErrCode jerr = 0;
    natsStatus s = fetch_once(c, max, timeout_ms, &list, &jerr);
    if (list.Count > 0) {
        *out_n = take_messages(c, &list, out_msgs);
        return DT_OK;
    }
    natsMsgList_Destroy(&list);
    bool empty = s == NATS_OK || s == NATS_TIMEOUT;
    if ((empty && liveness_due(c) && durable_missing(c)) || (!empty && consumer_gone(s, jerr))) {
        dt_status st = rebind(c);
        if (st != DT_OK) {
            return st;
        }
        *out_n = 0;
        return DT_OK;
    }
    if (empty) {
        *out_n = 0;
        return DT_OK;
    }
    dt_status st = dt__broker_nerr(c->err, sizeof(c->err), s, jerr, "fetch from %s on %s",
                                   c->durable, c->stream);
    return st == DT_ETIMEOUT ? DT_EBROKER : st;
}

dt_status dt_broker_consumer_info_get(dt_broker_consumer *c, dt_broker_consumer_info *out,
                                      char *err, size_t err_len)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, c->b->js, c->stream, c->durable, NULL, &jerr);
    if (s != NATS_OK) {
        char scratch[1];
        return dt__broker_nerr(err != NULL ? err : scratch, err != NULL ? err_len : sizeof(scratch),
                               s, jerr, "info of consumer %s on %s", c->durable, c->stream);
    }
    out->num_pending = ci->NumPending;
    out->num_ack_pending = ci->NumAckPending;
    out->num_redelivered = ci->NumRedelivered;
    out->num_waiting = ci->NumWaiting;
    jsConsumerInfo_Destroy(ci);
    return DT_OK;
}

dt_status dt_broker_consumer_delete(dt_broker *b, const char *stream, const char *durable)
{
    if (stream == NULL || !durable_valid(durable)) {
        return dt__broker_fail(b, DT_EINVAL, "delete consumer: bad stream or durable name");
    }
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteConsumer(b->js, stream, durable, NULL, &jerr);
    if (s != NATS_OK) {
        return dt__broker_fail_nats(b, s, jerr, "delete consumer %s on %s", durable, stream);
    }
    return DT_OK;
}
