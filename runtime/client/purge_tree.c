/*
 * Recursive purge: an instance with the sub-orchestrations it started, and theirs. The children
 * are found in the history of the instance's current execution (SubOrchestrationInstanceCreated
 * events, read a page at a time), so each partition owner purges its own instances exactly as a
 * single purge does; children are purged before their parent, so that a failure part-way leaves
 * a parent that still names what is left. Children started by earlier executions of a
 * continue-as-new chain are not in that history and are not found.
 */
#include <stdio.h>
#include <string.h>

#include "client_int.h"

#define TREE_DEPTH_MAX 64

typedef struct tree_walk {
    uint64_t deleted;
    size_t unfinished; /* descendants left because they still run */
} tree_walk;

/* The sub-orchestration IDs the instance's current execution created: a dt_alloc'd array of
 * dt_alloc'd strings in *out (free with free_ids). */
static dt_status children_of(dt_client *c, const char *id, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    dt_client_history *h = NULL;
    dt_status st = dt_client_get_history(c, id, &h);
    if (st != DT_OK) {
        return st;
    }
    size_t cap = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->events[i].type, "SubOrchestrationInstanceCreated") != 0 ||
            h->events[i].instance_id == NULL) {
            continue;
        }
        if (*n == cap) {
            cap = cap == 0 ? 8 : cap * 2;
            char **g = dt_realloc(*out, cap * sizeof(*g));
            if (g == NULL) {
                st = DT_ENOMEM;
                break;
            }
            *out = g;
        }
        if (((*out)[*n] = dt_strdup(h->events[i].instance_id)) == NULL) {
            st = DT_ENOMEM;
            break;
        }
        (*n)++;
    }
    dt_client_history_free(h);
    return st == DT_ENOMEM ? dt__client_fail(c, st, "purge: out of memory") : st;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dt_free(ids[i]);
    }
    dt_free(ids);
}

/* Purges the children of `id` (finished ones, depth first), then `id`. A descendant that still
 * runs is left with its subtree; the root's own refusal is the caller's error. */
static dt_status purge_walk(dt_client *c, const char *id, int depth, tree_walk *t)
{
    if (depth > TREE_DEPTH_MAX) {
        return dt__client_fail(c, DT_ETOOLARGE, "purge: sub-orchestrations nested deeper than %d",
                               TREE_DEPTH_MAX);
    }
    char **kids = NULL;
    size_t n = 0;
    dt_status st = children_of(c, id, &kids, &n);
    if (st == DT_ENOTFOUND && depth > 0) {
        return DT_OK; /* a child purged already, or never started */
    }
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        st = purge_walk(c, kids[i], depth + 1, t);
    }
    free_ids(kids, n);
    if (st != DT_OK) {
        return st;
    }
    st = dt_client_purge(c, id);
    if (st == DT_OK) {
        t->deleted++;
    } else if (depth > 0 && (st == DT_ESTATE || st == DT_ENOTFOUND)) {
        t->unfinished += st == DT_ESTATE;
        st = DT_OK; /* a running child stays (and so do its children) */
    }
    return st;
}

dt_status dt_client_purge_recursive(dt_client *c, const char *instance_id, uint64_t *out_deleted)
{
    tree_walk t = {0};
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_get_status(c, instance_id, false, &inst);
    if (st == DT_OK && !dt_client_runtime_status_finished(inst->runtime_status)) {
        st =
            dt__client_fail(c, DT_ESTATE, "instance '%s' is %s: only a finished instance is purged",
                            instance_id, dt_client_runtime_status_name(inst->runtime_status));
    }
    dt_client_instance_free(inst);
    if (st == DT_OK) {
        st = purge_walk(c, instance_id, 0, &t);
    }
    if (out_deleted != NULL) {
        *out_deleted = t.deleted;
    }
    return st;
}

dt_status dt_client_purge_where_recursive(dt_client *c, const dt_client_filter *filter,
                                          uint64_t *out_deleted)
{
    uint64_t deleted = 0;
    char *token = NULL;
    dt_status st = DT_OK;
    do {
        dt_client_page *page = NULL;
        st = dt_client_list(c, filter, token, 0, false, &page);
        dt_free(token);
        token = NULL;
        if (st != DT_OK) {
            break;
        }
        for (size_t i = 0; st == DT_OK && i < page->n; i++) {
            const dt_client_instance *in = &page->instances[i];
            if (!dt_client_runtime_status_finished(in->runtime_status)) {
                continue;
            }
            uint64_t n = 0;
            st = dt_client_purge_recursive(c, in->instance_id, &n);
            deleted += n;
            if (st == DT_ENOTFOUND) {
                st = DT_OK; /* purged meanwhile (as a child of an earlier one, say) */
            }
        }
        if (st == DT_OK && page->next_page_token != NULL &&
            (token = dt_strdup(page->next_page_token)) == NULL) {
            st = dt__client_fail(c, DT_ENOMEM, "purge: out of memory");
        }
        dt_client_page_free(page);
    } while (st == DT_OK && token != NULL);
    dt_free(token);
    if (out_deleted != NULL) {
        *out_deleted = deleted;
    }
    return st;
}
