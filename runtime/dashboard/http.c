/*
 * Replies and request parameters of the dashboard's HTTP API. Every reply is JSON with
 * "Cache-Control: no-store" (the data is live); every error has the one shape
 * {"error":{"code":"...","message":"..."}} so the page and scripts handle all alike.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common_int.h"
#include "dash_int.h"
#include "jconv.h"

enum MHD_Result dt__dash_reply_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
    /* json_dumps allocates with malloc (jansson's default), which MHD_RESPMEM_MUST_FREE frees. */
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        struct MHD_Response *r =
            MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        if (r == NULL) {
            return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, r);
        MHD_destroy_response(r);
        return ret;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result dt__dash_reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result dt__dash_reply_error(struct MHD_Connection *conn, unsigned status, const char *code,
                                     const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *body = json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", dt__jconv_str(msg));
    return dt__dash_reply_json(conn, status, body);
}

/* The HTTP status and error code of a client call's failure. */
static unsigned http_of(dt_status st, const char **code)
{
    static const struct {
        dt_status st;
        unsigned http;
        const char *code;
    } map[] = {
        {DT_EINVAL, MHD_HTTP_BAD_REQUEST, "invalid"},
        {DT_ETOOLARGE, MHD_HTTP_CONTENT_TOO_LARGE, "too_large"},
        {DT_ENOTFOUND, MHD_HTTP_NOT_FOUND, "not_found"},
        {DT_EEXIST, MHD_HTTP_CONFLICT, "conflict"},
        {DT_ECONFLICT, MHD_HTTP_CONFLICT, "conflict"},
        {DT_ESTATE, MHD_HTTP_CONFLICT, "conflict"},
        {DT_ETIMEOUT, MHD_HTTP_GATEWAY_TIMEOUT, "timeout"},
        {DT_EBUSY, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].st == st) {
            *code = map[i].code;
            return map[i].http;
        }
    }
    *code = "broker"; /* NATS failed or refused: the gateway's fault, not the request's */
    return MHD_HTTP_BAD_GATEWAY;
}

enum MHD_Result dt__dash_reply_client(dt_dashboard *d, struct MHD_Connection *conn, dt_status st)
{
    /* The client keeps one error text for all threads (client.h): under concurrent failures it
     * may be another request's; the status, and so the HTTP code, is always this one's. */
    char msg[512];
    dt_client_errmsg_copy(d->c, msg, sizeof(msg));
    const char *code = NULL;
    unsigned http = http_of(st, &code);
    return dt__dash_reply_error(conn, http, code, "%s", msg[0] != '\0' ? msg : dt_status_str(st));
}

const char *dt__dash_arg(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

bool dt__dash_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    return dt__parse_i64(s, min, max, out);
}

enum MHD_Result dt__dash_body_object(const dt__dash_req *r, json_t **out)
{
    *out = NULL;
    if (r->too_large) {
        return dt__dash_reply_error(r->conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                                    "request body over %zu bytes", DT__DASH_BODY_MAX);
    }
    if (r->len == 0) {
        *out = json_object();
        return *out != NULL ? MHD_YES : MHD_NO;
    }
    json_error_t err;
    json_t *v = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &err);
    if (v == NULL) {
        return dt__dash_reply_error(r->conn, MHD_HTTP_BAD_REQUEST, "bad_json",
                                    "malformed JSON body: %s (at byte %d)", err.text, err.position);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        return dt__dash_reply_error(r->conn, MHD_HTTP_BAD_REQUEST, "bad_json",
                                    "the body must be a JSON object");
    }
    *out = v;
    return MHD_YES;
}
