/*
 * Restart: a finished instance runs again from the start, with the name, version, input and
 * tags of its status record, under the same ID (replacing it) or a new one. It is a start like
 * any other (schedule.c); only the read of what to start again is its own.
 */
#include <string.h>

#include "client_int.h"

/* Tags of the record that a caller may set (the "dt." ones are the runtime's own). */
static size_t user_tags(const dt_client_instance *inst, dt_client_tag *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < inst->ntags && n < cap; i++) {
        if (strncmp(inst->tags[i].key, "dt.", 3) != 0) {
            out[n++] = inst->tags[i];
        }
    }
    return n;
}

dt_status dt_client_restart(dt_client *c, const char *instance_id, bool new_instance_id,
                            char *out_id, size_t out_len)
{
    dt_client_instance *inst = NULL;
    dt_status st = dt_client_get_status(c, instance_id, true, &inst);
    if (st != DT_OK) {
        return st; /* DT_ENOTFOUND: nothing to restart */
    }
    if (!dt_client_runtime_status_finished(inst->runtime_status) && !new_instance_id) {
        st = dt__client_fail(c, DT_ESTATE, "instance '%s' is %s: only a finished instance restarts",
                             instance_id, dt_client_runtime_status_name(inst->runtime_status));
        dt_client_instance_free(inst);
        return st;
    }
    dt_client_tag tags[DT_CLIENT_TAGS_MAX];
    dt_client_start_options o;
    memset(&o, 0, sizeof(o));
    o.instance_id = new_instance_id ? NULL : instance_id;
    o.input = inst->input;
    o.input_len = inst->input_len;
    o.version = inst->version;
    o.ntags = user_tags(inst, tags, DT_CLIENT_TAGS_MAX);
    o.tags = o.ntags > 0 ? tags : NULL;
    /* Same ID: replaced only while still finished (a racing start wins; DT_EEXIST then). */
    o.reuse_policy = DT_CLIENT_REUSE_REPLACE_IF_FINISHED;
    st = dt_client_schedule(c, inst->name, &o, out_id, out_len);
    dt_client_instance_free(inst);
    return st;
}
