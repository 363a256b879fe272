/*
 * leases_keeper_int.h: the state of the lease keeper, shared by its two files (private to them):
 * leases.c (life cycle, the thread's loop and watch, the thread-safe queries) and leases_fleet.c
 * (the fleet view from watch events, placement, and the writes: heartbeat, claims, renewals,
 * releases). The public contract is leases_int.h.
 *
 * Threads. Everything is done on the lease thread except the thread-safe queries (dt__leases_get,
 * _held, _snapshot), dt__leases_sever and dt__leases_stop. Fields shared with those are marked
 * "guarded by mu"; the rest belongs to the lease thread (and to the starting and stopping thread
 * before it starts and after it was joined). KV calls are made without holding mu.
 */
#ifndef DT_LEASES_KEEPER_INT_H
#define DT_LEASES_KEEPER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "leases_int.h"

/* Hex digits of the keeper's random token, which marks its records. */
#define DT__LK_TOKEN_LEN 16

/* Partitions one member's heartbeat may say it cannot serve (leases_exclude.c). */
#define DT__LK_EXCL_MAX 32

typedef struct member {
    char id[DT__LEASES_ID_MAX + 1];
    uint64_t hash;
    int64_t seen;                   /* mono ms when its last heartbeat was seen */
    uint32_t excl[DT__LK_EXCL_MAX]; /* partitions it excludes itself from (its heartbeat) */
    size_t nexcl;
} member;

typedef struct part {
    /* Guarded by mu (written by the lease thread only). */
    bool held;
    int64_t valid_until;
    uint64_t claim_rev;
    /* Lease thread only. */
    bool desired;
    bool wrote;             /* a write of ours may have reached this key (a record of ours may be
                               there even when not held: an unsure create, a late renewal) */
    uint64_t rev;           /* revision of our last write, while held */
    int64_t renew_at;       /* next renewal (mono ms), while held */
    int64_t claim_after;    /* no claim attempt before this (mono ms) */
    int64_t backoff;        /* delay after the next failed claim attempt */
    int64_t excluded_until; /* mono ms; this worker does not serve p before (0: serves it) */
    /* Guarded by mu: an exclusion asked for by dt__leases_exclude (ms), taken by the thread. */
    int64_t exclude_req;
} part;

struct dt__leases {
    /* Immutable after start. */
    dt_broker *broker;
    char hub[DT_BROKER_HUB_NAME_MAX + 1];
    char id[DT__LEASES_ID_MAX + 1];
    char token[DT__LK_TOKEN_LEN + 1];
    char token_needle[DT__LK_TOKEN_LEN + 16]; /* "token":"<token>" as it appears in our records */
    uint64_t id_hash;
    uint32_t np;
    int64_t ttl;
    int64_t margin;
    int64_t period;        /* heartbeat and renewal interval: ttl/3 */
    int64_t retry;         /* retry of a failed heartbeat or renewal */
    int64_t backoff_first; /* first claim retry delay; doubles up to period */
    int64_t started_wall;
    void (*on_change)(void *ctx);
    void *ctx;
    void (*log)(dt_log_level, const char *, const char *, void *);
    void *log_ctx;

    /* Lease thread only. */
    dt_broker_kv *kv;
    member *members; /* the other live members */
    size_t nmembers;
    size_t members_cap;
    bool members_changed;
    bool members_full_warned;
    bool ready; /* the watch delivered the bucket's contents (or the wait for them timed out) */
    int64_t ready_deadline;
    int64_t hb_at;
    uint64_t hb_rev;
    bool hb_failing;
    uint64_t writes; /* records written, numbered in each record ("n") */
    int64_t watch_retry_at;
    bool changed;      /* the held set changed since on_change was last called */
    uint32_t *scratch; /* np entries */

    /* Guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dt_broker_kv_watcher *watcher; /* written under mu by the lease thread */
    bool stopping;
    bool severed;
    part *parts;

    /* The thread that calls start/stop. */
    pthread_t thread;
    bool running;
    bool sync_init;
};

/* Log line prefixed with hub and worker (no-op without a log callback; leases_log.c). */
void dt__lk_log(dt__leases *l, dt_log_level lv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads a flag guarded by mu. */
bool dt__lk_flag(dt__leases *l, const bool *f);

/* True for 1..DT__LEASES_ID_MAX characters of [A-Za-z0-9_-]. */
bool dt__lk_id_valid(const char *id);

/* Applies one watch event (received at `now`, mono ms) to the fleet view. */
void dt__lk_on_event(dt__leases *l, const dt_broker_kv_entry *e, int64_t now);

/* One round of work: expire members and leases, recompute placement, heartbeat, renew, hand over,
 * claim, and call on_change if the held set changed. */
void dt__lk_tick(dt__leases *l);

/* When the thread must run dt__lk_tick next (mono ms). */
int64_t dt__lk_next_wake(dt__leases *l, int64_t now);

/* On stop: leave the held set, call on_change, then delete membership and leases. */
void dt__lk_release_all(dt__leases *l);

/* ---- self-exclusion (leases_exclude.c) ---- */

/* Takes exclusion requests and ends exclusions that are over; true when the worker's set of
 * excluded partitions changed (placement and the heartbeat must follow). */
bool dt__lk_excl_update(dt__leases *l, int64_t now);
/* Appends ,"excluded":[...] to the heartbeat record in buf (NUL-terminated, `cap` bytes) when
 * partitions are excluded now. */
void dt__lk_excl_format(const dt__leases *l, int64_t now, char *buf, size_t cap);
/* Reads the excluded partitions of a heartbeat record into m; true when they changed. */
bool dt__lk_excl_parse(const dt__leases *l, member *m, const char *record, size_t len);
/* Whether `m` (NULL: this worker) may be given partition p. */
bool dt__lk_may_own(const dt__leases *l, const member *m, uint32_t p, int64_t now);
/* The earliest end of an exclusion of this worker (INT64_MAX: none). */
int64_t dt__lk_excl_next(const dt__leases *l);

#endif
