/*
 * Who serves an activity name on a task queue, asked of the live workers themselves: routing by
 * name between workers that serve different names on one queue (C workers next to dt-sidecar,
 * whose SDK workers serve names the C code does not).
 *
 * Every pool answers, for each name it registered, core requests on
 * dt.<hub>.query.acts.<queue>.<h> (h: FNV-1a 64 of the name, 16 hex digits) in the queue group
 * "acts", replying with the name. A thread that fetched a work item for a name it does not serve
 * asks there: a reply naming the name means a live member serves it, and the item is handed off
 * (activity_loop.c: re-published as a new message, uncounted); "no responders" means no live
 * member does, and the item is given back counted and fails at the delivery bound as before.
 * A timeout (an overloaded server) counts as no answer, i.e. as before this existed.
 *
 * Why asking rather than announcing (a KV bucket of members and names): the answer is only
 * given by a process that is running and subscribed, so there is no heartbeat, no expiry and no
 * bucket to add to existing hubs; nats-server's "no responders" status makes the negative
 * answer immediate. Answers are cached briefly per pool, so a burst of one name asks once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "activity_int.h"
#include "common_int.h"

#define ASK_TIMEOUT_MS  500
#define SERVED_TTL_MS   2000 /* a positive answer is trusted this long */
#define UNSERVED_TTL_MS 250  /* a negative one this long (a member may be starting) */
#define GROUP           "acts"

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        h = (h ^ *c) * 1099511628211ull;
    }
    return h;
}

static dt_status name_subject(const dt__activity_pool *p, const char *queue, const char *name,
                              char *buf, size_t len)
{
    char tail[DT_BROKER_NAME_BUF];
    int w = snprintf(tail, sizeof(tail), "acts.%s.%016" PRIx64, queue, fnv1a64(name));
    if (w < 0 || (size_t)w >= sizeof(tail)) {
        return DT_ETOOLARGE;
    }
    return dt_broker_subject(p->hub, DT_BROKER_SUBJ_QUERY, tail, buf, len);
}

static void on_ask(dt_broker_msg *m, void *ctx)
{
    const dt__activity_def *d = ctx;
    dt_broker_outmsg r = {.data = d->name, .len = strlen(d->name)};
    (void)dt_broker_msg_respond(m, &r); /* a lost reply reads as a timeout: counted, as before */
    dt_broker_msg_destroy(m);
}

dt_status dt__act_members_start(dt__activity_pool *p, char *err, size_t errlen)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_queues; i++) {
        n += p->queues[i].n_defs;
    }
    p->member_subs = dt_calloc(n > 0 ? n : 1, sizeof(*p->member_subs));
    if (p->member_subs == NULL) {
        dt__errf(err, errlen, "activity pool: out of memory");
        return DT_ENOMEM;
    }
    for (size_t i = 0; i < p->n_queues; i++) {
        const dt__act_queue *q = &p->queues[i];
        for (size_t j = 0; j < q->n_defs; j++) {
            char subject[DT_BROKER_NAME_BUF];
            dt_status st = name_subject(p, q->name, q->defs[j].name, subject, sizeof(subject));
            if (st == DT_OK) {
                st = dt_broker_subscribe(p->b, subject, GROUP, on_ask, (void *)&q->defs[j],
                                         &p->member_subs[p->n_member_subs]);
            }
            if (st != DT_OK) {
                dt__errf(err, errlen, "activity '%s' on task queue '%s': subscribe: %s",
                         q->defs[j].name, q->name, dt_broker_errmsg(p->b));
                return st;
            }
            p->n_member_subs++;
        }
    }
    return DT_OK;
}

void dt__act_members_stop(dt__activity_pool *p)
{
    for (size_t i = 0; i < p->n_member_subs; i++) {
        dt_broker_sub_destroy(p->member_subs[i]);
    }
    dt_free(p->member_subs);
    p->member_subs = NULL;
    p->n_member_subs = 0;
    pthread_mutex_lock(&p->mu); /* threads may still be asking */
    for (size_t i = 0; i < DT__ACT_MEMBER_CACHE; i++) {
        dt_free(p->member_cache[i].name);
        p->member_cache[i].name = NULL;
    }
    pthread_mutex_unlock(&p->mu);
}

/* The cached answer for (queue, name): 1 served, 0 not, -1 none. Caller holds p->mu. */
static int cached(dt__activity_pool *p, const dt__act_queue *q, const char *name, int64_t now)
{
    for (size_t i = 0; i < DT__ACT_MEMBER_CACHE; i++) {
        dt__act_member_answer *c = &p->member_cache[i];
        if (c->name != NULL && c->queue == q && c->until_ms > now && strcmp(c->name, name) == 0) {
            return c->served ? 1 : 0;
        }
    }
    return -1;
}

/* Caller holds p->mu. A full cache replaces its entry that expires first. */
static void remember(dt__activity_pool *p, const dt__act_queue *q, const char *name, bool served,
                     int64_t now)
{
    dt__act_member_answer *slot = &p->member_cache[0];
    for (size_t i = 0; i < DT__ACT_MEMBER_CACHE; i++) {
        dt__act_member_answer *c = &p->member_cache[i];
        if (c->name != NULL && c->queue == q && strcmp(c->name, name) == 0) {
            slot = c;
            break;
        }
        if (c->name == NULL || c->until_ms < slot->until_ms) {
            slot = c;
        }
    }
    if (slot->name == NULL || strcmp(slot->name, name) != 0) {
        char *copy = dt_strdup(name);
        if (copy == NULL) {
            return; /* not cached: asked again next time */
        }
        dt_free(slot->name);
        slot->name = copy;
    }
    slot->queue = q;
    slot->served = served;
    slot->until_ms = now + (served ? SERVED_TTL_MS : UNSERVED_TTL_MS);
}

bool dt__act_members_serve(dt__activity_pool *p, const dt__act_queue *q, const char *name)
{
    int64_t now = dt__mono_ms();
    pthread_mutex_lock(&p->mu);
    int known = cached(p, q, name, now);
    pthread_mutex_unlock(&p->mu);
    if (known >= 0) {
        return known == 1;
    }
    char subject[DT_BROKER_NAME_BUF];
    dt_broker_msg *reply = NULL;
    dt_status st = name_subject(p, q->name, name, subject, sizeof(subject));
    if (st == DT_OK) {
        dt_broker_outmsg ask = {.subject = subject, .data = name, .len = strlen(name)};
        st = dt_broker_request(p->b, &ask, ASK_TIMEOUT_MS, &reply);
    }
    /* The reply names what its member serves: a hash collision of two names is no answer. */
    bool served = st == DT_OK && dt_broker_msg_len(reply) == strlen(name) &&
                  memcmp(dt_broker_msg_data(reply), name, strlen(name)) == 0;
    dt_broker_msg_destroy(reply);
    if (served || st == DT_ENOTFOUND) {
        pthread_mutex_lock(&p->mu);
        remember(p, q, name, served, dt__mono_ms());
        pthread_mutex_unlock(&p->mu);
    }
    return served;
}
