/*
 * The backlog of a durable consumer, read by name without binding to it (for metrics): consumer
 * info (pending, in flight, redelivered) and the age of the oldest message not yet acknowledged,
 * found with one stream message get ($JS.API.STREAM.MSG.GET, "next_by_subj" from the ack floor),
 * so no consumer is created, changed or delivered from.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker_int.h"

#define MSG_GET_TIMEOUT_MS 1000

/* "2026-12-07T20:10:30.123456789Z" as Unix nanoseconds; false when it does not parse. */
static bool parse_rfc3339_ns(const char *s, size_t n, int64_t *out)
{
    char buf[64];
    if (n < 20 || n >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    struct tm tm = {0};
    int frac_at = 0;
    if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &frac_at) != 6) {
        return false;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t ns = 0, scale = 100000000;
    const char *c = buf + frac_at;
    if (*c == '.') {
        for (c++; *c >= '0' && *c <= '9'; c++) {
            ns += (*c - '0') * scale;
            scale /= 10;
        }
    }
    /* nats-server writes UTC ("Z"); an offset is not expected and refused. */
    if (*c != 'Z') {
        return false;
    }
    *out = (int64_t)timegm(&tm) * 1000000000 + ns;
    return true;
}

typedef struct msg_get_reply {
    int64_t time_ns;
    bool have_time;
    bool not_found;
} msg_get_reply;

static bool message_field(dt__json *c, const char *k, size_t n, void *ctx)
{
    msg_get_reply *r = ctx;
    if (dt__json_key_is(k, n, "time")) {
        const char *s = NULL;
        size_t len = 0;
        if (!dt__json_string(c, &s, &len)) {
            return false;
        }
        r->have_time = parse_rfc3339_ns(s, len, &r->time_ns);
        return true;
    }
    return dt__json_skip(c);
}

static bool reply_field(dt__json *c, const char *k, size_t n, void *ctx)
{
    msg_get_reply *r = ctx;
    if (dt__json_key_is(k, n, "message")) {
        return dt__json_object(c, message_field, ctx);
    }
    if (dt__json_key_is(k, n, "error")) {
        r->not_found = true; /* 10037 "no message found", or any other refusal: no age */
    }
    return dt__json_skip(c);
}

/* Unix ns of the first message on `filter` with sequence >= seq; DT_ENOTFOUND when none. */
static dt_status first_time_from(dt_broker *b, const char *stream, const char *filter, uint64_t seq,
                                 int64_t *out_ns)
{
    char subj[DT_BROKER_NAME_BUF + 32], req[DT_BROKER_NAME_BUF + 64];
    int n1 = snprintf(subj, sizeof(subj), "$JS.API.STREAM.MSG.GET.%s", stream);
    int n2 = snprintf(req, sizeof(req), "{\"seq\":%llu,\"next_by_subj\":\"%s\"}",
                      (unsigned long long)seq, filter);
    if (n1 < 0 || (size_t)n1 >= sizeof(subj) || n2 < 0 || (size_t)n2 >= sizeof(req)) {
        return DT_ETOOLARGE;
    }
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_Request(&reply, b->nc, subj, req, n2, MSG_GET_TIMEOUT_MS);
    if (s != NATS_OK) {
        return DT_EBROKER;
    }
    msg_get_reply r = {0};
    dt__json c;
    dt__json_init(&c, natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply));
    bool ok = dt__json_object(&c, reply_field, &r);
    natsMsg_Destroy(reply);
    if (!ok) {
        return DT_EDECODE;
    }
    if (r.not_found || !r.have_time) {
        return DT_ENOTFOUND;
    }
    *out_ns = r.time_ns;
    return DT_OK;
}

dt_status dt_broker_consumer_stat(dt_broker *b, const char *stream, const char *durable,
                                  const char *filter, dt_broker_consumer_stat_info *out)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, b->js, stream, durable, NULL, &jerr);
    if (s != NATS_OK) {
        /* Not through the handle's error text, which other threads' failures report. */
        char err[DT__BROKER_ERR_LEN];
        return dt__broker_nerr(err, sizeof(err), s, jerr, "info of consumer %s on %s", durable,
                               stream);
    }
    *out = (dt_broker_consumer_stat_info){
        .num_pending = ci->NumPending,
        .num_ack_pending = ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0,
        .num_redelivered = ci->NumRedelivered > 0 ? (uint64_t)ci->NumRedelivered : 0,
        .oldest_ns = 0,
    };
    uint64_t from = ci->AckFloor.Stream + 1;
    jsConsumerInfo_Destroy(ci);
    bool plain = filter != NULL && strpbrk(filter, "\"\\") == NULL; /* written into JSON as is */
    if (plain && out->num_pending + out->num_ack_pending > 0) {
        int64_t ns = 0;
        if (first_time_from(b, stream, filter, from, &ns) == DT_OK) {
            out->oldest_ns = ns;
        }
    }
    return DT_OK;
}
