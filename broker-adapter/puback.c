/*
 * JetStream PubAcks, parsed by the async publisher itself (it collects them from its own
 * subscription instead of through nats.c's js_PublishAsync, see publisher.c).
 *
 * nats-server 2.9 answers a JetStream publish with one JSON object:
 *   {"stream":"S","seq":12}                          stored
 *   {"stream":"S","seq":12,"duplicate":true}         a repeat of a stored Nats-Msg-Id
 *   {"error":{"code":400,"err_code":10054,"description":"..."},"stream":"S","seq":0}
 * Other keys ("domain", "type") are skipped.
 */
#include "broker_int.h"

#include <string.h>

static bool on_error_field(dt__json *c, const char *k, size_t n, void *ctx)
{
    dt__puback *pa = ctx;
    if (dt__json_key_is(k, n, "err_code")) {
        return dt__json_int(c, &pa->err_code);
    }
    if (dt__json_key_is(k, n, "description")) {
        return dt__json_string(c, &pa->desc, &pa->desc_len);
    }
    return dt__json_skip(c); /* "code" (HTTP-like) adds nothing to err_code */
}

typedef struct top {
    dt__puback *pa;
    bool has_seq;
} top;

static bool on_field(dt__json *c, const char *k, size_t n, void *ctx)
{
    top *t = ctx;
    if (dt__json_key_is(k, n, "seq")) {
        int64_t v = 0;
        if (!dt__json_int(c, &v) || v < 0) {
            return false;
        }
        t->pa->seq = (uint64_t)v;
        t->has_seq = true;
        return true;
    }
    if (dt__json_key_is(k, n, "duplicate")) {
        return dt__json_bool(c, &t->pa->duplicate);
    }
    if (dt__json_key_is(k, n, "error")) {
        t->pa->has_error = true;
        return dt__json_object(c, on_error_field, t->pa);
    }
    return dt__json_skip(c);
}

bool dt__broker_puback_parse(const char *data, size_t len, dt__puback *out)
{
    dt__puback pa;
    memset(&pa, 0, sizeof(pa));
    top t = {&pa, false};
    dt__json c;
    dt__json_init(&c, data, len);
    if (!dt__json_object(&c, on_field, &t) || !dt__json_end(&c) || !(t.has_seq || pa.has_error)) {
        return false;
    }
    *out = pa;
    return true;
}
