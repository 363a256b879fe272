/*
 * metrics_http_int.h: the /metrics HTTP endpoint of a registry (http.c), on libmicrohttpd's
 * internal polling thread.
 */
#ifndef DT_METRICS_HTTP_INT_H
#define DT_METRICS_HTTP_INT_H

#include "metrics_int.h"

typedef struct dt__metrics_http dt__metrics_http;

/*
 * Listens on `addr` ("host:port", "[ipv6]:port", ":port" for every IPv4 interface, or "port";
 * port 0 picks a free one) and serves GET /metrics from `m` (borrowed: it must outlive the
 * server). On failure err says why in the system's words: DT_EINVAL (not an address, a name
 * that does not resolve), DT_EBUSY (the port is in use), DT_EIO (another socket error),
 * DT_ENOMEM. Stop with dt__metrics_http_stop (NULL accepted), which waits for a scrape under way.
 */
dt_status dt__metrics_http_start(const char *addr, dt__metrics *m, dt__metrics_http **out,
                                 char *err, size_t len);
/* The port listened on (the one picked for port 0); -1 for NULL. */
int dt__metrics_http_port(const dt__metrics_http *h);
void dt__metrics_http_stop(dt__metrics_http *h);

#endif
