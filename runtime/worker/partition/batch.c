/*
 * Batch bookkeeping: what the episodes of a batch hand to the partition's commit (commits, engine
 * results to free, instances touched, messages parked), kept in the batch's arena. Called by
 * partition.c and by the episode files below it; calls nothing of the worker.
 */
#include "batch_int.h"

bool dt__batch_push_commit(dt__batch *b, const dt__episode_commit *c)
{
    if (!dt__arena_grow(b->arena, (void **)&b->commits, &b->cap_commits, b->n_commits,
                        sizeof(*c))) {
        return false;
    }
    b->commits[b->n_commits++] = *c;
    return true;
}

bool dt__batch_keep_result(dt__batch *b, const dt__episode_result *r)
{
    if (!dt__arena_grow(b->arena, (void **)&b->results, &b->cap_results, b->n_results,
                        sizeof(*r))) {
        return false;
    }
    b->results[b->n_results++] = *r;
    return true;
}

bool dt__batch_touch(dt__batch *b, const char *instance_id)
{
    if (!dt__arena_grow(b->arena, (void **)&b->touched, &b->cap_touched, b->n_touched,
                        sizeof(char *))) {
        return false;
    }
    b->touched[b->n_touched++] = instance_id;
    return true;
}

bool dt__batch_park(dt__batch *b, const dt__parked_new *p)
{
    if (!dt__arena_grow(b->arena, (void **)&b->parks, &b->cap_parks, b->n_parks, sizeof(*p))) {
        return false;
    }
    b->parks[b->n_parks++] = *p;
    return true;
}
