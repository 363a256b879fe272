/*
 * dashboard.h: the web dashboard of a task hub (issue 9), a small HTTP server in the process
 * that embeds it (the dt-dashboard binary, or a test).
 *
 * It serves a JSON API over the client API (durabletask/client.h: status, list, history and
 * the control calls) and the broker adapter (the hub's status bucket for live updates as
 * server-sent events, the leases bucket for workers and their partitions, consumer info for the
 * backlog), and the page that uses it: plain ES modules embedded into the binary at build time
 * (web/, nothing fetched from elsewhere). HTTP is libmicrohttpd with a small pool of internal
 * polling threads (no thread per connection); JSON is jansson. docs/operations.md, "Dashboard",
 * lists the endpoints.
 *
 * Layer: an application of the client library, beside dtctl; nothing in the runtime calls it.
 *
 * Binding: loopback (127.0.0.1) by default. A bearer token is optional there and REQUIRED on
 * any other address (create refuses to start without one): the API can terminate and purge
 * instances. With a token every /api/ request must carry "Authorization: Bearer <token>"
 * (the event stream, which browsers open without headers, may pass ?access_token= instead).
 *
 * Threads: create and destroy are called by one thread; the server runs on its own threads.
 */
#ifndef DT_DASHBOARD_H
#define DT_DASHBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "durabletask/connection.h"
#include "durabletask/status.h"

/* The default port; and the value of dt_dashboard_options.port that asks for any free port. */
#define DT_DASHBOARD_PORT_DEFAULT 8082
#define DT_DASHBOARD_PORT_ANY     (-1)

typedef struct dt_dashboard dt_dashboard;

/* Zero means the default for every field. All strings are copied by dt_dashboard_create. */
typedef struct dt_dashboard_options {
    const char *nats_url;       /* NULL: nats://127.0.0.1:4222 */
    dt_nats_security security;  /* of the NATS connection; zeroed: none */
    const char *hub;            /* required */
    const char *bind_addr;      /* numeric IPv4 or IPv6 address; NULL: 127.0.0.1 */
    int32_t port;               /* 0: DT_DASHBOARD_PORT_DEFAULT; DT_DASHBOARD_PORT_ANY: any */
    const char *token;          /* bearer token; NULL or "": none (loopback only) */
    int64_t request_timeout_ms; /* of broker requests and partition queries; 0: 5000 */
} dt_dashboard_options;

void dt_dashboard_options_init(dt_dashboard_options *o);

/*
 * Connects to NATS, opens the live feed of the hub's status bucket and starts serving. On DT_OK
 * *out is a running server (dt_dashboard_destroy). Errors (errbuf, may be NULL, gets the
 * reason): DT_EINVAL (bad options; a non-loopback address without a token), DT_ENOTFOUND (no
 * such hub), DT_EBROKER / DT_EAUTH (NATS), DT_EIO (the address cannot be bound).
 */
dt_status dt_dashboard_create(const dt_dashboard_options *o, dt_dashboard **out, char *errbuf,
                              size_t errlen);

/* The port it listens on (useful with DT_DASHBOARD_PORT_ANY). */
uint16_t dt_dashboard_port(const dt_dashboard *d);

/* Ends the event streams, stops the server and closes the connections. Accepts NULL. */
void dt_dashboard_destroy(dt_dashboard *d);

#endif
