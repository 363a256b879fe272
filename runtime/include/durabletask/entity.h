/*
 * durabletask/entity.h: durable entities, small stateful objects that run one operation at a time.
 *
 * An entity is named by an entity name (the function that implements it, registered on workers
 * with dt_worker_add_entity) and a key; its ID is "@<lowercased name>@<key>". It comes into
 * existence with its first operation, deleting its state deletes it, and a later operation
 * creates it again. Anyone can signal it (one-way): clients (durabletask/client.h), dtctl, any
 * NATS client (a publish to dt.<hub>.in.signal.<entity name>, docs/protocol.md), orchestrations
 * and other entities. Orchestrations can also call it (awaiting the result) and lock sets of
 * entities in critical sections (durabletask/orchestration.h).
 *
 * Operations on one entity run one at a time, in arrival order, each exactly once. An operation
 * that fails (dt_entity_fail, or a state over the hub's limit) leaves the state as it was before
 * it, and the signals and starts it asked for are not sent; other operations keep their effects.
 *
 * Layer: the entity function runs on the partition thread that owns the entity (the engine in
 * runtime/entity is pure logic, the worker commits its effects with the partition's batch).
 *
 * Threads: an entity function runs on a worker's partition thread, one operation at a time per
 * entity; functions of entities of different partitions run at the same time, so user data shared
 * between them must be thread-safe. The context is valid only during the call. An entity function
 * must not block for long: other instances of its partition wait meanwhile.
 */
#ifndef DURABLETASK_ENTITY_H
#define DURABLETASK_ENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/defs.h"
#include "durabletask/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest entity name and key, in bytes. Names: letters, digits, '-' and '_' (a subject token),
 * compared in lower case. Keys: printable ASCII without spaces; they may contain '@'. */
#define DT_ENTITY_NAME_MAX 64
#define DT_ENTITY_KEY_MAX  180
/* Longest entity ID, "@" name "@" key. */
#define DT_ENTITY_ID_MAX (DT_ENTITY_NAME_MAX + DT_ENTITY_KEY_MAX + 2)

typedef struct dt_entity_ctx dt_entity_ctx;

/* An entity function: runs one operation (dt_entity_operation) on the entity's state. It reports
 * a result with dt_entity_set_result or a failure with dt_entity_fail; returning with neither
 * completes the operation without a result. `user_data` is the pointer given at registration. */
typedef void (*dt_entity_fn)(dt_entity_ctx *ctx, void *user_data);

/* Checks a name and a key (borrowed). DT_OK, or DT_EINVAL with a reason in why (may be NULL). */
DT_API dt_status dt_entity_id_check(const char *name, const char *key, char *why, size_t why_len);
/* Writes "@<lowercased name>@<key>" into buf: DT_EINVAL as dt_entity_id_check, DT_ETOOLARGE when
 * buf is short (DT_ENTITY_ID_MAX + 1 always suffices). */
DT_API dt_status dt_entity_id(const char *name, const char *key, char *buf, size_t len);
/* Splits an entity ID (borrowed) into name and key (copied into the buffers): DT_EINVAL when it
 * is not one, DT_ETOOLARGE when a buffer is short. */
DT_API dt_status dt_entity_id_parse(const char *id, char *name, size_t name_len, char *key,
                                    size_t key_len);

/* ---- registration (durabletask/worker.h) ---- */

typedef struct dt_worker dt_worker;

/* Registers the entity function for entity name `name` (copied; compared in lower case; `fn` and
 * `user_data` borrowed for the worker's life). DT_EEXIST when the name is taken, DT_EINVAL for a
 * bad name, DT_ESTATE after start. A worker with entities (and no orchestrators) runs
 * partitions. */
DT_API dt_status dt_worker_add_entity(dt_worker *w, const char *name, dt_entity_fn fn,
                                      void *user_data);

/* ---- inside an entity function (every returned pointer lives during the call) ---- */

/* The entity's name (lower case), key and ID. */
DT_API const char *dt_entity_name(dt_entity_ctx *ctx);
DT_API const char *dt_entity_key(dt_entity_ctx *ctx);
DT_API const char *dt_entity_instance_id(dt_entity_ctx *ctx);
/* The operation's name, as the caller wrote it. */
DT_API const char *dt_entity_operation(dt_entity_ctx *ctx);
/* The operation's input (NULL when none; len may be NULL). Followed by a NUL byte. */
DT_API const void *dt_entity_input(dt_entity_ctx *ctx, size_t *len);
/* Whether the entity has a state, and the state (NULL when none; followed by a NUL byte). */
DT_API bool dt_entity_has_state(dt_entity_ctx *ctx);
DT_API const void *dt_entity_state(dt_entity_ctx *ctx, size_t *len);
/* Sets the state (copied). A state over the hub's limit fails the operation when it returns
 * (dt.StateTooLarge) and the entity keeps its previous state. DT_ENOMEM. */
DT_API dt_status dt_entity_set_state(dt_entity_ctx *ctx, const void *data, size_t len);
/* Deletes the state: the entity no longer exists once the operation succeeds. */
DT_API void dt_entity_delete_state(dt_entity_ctx *ctx);
/* The operation's result for a caller that awaits it (copied; the last call wins). */
DT_API dt_status dt_entity_set_result(dt_entity_ctx *ctx, const void *data, size_t len);
/* Fails the operation (strings copied): its state change, signals and starts are dropped, and a
 * caller that awaits it gets the failure. */
DT_API void dt_entity_fail(dt_entity_ctx *ctx, const char *type, const char *message);
/* Signals operation `op` of entity (name, key), sent once this operation succeeds (all copied;
 * input may be NULL). DT_EINVAL for a bad name or key. */
DT_API dt_status dt_entity_signal(dt_entity_ctx *ctx, const char *name, const char *key,
                                  const char *op, const void *input, size_t len);
/* Starts orchestration `name` (instance_id NULL: one derived from this operation), once this
 * operation succeeds (copied). An instance ID already taken makes the start a no-op. */
DT_API dt_status dt_entity_start_orchestration(dt_entity_ctx *ctx, const char *name,
                                               const char *instance_id, const void *input,
                                               size_t len);

/* ---- from orchestrations (durabletask/orchestration.h) ----
 *
 * Durable actions like any other: recorded in history (EntityOperationSignaled / Called,
 * EntityLockRequested, EntityUnlockSent) and checked on replay. Invalid names or keys fail the
 * orchestration (dt.Misuse) with the reason. */

typedef struct dt_orch_ctx dt_orch_ctx;
typedef struct dt_task dt_task;

/* Signals operation `operation` of entity (name, key) with `input` (NULL: none; copied), at
 * at_ms (orchestration time, ms since the Unix epoch; 0: now). */
DT_API void dt_signal_entity(dt_orch_ctx *ctx, const char *name, const char *key,
                             const char *operation, const void *input, size_t len, int64_t at_ms);
/* Calls operation `operation` of entity (name, key): the task completes with the operation's
 * result, or fails with its failure (dt.UnknownEntity, non-retriable, when no worker registered
 * the name). Inside a critical section only the locked entities may be called. The task lives as
 * long as the orchestration. */
DT_API dt_task *dt_call_entity(dt_orch_ctx *ctx, const char *name, const char *key,
                               const char *operation, const void *input, size_t len);

/* An entity named by name and key (borrowed). */
typedef struct dt_entity_ref {
    const char *name;
    const char *key;
} dt_entity_ref;

/*
 * Opens a critical section: locks the n entities (copied; sorted and de-duplicated, so two
 * orchestrations locking overlapping sets cannot deadlock). The task completes once all are
 * locked; until dt_unlock_entities each serves only this orchestration (others' operations wait).
 * Sections do not nest. The locks are released by dt_unlock_entities or when the orchestration
 * ends in any way (completes, fails, is terminated or continues as new).
 */
DT_API dt_task *dt_lock_entities(dt_orch_ctx *ctx, const dt_entity_ref *entities, size_t n);
/* Ends the critical section (releases its locks); a no-op outside one. */
DT_API void dt_unlock_entities(dt_orch_ctx *ctx);
/* Whether a critical section is open (locks requested and not released). */
DT_API bool dt_in_critical_section(dt_orch_ctx *ctx);

/* ---- clients (durabletask/client.h) ---- */

typedef struct dt_client dt_client;

/* Options of dt_client_signal_entity; zero means the default for every field. */
typedef struct dt_entity_signal_options {
    size_t size;          /* sizeof(dt_entity_signal_options), or 0 */
    int64_t signal_at_ms; /* deliver at this time (ms since the Unix epoch); 0: now */
    /* Repeats of a call with the same key signal once (1..128 printable characters); NULL:
     * every call is a new signal. */
    const char *idempotency_key;
} dt_entity_signal_options;

/* Sets every field of `o` (borrowed) to its default. */
DT_API void dt_entity_signal_options_init(dt_entity_signal_options *o);

/*
 * Signals operation `operation` of entity (name, key) with `input` (NULL: none); all copied. Done
 * once the hub's broker stored it (the operation runs later, exactly once). DT_EINVAL for an
 * invalid name, key or operation (dt_client_errmsg says which), DT_ENOTFOUND without the hub,
 * DT_ETOOLARGE for an input over the hub's message limit. `opt` may be NULL.
 */
DT_API dt_status dt_client_signal_entity(dt_client *c, const char *name, const char *key,
                                         const char *operation, const void *input, size_t len,
                                         const dt_entity_signal_options *opt);

/* An entity as a client sees it; everything lives as long as the struct. */
typedef struct dt_entity_metadata {
    const char *instance_id; /* "@<name>@<key>" */
    const char *name;        /* lower case */
    const char *key;
    int64_t last_modified_ms;   /* the last batch of operations that changed it */
    int32_t backlog_queue_size; /* requests waiting for its lock */
    const char *locked_by;      /* the orchestration holding its lock; NULL: unlocked */
    bool has_state;
    const void *state; /* with include_state (NUL-terminated), else NULL */
    size_t state_len;
} dt_entity_metadata;

/* Frees a result of dt_client_get_entity. Accepts NULL. */
DT_API void dt_entity_metadata_free(dt_entity_metadata *m);

/*
 * Reads entity (name, key) from its partition's owner. On DT_OK *out is a new struct the caller
 * frees with dt_entity_metadata_free. DT_ENOTFOUND when the entity does not exist (no state and
 * no lock); DT_EINVAL for an invalid name or key; DT_EBUSY when no worker runs its partition.
 */
DT_API dt_status dt_client_get_entity(dt_client *c, const char *name, const char *key,
                                      bool include_state, dt_entity_metadata **out);

/* Which entities dt_client_query_entities lists; zero means the default for every field. */
typedef struct dt_entity_query {
    size_t size;                   /* sizeof(dt_entity_query), or 0 */
    const char *name;              /* NULL: every entity name */
    const char *key_prefix;        /* with name: only keys starting with this; NULL: any */
    int64_t last_modified_from_ms; /* inclusive; 0: no bound */
    int64_t last_modified_to_ms;   /* exclusive; 0: no bound */
    bool include_state;
    bool include_empty;     /* also entities without state (locked, or left empty) */
    size_t page_size;       /* 0: 100; at most 1,000 */
    const char *page_token; /* from the previous page; NULL: from the start */
} dt_entity_query;

/* A page of entities; everything lives as long as the page. */
typedef struct dt_entity_page {
    dt_entity_metadata *entities; /* NULL when n is 0 */
    size_t n;
    const char *next_token; /* NULL: this was the last page */
} dt_entity_page;

/* Sets every field of `q` (borrowed) to its default. */
DT_API void dt_entity_query_init(dt_entity_query *q);
/* Frees a page. Accepts NULL. */
DT_API void dt_entity_page_free(dt_entity_page *p);

/*
 * Lists entities (asking every partition's owner, in partition and ID order). On DT_OK *out is a
 * page the caller frees with dt_entity_page_free. DT_EINVAL for a bad name or token; DT_EBUSY
 * when a partition has no worker.
 */
DT_API dt_status dt_client_query_entities(dt_client *c, const dt_entity_query *q,
                                          dt_entity_page **out);

/* What dt_client_clean_entities did. */
typedef struct dt_entity_clean_result {
    size_t empty_removed;  /* rows of entities without state, lock, queue or scheduled signal */
    size_t locks_released; /* locks of orchestrations that no longer run (finished or gone) */
} dt_entity_clean_result;

/*
 * Cleans entity storage: with remove_empty, deletes the rows of empty entities (what remains of a
 * deleted state: the identities of operations applied to it, so a repeat of one older than the
 * broker's duplicate window would run again); with release_orphaned_locks, unlocks entities held
 * by orchestrations that are no longer running (purged, or finished without releasing: none
 * should, but the record is the authority). Either may be false. *out (may be NULL) counts what
 * was done.
 */
DT_API dt_status dt_client_clean_entities(dt_client *c, bool remove_empty,
                                          bool release_orphaned_locks, dt_entity_clean_result *out);

#ifdef __cplusplus
}
#endif
#endif
