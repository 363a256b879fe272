/*
 * WAL checkpoints off the writer's thread (dt__store_options.background_checkpoint).
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages, on
 * the committing thread, and a checkpoint syncs the WAL and then the database file even with
 * synchronous=NORMAL. On the reference machine an fsync takes 0.5 ms at the median and up to
 * 20 ms or more, so every few hundred commits a partition thread stalled for one or two of them:
 * the p99 of a lone three-step instance was 20 ms against a p90 of 4 (docs/performance.md,
 * "The partition's serial round trips and its WAL checkpoints").
 *
 * Here the writer's connection gets a WAL hook instead of the automatic checkpoint: after each
 * commit it only looks at the WAL's size and, past CKPT_FRAMES, wakes a thread that checkpoints
 * through a connection of its own (PASSIVE: it never waits for, nor blocks, the writer; SQLite
 * copies what is committed and the writer restarts the WAL once all of it was copied). Should
 * the thread fall far behind (CKPT_INLINE_FRAMES), the writer checkpoints itself, as SQLite
 * would, so the WAL stays bounded. Durability is unchanged: a checkpoint only copies committed
 * pages into the database file.
 *
 * Threads: the hook runs on the writer's thread; `mu` guards `due` and `closing`; the
 * checkpointer's connection is used by its thread alone.
 */
#include <pthread.h>
#include <string.h>

#include "common_int.h"
#include "durabletask/alloc.h"
#include "store_db_int.h"

#define CKPT_FRAMES        1000  /* SQLite's own automatic checkpoint threshold */
#define CKPT_INLINE_FRAMES 16000 /* the checkpointer is this far behind: the writer does it */

struct dt__store_ckpt {
    sqlite3 *db; /* the checkpointer's own connection */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool due;     /* under mu: the WAL passed CKPT_FRAMES since the last checkpoint */
    bool closing; /* under mu */
};

static void *ckpt_main(void *arg)
{
    dt__store_ckpt *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->due && !c->closing) {
            pthread_cond_wait(&c->cond, &c->mu);
        }
        if (c->closing) {
            break;
        }
        c->due = false;
        pthread_mutex_unlock(&c->mu);
        /* A failure (busy, I/O) is left to the next attempt or the writer's inline one. */
        (void)sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    dt__store_ckpt *c = arg;
    if (frames >= CKPT_INLINE_FRAMES) {
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (frames >= CKPT_FRAMES) {
        pthread_mutex_lock(&c->mu);
        if (!c->due) {
            c->due = true;
            pthread_cond_signal(&c->cond);
        }
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

dt_status dt__store_ckpt_start(dt__store *s)
{
    dt__store_ckpt *c = dt_calloc(1, sizeof(*c));
    if (c == NULL) {
        return DT_ENOMEM;
    }
    int rc = sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(c->db, s->opts.busy_timeout_ms);
        rc = sqlite3_exec(c->db,
                          s->opts.synchronous_full ? "PRAGMA synchronous = FULL"
                                                   : "PRAGMA synchronous = NORMAL",
                          NULL, NULL, NULL);
    }
    bool ok = rc == SQLITE_OK;
    bool mu = ok && pthread_mutex_init(&c->mu, NULL) == 0;
    bool cond = mu && pthread_cond_init(&c->cond, NULL) == 0;
    bool thread = cond && pthread_create(&c->thread, NULL, ckpt_main, c) == 0;
    if (!thread) {
        if (cond) {
            pthread_cond_destroy(&c->cond);
        }
        if (mu) {
            pthread_mutex_destroy(&c->mu);
        }
        sqlite3_close(c->db);
        dt_free(c);
        return ok ? DT_ENOMEM : DT_EIO;
    }
    s->ckpt = c;
    sqlite3_wal_hook(s->db, wal_hook, c); /* replaces the automatic checkpoint */
    return DT_OK;
}

void dt__store_ckpt_stop(dt__store *s)
{
    dt__store_ckpt *c = s->ckpt;
    if (c == NULL) {
        return;
    }
    sqlite3_wal_hook(s->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    dt_free(c);
    s->ckpt = NULL;
}
