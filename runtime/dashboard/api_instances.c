/*
 * /api/instances: the list (filters, sorting, paging), one instance, its history, and the
 * control actions (suspend, resume, terminate, raise, purge, restart), all through the client
 * API.
 *
 * Sorting: the partitions answer a list partition by partition, in ID order within each, so a
 * sorted page needs every match first. The list reads up to DT__DASH_SCAN_MAX matches (reported
 * as "truncated" beyond), sorts them and returns the requested slice. Filters narrow the read
 * at the partitions, so a filtered view stays cheap on a large hub.
 */
#include <stdlib.h>
#include <string.h>

#include "dash_int.h"
#include "durabletask/alloc.h"
#include "jconv.h"

#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX     500
#define LIST_READ_PAGE     1000
#define LIST_PAGES_MAX     (DT__DASH_SCAN_MAX / LIST_READ_PAGE)

typedef enum { SORT_CREATED, SORT_UPDATED, SORT_NAME, SORT_ID, SORT_STATUS } sort_key;

typedef struct list_args {
    dt_client_filter f;
    dt_client_runtime_status sts[8];
    int64_t limit, offset;
    sort_key key;
    bool desc;
} list_args;

/* Parses "RUNNING,completed" into a->sts; false on an unknown name or too many. */
static bool parse_statuses(const char *list, list_args *a)
{
    char buf[256];
    if (strlen(list) >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, list, strlen(list) + 1);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (a->f.nstatuses == 8 ||
            dt_client_runtime_status_parse(t, &a->sts[a->f.nstatuses]) != DT_OK) {
            return false;
        }
        a->f.nstatuses++;
    }
    a->f.statuses = a->sts;
    return a->f.nstatuses > 0;
}

static bool parse_sort(const char *s, list_args *a)
{
    static const char *const names[] = {"created", "updated", "name", "id", "status"};
    a->desc = s[0] == '-';
    s += a->desc ? 1 : 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            a->key = (sort_key)i;
            return true;
        }
    }
    return false;
}

/* Reads the query parameters; on a bad one replies 400 and returns false. */
static bool parse_list_args(struct MHD_Connection *conn, list_args *a, enum MHD_Result *ret)
{
    memset(a, 0, sizeof(*a));
    a->limit = LIST_LIMIT_DEFAULT;
    a->key = SORT_CREATED;
    a->desc = true;
    const char *status = dt__dash_arg(conn, "status"), *sort = dt__dash_arg(conn, "sort");
    const char *from = dt__dash_arg(conn, "created_from"), *to = dt__dash_arg(conn, "created_to");
    const char *limit = dt__dash_arg(conn, "limit"), *offset = dt__dash_arg(conn, "offset");
    const char *bad = NULL;
    if (status != NULL && status[0] != '\0' && !parse_statuses(status, a)) {
        bad = "status: a comma-separated list of RUNNING, COMPLETED, CONTINUED_AS_NEW, FAILED, "
              "CANCELED, TERMINATED, PENDING, SUSPENDED";
    } else if (from != NULL && from[0] != '\0' &&
               !dt__dash_i64(from, 0, INT64_MAX / 2, &a->f.created_from_ms)) {
        bad = "created_from: milliseconds since the Unix epoch";
    } else if (to != NULL && to[0] != '\0' &&
               !dt__dash_i64(to, 0, INT64_MAX / 2, &a->f.created_to_ms)) {
        bad = "created_to: milliseconds since the Unix epoch";
    } else if (limit != NULL && !dt__dash_i64(limit, 1, LIST_LIMIT_MAX, &a->limit)) {
        bad = "limit: 1 to 500";
    } else if (offset != NULL && !dt__dash_i64(offset, 0, DT__DASH_SCAN_MAX, &a->offset)) {
        bad = "offset: 0 to 20000";
    } else if (sort != NULL && !parse_sort(sort, a)) {
        bad = "sort: created, updated, name, id or status, '-' first for descending";
    }
    if (bad != NULL) {
        *ret = dt__dash_reply_error(conn, MHD_HTTP_BAD_REQUEST, "bad_filter", "%s", bad);
        return false;
    }
    const char *name = dt__dash_arg(conn, "name"), *prefix = dt__dash_arg(conn, "prefix");
    a->f.name = name != NULL && name[0] != '\0' ? name : NULL;
    a->f.instance_id_prefix = prefix != NULL && prefix[0] != '\0' ? prefix : NULL;
    return true;
}

/* qsort has no context argument: the sort key travels in every item. */
typedef struct item {
    const dt_client_instance *in;
    sort_key key;
    bool desc;
} item;

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_items(const void *pa, const void *pb)
{
    const item *a = pa, *b = pb;
    int c = 0;
    switch (a->key) {
    case SORT_CREATED:
        c = cmp_i64(a->in->created_at_ms, b->in->created_at_ms);
        break;
    case SORT_UPDATED:
        c = cmp_i64(a->in->last_updated_at_ms, b->in->last_updated_at_ms);
        break;
    case SORT_NAME:
        c = strcmp(a->in->name, b->in->name);
        break;
    case SORT_STATUS:
        c = strcmp(dt_client_runtime_status_name(a->in->runtime_status),
                   dt_client_runtime_status_name(b->in->runtime_status));
        break;
    case SORT_ID:
        break;
    }
    if (c == 0) { /* ties (and SORT_ID) by ID: a stable order across pages */
        c = strcmp(a->in->instance_id, b->in->instance_id);
    }
    return a->desc ? -c : c;
}

/* The slice [offset, offset + limit) of the sorted items as {"instances":[...],...}. */
static json_t *page_json(item *items, size_t n, const list_args *a, bool truncated)
{
    qsort(items, n, sizeof(*items), cmp_items);
    json_t *arr = json_array();
    for (size_t i = (size_t)a->offset; arr != NULL && i < n && i < (size_t)(a->offset + a->limit);
         i++) {
        if (json_array_append_new(arr, dt__jconv_instance(items[i].in)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return json_pack("{s:o,s:I,s:I,s:I,s:b}", "instances", arr, "total", (json_int_t)n, "offset",
                     (json_int_t)a->offset, "limit", (json_int_t)a->limit, "truncated", truncated);
}

enum MHD_Result dt__dash_api_list(dt_dashboard *d, dt__dash_req *r)
{
    list_args a;
    enum MHD_Result ret = MHD_NO;
    if (!parse_list_args(r->conn, &a, &ret)) {
        return ret;
    }
    dt_client_page *pages[LIST_PAGES_MAX] = {0};
    size_t npages = 0, total = 0;
    const char *token = NULL;
    dt_status st = DT_OK;
    do {
        st = dt_client_list(d->c, &a.f, token, LIST_READ_PAGE, false, &pages[npages]);
        if (st != DT_OK) {
            break;
        }
        total += pages[npages]->n;
        token = pages[npages++]->next_page_token;
    } while (token != NULL && npages < LIST_PAGES_MAX);
    item *items = st == DT_OK ? dt_calloc(total + 1, sizeof(*items)) : NULL;
    if (st != DT_OK) {
        ret = dt__dash_reply_client(d, r->conn, st);
    } else if (items == NULL) {
        ret = MHD_NO;
    } else {
        size_t k = 0;
        for (size_t p = 0; p < npages; p++) {
            for (size_t i = 0; i < pages[p]->n; i++) {
                items[k++] = (item){&pages[p]->instances[i], a.key, a.desc};
            }
        }
        ret = dt__dash_reply_json(r->conn, MHD_HTTP_OK, page_json(items, k, &a, token != NULL));
    }
    dt_free(items);
    for (size_t p = 0; p < npages; p++) {
        dt_client_page_free(pages[p]);
    }
    return ret;
}

static enum MHD_Result get_instance(dt_dashboard *d, dt__dash_req *r, const char *id)
{
    dt_client_instance *in = NULL;
    dt_status st = dt_client_get_status(d->c, id, true, &in);
    if (st != DT_OK) {
        return dt__dash_reply_client(d, r->conn, st);
    }
    json_t *o = dt__jconv_instance(in);
    dt_client_instance_free(in);
    return dt__dash_reply_json(r->conn, MHD_HTTP_OK, o);
}

static enum MHD_Result get_history(dt_dashboard *d, dt__dash_req *r, const char *id)
{
    dt_client_history *h = NULL;
    dt_status st = dt_client_get_history(d->c, id, &h);
    if (st != DT_OK) {
        return dt__dash_reply_client(d, r->conn, st);
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < h->n; i++) {
        if (json_array_append_new(arr, dt__jconv_event(&h->events[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    dt_client_history_free(h);
    json_t *o = arr != NULL
                    ? json_pack("{s:o,s:o}", "instance_id", dt__jconv_str(id), "events", arr)
                    : NULL;
    return dt__dash_reply_json(r->conn, MHD_HTTP_OK, o);
}

/* body[key] as a string: *out NULL when absent or null; false when it is another type. */
static bool opt_string(json_t *body, const char *key, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = json_is_string(v) ? json_string_value(v) : NULL;
    return v == NULL || json_is_null(v) || json_is_string(v);
}

/* As run_action, for raise. */
static enum MHD_Result do_raise(dt_dashboard *d, dt__dash_req *r, const char *id, json_t *body,
                                dt_status *st, bool *replied)
{
    const char *name = NULL, *key = NULL;
    *replied = true;
    if (!opt_string(body, "name", &name) || name == NULL ||
        !opt_string(body, "idempotency_key", &key)) {
        return dt__dash_reply_error(r->conn, MHD_HTTP_BAD_REQUEST, "invalid",
                                    "raise needs {\"name\": string, \"data\": any JSON value}");
    }
    /* The event's data is JSON text, as every payload by convention: the value as given. */
    json_t *data = json_object_get(body, "data");
    char *text = data != NULL ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (data != NULL && text == NULL) {
        return MHD_NO;
    }
    *st = dt_client_raise_event(d->c, id, name, text, text != NULL ? strlen(text) : 0, key);
    free(text); /* jansson's malloc */
    *replied = false;
    return MHD_YES;
}

/* Runs `action` on instance `id`; *st is the client's status (DT_OK: accepted). On bad input
 * it replies itself (*replied true) and returns the reply's result. */
/* An optional boolean member: false when present and not a boolean. */
static bool opt_bool(json_t *body, const char *key, bool *out)
{
    json_t *v = json_object_get(body, key);
    if (v != NULL && !json_is_boolean(v)) {
        return false;
    }
    *out = v != NULL && json_is_true(v);
    return true;
}

static enum MHD_Result run_action(dt_dashboard *d, dt__dash_req *r, const char *id,
                                  const char *action, json_t *body, dt_status *st, bool *replied,
                                  char *started)
{
    const char *reason = NULL;
    *replied = false;
    if (!opt_string(body, "reason", &reason)) {
        *replied = true;
        return dt__dash_reply_error(r->conn, MHD_HTTP_BAD_REQUEST, "invalid",
                                    "reason must be a string");
    }
    if (strcmp(action, "suspend") == 0) {
        *st = dt_client_suspend(d->c, id, reason);
    } else if (strcmp(action, "resume") == 0) {
        *st = dt_client_resume(d->c, id, reason);
    } else if (strcmp(action, "terminate") == 0) {
        json_t *rec = json_object_get(body, "recursive");
        if (rec != NULL && !json_is_boolean(rec)) {
            *replied = true;
            return dt__dash_reply_error(r->conn, MHD_HTTP_BAD_REQUEST, "invalid",
                                        "recursive must be true or false");
        }
        *st = dt_client_terminate(d->c, id, reason, rec == NULL || json_is_true(rec));
    } else if (strcmp(action, "purge") == 0) {
        bool rec = false;
        if (!opt_bool(body, "recursive", &rec)) {
            *replied = true;
            return dt__dash_reply_error(r->conn, MHD_HTTP_BAD_REQUEST, "invalid",
                                        "recursive must be true or false");
        }
        *st = rec ? dt_client_purge_recursive(d->c, id, NULL) : dt_client_purge(d->c, id);
    } else if (strcmp(action, "restart") == 0) {
        bool fresh = false;
        if (!opt_bool(body, "new_instance_id", &fresh)) {
            *replied = true;
            return dt__dash_reply_error(r->conn, MHD_HTTP_BAD_REQUEST, "invalid",
                                        "new_instance_id must be true or false");
        }
        *st = dt_client_restart(d->c, id, fresh, started, DT_CLIENT_ID_BUF);
    } else {
        return do_raise(d, r, id, body, st, replied);
    }
    return MHD_YES;
}

static enum MHD_Result post_action(dt_dashboard *d, dt__dash_req *r, const char *id,
                                   const char *action)
{
    json_t *body = NULL;
    enum MHD_Result ret = dt__dash_body_object(r, &body);
    if (body == NULL) {
        return ret;
    }
    dt_status st = DT_EINVAL;
    bool replied = false;
    char started[DT_CLIENT_ID_BUF] = ""; /* restart: the instance it started */
    ret = run_action(d, r, id, action, body, &st, &replied, started);
    json_decref(body);
    if (replied || ret != MHD_YES) {
        return ret;
    }
    if (st != DT_OK) {
        return dt__dash_reply_client(d, r->conn, st);
    }
    json_t *o =
        json_pack("{s:o,s:s,s:b}", "instance_id", dt__jconv_str(id), "action", action, "ok", 1);
    if (o != NULL && started[0] != '\0') {
        json_object_set_new(o, "started_instance_id", dt__jconv_str(started));
    }
    return dt__dash_reply_json(r->conn, MHD_HTTP_OK, o);
}

static const char *const actions[] = {"suspend", "resume", "terminate",
                                      "raise",   "purge",  "restart"};

enum MHD_Result dt__dash_api_instance(dt_dashboard *d, dt__dash_req *r, const char *rest)
{
    /* Instance IDs may hold '/', and libmicrohttpd has decoded %2F by now: the action, if any,
     * is the last segment when it names one; everything before it is the ID. */
    char id[DT_CLIENT_ID_BUF];
    const char *slash = strrchr(rest, '/');
    const char *what = NULL;
    if (slash != NULL) {
        for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
            what = strcmp(slash + 1, actions[i]) == 0 ? actions[i] : what;
        }
        what = strcmp(slash + 1, "history") == 0 ? "history" : what;
    }
    size_t idlen = what != NULL ? (size_t)(slash - rest) : strlen(rest);
    if (idlen == 0 || idlen > DT_CLIENT_ID_MAX) {
        return dt__dash_reply_error(r->conn, MHD_HTTP_BAD_REQUEST, "invalid",
                                    "an instance ID is 1 to %d characters", DT_CLIENT_ID_MAX);
    }
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    bool get = strcmp(r->method, "GET") == 0;
    if (what == NULL || strcmp(what, "history") == 0) {
        if (!get) {
            return dt__dash_reply_error(r->conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method",
                                        "use GET here; actions are POST .../<action>");
        }
        return what == NULL ? get_instance(d, r, id) : get_history(d, r, id);
    }
    if (strcmp(r->method, "POST") != 0) {
        return dt__dash_reply_error(r->conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method",
                                    "actions are POST");
    }
    return post_action(d, r, id, what);
}
