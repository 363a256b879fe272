/*
 * sidecar.c: putting dt-sidecar together: client, worker with its remote, gRPC server; and
 * taking it apart in the order each part's contract asks for (remote shut down so that streams
 * end, server destroyed so that no handler calls in, worker destroyed, then remote and client).
 */
#include "sidecar.h"

#include "common_int.h"
#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "grpc_server.h"
#include "remote_int.h"
#include "sidecar_int.h"

struct dt__sidecar {
    dt_client *client;
    dt_worker *worker;
    dt__remote *remote;
    dt__grpc_server *server;
    dt__sidecar_svc svc;
};

static dt_status start_worker(dt__sidecar *s, const dt__sidecar_options *o, char *errbuf,
                              size_t errlen)
{
    dt__remote_options ro;
    dt__remote_options_init(&ro);
    ro.activities = o->activities;
    ro.n_activities = o->n_activities;
    dt_status st = dt__remote_create(&ro, &s->remote);
    if (st != DT_OK) {
        dt__errf(errbuf, errlen, "remote: %s", dt_status_str(st));
        return st;
    }
    dt_worker_options wo;
    dt_worker_options_init(&wo);
    wo.nats_url = o->nats_url;
    wo.hub = o->hub;
    wo.data_dir = o->data_dir;
    st = dt_worker_create(&wo, &s->worker, errbuf, errlen);
    if (st != DT_OK) {
        return st;
    }
    if (o->setup != NULL && (st = o->setup(s->worker, o->setup_ctx)) != DT_OK) {
        dt__errf(errbuf, errlen, "setup: %s", dt_status_str(st));
        return st;
    }
    st = dt__remote_attach(s->remote, s->worker);
    if (st != DT_OK) {
        dt__errf(errbuf, errlen, "attaching the SDK workers' side: %s", dt_status_str(st));
        return st;
    }
    st = dt_worker_start(s->worker);
    if (st != DT_OK) {
        dt__errf(errbuf, errlen, "worker: %s", dt_worker_errmsg(s->worker));
    }
    return st;
}

dt_status dt__sidecar_start(const dt__sidecar_options *o, dt__sidecar **out, char *errbuf,
                            size_t errlen)
{
    dt__sidecar *s = dt_calloc(1, sizeof *s);
    if (s == NULL) {
        return DT_ENOMEM;
    }
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = o->nats_url;
    co.hub = o->hub;
    co.connection_name = "dt-sidecar";
    dt_status st = dt_client_create(&co, &s->client, errbuf, errlen);
    if (st == DT_OK && !o->client_only) {
        st = start_worker(s, o, errbuf, errlen);
    }
    dt__grpc_server_options go = {.listen = o->listen != NULL ? o->listen : "127.0.0.1:4001",
                                  .max_message = o->max_message};
    if (st == DT_OK) {
        st = dt__grpc_server_create(&go, &s->server, errbuf, errlen);
    }
    s->svc = (dt__sidecar_svc){
        .client = s->client,
        .remote = s->remote,
        .health_ping_ms = o->health_ping_ms > 0 ? o->health_ping_ms : 15000,
        .wait_slice_ms = o->wait_slice_ms > 0 ? o->wait_slice_ms : 2000,
    };
    if (st == DT_OK) {
        st = dt__sidecar_register(s->server, &s->svc);
    }
    if (st == DT_OK) {
        st = dt__grpc_server_start(s->server);
    }
    if (st != DT_OK) {
        dt__sidecar_stop(s);
        return st;
    }
    *out = s;
    return DT_OK;
}

int dt__sidecar_port(const dt__sidecar *s)
{
    return dt__grpc_server_port(s->server);
}

void dt__sidecar_stop(dt__sidecar *s)
{
    if (s == NULL) {
        return;
    }
    if (s->remote != NULL) {
        dt__remote_shutdown(s->remote);
    }
    dt__grpc_server_destroy(s->server);
    if (s->worker != NULL) {
        dt_worker_stop(s->worker, 10000);
        dt_worker_destroy(s->worker);
    }
    dt__remote_destroy(s->remote);
    dt_client_destroy(s->client);
    dt_free(s);
}
