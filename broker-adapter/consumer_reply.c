/*
 * The reply of $JS.API.CONSUMER.CREATE, as far as the single-key KV watch (kv_watch_key.c) reads
 * it. nats-server 2.9 answers with the consumer's info or an error:
 *   {"type":"io.nats.jetstream.api.v1.consumer_create_response","stream_name":"KV_b",...,
 *    "delivered":{"consumer_seq":0,"stream_seq":0},...,"num_pending":3}
 *   {"type":"...","error":{"code":404,"err_code":10059,"description":"stream not found"}}
 * Other keys are skipped (nested objects and arrays included).
 */
#include "broker_int.h"

#include <string.h>

static bool on_error(dt__json *c, const char *k, size_t n, void *ctx)
{
    dt__consumer_reply *r = ctx;
    if (dt__json_key_is(k, n, "err_code")) {
        return dt__json_int(c, &r->err_code);
    }
    if (dt__json_key_is(k, n, "description")) {
        return dt__json_string(c, &r->desc, &r->desc_len);
    }
    return dt__json_skip(c);
}

static bool on_delivered(dt__json *c, const char *k, size_t n, void *ctx)
{
    dt__consumer_reply *r = ctx;
    return dt__json_key_is(k, n, "consumer_seq") ? dt__json_int(c, &r->delivered_consumer_seq)
                                                 : dt__json_skip(c);
}

static bool on_reply(dt__json *c, const char *k, size_t n, void *ctx)
{
    dt__consumer_reply *r = ctx;
    if (dt__json_key_is(k, n, "error")) {
        r->has_error = true;
        return dt__json_object(c, on_error, r);
    }
    if (dt__json_key_is(k, n, "num_pending")) {
        return dt__json_int(c, &r->num_pending);
    }
    if (dt__json_key_is(k, n, "delivered")) {
        return dt__json_object(c, on_delivered, r);
    }
    return dt__json_skip(c);
}

bool dt__broker_consumer_reply_parse(const char *data, size_t len, dt__consumer_reply *out)
{
    dt__consumer_reply r;
    memset(&r, 0, sizeof(r));
    dt__json c;
    dt__json_init(&c, data, len);
    if (!dt__json_object(&c, on_reply, &r)) {
        return false;
    }
    *out = r;
    return true;
}
