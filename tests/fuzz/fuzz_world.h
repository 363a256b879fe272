/*
 * fuzz_world.h: real histories for the seed corpora and for the query target's store. The
 * orchestrators of fuzz_orch.h run in the engine test harness (tests/unit/engine/harness.c, the
 * engine driven by fakes of the worker), so every event is one the engine wrote.
 */
#ifndef DT_FUZZ_WORLD_H
#define DT_FUZZ_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "dt_history.pb-c.h"
#include "dt_work.pb-c.h"
#include "durabletask/status.h"
#include "history/store_int.h"

#define FUZZ_WORLD_MAX_EVENTS 128

/* One instance's current execution as the harness left it. Everything is malloc'd. */
typedef struct fuzz_history {
    char *instance_id;
    size_t n;                           /* events */
    uint8_t *ev[FUZZ_WORLD_MAX_EVENTS]; /* each a packed HistoryEvent */
    size_t len[FUZZ_WORLD_MAX_EVENTS];
    Dtpb__OrchestrationStatus status;
    char *output;        /* NULL: none */
    char *custom_status; /* NULL: none */
    uint8_t *failure;    /* packed TaskFailureDetails; NULL: none */
    size_t failure_len;
} fuzz_history;

/* Runs the scenario (instances that complete, fail, continue as new, are terminated, suspended
 * and resumed, plus their sub-orchestrations) and returns every instance's history; *out_n
 * receives the count. Aborts when something fails (it is a fixture). Free with fuzz_world_free. */
fuzz_history *fuzz_world_record(size_t *out_n);
void fuzz_world_free(fuzz_history *h, size_t n);

/* Stores the instances into `s` (claimed by the call) as the worker's commit does: the row, its
 * start record (with tags, one of them reserved) and the history. */
dt_status fuzz_world_store(dt__store *s, const fuzz_history *h, size_t n);

/* A store in a fresh temporary directory holding the instances (fuzz_world_store); aborts on
 * failure. Close with fuzz_store_destroy, which also removes the directory. */
dt__store *fuzz_store_create(const fuzz_history *h, size_t n, char **out_dir);
void fuzz_store_destroy(dt__store *s, char *dir);

/*
 * Answers `req` the way the query service of partition 0 does (runtime/worker/query/query.c: list
 * and history; purge is left out, it would change the store and needs the status bucket) into
 * `resp` (initialised by the caller; memory in `a`). Returns the status the reply carries.
 */
dt_status fuzz_query_answer(dt__store *s, dt__arena *a, const Dtpb__QueryRequest *req,
                            Dtpb__QueryResponse *resp, char *err, size_t errlen);

#endif
