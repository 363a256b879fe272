/*
 * dash_int.h: what the files of the dashboard share (internal, dt__dash_ prefix).
 *
 * server.c runs the HTTP daemon, checks the token and routes; http.c builds replies and reads
 * request parameters; api_instances.c serves list, detail, history and the control actions;
 * api_overview.c the overview (counts, throughput, backlog, workers); live.c the live feed of
 * the status bucket and its server-sent-event streams; assets.c (generated at build time from
 * web/) the page.
 *
 * Threads: requests run on the daemon's pool of polling threads, several at once; the client
 * and the broker connection are thread-safe; live.c guards its state with its own lock.
 */
#ifndef DT_DASH_INT_H
#define DT_DASH_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dashboard.h"
#include "dt_broker.h"
#include "durabletask/client.h"

/* Largest request body accepted (actions carry a reason or an event's data). */
#define DT__DASH_BODY_MAX ((size_t)256 * 1024)
/* Most instances a list or the overview's counts read from the partitions. */
#define DT__DASH_SCAN_MAX 20000

typedef struct dt__dash_live dt__dash_live;

struct dt_dashboard {
    dt_client *c;
    dt_broker *b;
    char hub[DT_BROKER_HUB_NAME_MAX + 1];
    char *token; /* dt_alloc'd; NULL: none */
    int64_t request_timeout_ms;
    uint32_t partitions;
    struct MHD_Daemon *d;
    uint16_t port;
    dt__dash_live *live;
    /* The last overview and when it was built (api_overview.c): pages that are open poll it, so
     * one read of the hub serves them all for DT__DASH_OVERVIEW_TTL_MS. */
    pthread_mutex_t ov_mu;
    char *ov; /* JSON text, jansson's malloc */
    int64_t ov_at_ms;
    struct dt__metrics *metrics; /* /metrics (api_metrics.c): process set and hub backlog */
};

#define DT__DASH_OVERVIEW_TTL_MS 2000

/* One request being served: its body, collected by server.c before the handler runs. */
typedef struct dt__dash_req {
    struct MHD_Connection *conn;
    const char *method;
    char *body; /* dt_alloc'd; NUL-terminated; NULL when empty */
    size_t len;
    bool too_large;
} dt__dash_req;

/* ---- http.c ---- */

/* Queues `body` (stolen: released here) as the JSON reply with `status`. */
/* ---- api_overview.c ---- */
/* Calls fn for each durable consumer of the hub's work-item streams (orchestration, activity,
 * ingress; at most DT__DASH_CONSUMERS_MAX per stream): its kind ("orchestration", ...), stream
 * name and state, all borrowed for the call. A stream that cannot be read is skipped. */
#define DT__DASH_CONSUMERS_MAX 256
void dt__dash_each_consumer(dt_dashboard *d,
                            void (*fn)(const char *kind, const char *stream,
                                       const dt_broker_consumer_stat *c, void *ctx),
                            void *ctx);

/* ---- api_metrics.c ---- */
dt_status dt__dash_metrics_open(dt_dashboard *d);
void dt__dash_metrics_close(dt_dashboard *d);
/* GET /metrics: Prometheus text (the process and the hub's consumer backlog). */
enum MHD_Result dt__dash_metrics(dt_dashboard *d, struct MHD_Connection *conn);

enum MHD_Result dt__dash_reply_json(struct MHD_Connection *conn, unsigned status, json_t *body);
/* Queues a copy of the JSON text `text` as the reply with `status`. */
enum MHD_Result dt__dash_reply_text(struct MHD_Connection *conn, unsigned status, const char *text);
/* Queues {"error":{"code":code,"message":...}} with `status`. */
enum MHD_Result dt__dash_reply_error(struct MHD_Connection *conn, unsigned status, const char *code,
                                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The reply for a failed client call: the HTTP status and code of `st`, the client's text. */
enum MHD_Result dt__dash_reply_client(dt_dashboard *d, struct MHD_Connection *conn, dt_status st);
/* A query parameter (borrowed from the connection), or NULL. */
const char *dt__dash_arg(struct MHD_Connection *conn, const char *name);
/* Strict integer parsing of a whole string. */
bool dt__dash_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* The request's body as a JSON object: "" gives an empty object; anything else that is not one
 * object has already been answered with 400 (*out NULL, the result is what to return). */
enum MHD_Result dt__dash_body_object(const dt__dash_req *r, json_t **out);

/* ---- api_instances.c ---- */

enum MHD_Result dt__dash_api_list(dt_dashboard *d, dt__dash_req *r);
/* `rest` is the path after "/api/instances/" (instance ID, then maybe "/<action>"). */
enum MHD_Result dt__dash_api_instance(dt_dashboard *d, dt__dash_req *r, const char *rest);

/* ---- api_overview.c ---- */

enum MHD_Result dt__dash_api_overview(dt_dashboard *d, dt__dash_req *r);
enum MHD_Result dt__dash_api_hub(dt_dashboard *d, dt__dash_req *r);

/* ---- live.c ---- */

/* Opens the feed of the hub's status bucket. On DT_OK *out is freed with dt__dash_live_destroy;
 * on failure errbuf says why. */
dt_status dt__dash_live_create(dt_broker *b, const char *hub, dt__dash_live **out, char *errbuf,
                               size_t errlen);
/* Ends every event stream (their next read ends them) and wakes them; call before the daemon
 * stops, so that no connection stays suspended. */
void dt__dash_live_shutdown(dt__dash_live *l);
/* Frees the feed; the daemon must be stopped (no stream left). Accepts NULL. */
void dt__dash_live_destroy(dt__dash_live *l);
/* Serves GET /api/events: a new stream for this connection. */
enum MHD_Result dt__dash_live_stream(dt__dash_live *l, struct MHD_Connection *conn);
/* Status changes and finished instances per second over the last 10 s. */
void dt__dash_live_rates(dt__dash_live *l, double *out_changes, double *out_finished);

/* ---- assets.c (generated from web/ by embed.cmake) ---- */

typedef struct dt__dash_asset {
    const char *path; /* "/index.html", "/app.js", ... */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} dt__dash_asset;

/* The asset served at `path`, or NULL. */
const dt__dash_asset *dt__dash_asset_find(const char *path);

#endif
