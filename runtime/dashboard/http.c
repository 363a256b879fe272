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

enum MHD_Result dt__dash_reply_client(dt_dashboard *d, struct MHD_Connection *conn, dt_status st)
{
    char msg[512];
    dt_client_errmsg_copy(d->c, msg, sizeof(msg));
    unsigned http = MHD_HTTP_BAD_GATEWAY;
    const char *code = "broker";
    switch (st) {
    case DT_EINVAL:
        http = MHD_HTTP_BAD_REQUEST, code = "invalid";
        break;
    case DT_ETOOLARGE:
        http = MHD_HTTP_CONTENT_TOO_LARGE, code = "too_large";
        break;
    case DT_ENOTFOUND:
        http = MHD_HTTP_NOT_FOUND, code = "not_found";
        break;
    case DT_EEXIST:
    case DT_ECONFLICT:
    case DT_ESTATE:
        http = MHD_HTTP_CONFLICT, code = "conflict";
        break;
    case DT_ETIMEOUT:
        http = MHD_HTTP_GATEWAY_TIMEOUT, code = "timeout";
        break;
    case DT_EBUSY:
        http = MHD_HTTP_SERVICE_UNAVAILABLE, code = "unavailable";
        break;
    default:
        break;
    }
    return dt__dash_reply_error(conn, http, code, "%s", msg[0] != '\0' ? msg : dt_status_str(st));
}

const char *dt__dash_arg(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

bool dt__dash_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 20) {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

enum MHD_Result dt__dash_body_object(const dt__dash_req *r, json_t **out)
{
    *out = NULL;
    if (r->too_large) {
        return dt__dash_reply_error(r->conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                                    "request body over %d bytes", DT__DASH_BODY_MAX);
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
