/*
 * The dashboard's HTTP server: options, the libmicrohttpd daemon, the bearer token and the
 * routing of requests to the API files and the embedded page.
 *
 * The daemon runs a small pool of internal polling threads (not a thread per connection): a
 * request that waits on NATS (a list asks every partition) holds one pool thread, so a few can
 * wait at once while the others keep serving; event streams never hold a thread (live.c
 * suspends them between events). Connections are bounded in number, idle time and memory, and a
 * body past DT__DASH_BODY_MAX is refused, so no client can exhaust the server.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash_int.h"
#include "durabletask/alloc.h"

#define DASH_THREADS      4
#define DASH_CONN_MAX     128
#define DASH_CONN_TIMEOUT 60 /* seconds without traffic (event streams send a ping every 15 s) */
#define DASH_CONN_MEMORY  (64 * 1024)

void dt_dashboard_options_init(dt_dashboard_options *o)
{
    memset(o, 0, sizeof(*o));
}

uint16_t dt_dashboard_port(const dt_dashboard *d)
{
    return d->port;
}

/* Compares without an early exit, so that response times do not tell how much of a guess was
 * right. */
static bool token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++) {
        diff |= (unsigned char)(a[i] ^ b[i % (lb == 0 ? 1 : lb)]);
    }
    return diff == 0 && lb > 0;
}

static bool authorized(dt_dashboard *d, struct MHD_Connection *conn, const char *url)
{
    if (d->token == NULL) {
        return true;
    }
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (h != NULL && strncmp(h, "Bearer ", 7) == 0) {
        return token_equal(h + 7, d->token);
    }
    /* EventSource cannot send headers: the stream alone may carry the token in its URL. */
    const char *q = dt__dash_arg(conn, "access_token");
    return strcmp(url, "/api/events") == 0 && q != NULL && token_equal(q, d->token);
}

static enum MHD_Result serve_asset(struct MHD_Connection *conn, const char *url)
{
    const dt__dash_asset *a = dt__dash_asset_find(strcmp(url, "/") == 0 ? "/index.html" : url);
    if (a == NULL) {
        return dt__dash_reply_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no page at this path");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    /* The page loads nothing from elsewhere and runs no inline script. */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; style-src 'self'; img-src 'self' data:");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static bool is(const char *method, const char *want)
{
    return strcmp(method, want) == 0;
}

static enum MHD_Result route(dt_dashboard *d, dt__dash_req *r, const char *url)
{
    struct MHD_Connection *conn = r->conn;
    if (strncmp(url, "/api/", 5) != 0) {
        if (!is(r->method, "GET") && !is(r->method, "HEAD")) {
            return dt__dash_reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method",
                                        "%s not allowed here", r->method);
        }
        return serve_asset(conn, url);
    }
    if (!authorized(d, conn, url)) {
        return dt__dash_reply_error(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                    "a valid bearer token is required");
    }
    if (strncmp(url, "/api/instances/", 15) == 0 && url[15] != '\0') {
        return dt__dash_api_instance(d, r, url + 15);
    }
    if (!is(r->method, "GET")) {
        return dt__dash_reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method",
                                    "%s not allowed on %s", r->method, url);
    }
    if (strcmp(url, "/api/instances") == 0) {
        return dt__dash_api_list(d, r);
    }
    if (strcmp(url, "/api/overview") == 0) {
        return dt__dash_api_overview(d, r);
    }
    if (strcmp(url, "/api/hub") == 0) {
        return dt__dash_api_hub(d, r);
    }
    if (strcmp(url, "/api/events") == 0) {
        return dt__dash_live_stream(d->live, conn);
    }
    return dt__dash_reply_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no endpoint %s", url);
}

/* MHD calls this first with *con_cls NULL (headers only), then once per piece of body, then
 * once more with *upload_data_size 0: the body is complete and the request is answered. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    dt__dash_req *r = *con_cls;
    if (r == NULL) {
        r = dt_calloc(1, sizeof(*r));
        if (r == NULL) {
            return MHD_NO;
        }
        r->conn = conn;
        r->method = method;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large || r->len + n > DT__DASH_BODY_MAX) {
            r->too_large = true; /* keep reading (and dropping) it, answer 413 at the end */
            return MHD_YES;
        }
        char *grown = dt_realloc(r->body, r->len + n + 1);
        if (grown == NULL) {
            return MHD_NO;
        }
        memcpy(grown + r->len, upload, n);
        r->body = grown;
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    return route(cls, r, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)conn, (void)code;
    dt__dash_req *r = *con_cls;
    if (r != NULL) {
        dt_free(r->body);
        dt_free(r);
        *con_cls = NULL;
    }
}

/* The address to bind; *out_loopback says whether only this host can reach it. */
static dt_status parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss,
                            bool *out_loopback, bool *out_v6)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *out_loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
        *out_v6 = false;
        return DT_OK;
    }
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *out_loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
        *out_v6 = true;
        return DT_OK;
    }
    return DT_EINVAL;
}

static dt_status fail(char *errbuf, size_t errlen, dt_status st, const char *what, const char *why)
{
    if (errbuf != NULL && errlen > 0) {
        snprintf(errbuf, errlen, "%s: %s", what, why);
    }
    return st;
}

static dt_status connect_all(dt_dashboard *d, const dt_dashboard_options *o, char *errbuf,
                             size_t errlen)
{
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = o->nats_url;
    co.hub = o->hub;
    co.connection_name = "dt-dashboard";
    co.request_timeout_ms = d->request_timeout_ms;
    co.security = o->security;
    dt_status st = dt_client_create(&co, &d->c, errbuf, errlen);
    if (st != DT_OK) {
        return st;
    }
    dt_client_hub_info hi;
    if ((st = dt_client_hub_get(d->c, &hi)) != DT_OK) {
        return fail(errbuf, errlen, st, "hub", dt_client_errmsg(d->c));
    }
    d->partitions = hi.partitions;
    /* A second connection for what the client API does not cover (feed, leases, consumers). */
    dt_broker_options bo;
    dt_broker_options_init(&bo);
    bo.urls = o->nats_url;
    bo.name = "dt-dashboard-feed";
    bo.request_timeout_ms = d->request_timeout_ms;
    bo.security = o->security;
    char err[256] = "";
    if ((st = dt_broker_connect(&bo, &d->b, err, sizeof(err))) != DT_OK) {
        return fail(errbuf, errlen, st, "NATS", err);
    }
    return dt__dash_live_create(d->b, d->hub, &d->live, errbuf, errlen);
}

/* Where to listen, checked before anything connects: a refused address costs no NATS round trip. */
typedef struct bind_spec {
    struct sockaddr_storage ss;
    uint16_t port;
    bool v6;
} bind_spec;

static dt_status check_bind(const dt_dashboard_options *o, bool have_token, bind_spec *b,
                            char *errbuf, size_t errlen)
{
    const char *addr = o->bind_addr != NULL ? o->bind_addr : "127.0.0.1";
    b->port = o->port == DT_DASHBOARD_PORT_ANY ? 0
              : o->port == 0                   ? DT_DASHBOARD_PORT_DEFAULT
                                               : (uint16_t)o->port;
    bool loopback = false;
    if (parse_addr(addr, b->port, &b->ss, &loopback, &b->v6) != DT_OK) {
        return fail(errbuf, errlen, DT_EINVAL, "bind address", "not a numeric IPv4/IPv6 address");
    }
    if (!loopback && !have_token) {
        return fail(errbuf, errlen, DT_EINVAL, addr,
                    "binding beyond loopback needs a token (--token or $DT_DASHBOARD_TOKEN)");
    }
    return DT_OK;
}

static dt_status start_daemon(dt_dashboard *d, const bind_spec *b, char *errbuf, size_t errlen)
{
    unsigned flags =
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | (b->v6 ? MHD_USE_IPv6 : 0);
    d->d = MHD_start_daemon(
        flags, b->port, NULL, NULL, on_request, d, MHD_OPTION_SOCK_ADDR,
        (const struct sockaddr *)&b->ss, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)DASH_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)DASH_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)DASH_CONN_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)DASH_CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, d, MHD_OPTION_END);
    if (d->d == NULL) {
        return fail(errbuf, errlen, DT_EIO, "listen", "cannot listen there (port in use?)");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->d, MHD_DAEMON_INFO_BIND_PORT);
    d->port = info != NULL ? info->port : b->port;
    return DT_OK;
}

dt_status dt_dashboard_create(const dt_dashboard_options *o, dt_dashboard **out, char *errbuf,
                              size_t errlen)
{
    if (o == NULL || o->hub == NULL || !dt_broker_hub_name_valid(o->hub) || o->port < -1 ||
        o->port > 65535) {
        return fail(errbuf, errlen, DT_EINVAL, "options", "a valid hub and port are required");
    }
    dt_dashboard *d = dt_calloc(1, sizeof(*d));
    if (d == NULL) {
        return fail(errbuf, errlen, DT_ENOMEM, "dashboard", "out of memory");
    }
    pthread_mutex_init(&d->ov_mu, NULL);
    snprintf(d->hub, sizeof(d->hub), "%s", o->hub);
    d->request_timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : 5000;
    bind_spec b;
    bool have_token = o->token != NULL && o->token[0] != '\0';
    dt_status st = check_bind(o, have_token, &b, errbuf, errlen);
    if (st == DT_OK && have_token && (d->token = dt_strdup(o->token)) == NULL) {
        st = fail(errbuf, errlen, DT_ENOMEM, "dashboard", "out of memory");
    }
    if (st == DT_OK) {
        st = connect_all(d, o, errbuf, errlen);
    }
    if (st == DT_OK) {
        st = start_daemon(d, &b, errbuf, errlen);
    }
    if (st != DT_OK) {
        dt_dashboard_destroy(d);
        return st;
    }
    *out = d;
    return DT_OK;
}

void dt_dashboard_destroy(dt_dashboard *d)
{
    if (d == NULL) {
        return;
    }
    if (d->live != NULL) {
        dt__dash_live_shutdown(d->live);
    }
    if (d->d != NULL) {
        MHD_stop_daemon(d->d);
    }
    dt__dash_live_destroy(d->live);
    dt_client_destroy(d->c);
    dt_broker_close(d->b);
    free(d->ov); /* jansson's malloc */
    pthread_mutex_destroy(&d->ov_mu);
    dt_free(d->token);
    dt_free(d);
}
