/*
 * Backlog figures of a stream's durable consumers, for monitoring (the dashboard's overview):
 * how many messages wait, how many are out with a worker, and how old the oldest one not yet
 * acknowledged is.
 *
 * The counts come from the consumers' info (one JetStream API request lists every consumer of a
 * stream). The age needs the oldest unacknowledged message itself: it is the first message on
 * the consumer's filter subject after its ack floor, which the API's message get finds with
 * "next_by_subj" (nats-server 2.9+) without a consumer of our own and without direct get (the
 * hub's work-queue streams do not allow it). Its reply is parsed with the adapter's small JSON
 * reader; only "time" is taken.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker_int.h"

typedef struct get_reply {
    const char *time;
    size_t time_len;
    bool error;
} get_reply;

static bool on_message_field(dt__json *c, const char *k, size_t n, void *ctx)
{
    get_reply *r = ctx;
    if (dt__json_key_is(k, n, "time")) {
        return dt__json_string(c, &r->time, &r->time_len);
    }
    return dt__json_skip(c);
}

static bool on_reply_field(dt__json *c, const char *k, size_t n, void *ctx)
{
    get_reply *r = ctx;
    if (dt__json_key_is(k, n, "message")) {
        return dt__json_object(c, on_message_field, r);
    }
    if (dt__json_key_is(k, n, "error")) {
        r->error = true;
    }
    return dt__json_skip(c);
}

/* "2026-12-07T20:31:00.123456789Z" (RFC 3339, UTC, as nats-server writes it) to ms since the
 * epoch; 0 when it is not of that form. */
static int64_t rfc3339_ms(const char *s, size_t n)
{
    char buf[64];
    if (n < 20 || n >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    struct tm tm = {0};
    int frac_at = 0;
    if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &frac_at) != 6) {
        return 0;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t ms = 0;
    int digits = 0;
    if (buf[frac_at] == '.') {
        for (const char *p = buf + frac_at + 1; *p >= '0' && *p <= '9'; p++) {
            if (digits++ < 3) {
                ms = ms * 10 + (*p - '0');
            }
        }
        for (; digits < 3; digits++) {
            ms *= 10;
        }
    }
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? 0 : (int64_t)t * 1000 + ms;
}

/* Store time of the first message on `filter` (NULL: any) of `stream` with sequence >= seq; 0
 * when there is none or the server cannot say. */
static int64_t first_time(dt_broker *b, const char *stream, const char *filter, uint64_t seq)
{
    char subj[DT_BROKER_NAME_BUF + 32], req[DT_BROKER_NAME_BUF + 96];
    if (filter != NULL && strpbrk(filter, "\"\\") != NULL) {
        return 0;
    }
    snprintf(subj, sizeof(subj), "$JS.API.STREAM.MSG.GET.%s", stream);
    snprintf(req, sizeof(req), "{\"seq\":%llu,\"next_by_subj\":\"%s\"}", (unsigned long long)seq,
             filter != NULL && filter[0] != '\0' ? filter : ">");
    natsMsg *reply = NULL;
    if (natsConnection_Request(&reply, b->nc, subj, req, (int)strlen(req),
                               (int64_t)b->o.request_timeout_ms) != NATS_OK) {
        return 0;
    }
    get_reply r = {0};
    dt__json c;
    dt__json_init(&c, natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply));
    int64_t ms = 0;
    if (dt__json_object(&c, on_reply_field, &r) && !r.error && r.time != NULL) {
        ms = rfc3339_ms(r.time, r.time_len);
    }
    natsMsg_Destroy(reply);
    return ms;
}

static void stat_from(dt_broker *b, const char *stream, const jsConsumerInfo *ci,
                      dt_broker_consumer_stat *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", ci->Name != NULL ? ci->Name : "");
    const char *filter = ci->Config != NULL ? ci->Config->FilterSubject : NULL;
    snprintf(out->filter, sizeof(out->filter), "%s", filter != NULL ? filter : "");
    out->num_pending = ci->NumPending;
    out->num_ack_pending = ci->NumAckPending;
    out->num_redelivered = ci->NumRedelivered;
    out->num_waiting = ci->NumWaiting;
    if (ci->NumPending > 0 || ci->NumAckPending > 0) {
        out->oldest_ms = first_time(b, stream, filter, ci->AckFloor.Stream + 1);
    }
}

dt_status dt_broker_consumer_stats(dt_broker *b, const char *stream, dt_broker_consumer_stat *out,
                                   size_t cap, size_t *out_n)
{
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Consumers(&list, b->js, stream, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        return dt__broker_fail(b, DT_ENOTFOUND, "no stream named '%s'", stream);
    }
    if (s != NATS_OK) {
        return dt__broker_fail_nats(b, s, jerr, "consumers of %s", stream);
    }
    size_t n = 0;
    for (int i = 0; list != NULL && i < list->Count && n < cap; i++) {
        if (list->List[i] != NULL && list->List[i]->Config != NULL &&
            list->List[i]->Config->Durable != NULL) {
            stat_from(b, stream, list->List[i], &out[n++]);
        }
    }
    jsConsumerInfoList_Destroy(list);
    *out_n = n;
    return DT_OK;
}
