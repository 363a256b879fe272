/* Seeds of fuzz_journal: log entries as a partition writes them, made with the journal's own
 * encoder from the recorded histories (fuzz_seeds.h): episodes with history, identities, timers
 * and outbox rows, and an owner's own deletes. */
#include <string.h>

#include "fuzz.h"
#include "fuzz_seeds.h"
#include "journal/journal_codec_int.h"

void seeds_journal(const fuzz_history *h, size_t n)
{
    dt__arena *a = dt__arena_create(0);
    FUZZ_CHECK(a != NULL);
    for (size_t i = 0; i < n; i++) {
        dt__blob *ev = dt__arena_alloc(a, (h[i].n > 0 ? h[i].n : 1) * sizeof(*ev));
        FUZZ_CHECK(ev != NULL);
        for (size_t k = 0; k < h[i].n; k++) {
            ev[k] = (dt__blob){h[i].ev[k], h[i].len[k]};
        }
        dt__instance_row row = {
            .instance_id = h[i].instance_id,
            .execution_id = "exec-1",
            .name = "orch",
            .runtime_status = (int32_t)h[i].status,
            .created_ms = 1000,
            .last_updated_ms = 2000,
            .output = {(const uint8_t *)h[i].output, h[i].output != NULL ? strlen(h[i].output) : 0},
            .failure_details = {h[i].failure, h[i].failure_len}};
        const char *applied[1] = {"msg-1"};
        dt__timer_new t[1] = {{5000, "timer-1", {(const uint8_t *)"fire", 4}}};
        dt__outbox_msg out[1] = {
            {"dt.hub.act.default", "id/act/1", {(const uint8_t *)"w", 1}, {NULL, 0}}};
        dt__episode_commit e = {.instance = &row,
                                .base_known = true,
                                .new_events = ev,
                                .n_new_events = h[i].n,
                                .applied_ids = applied,
                                .n_applied = 1,
                                .new_timers = t,
                                .n_new_timers = 1,
                                .outbox = out,
                                .n_outbox = 1};
        int64_t published[2] = {1, 2};
        dt__store_batch b = {.eps = &e, .n = 1, .published_ids = published, .n_published = 2};
        uint8_t *data = NULL;
        size_t len = 0;
        FUZZ_CHECK(dt__journal_encode(a, &b, &data, &len) == DT_OK);
        char name[64];
        snprintf(name, sizeof(name), "episode-%zu", i);
        seed_put("fuzz_journal", name, data, len);
    }
    int64_t ids[1] = {7};
    dt__store_batch own = {.delete_parked_ids = ids,
                           .n_delete_parked = 1,
                           .purge_instance_id = "done-1",
                           .purge_status_mask = 2};
    uint8_t *data = NULL;
    size_t len = 0;
    FUZZ_CHECK(dt__journal_encode(a, &own, &data, &len) == DT_OK);
    seed_put("fuzz_journal", "own-deletes", data, len);
    seed_put("fuzz_journal", "claim", "", 0);
    dt__arena_destroy(a);
}
