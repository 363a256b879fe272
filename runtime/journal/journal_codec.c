/*
 * A store batch as a log entry and back (schema/dt_journal.proto). Encoding borrows the batch's
 * bytes (nothing is copied until protobuf-c packs); decoding leaves everything in the caller's
 * arena, pointing into the decoded message.
 */
#include <string.h>

#include "journal_codec_int.h"
#include "protocol_int.h"

/* ---- batch -> LogChange ---- */

static void put_blob(const dt__blob *b, protobuf_c_boolean *has, ProtobufCBinaryData *out)
{
    *has = b->data != NULL;
    *out = (ProtobufCBinaryData){b->len, (uint8_t *)b->data};
}

static Dtpb__LogInstanceRow *enc_row(dt__arena *a, const dt__instance_row *r)
{
    Dtpb__LogInstanceRow *o = dt__arena_alloc(a, sizeof(*o));
    if (o == NULL) {
        return NULL;
    }
    dtpb__log_instance_row__init(o);
    o->instance_id = (char *)r->instance_id;
    o->execution_id = (char *)r->execution_id;
    o->name = (char *)r->name;
    o->version = (char *)r->version;
    o->has_runtime_status = true;
    o->runtime_status = r->runtime_status;
    o->has_created_ms = o->has_last_updated_ms = o->has_completed_ms = true;
    o->created_ms = r->created_ms;
    o->last_updated_ms = r->last_updated_ms;
    o->completed_ms = r->completed_ms;
    o->parent_instance_id = (char *)r->parent_instance_id;
    put_blob(&r->input, &o->has_input, &o->input);
    put_blob(&r->output, &o->has_output, &o->output);
    put_blob(&r->custom_status, &o->has_custom_status, &o->custom_status);
    put_blob(&r->failure_details, &o->has_failure_details, &o->failure_details);
    put_blob(&r->tags, &o->has_tags, &o->tags);
    return o;
}

/* An array of n pointers to n zeroed cells of `size` bytes, each initialised by init. */
static void **cells(dt__arena *a, size_t n, size_t size, void (*init)(void *))
{
    if (n == 0) {
        return NULL;
    }
    void **ptrs = dt__arena_alloc(a, n * sizeof(void *));
    uint8_t *mem = dt__arena_alloc(a, n * size);
    if (ptrs == NULL || mem == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = mem + i * size;
        init(ptrs[i]);
    }
    return ptrs;
}

static void init_timer(void *p)
{
    dtpb__log_timer__init(p);
}
static void init_outbox(void *p)
{
    dtpb__log_outbox_msg__init(p);
}
static void init_parked(void *p)
{
    dtpb__log_parked__init(p);
}
static void init_episode(void *p)
{
    dtpb__log_episode__init(p);
}

static ProtobufCBinaryData *enc_blobs(dt__arena *a, const dt__blob *b, size_t n)
{
    ProtobufCBinaryData *o = n > 0 ? dt__arena_alloc(a, n * sizeof(*o)) : NULL;
    for (size_t i = 0; o != NULL && i < n; i++) {
        o[i] = (ProtobufCBinaryData){b[i].len, (uint8_t *)b[i].data};
    }
    return o;
}

static bool enc_episode(dt__arena *a, const dt__episode_commit *e, Dtpb__LogEpisode *o)
{
    o->instance = enc_row(a, e->instance);
    o->has_reset_history = o->has_base_known = o->has_episode_fields_only = true;
    o->reset_history = e->reset_history;
    o->base_known = e->base_known;
    o->has_base_history_len = true;
    o->base_history_len = e->base_history_len;
    o->episode_fields_only = e->episode_fields_only;
    o->n_new_events = e->n_new_events;
    o->new_events = enc_blobs(a, e->new_events, e->n_new_events);
    o->n_applied_ids = e->n_applied;
    o->applied_ids = (char **)e->applied_ids;
    o->has_prune_applied = o->has_delete_all_timers = true;
    o->prune_applied = e->prune_applied;
    o->delete_all_timers = e->delete_all_timers;
    o->n_delete_timer_ids = e->n_delete_timers;
    o->delete_timer_ids = (int64_t *)e->delete_timer_ids;
    o->n_new_timers = e->n_new_timers;
    o->new_timers =
        (Dtpb__LogTimer **)cells(a, e->n_new_timers, sizeof(Dtpb__LogTimer), init_timer);
    for (size_t i = 0; o->new_timers != NULL && i < e->n_new_timers; i++) {
        Dtpb__LogTimer *t = o->new_timers[i];
        t->has_fire_at_ms = t->has_payload = true;
        t->fire_at_ms = e->new_timers[i].fire_at_ms;
        t->dedupe_id = (char *)e->new_timers[i].dedupe_id;
        t->payload = (ProtobufCBinaryData){e->new_timers[i].payload.len,
                                           (uint8_t *)e->new_timers[i].payload.data};
    }
    o->n_outbox = e->n_outbox;
    o->outbox =
        (Dtpb__LogOutboxMsg **)cells(a, e->n_outbox, sizeof(Dtpb__LogOutboxMsg), init_outbox);
    for (size_t i = 0; o->outbox != NULL && i < e->n_outbox; i++) {
        Dtpb__LogOutboxMsg *m = o->outbox[i];
        const dt__outbox_msg *src = &e->outbox[i];
        m->subject = (char *)src->subject;
        m->msg_id = (char *)src->msg_id;
        m->has_payload = true;
        m->payload = (ProtobufCBinaryData){src->payload.len, (uint8_t *)src->payload.data};
        put_blob(&src->headers, &m->has_headers, &m->headers);
    }
    o->n_delete_parked_ids = e->n_delete_parked;
    o->delete_parked_ids = (int64_t *)e->delete_parked_ids;
    return o->instance != NULL && (e->n_new_events == 0 || o->new_events != NULL) &&
           (e->n_new_timers == 0 || o->new_timers != NULL) &&
           (e->n_outbox == 0 || o->outbox != NULL);
}

dt_status dt__journal_encode(dt__arena *a, const dt__store_batch *b, uint8_t **out, size_t *out_len)
{
    Dtpb__LogChange c = DTPB__LOG_CHANGE__INIT;
    c.n_episodes = b != NULL ? b->n : 0;
    c.episodes =
        (Dtpb__LogEpisode **)cells(a, c.n_episodes, sizeof(Dtpb__LogEpisode), init_episode);
    if (c.n_episodes > 0 && c.episodes == NULL) {
        return DT_ENOMEM;
    }
    for (size_t i = 0; i < c.n_episodes; i++) {
        if (!enc_episode(a, &b->eps[i], c.episodes[i])) {
            return DT_ENOMEM;
        }
    }
    if (b != NULL) {
        c.n_published_ids = b->n_published;
        c.published_ids = (int64_t *)b->published_ids;
        c.n_parks = b->n_parks;
        c.parks = (Dtpb__LogParked **)cells(a, b->n_parks, sizeof(Dtpb__LogParked), init_parked);
        if (b->n_parks > 0 && c.parks == NULL) {
            return DT_ENOMEM;
        }
        for (size_t i = 0; i < b->n_parks; i++) {
            Dtpb__LogParked *p = c.parks[i];
            p->instance_id = (char *)b->parks[i].instance_id;
            p->dedupe_id = (char *)b->parks[i].dedupe_id;
            p->has_parked_ms = p->has_payload = true;
            p->parked_ms = b->parks[i].parked_ms;
            p->payload =
                (ProtobufCBinaryData){b->parks[i].payload.len, (uint8_t *)b->parks[i].payload.data};
        }
        c.n_delete_parked_ids = b->n_delete_parked;
        c.delete_parked_ids = (int64_t *)b->delete_parked_ids;
        c.n_delete_timer_ids = b->n_delete_timers;
        c.delete_timer_ids = (int64_t *)b->delete_timer_ids;
        c.purge_instance_id = (char *)b->purge_instance_id;
        c.has_purge_status_mask = b->purge_instance_id != NULL;
        c.purge_status_mask = b->purge_status_mask;
    }
    size_t len = 0;
    uint8_t *data = dt__pack(a, &c.base, &len);
    if (data == NULL) {
        return DT_ENOMEM;
    }
    *out = data;
    *out_len = len;
    return DT_OK;
}

/* ---- LogChange -> batch ---- */

static dt__blob get_blob(protobuf_c_boolean has, ProtobufCBinaryData d)
{
    /* Present but empty must stay present: protobuf-c gives data NULL for an empty field. */
    static const uint8_t empty[1] = {0};
    return has ? (dt__blob){d.data != NULL ? d.data : empty, d.len} : (dt__blob){NULL, 0};
}

static bool dec_row(const Dtpb__LogInstanceRow *r, dt__instance_row *o)
{
    if (r == NULL) {
        return false;
    }
    *o = (dt__instance_row){
        .instance_id = r->instance_id,
        .execution_id = r->execution_id,
        .name = r->name,
        .version = r->version,
        .runtime_status = r->runtime_status,
        .created_ms = r->created_ms,
        .last_updated_ms = r->last_updated_ms,
        .completed_ms = r->completed_ms,
        .parent_instance_id = r->parent_instance_id,
        .input = get_blob(r->has_input, r->input),
        .output = get_blob(r->has_output, r->output),
        .custom_status = get_blob(r->has_custom_status, r->custom_status),
        .failure_details = get_blob(r->has_failure_details, r->failure_details),
        .tags = get_blob(r->has_tags, r->tags),
    };
    return true;
}

static bool dec_episode(dt__arena *a, const Dtpb__LogEpisode *e, dt__episode_commit *o)
{
    dt__instance_row *row = dt__arena_alloc(a, sizeof(*row));
    if (row == NULL || !dec_row(e->instance, row)) {
        return false;
    }
    dt__blob *events =
        e->n_new_events > 0 ? dt__arena_alloc(a, e->n_new_events * sizeof(*events)) : NULL;
    dt__timer_new *timers =
        e->n_new_timers > 0 ? dt__arena_alloc(a, e->n_new_timers * sizeof(*timers)) : NULL;
    dt__outbox_msg *out = e->n_outbox > 0 ? dt__arena_alloc(a, e->n_outbox * sizeof(*out)) : NULL;
    if ((e->n_new_events > 0 && events == NULL) || (e->n_new_timers > 0 && timers == NULL) ||
        (e->n_outbox > 0 && out == NULL)) {
        return false;
    }
    for (size_t i = 0; i < e->n_new_events; i++) {
        events[i] = get_blob(true, e->new_events[i]);
    }
    for (size_t i = 0; i < e->n_new_timers; i++) {
        const Dtpb__LogTimer *t = e->new_timers[i];
        timers[i] = (dt__timer_new){t->fire_at_ms, t->dedupe_id, get_blob(true, t->payload)};
    }
    for (size_t i = 0; i < e->n_outbox; i++) {
        const Dtpb__LogOutboxMsg *m = e->outbox[i];
        out[i] = (dt__outbox_msg){m->subject, m->msg_id, get_blob(true, m->payload),
                                  get_blob(m->has_headers, m->headers)};
    }
    *o = (dt__episode_commit){
        .instance = row,
        .reset_history = e->reset_history,
        .base_known = e->base_known,
        .base_history_len = e->base_history_len,
        .episode_fields_only = e->episode_fields_only,
        .new_events = events,
        .n_new_events = e->n_new_events,
        .applied_ids = (const char *const *)e->applied_ids,
        .n_applied = e->n_applied_ids,
        .prune_applied = e->prune_applied,
        .delete_all_timers = e->delete_all_timers,
        .delete_timer_ids = e->delete_timer_ids,
        .n_delete_timers = e->n_delete_timer_ids,
        .new_timers = timers,
        .n_new_timers = e->n_new_timers,
        .outbox = out,
        .n_outbox = e->n_outbox,
        .delete_parked_ids = e->delete_parked_ids,
        .n_delete_parked = e->n_delete_parked_ids,
    };
    return true;
}

dt_status dt__journal_decode(dt__arena *a, const uint8_t *data, size_t len, dt__store_batch *out,
                             bool *out_empty)
{
    Dtpb__LogChange *c = dtpb__log_change__unpack(dt__arena_pb_allocator(a), len, data);
    if (c == NULL) {
        return DT_EDECODE;
    }
    dt__episode_commit *eps =
        c->n_episodes > 0 ? dt__arena_alloc(a, c->n_episodes * sizeof(*eps)) : NULL;
    dt__parked_new *parks = c->n_parks > 0 ? dt__arena_alloc(a, c->n_parks * sizeof(*parks)) : NULL;
    if ((c->n_episodes > 0 && eps == NULL) || (c->n_parks > 0 && parks == NULL)) {
        return DT_ENOMEM;
    }
    for (size_t i = 0; i < c->n_episodes; i++) {
        if (!dec_episode(a, c->episodes[i], &eps[i])) {
            return c->episodes[i]->instance == NULL ? DT_EDECODE : DT_ENOMEM;
        }
    }
    for (size_t i = 0; i < c->n_parks; i++) {
        const Dtpb__LogParked *p = c->parks[i];
        parks[i] = (dt__parked_new){p->instance_id, p->dedupe_id, p->parked_ms,
                                    get_blob(true, p->payload)};
    }
    *out = (dt__store_batch){
        .eps = eps,
        .n = c->n_episodes,
        .published_ids = c->published_ids,
        .n_published = c->n_published_ids,
        .parks = parks,
        .n_parks = c->n_parks,
        .delete_parked_ids = c->delete_parked_ids,
        .n_delete_parked = c->n_delete_parked_ids,
        .delete_timer_ids = c->delete_timer_ids,
        .n_delete_timers = c->n_delete_timer_ids,
        .purge_instance_id = c->purge_instance_id,
        .purge_status_mask = c->purge_status_mask,
    };
    *out_empty = c->n_episodes == 0 && c->n_published_ids == 0 && c->n_parks == 0 &&
                 c->n_delete_parked_ids == 0 && c->n_delete_timer_ids == 0 &&
                 c->purge_instance_id == NULL;
    return DT_OK;
}
