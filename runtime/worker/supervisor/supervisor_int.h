/*
 * supervisor_int.h: what the supervisor's own files share (worker.c, connect.c). Nothing else
 * of the worker calls into the supervisor, except runtime/remote's dt__worker_set_remote
 * (declared in base/worker_int.h).
 */
#ifndef DT_SUPERVISOR_INT_H
#define DT_SUPERVISOR_INT_H

#include "worker_int.h"

/* ---- connect.c ---- */
/* The first connection (w->broker), retried while no server is reachable; sets w->errmsg and
 * returns DT_ECLOSED when dt_worker_stop ends the wait. */
dt_status dt__worker_connect(dt_worker *w, const dt_broker_options *bo);
/* Deep copy of `src` into `dst` (empty strings become NULL); DT_ENOMEM leaves dst zeroed. */
dt_status dt__worker_security_copy(dt_nats_security *dst, const dt_nats_security *src);
/* Wipes and frees the strings of a copy made by dt__worker_security_copy. */
void dt__worker_security_free(dt_nats_security *s);

#endif
