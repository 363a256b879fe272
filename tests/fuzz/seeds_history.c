/* Seeds of fuzz_arena_pb and fuzz_engine: the recorded histories (fuzz_seeds.h). */
#include <string.h>

#include "fuzz.h"
#include "fuzz_seeds.h"

/* Event kinds that reach an instance from outside (new events of an episode). */
static bool incoming(Dtpb__HistoryEvent__EventTypeCase c)
{
    switch (c) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_COMPLETED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED:
        return true;
    default:
        return false;
    }
}

static Dtpb__HistoryEvent__EventTypeCase kind_of(const fuzz_history *h, size_t k)
{
    Dtpb__HistoryEvent *ev = dtpb__history_event__unpack(NULL, h->len[k], h->ev[k]);
    FUZZ_CHECK(ev != NULL);
    Dtpb__HistoryEvent__EventTypeCase c = ev->event_type_case;
    dtpb__history_event__free_unpacked(ev, NULL);
    return c;
}

typedef struct input {
    uint8_t buf[64 * 1024];
    size_t len;
} input;

static void add_event(input *in, const uint8_t *ev, size_t len)
{
    FUZZ_CHECK(len <= 0xffff && in->len + 2 + len <= sizeof(in->buf));
    in->buf[in->len++] = (uint8_t)(len & 0xff);
    in->buf[in->len++] = (uint8_t)(len >> 8);
    memcpy(in->buf + in->len, ev, len);
    in->len += len;
}

/* One fuzz_engine input per episode of h: the history before the episode's OrchestratorStarted
 * as the past, the events that came in during it as the new events (FUZZ_ENGINE_INPUT). */
static void engine_seeds(const fuzz_history *h)
{
    static input in;
    for (size_t start = 0; start < h->n; start++) {
        if (kind_of(h, start) != DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED ||
            start > 255) {
            continue;
        }
        in.len = 0;
        in.buf[in.len++] = (uint8_t)start;
        for (size_t k = 0; k < start; k++) {
            add_event(&in, h->ev[k], h->len[k]);
        }
        for (size_t k = start + 1; k < h->n; k++) {
            Dtpb__HistoryEvent__EventTypeCase c = kind_of(h, k);
            if (c == DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED) {
                break;
            }
            if (incoming(c)) {
                add_event(&in, h->ev[k], h->len[k]);
            }
        }
        char name[128];
        snprintf(name, sizeof(name), "%s-episode-at-%zu", h->instance_id, start);
        seed_put("fuzz_engine", name, in.buf, in.len);
    }
}

void seeds_history(const fuzz_history *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < h[i].n; k++) {
            char name[128];
            snprintf(name, sizeof(name), "%s-event-%zu", h[i].instance_id, k);
            seed_put("fuzz_arena_pb", name, h[i].ev[k], h[i].len[k]);
        }
        engine_seeds(&h[i]);
    }
}
