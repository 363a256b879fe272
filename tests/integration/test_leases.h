/*
 * test_leases.h: a fleet of lease keepers (runtime/worker/lease/leases.c) on one hub for the
 * test_leases_*.c integration tests, each worker with its own connection as if it were its own
 * process, plus a background sampler that checks that no partition ever has two holders.
 * Include after <cmocka.h>. Everything is static so each test executable takes what it uses.
 *
 * The sampler's check is exact despite sampling the workers one after another: it samples every
 * worker twice per round (w0..wn-1, then w0..wn-1 again). A worker X that holds partition p with
 * the same claim revision at both of its samples held it during the whole interval between them
 * (a lease that stopped counting never counts again, leases_int.h), and each other worker Y has
 * exactly one sample inside that interval (its first if it comes after X, its second if before).
 * If Y holds p at that sample, both held p at the same moment.
 */
#ifndef DT_TEST_LEASES_H
#define DT_TEST_LEASES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common_int.h"
#include "test_broker.h"
#include "worker/lease/leases_int.h"

#define TL_MAXW 4
#define TL_MAXP 64

typedef struct tl_worker {
    char id[32];
    dt_broker *b;
    dt__leases *l; /* guarded by tl_fleet.mu (for the sampler) */
    int changes;   /* on_change calls (atomic) */
} tl_worker;

typedef struct tl_fleet {
    char hub[128];
    dt_broker *admin;
    dt_broker_kv *kv; /* the leases bucket, through the admin connection */
    uint32_t np;
    int64_t ttl;
    tl_worker w[TL_MAXW];
    pthread_mutex_t mu;
    pthread_t sampler;
    int stop;       /* atomic */
    long rounds;    /* guarded by mu */
    int violations; /* guarded by mu */
    char violation[256];
} tl_fleet;

static void tl_log(dt_log_level lv, const char *instance_id, const char *msg, void *ctx)
{
    (void)instance_id;
    (void)ctx;
    if (lv >= DT_LOG_WARN || getenv("DT_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "[%lld] %s\n", (long long)(dt__mono_ms() % 100000), msg);
    }
}

static void tl_on_change(void *ctx)
{
    __atomic_add_fetch(&((tl_worker *)ctx)->changes, 1, __ATOMIC_RELAXED);
}

/* One round: see the header comment. */
static void tl_sample_round(tl_fleet *f)
{
    bool held[2][TL_MAXW][TL_MAXP];
    dt__lease_info info[2][TL_MAXW][TL_MAXP];
    memset(held, 0, sizeof(held));
    pthread_mutex_lock(&f->mu);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < TL_MAXW; i++) {
            for (uint32_t p = 0; f->w[i].l != NULL && p < f->np; p++) {
                held[pass][i][p] = dt__leases_get(f->w[i].l, p, &info[pass][i][p]);
            }
        }
    }
    for (uint32_t p = 0; p < f->np; p++) {
        for (int x = 0; x < TL_MAXW; x++) {
            if (!held[0][x][p] || !held[1][x][p] ||
                info[0][x][p].claim_rev != info[1][x][p].claim_rev) {
                continue;
            }
            for (int y = 0; y < TL_MAXW; y++) {
                if (y != x && held[y > x ? 0 : 1][y][p] && f->violations++ == 0) {
                    snprintf(f->violation, sizeof(f->violation),
                             "partition %u held by %s and %s at once", p, f->w[x].id, f->w[y].id);
                }
            }
        }
    }
    f->rounds++;
    pthread_mutex_unlock(&f->mu);
}

static void *tl_sampler(void *arg)
{
    tl_fleet *f = arg;
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
        tl_sample_round(f);
        tb_sleep_ms(1);
    }
    return NULL;
}

/* A hub of np partitions and lease TTL ttl_ms (file storage, as in production). */
static void tl_fleet_init(tl_fleet *f, uint32_t np, int64_t ttl_ms)
{
    assert_true(np <= TL_MAXP);
    memset(f, 0, sizeof(*f));
    f->np = np;
    f->ttl = ttl_ms;
    f->admin = tb_connect();
    dt_broker_hub_config c;
    dt_broker_hub_config_init(&c);
    c.partitions = np;
    c.lease_ttl_ms = ttl_ms;
    tb_hub(f->admin, "lease", &c, f->hub, sizeof(f->hub));
    char bucket[DT_BROKER_NAME_BUF];
    assert_int_equal(dt_broker_bucket_name(f->hub, DT_BROKER_BUCKET_LEASES, bucket, sizeof(bucket)),
                     DT_OK);
    TB_EXPECT(dt_broker_kv_open(f->admin, bucket, &f->kv), DT_OK, dt_broker_errmsg(f->admin));
    pthread_mutex_init(&f->mu, NULL);
    assert_int_equal(pthread_create(&f->sampler, NULL, tl_sampler, f), 0);
}

static void tl_start(tl_fleet *f, int i, const char *id)
{
    tl_worker *w = &f->w[i];
    assert_null(w->l);
    snprintf(w->id, sizeof(w->id), "%s", id);
    dt_broker_options o;
    dt_broker_options_init(&o);
    o.name = id;
    w->b = tb_connect_opts(&o);
    dt__leases_config c = {.broker = w->b,
                           .hub = f->hub,
                           .worker_id = id,
                           .on_change = tl_on_change,
                           .ctx = w,
                           .log = tl_log};
    dt__leases *l = NULL;
    char err[256] = "";
    TB_EXPECT(dt__leases_start(&c, &l, err, sizeof(err)), DT_OK, err);
    pthread_mutex_lock(&f->mu);
    w->l = l;
    pthread_mutex_unlock(&f->mu);
}

/* Graceful stop (releases), then the keeper leaves the sampled set and is freed. */
static void tl_stop(tl_fleet *f, int i)
{
    tl_worker *w = &f->w[i];
    dt__leases_stop(w->l);
    pthread_mutex_lock(&f->mu);
    dt__leases *l = w->l;
    w->l = NULL;
    pthread_mutex_unlock(&f->mu);
    dt__leases_destroy(l);
    dt_broker_close(w->b);
    w->b = NULL;
}

static size_t tl_held(tl_fleet *f, int i, uint32_t *out)
{
    return f->w[i].l == NULL ? 0 : dt__leases_snapshot(f->w[i].l, out, TL_MAXP);
}

/* True if every live worker holds exactly what rendezvous placement over the live workers gives
 * it (so all partitions are held, each once). */
static bool tl_converged(tl_fleet *f)
{
    const char *ids[TL_MAXW];
    int idx[TL_MAXW];
    size_t n = 0;
    for (int i = 0; i < TL_MAXW; i++) {
        if (f->w[i].l != NULL) {
            idx[n] = i;
            ids[n++] = f->w[i].id;
        }
    }
    for (uint32_t p = 0; p < f->np; p++) {
        size_t owner = dt__leases_place(ids, NULL, n, p);
        for (size_t k = 0; k < n; k++) {
            if (dt__leases_held(f->w[idx[k]].l, p, NULL) != (k == owner)) {
                return false;
            }
        }
    }
    return true;
}

/* Waits until converged; returns the time it took (ms), or fails after timeout_ms. */
static int64_t tl_wait_converged(tl_fleet *f, int64_t timeout_ms)
{
    int64_t t0 = tb_now_ms();
    while (!tl_converged(f)) {
        if (tb_now_ms() - t0 > timeout_ms) {
            for (int i = 0; i < TL_MAXW; i++) {
                uint32_t held[TL_MAXP];
                size_t n = tl_held(f, i, held);
                if (f->w[i].l != NULL) {
                    fprintf(stderr, "%s holds %zu:", f->w[i].id, n);
                    for (size_t k = 0; k < n; k++) {
                        fprintf(stderr, " %u", held[k]);
                    }
                    fprintf(stderr, "\n");
                }
            }
            fail_msg("not converged after %lld ms", (long long)timeout_ms);
        }
        tb_sleep_ms(2);
    }
    return tb_now_ms() - t0;
}

static int tl_violations(tl_fleet *f)
{
    pthread_mutex_lock(&f->mu);
    int v = f->violations;
    if (v != 0) {
        fprintf(stderr, "overlap: %s (%d samples)\n", f->violation, v);
    }
    pthread_mutex_unlock(&f->mu);
    return v;
}

/* Stops the sampler and every worker, checks there was never an overlap, deletes the hub. */
static void tl_fleet_finish(tl_fleet *f)
{
    __atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
    pthread_join(f->sampler, NULL);
    for (int i = 0; i < TL_MAXW; i++) {
        if (f->w[i].l != NULL) {
            tl_stop(f, i);
        }
    }
    print_message("sampler: %ld rounds\n", f->rounds);
    int v = tl_violations(f);
    dt_broker_kv_close(f->kv);
    tb_hub_delete(f->admin, f->hub);
    dt_broker_close(f->admin);
    pthread_mutex_destroy(&f->mu);
    assert_int_equal(v, 0);
}

#endif
