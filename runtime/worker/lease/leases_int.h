/*
 * leases_int.h: partition leases and fleet membership of one worker (internal, dt__ prefix).
 *
 * A task hub has P partitions; each is owned by at most one worker at a time. Ownership lives in
 * the hub's KV bucket DT_<hub>_LEASES, whose entries expire after the lease TTL (the bucket's max
 * age):
 *   - `w.<worker id>`: the worker's membership heartbeat, rewritten every TTL/3;
 *   - `p.<p>`: the lease of partition p, created if absent (compare-and-set) by the worker that
 *     claims it, rewritten every TTL/3 with the revision it last wrote (a conditional update),
 *     deleted (conditionally) when the worker hands it over or stops.
 * Which worker should own which partition is decided by rendezvous hashing over the live members
 * (dt__leases_place); every worker computes the same answer from the same membership, claims what
 * it should own and releases what it should not, so that ownership follows membership with few
 * moves. A KV watch on the bucket keeps membership and lease holders current without polling.
 *
 * Safety. A lease counts as held only until `send time of the last successful write (monotonic)
 * + TTL - margin`. The server cannot expire the entry, so no other worker can create it, before
 * `store time + TTL` >= `send time + TTL`; so a worker cut off from NATS stops acting on a
 * partition at least `margin` before anybody else may start. Every caller that acts on a
 * partition checks dt__leases_held() (or _get) and its deadline first, and finishes each action
 * within the margin. See docs/leases.md.
 *
 * Layer: worker runtime, on the broker adapter's KV API (dt_broker.h).
 */
#ifndef DT_LEASES_INT_H
#define DT_LEASES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_broker.h"
#include "durabletask/orchestration.h"
#include "durabletask/status.h"

/* Longest worker ID (characters [A-Za-z0-9_-]). */
#define DT__LEASES_ID_MAX 128u

/* ---------------------------------------------------------------------------------------------
 * Placement (pure functions, no I/O; leases_placement.c)
 *
 * FROZEN: every worker of a fleet must compute the same placement, so the hash below may never
 * change (tests/unit/test_leases_placement.c pins its values). A change would need a new hub
 * format version.
 * ------------------------------------------------------------------------------------------- */

/* 64-bit hash of a member ID (FNV-1a). `id` is NUL-terminated. */
uint64_t dt__leases_id_hash(const char *id);

/* Rendezvous weight of the member whose dt__leases_id_hash is `id_hash` for partition p. */
uint64_t dt__leases_weight(uint64_t id_hash, uint32_t p);

/*
 * The owner of partition p among members ids[0..n): the index of the member with the highest
 * weight, ties broken by the smaller ID (strcmp), so the answer does not depend on the order of
 * `ids`. id_hashes[i] must be dt__leases_id_hash(ids[i]); pass NULL to have them computed.
 * Returns n when n is 0. O(n). Adding a member moves only the partitions the new member wins;
 * removing one moves only the partitions it owned.
 */
size_t dt__leases_place(const char *const *ids, const uint64_t *id_hashes, size_t n, uint32_t p);

/* ---------------------------------------------------------------------------------------------
 * The lease keeper
 * ------------------------------------------------------------------------------------------- */

typedef struct dt__leases dt__leases;

typedef struct dt__leases_config {
    dt_broker *broker;     /* borrowed; must outlive the dt__leases (until _destroy) */
    const char *hub;       /* copied */
    const char *worker_id; /* copied; 1..DT__LEASES_ID_MAX of [A-Za-z0-9_-]; unique in the fleet */
    /* Partition count and lease TTL. 0: read from the hub's config record. Non-zero values must
     * equal the hub's (DT_ECONFLICT otherwise): a TTL longer than the bucket's would void the
     * safety argument above. */
    uint32_t partitions;
    int64_t ttl_ms;
    /* How long before the earliest possible take-over a held lease stops counting as held: the
     * time a caller needs to finish one action it started while the lease was valid.
     * 0: ttl/4. Must be < ttl/2. */
    int64_t margin_ms;
    /*
     * Called on the lease thread after the held set changed (partitions gained or lost; the new
     * set is dt__leases_snapshot()). Before a graceful release the partition is first removed
     * from the held set, then on_change is called, and only when it returns is the lease deleted
     * so that another worker can claim it: on_change may block until the caller has stopped
     * acting on partitions no longer held (keep that short, well under ttl/4: renewals of the
     * other leases wait for it). It must not call dt__leases_stop/_destroy. May be NULL.
     */
    void (*on_change)(void *ctx);
    void *ctx;
    /* Log lines (instance_id always NULL), called on the lease thread. May be NULL. */
    void (*log)(dt_log_level level, const char *instance_id, const char *msg, void *ctx);
    void *log_ctx;
} dt__leases_config;

/* A held lease, as seen by dt__leases_get(). */
typedef struct dt__lease_info {
    /* CLOCK_MONOTONIC ms (dt__mono_ms) until which the holder may act on the partition. */
    int64_t valid_until_mono_ms;
    /* KV revision of the create that started this lease: strictly increasing over all claims of
     * the hub, so a change tells the caller that the lease was lost and claimed again meanwhile. */
    uint64_t claim_rev;
} dt__lease_info;

/*
 * Validates `c` (copied), reads the hub's config, opens the leases bucket and starts the lease
 * thread, which joins the fleet and claims partitions from then on. On DT_OK *out is the keeper;
 * free with dt__leases_destroy. Fails with DT_EINVAL (bad config, invalid worker ID),
 * DT_ENOTFOUND (no such hub), DT_ECONFLICT (partitions/ttl differ from the hub's), DT_ENOMEM,
 * DT_EBROKER; errbuf (may be NULL) says why.
 */
dt_status dt__leases_start(const dt__leases_config *c, dt__leases **out, char *errbuf,
                           size_t errlen);

/*
 * Stops: every held partition leaves the held set, on_change is called (on the lease thread),
 * then the membership key and every lease are deleted so that the other workers take over at
 * once; joins the thread. Idempotent. Call from one thread, not from on_change, and not while
 * holding a lock that on_change takes.
 */
void dt__leases_stop(dt__leases *l);

/* Stops (if running) and frees. NULL accepted. */
void dt__leases_destroy(dt__leases *l);

/*
 * This worker cannot serve partition p (its store does not open): it gives p up and leaves it to
 * the other workers for for_ms, telling them through its heartbeat (leases_exclude.c). Takes
 * effect at the lease thread's next tick (within a third of the TTL). Thread-safe.
 */
void dt__leases_exclude(dt__leases *l, uint32_t p, int64_t for_ms);

/*
 * Thread-safe. True if partition p is held now; then *out_valid_until_mono_ms (may be NULL)
 * receives the deadline (CLOCK_MONOTONIC ms) until which the holder may act on it. Once this
 * returns false for a lease, it never returns true for that lease again (a later true is a new
 * lease with a new claim_rev).
 */
bool dt__leases_held(dt__leases *l, uint32_t p, int64_t *out_valid_until_mono_ms);

/* Thread-safe. As dt__leases_held, with the claim revision too. `out` may be NULL. */
bool dt__leases_get(dt__leases *l, uint32_t p, dt__lease_info *out);

/*
 * Thread-safe. Writes the held partitions, ascending, into out[0..max) and returns how many are
 * held (which may exceed max: then only the first max were written).
 */
size_t dt__leases_snapshot(dt__leases *l, uint32_t *out, size_t max);

/* The hub's partition count and the lease TTL in use. */
uint32_t dt__leases_partitions(const dt__leases *l);
int64_t dt__leases_ttl_ms(const dt__leases *l);

/*
 * For tests: simulates a worker that is cut off from NATS (or frozen) without dying. From now on
 * the lease thread writes nothing to the bucket (no heartbeat, renewal, claim or release, also
 * not on stop); it keeps watching, and its leases stop counting as held at their deadlines.
 * Thread-safe.
 */
void dt__leases_sever(dt__leases *l);

#endif
