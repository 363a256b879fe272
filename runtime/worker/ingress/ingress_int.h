/*
 * ingress_int.h: the ingress router's routing of one request (ingress_route.c), apart from its
 * fetching, publishing and acking (ingress.c), so that it can be tested and fuzzed alone.
 */
#ifndef DT_INGRESS_INT_H
#define DT_INGRESS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "dt_broker.h"
#include "durabletask/worker.h"
#include "protocol_int.h"

#define DT__INGRESS_ID_BUF (DT_INSTANCE_ID_MAX * 2 + 64)

/* What routing needs to know of the hub (borrowed strings). */
typedef struct dt__ingress_routing {
    const char *prefix; /* "dt.<hub>.in." */
    const char *hub;
    uint32_t partitions;
} dt__ingress_routing;

/* One routed request. */
typedef struct dt__routed {
    char subject[DT_BROKER_NAME_BUF];                          /* dt.<hub>.orch.<p> */
    char dedupe[DT_INSTANCE_ID_MAX + DT__INGRESS_ID_BUF + 16]; /* its Nats-Msg-Id */
    uint8_t *data; /* the packed OrchestrationMessage, in the caller's arena */
    size_t len;
} dt__routed;

/* Routes request m (borrowed; its headers are read) into *r: NULL, or the reason it cannot be
 * routed (a static text), for a dead letter. Memory from `a`. */
const char *dt__ingress_route(const dt__ingress_routing *g, dt__arena *a, dt_broker_msg *m,
                              dt__routed *r);

/* The OrchestrationMessage of an entity signal (ingress_signal.c): NULL, or why it cannot be
 * routed. `name` is the subject's entity name, `key` the request's identity. */
const char *dt__ingress_build_signal(dt__arena *a, dt_broker_msg *m, const char *name,
                                     Dtpb__OrchestrationMessage *om, dt__routed *r,
                                     const char *key);

/* ---- ingress.c: what the supervisor calls ---- */
typedef struct dt__ingress dt__ingress;
dt_status dt__ingress_start(dt_worker *w, dt__ingress **out);
void dt__ingress_stop(dt__ingress *in);

#endif
