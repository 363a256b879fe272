/*
 * The JSON form of instances, failures and history events (jconv.h). Field names and order are
 * those dtctl --json has always printed; the dashboard's API serves the same objects.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "durabletask/alloc.h"
#include "common_int.h"
#include "jconv.h"

/* Deepest failure chain converted (dt_failure chains are built by the runtime and short). */
#define JCONV_FAILURE_DEPTH 32

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
    if (len == 0 || len > n || p[0] > 0xf4 || p[0] == 0xc0 || p[0] == 0xc1) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    /* Overlong 3/4-byte forms, surrogates, and code points above U+10FFFF. */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)) {
        return 0;
    }
    return len;
}

json_t *dt__jconv_bytes(const void *data, size_t len)
{
    if (data == NULL) {
        return json_null();
    }
    const unsigned char *p = data;
    /* Each invalid byte becomes the 3 bytes of U+FFFD: at most 3 * len. */
    if (len > (SIZE_MAX - 1) / 3) {
        return NULL;
    }
    unsigned char *out = dt_alloc(3 * len + 1);
    if (out == NULL) {
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = p[i] < 0x80 ? 1 : utf8_len(p + i, len - i);
        if (n == 0) {
            /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): bytes inside the output */
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    json_t *s = json_stringn_nocheck((const char *)out, o);
    dt_free(out);
    return s;
}

json_t *dt__jconv_str(const char *s)
{
    return s == NULL ? json_null() : dt__jconv_bytes(s, strlen(s));
}

const char *dt__jconv_time_text(int64_t ms, char *buf, size_t len)
{
    if (ms == 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    return dt__iso8601_ms(ms, buf, len);
}

/* obj[key] = v, taking the reference; -1 when v is NULL (memory ran out) or the set failed. */
static int set_new(json_t *obj, const char *key, json_t *v)
{
    return v == NULL ? -1 : json_object_set_new(obj, key, v);
}

int dt__jconv_set_time(json_t *obj, const char *key, int64_t ms)
{
    char buf[40], k[64];
    snprintf(k, sizeof(k), "%s_ms", key);
    int rc = set_new(
        obj, key, ms != 0 ? json_string(dt__jconv_time_text(ms, buf, sizeof(buf))) : json_null());
    return rc | set_new(obj, k, json_integer(ms));
}

static json_t *failure_at(const dt_failure *f, int depth)
{
    if (f == NULL || depth >= JCONV_FAILURE_DEPTH) {
        return json_null();
    }
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = set_new(o, "type", dt__jconv_str(f->type));
    rc |= set_new(o, "message", dt__jconv_str(f->message));
    rc |= set_new(o, "stack_trace", dt__jconv_str(f->stack_trace));
    rc |= set_new(o, "non_retriable", json_boolean(f->non_retriable));
    rc |= set_new(o, "inner", failure_at(f->inner, depth + 1));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *dt__jconv_failure(const dt_failure *f)
{
    return failure_at(f, 0);
}

static json_t *tags(const dt_client_instance *in)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < in->ntags; i++) {
        if (set_new(o, in->tags[i].key, dt__jconv_str(in->tags[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *dt__jconv_instance(const dt_client_instance *in)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = set_new(o, "instance_id", dt__jconv_str(in->instance_id));
    rc |= set_new(o, "name", dt__jconv_str(in->name));
    rc |= set_new(o, "execution_id", dt__jconv_str(in->execution_id));
    rc |= set_new(o, "runtime_status",
                  json_string(dt_client_runtime_status_name(in->runtime_status)));
    rc |= set_new(o, "version", dt__jconv_str(in->version));
    rc |= dt__jconv_set_time(o, "created_at", in->created_at_ms);
    rc |= dt__jconv_set_time(o, "last_updated_at", in->last_updated_at_ms);
    rc |= set_new(o, "parent_instance_id", dt__jconv_str(in->parent_instance_id));
    rc |= set_new(o, "input", dt__jconv_bytes(in->input, in->input_len));
    rc |= set_new(o, "output", dt__jconv_bytes(in->output, in->output_len));
    rc |= set_new(o, "custom_status", dt__jconv_bytes(in->custom_status, in->custom_status_len));
    rc |= set_new(o, "failure", dt__jconv_failure(in->failure));
    rc |= set_new(o, "tags", tags(in));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *dt__jconv_event(const dt_client_event *e)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = set_new(o, "event_id", json_integer(e->event_id));
    rc |= dt__jconv_set_time(o, "timestamp", e->timestamp_ms);
    rc |= set_new(o, "type", dt__jconv_str(e->type));
    rc |= set_new(o, "name", dt__jconv_str(e->name));
    rc |= set_new(o, "instance_id", dt__jconv_str(e->instance_id));
    if (e->task_id >= 0) {
        rc |= set_new(o, "task_id", json_integer(e->task_id));
    }
    if (e->fire_at_ms != 0) {
        rc |= dt__jconv_set_time(o, "fire_at", e->fire_at_ms);
    }
    rc |= set_new(o, "payload", dt__jconv_bytes(e->payload, e->payload_len));
    rc |= set_new(o, "failure", dt__jconv_failure(e->failure));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
