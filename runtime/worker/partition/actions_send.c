/*
 * The messages an episode sends to an instance (its own or another's) through the outbox: the
 * primitives under actions.c, entity_actions.c, episode_rewind.c and episode_terminate.c. Calls
 * only down (outbox.c, trace_episode.c).
 */
#include <stdio.h>

#include "episode_int.h"

Dtpb__HistoryEvent *dt__actions_event(dt__episode *e)
{
    return dt__emit_new(e->a, -1, e->b->now_ms);
}

dt_status dt__actions_subject(dt__episode *e, const char *instance_id, char *buf, size_t len)
{
    char tail[16];
    snprintf(tail, sizeof(tail), "%u", dt__partition_of(instance_id, e->pt->w->hub_cfg.partitions));
    return dt_broker_subject(e->pt->w->hub, DT_BROKER_SUBJ_ORCH, tail, buf, len);
}

dt_status dt__actions_send_message(dt__episode *e, const Dtpb__OrchestrationMessage *m)
{
    char subject[DT_BROKER_NAME_BUF];
    dt_status st = dt__actions_subject(e, m->instance_id, subject, sizeof(subject));
    if (st != DT_OK) {
        return st;
    }
    size_t len = 0;
    uint8_t *data = dt__pack(e->a, &m->base, &len);
    const char *id = dt__arena_strdup(e->a, m->dedupe_id);
    if (data == NULL || id == NULL) {
        return DT_ENOMEM;
    }
    return dt__outbox_add(e->a, &e->out, subject, id, data, len, dt__trace_headers(e));
}

dt_status dt__actions_send(dt__episode *e, const char *instance_id, const char *execution_id,
                           Dtpb__HistoryEvent *ev, const char *dedupe_id)
{
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, instance_id, execution_id, ev, dedupe_id);
    return dt__actions_send_message(e, &m);
}

dt_status dt__actions_send_to_child(dt__episode *e, const Dtpb__HistoryEvent *created,
                                    Dtpb__HistoryEvent *ev, const char *kind, const char *sub)
{
    char id[DT_INSTANCE_ID_MAX * 2 + 96], origin[DT_INSTANCE_ID_MAX * 2 + 96];
    dt_status st =
        dt__msg_id(id, sizeof(id), e->instance_id, e->execution_id, kind, created->event_id);
    if (st == DT_OK) {
        st = dt__msg_id(origin, sizeof(origin), e->instance_id, e->execution_id, sub,
                        created->event_id);
    }
    if (st != DT_OK) {
        return st;
    }
    Dtpb__OrchestrationMessage m;
    dt__orch_msg_init(&m, created->sub_orchestration_instance_created->instance_id, "", ev, id);
    m.target_origin = origin;
    return dt__actions_send_message(e, &m);
}
