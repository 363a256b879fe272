/*
 * Printing results: instances, pages, histories and action confirmations, as JSON objects
 * (--json; built with jansson in the form jconv.h defines, which the dashboard's API shares) or
 * as text for people. Payloads print as JSON strings in JSON (they are opaque
 * bytes; by convention they hold JSON text, which a consumer can parse again) and verbatim,
 * shortened, in text.
 */
#include <string.h>

#include "cli_int.h"

/* Longest payload shown in full in tables; longer ones are cut with "...". */
#define TABLE_PAYLOAD_MAX 60

const char *cli_time(int64_t ms, char *buf, size_t len)
{
    return dt__jconv_time_text(ms, buf, len);
}

void cli_json_print(FILE *f, json_t *v)
{
    /* JSON_ENCODE_ANY: a NULL (memory exhausted) still prints a JSON value, null. */
    if (v == NULL || json_dumpf(v, f, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
        fputs("null", f);
    }
    fputc('\n', f);
    json_decref(v);
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
        cli_json_print(stdout, dt__jconv_instance(in));
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
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < pg->n; i++) {
            json_array_append_new(arr, dt__jconv_instance(&pg->instances[i]));
        }
        cli_json_print(stdout, json_pack("{s:o,s:o}", "instances", arr, "next_page_token",
                                         dt__jconv_str(pg->next_page_token)));
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
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < h->n; i++) {
            json_array_append_new(arr, dt__jconv_event(&h->events[i]));
        }
        cli_json_print(stdout,
                       json_pack("{s:o,s:o}", "instance_id", dt__jconv_str(id), "events", arr));
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
        cli_json_print(stdout, json_pack("{s:o,s:s,s:b}", "instance_id", dt__jconv_str(id),
                                         "action", action, "ok", 1));
        return;
    }
    printf("%s\n", text);
}
