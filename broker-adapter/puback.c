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

bool dt__broker_puback_parse_json(const char *data, size_t len, dt__puback *out)
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

/* Skips spaces, then consumes `lit` (n bytes) if the input at *p continues with it. */
static bool take(const char **p, const char *end, const char *lit, size_t n)
{
    while (*p < end && **p == ' ') {
        (*p)++;
    }
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0) {
        return false;
    }
    *p += n;
    return true;
}

#define TAKE(p, end, lit) take(&(p), end, lit, sizeof(lit) - 1)

/*
 * The two shapes nats-server 2.9 sends for a stored message, {"stream":"<name>", "seq":<n>} and
 * the same with ,"duplicate": true before the brace (spaces as the server writes them, or none),
 * read token by token: one PubAck per published message, and the JSON reader took ~980
 * instructions for one (docs/performance.md). Anything else (an error, a domain, other
 * whitespace, an escape, 19 or more digits) is left to the JSON reader, which accepts everything
 * this accepts with the same result (tests/unit/test_broker_json.c, tests/fuzz/fuzz_puback.c).
 */
static bool parse_common(const char *p, size_t len, dt__puback *out)
{
    const char *end = p + len;
    if (!TAKE(p, end, "{\"stream\":\"")) {
        return false;
    }
    while (p < end && *p != '"') {
        if (*p++ == '\\') {
            return false;
        }
    }
    if (!TAKE(p, end, "\"") || !TAKE(p, end, ",") || !TAKE(p, end, "\"seq\":") ||
        !TAKE(p, end, "")) {
        return false;
    }
    const char *digits = p;
    uint64_t seq = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - digits < 18) {
        seq = seq * 10 + (uint64_t)(*p++ - '0');
    }
    if (p == digits) {
        return false;
    }
    bool dup = false;
    const char *q = p;
    if (TAKE(q, end, ",") && TAKE(q, end, "\"duplicate\":") && TAKE(q, end, "true")) {
        dup = true;
        p = q;
    }
    if (!TAKE(p, end, "}") || p != end) {
        return false;
    }
    memset(out, 0, sizeof(*out));
    out->seq = seq;
    out->duplicate = dup;
    return true;
}

bool dt__broker_puback_parse(const char *data, size_t len, dt__puback *out)
{
    return parse_common(data, len, out) || dt__broker_puback_parse_json(data, len, out);
}
