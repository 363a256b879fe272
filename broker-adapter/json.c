/*
 * A strict little JSON reader for the two small objects the adapter parses itself: the hub config
 * record (hub_config.c) and JetStream PubAcks (puback.c). It reads objects field by field and
 * skips what the caller does not know; strings are returned as raw slices (escapes are not
 * interpreted: the keys and values we read have none). Nesting is bounded (depth 8).
 */
#include "broker_int.h"

#include <string.h>

#define MAX_DEPTH 8

void dt__json_init(dt__json *c, const char *data, size_t len)
{
    c->p = data;
    c->end = data + len;
}

static void skip_ws(dt__json *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

bool dt__json_eat(dt__json *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

bool dt__json_end(dt__json *c)
{
    skip_ws(c);
    return c->p == c->end;
}

bool dt__json_string(dt__json *c, const char **s, size_t *n)
{
    if (!dt__json_eat(c, '"')) {
        return false;
    }
    const char *start = c->p;
    while (c->p < c->end && *c->p != '"') {
        c->p += (*c->p == '\\' && c->p + 1 < c->end) ? 2 : 1;
    }
    if (c->p >= c->end) {
        return false;
    }
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return true;
}

bool dt__json_int(dt__json *c, int64_t *v)
{
    skip_ws(c);
    bool neg = c->p < c->end && *c->p == '-';
    c->p += neg ? 1 : 0;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
        return false;
    }
    int64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p++ - '0';
        if (x > (INT64_MAX - d) / 10) {
            return false;
        }
        x = x * 10 + d;
    }
    *v = neg ? -x : x;
    return true;
}

/* Consumes `lit` if the input continues with it. */
static bool literal(dt__json *c, const char *lit)
{
    skip_ws(c);
    size_t l = strlen(lit);
    if ((size_t)(c->end - c->p) >= l && memcmp(c->p, lit, l) == 0) {
        c->p += l;
        return true;
    }
    return false;
}

bool dt__json_bool(dt__json *c, bool *v)
{
    if (literal(c, "true")) {
        *v = true;
        return true;
    }
    if (literal(c, "false")) {
        *v = false;
        return true;
    }
    return false;
}

static bool skip_value(dt__json *c, int depth);

/* Skips the members of an object or array whose opening bracket was consumed. */
static bool skip_members(dt__json *c, char open, int depth)
{
    char close = open == '{' ? '}' : ']';
    if (dt__json_eat(c, close)) {
        return true;
    }
    do {
        const char *s;
        size_t n;
        if (open == '{' && (!dt__json_string(c, &s, &n) || !dt__json_eat(c, ':'))) {
            return false;
        }
        if (!skip_value(c, depth + 1)) {
            return false;
        }
    } while (dt__json_eat(c, ','));
    return dt__json_eat(c, close);
}

static bool skip_value(dt__json *c, int depth)
{
    skip_ws(c);
    if (depth > MAX_DEPTH || c->p >= c->end) {
        return false;
    }
    char open = *c->p;
    if (open == '"') {
        const char *s;
        size_t n;
        return dt__json_string(c, &s, &n);
    }
    if (open == '{' || open == '[') {
        c->p++;
        return skip_members(c, open, depth);
    }
    int64_t v;
    if (dt__json_int(c, &v)) {
        /* Fractions and exponents of numbers nobody reads. (Not strchr: it also finds the NUL
         * that ends its set, which let NUL bytes pass as part of a number.) */
        while (c->p < c->end && *c->p != '\0' && strchr(".eE+-0123456789", *c->p) != NULL) {
            c->p++;
        }
        return true;
    }
    bool b;
    return dt__json_bool(c, &b) || literal(c, "null");
}

bool dt__json_skip(dt__json *c)
{
    return skip_value(c, 0);
}

bool dt__json_object(dt__json *c, dt__json_field_fn field, void *ctx)
{
    if (!dt__json_eat(c, '{')) {
        return false;
    }
    if (dt__json_eat(c, '}')) {
        return true;
    }
    do {
        const char *k;
        size_t n;
        if (!dt__json_string(c, &k, &n) || !dt__json_eat(c, ':') || !field(c, k, n, ctx)) {
            return false;
        }
    } while (dt__json_eat(c, ','));
    return dt__json_eat(c, '}');
}

bool dt__json_key_is(const char *k, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(k, name, n) == 0;
}
