/*
 * DT_BENCH_TRACING: runs the workloads with tracing on. "1" starts an OTLP/HTTP receiver in the
 * driver process (libmicrohttpd; it counts the spans it gets and throws them away) and points
 * OTEL_EXPORTER_OTLP_ENDPOINT of the driver and its worker processes at it; any other non-empty
 * value is used as the endpoint itself (a real collector). Unset: tracing stays off.
 */
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static struct MHD_Daemon *sink;
static atomic_long spans, posts, bytes;

typedef struct body {
    long spans, len; /* a key split between two chunks is missed: the count is a floor */
} body;

/* Counts "spanId" keys (one per span; parentSpanId is "...SpanId" with a capital S). */
static long count_spans(const char *data, size_t len)
{
    long n = 0;
    static const char key[] = "\"spanId\"";
    for (size_t i = 0; i + sizeof(key) - 1 <= len; i++) {
        n += memcmp(data + i, key, sizeof(key) - 1) == 0;
    }
    return n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_len, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    body *b = *con_cls;
    if (b == NULL) {
        *con_cls = calloc(1, sizeof(body));
        return *con_cls != NULL ? MHD_YES : MHD_NO;
    }
    if (*data_len > 0) {
        b->spans += count_spans(data, *data_len);
        b->len += (long)*data_len;
        *data_len = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&spans, b->spans);
    atomic_fetch_add(&bytes, b->len);
    atomic_fetch_add(&posts, 1);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, "{}", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

void bench_tracing_start(void)
{
    const char *v = getenv("DT_BENCH_TRACING");
    if (v == NULL || v[0] == '\0') {
        return;
    }
    if (strcmp(v, "1") != 0) {
        setenv("OTEL_EXPORTER_OTLP_ENDPOINT", v, 1);
        bench_note("tracing on: spans to %s", v);
        return;
    }
    sink = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    if (sink == NULL) {
        bench_note("DT_BENCH_TRACING: cannot start the receiver; tracing stays off");
        return;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(sink, MHD_DAEMON_INFO_BIND_PORT);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)info->port);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    bench_note("tracing on: spans to the driver's receiver at %s", url);
}

void bench_tracing_stop(void)
{
    if (sink == NULL) {
        return;
    }
    MHD_stop_daemon(sink);
    bench_note("tracing: the receiver got %ld spans in %ld posts (%.1f MiB)", atomic_load(&spans),
               atomic_load(&posts), (double)atomic_load(&bytes) / (1024.0 * 1024.0));
}
