/*
 * Fuzz target: a partition log entry (dt__journal_decode, runtime/journal/journal_codec.c). Every
 * worker that takes a partition over reads the log's entries from JetStream, where anything with
 * access to the hub's LOG stream could have written anything.
 *
 * Input: the entry's bytes.
 *
 * Properties: an entry that decodes is a store batch whose arrays match their counts (every
 * element readable), and it survives a round trip: encoding it and decoding that gives a batch
 * that encodes to the same bytes (the codec loses nothing, invents nothing).
 */
#include <string.h>

#include "fuzz.h"
#include "journal/journal_codec_int.h"

static void touch_batch(const dt__store_batch *b)
{
    volatile size_t sum = 0;
    for (size_t i = 0; i < b->n; i++) {
        const dt__episode_commit *e = &b->eps[i];
        FUZZ_CHECK(e->instance != NULL);
        for (size_t k = 0; k < e->n_new_events; k++) {
            sum += e->new_events[k].len;
            FUZZ_CHECK(e->new_events[k].data != NULL);
        }
        for (size_t k = 0; k < e->n_applied; k++) {
            sum += strlen(e->applied_ids[k]);
        }
        for (size_t k = 0; k < e->n_outbox; k++) {
            sum += e->outbox[k].payload.len + (e->outbox[k].subject != NULL);
        }
        for (size_t k = 0; k < e->n_new_timers; k++) {
            sum += e->new_timers[k].payload.len;
        }
    }
    for (size_t i = 0; i < b->n_parks; i++) {
        sum += b->parks[i].payload.len;
    }
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20) {
        return 0;
    }
    dt__arena *a = dt__arena_create(0);
    FUZZ_CHECK(a != NULL);
    dt__store_batch b;
    bool empty = false;
    if (dt__journal_decode(a, data, size, &b, &empty) == DT_OK) {
        touch_batch(&b);
        uint8_t *once = NULL, *twice = NULL;
        size_t n1 = 0, n2 = 0;
        dt__store_batch again;
        bool empty2 = false;
        FUZZ_CHECK(empty ||
                   b.n + b.n_parks + b.n_published + b.n_delete_parked + b.n_delete_timers > 0 ||
                   b.purge_instance_id != NULL);
        if (dt__journal_encode(a, &b, &once, &n1) == DT_OK) {
            FUZZ_CHECK(dt__journal_decode(a, once, n1, &again, &empty2) == DT_OK);
            FUZZ_CHECK(empty2 == empty && again.n == b.n && again.n_parks == b.n_parks);
            FUZZ_CHECK(dt__journal_encode(a, &again, &twice, &n2) == DT_OK);
            if (n1 != n2 || (n1 > 0 && memcmp(once, twice, n1) != 0)) {
                fuzz_fail("a decoded entry does not encode to the same bytes twice (%zu, %zu)", n1,
                          n2);
            }
        }
    }
    dt__arena_destroy(a);
    return 0;
}
