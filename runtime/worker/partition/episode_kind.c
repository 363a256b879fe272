/*
 * The rewind generation in message identities (episode_int.h): a message of a rewound run gets
 * its own identity kind, so that JetStream does not drop it as a repeat of the failed run's.
 * Called by actions.c, commit.c, episode_rewind.c and episode_terminate.c; calls nothing of the
 * worker.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "episode_int.h"

uint32_t dt__episode_rewinds(const dt__episode *e)
{
    for (size_t i = 0; e->start != NULL && i < e->start->n_tags; i++) {
        int64_t n = 0;
        if (strcmp(e->start->tags[i]->key, DT__TAG_REWINDS) == 0 &&
            dt__parse_i64(e->start->tags[i]->value, 0, UINT32_MAX, &n)) {
            return (uint32_t)n;
        }
    }
    return 0;
}

const char *dt__episode_kind_at(dt__episode *e, const char *kind, uint32_t n)
{
    if (n == 0) {
        return kind;
    }
    char buf[64];
    snprintf(buf, sizeof(buf), "%s.r%" PRIu32, kind, n);
    return dt__arena_strdup(e->a, buf);
}

const char *dt__episode_kind(dt__episode *e, const char *kind)
{
    return dt__episode_kind_at(e, kind, dt__episode_rewinds(e));
}
