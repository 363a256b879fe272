/*
 * Printing results: instances, pages, histories and action confirmations, as JSON objects
 * (--json) or as text for people. Payloads print as JSON strings in JSON (they are opaque
 * bytes; by convention they hold JSON text, which a consumer can parse again) and verbatim,
 * shortened, in text.
 */
#include <string.h>
#include <time.h>

#include "cli_int.h"

/* Longest payload shown in full in tables; longer ones are cut with "...". */
#define TABLE_PAYLOAD_MAX 60

const char *cli_time(int64_t ms, char *buf, size_t len)
{
    if (ms == 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t s = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        s -= 1;
        frac += 1000;
    }
    struct tm tm;
    char date[32];
    if (gmtime_r(&s, &tm) == NULL || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, len, "%lld", (long long)ms);
        return buf;
    }
    snprintf(buf, len, "%s.%03dZ", date, frac);
    return buf;
}

static void kv_time(cli_json *j, const char *k, int64_t ms)
{
    char buf[40], key[64];
    json_kv_str(j, k, ms != 0 ? cli_time(ms, buf, sizeof(buf)) : NULL);
    snprintf(key, sizeof(key), "%s_ms", k);
    json_kv_i64(j, key, ms);
}

void out_failure_json(cli_json *j, const dt_failure *f)
{
    if (f == NULL) {
        json_null(j);
        return;
    }
    json_obj_begin(j);
    json_kv_str(j, "type", f->type);
    json_kv_str(j, "message", f->message);
    json_kv_str(j, "stack_trace", f->stack_trace);
    json_kv_bool(j, "non_retriable", f->non_retriable);
    json_key(j, "inner");
    out_failure_json(j, f->inner);
    json_obj_end(j);
}

void out_instance_json(cli_json *j, const dt_client_instance *in)
{
    json_obj_begin(j);
    json_kv_str(j, "instance_id", in->instance_id);
    json_kv_str(j, "name", in->name);
    json_kv_str(j, "execution_id", in->execution_id);
    json_kv_str(j, "runtime_status", dt_client_runtime_status_name(in->runtime_status));
    json_kv_str(j, "version", in->version);
    kv_time(j, "created_at", in->created_at_ms);
    kv_time(j, "last_updated_at", in->last_updated_at_ms);
    json_kv_str(j, "parent_instance_id", in->parent_instance_id);
    json_kv_bytes(j, "input", in->input, in->input_len);
    json_kv_bytes(j, "output", in->output, in->output_len);
    json_kv_bytes(j, "custom_status", in->custom_status, in->custom_status_len);
    json_key(j, "failure");
    out_failure_json(j, in->failure);
    json_key(j, "tags");
    json_obj_begin(j);
    for (size_t i = 0; i < in->ntags; i++) {
        json_kv_str(j, in->tags[i].key, in->tags[i].value);
    }
    json_obj_end(j);
    json_obj_end(j);
}

static void text_payload(const char *k, const void *data, size_t len)
{
    if (data != NULL) {
        printf("%-16s %.*s\n", k, (int)len, (const char *)data);
    }
}

static void text_failure(const dt_failure *f, int depth)
{
    for (; f != NULL && depth < 16; f = f->inner, depth++) {
        printf("%-16s %*s%s: %s%s\n", depth == 0 ? "failure:" : "", 2 * depth, "", f->type,
               f->message, f->non_retriable ? " (non-retriable)" : "");
        if (f->stack_trace != NULL) {
            printf("%-16s %*s%s\n", "", 2 * depth + 2, "", f->stack_trace);
        }
    }
}

void out_instance(const cli *c, const dt_client_instance *in)
{
    if (c->json) {
        cli_json j;
        json_init(&j, stdout);
        out_instance_json(&j, in);
        return;
    }
    char t1[40], t2[40];
    printf("%-16s %s\n", "instance:", in->instance_id);
    printf("%-16s %s\n", "name:", in->name);
    printf("%-16s %s\n", "status:", dt_client_runtime_status_name(in->runtime_status));
    printf("%-16s %s\n", "execution:", in->execution_id);
    if (in->version != NULL) {
        printf("%-16s %s\n", "version:", in->version);
    }
    printf("%-16s %s\n", "created:", cli_time(in->created_at_ms, t1, sizeof(t1)));
    printf("%-16s %s\n", "last updated:", cli_time(in->last_updated_at_ms, t2, sizeof(t2)));
    if (in->parent_instance_id != NULL) {
        printf("%-16s %s\n", "parent:", in->parent_instance_id);
    }
    text_payload("input:", in->input, in->input_len);
    text_payload("output:", in->output, in->output_len);
    text_payload("custom status:", in->custom_status, in->custom_status_len);
    text_failure(in->failure, 0);
    for (size_t i = 0; i < in->ntags; i++) {
        printf("%-16s %s=%s\n", i == 0 ? "tags:" : "", in->tags[i].key, in->tags[i].value);
    }
}

void out_page(const cli *c, const dt_client_page *pg)
{
    if (c->json) {
        cli_json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "instances");
        json_arr_begin(&j);
        for (size_t i = 0; i < pg->n; i++) {
            out_instance_json(&j, &pg->instances[i]);
        }
        json_arr_end(&j);
        json_kv_str(&j, "next_page_token", pg->next_page_token);
        json_obj_end(&j);
        return;
    }
    printf("%-38s %-24s %-16s %-24s %s\n", "INSTANCE", "NAME", "STATUS", "CREATED", "UPDATED");
    for (size_t i = 0; i < pg->n; i++) {
        const dt_client_instance *in = &pg->instances[i];
        char t1[40], t2[40];
        printf("%-38s %-24s %-16s %-24s %s\n", in->instance_id, in->name,
               dt_client_runtime_status_name(in->runtime_status),
               cli_time(in->created_at_ms, t1, sizeof(t1)),
               cli_time(in->last_updated_at_ms, t2, sizeof(t2)));
    }
    if (pg->next_page_token != NULL) {
        printf("(more: --page %s)\n", pg->next_page_token);
    }
}

static void event_json(cli_json *j, const dt_client_event *e)
{
    json_obj_begin(j);
    json_kv_i64(j, "event_id", e->event_id);
    kv_time(j, "timestamp", e->timestamp_ms);
    json_kv_str(j, "type", e->type);
    json_kv_str(j, "name", e->name);
    json_kv_str(j, "instance_id", e->instance_id);
    if (e->task_id >= 0) {
        json_kv_i64(j, "task_id", e->task_id);
    }
    if (e->fire_at_ms != 0) {
        kv_time(j, "fire_at", e->fire_at_ms);
    }
    json_kv_bytes(j, "payload", e->payload, e->payload_len);
    json_key(j, "failure");
    out_failure_json(j, e->failure);
    json_obj_end(j);
}

/* The detail column of a history row: name, task reference, payload (shortened). */
static void event_detail(const dt_client_event *e, char *buf, size_t len)
{
    size_t o = 0;
    if (e->name != NULL) {
        o += (size_t)snprintf(buf + o, len - o, "%s ", e->name);
    }
    if (o < len && e->task_id >= 0) {
        o += (size_t)snprintf(buf + o, len - o, "task=%d ", (int)e->task_id);
    }
    if (o < len && e->failure != NULL) {
        o += (size_t)snprintf(buf + o, len - o, "%s: %s ", e->failure->type, e->failure->message);
    }
    if (o < len && e->payload != NULL) {
        int n = e->payload_len > TABLE_PAYLOAD_MAX ? TABLE_PAYLOAD_MAX : (int)e->payload_len;
        snprintf(buf + o, len - o, "%.*s%s", n, (const char *)e->payload,
                 e->payload_len > TABLE_PAYLOAD_MAX ? "..." : "");
    }
}

void out_history(const cli *c, const char *id, const dt_client_history *h)
{
    if (c->json) {
        cli_json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_kv_str(&j, "instance_id", id);
        json_key(&j, "events");
        json_arr_begin(&j);
        for (size_t i = 0; i < h->n; i++) {
            event_json(&j, &h->events[i]);
        }
        json_arr_end(&j);
        json_obj_end(&j);
        return;
    }
    printf("%-5s %-5s %-24s %-34s %s\n", "#", "ID", "TIME", "TYPE", "DETAIL");
    for (size_t i = 0; i < h->n; i++) {
        const dt_client_event *e = &h->events[i];
        char t[40], detail[256] = "";
        event_detail(e, detail, sizeof(detail));
        printf("%-5zu %-5d %-24s %-34s %s\n", i, (int)e->event_id,
               cli_time(e->timestamp_ms, t, sizeof(t)), e->type, detail);
    }
}

void out_done(const cli *c, const char *id, const char *action, const char *text)
{
    if (c->json) {
        cli_json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_kv_str(&j, "instance_id", id);
        json_kv_str(&j, "action", action);
        json_kv_bool(&j, "ok", true);
        json_obj_end(&j);
        return;
    }
    printf("%s\n", text);
}
