/*
 * The worker's entity functions, by lowercased entity name. Read by partition threads after
 * dt_worker_start only (registration happens before it), so no lock.
 */
#include <string.h>

#include "worker_int.h"

typedef struct dt__entity_def {
    char name[DT_ENTITY_NAME_MAX + 1]; /* lower case */
    dt_entity_fn fn;
    void *user_data;
} dt__entity_def;

static void lower(const char *in, char *out)
{
    size_t i = 0;
    for (; in[i] != '\0'; i++) {
        out[i] = (char)((in[i] >= 'A' && in[i] <= 'Z') ? in[i] - 'A' + 'a' : in[i]); /* ASCII */
    }
    out[i] = '\0';
}

dt_status dt_worker_add_entity(dt_worker *w, const char *name, dt_entity_fn fn, void *user_data)
{
    if (w == NULL || fn == NULL || dt_entity_id_check(name, "k", NULL, 0) != DT_OK) {
        return DT_EINVAL;
    }
    if (w->started) {
        return DT_ESTATE;
    }
    char low[DT_ENTITY_NAME_MAX + 1];
    lower(name, low);
    for (size_t i = 0; i < w->n_ents; i++) {
        if (strcmp(w->ents[i].name, low) == 0) {
            return DT_EEXIST;
        }
    }
    dt__entity_def *g = dt_realloc(w->ents, (w->n_ents + 1) * sizeof(*g));
    if (g == NULL) {
        return DT_ENOMEM;
    }
    w->ents = g;
    memcpy(g[w->n_ents].name, low, strlen(low) + 1);
    g[w->n_ents].fn = fn;
    g[w->n_ents].user_data = user_data;
    w->n_ents++;
    return DT_OK;
}

dt_status dt__worker_entity_lookup(dt_worker *w, const char *name, dt_entity_fn *fn,
                                   void **user_data)
{
    char low[DT_ENTITY_NAME_MAX + 1];
    if (name == NULL || strlen(name) > DT_ENTITY_NAME_MAX) {
        return DT_EUNKNOWNNAME;
    }
    lower(name, low);
    for (size_t i = 0; i < w->n_ents; i++) {
        if (strcmp(w->ents[i].name, low) == 0) {
            *fn = w->ents[i].fn;
            *user_data = w->ents[i].user_data;
            return DT_OK;
        }
    }
    return DT_EUNKNOWNNAME;
}

void dt__worker_entities_free(dt_worker *w)
{
    dt_free(w->ents);
    w->ents = NULL;
    w->n_ents = 0;
}
