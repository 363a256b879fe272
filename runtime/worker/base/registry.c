/*
 * Orchestrator lookup under the worker's version rules (the entity functions' half of the
 * registry is entity_registry.c). Called by the partition pipeline; calls nothing of the worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_int.h"

/* Compares dot-separated numeric versions ("1.10" > "1.9"); non-numeric parts compare as text. */
static int version_cmp(const char *a, const char *b)
{
    while (*a != '\0' || *b != '\0') {
        char *ea = NULL, *eb = NULL;
        unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
        if (ea == a || eb == b) {
            return strcmp(a, b);
        }
        if (x != y) {
            return x < y ? -1 : 1;
        }
        a = *ea == '.' ? ea + 1 : ea;
        b = *eb == '.' ? eb + 1 : eb;
    }
    return 0;
}

dt_status dt__worker_lookup(dt_worker *w, const char *name, const char *version,
                            dt_orchestrator_fn *fn, void **user_data, char *why, size_t why_len)
{
    const char *mine = w->version != NULL ? w->version : "";
    const char *theirs = version != NULL ? version : "";
    bool ok = w->opt.version_match == DT_VERSION_MATCH_ANY ||
              (w->opt.version_match == DT_VERSION_MATCH_STRICT && strcmp(mine, theirs) == 0) ||
              (w->opt.version_match == DT_VERSION_MATCH_CURRENT_OR_OLDER &&
               version_cmp(theirs, mine) <= 0);
    if (!ok) {
        snprintf(why, why_len, "orchestration version '%s' does not match worker version '%s'",
                 theirs, mine);
        return DT_EVERSION;
    }
    for (size_t i = 0; i < w->n_orchs; i++) {
        if (strcmp(w->orchs[i].name, name) == 0) {
            *fn = w->orchs[i].fn;
            *user_data = w->orchs[i].user_data;
            return DT_OK;
        }
    }
    snprintf(why, why_len, "no orchestrator named '%s' is registered", name);
    return DT_EUNKNOWNNAME;
}
