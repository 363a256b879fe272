/*
 * The hub's retention policy: how long finished instances are kept before the workers purge
 * them. One JSON record, key "retention" of the hub's META bucket (docs/protocol.md), written by
 * clients (dt_client_retention_set, dtctl hub retention) and read by every worker.
 */
#include <jansson.h>
#include <string.h>

#include "durabletask/alloc.h"
#include "protocol_int.h"

static bool read_ms(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        *out = 0;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return false;
    }
    *out = (int64_t)json_integer_value(v);
    return true;
}

dt_status dt__retention_decode(const void *data, size_t len, dt__retention *out)
{
    memset(out, 0, sizeof(*out));
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    bool ok = json_is_object(o) && read_ms(o, "completed_ms", &out->completed_ms) &&
              read_ms(o, "failed_ms", &out->failed_ms) &&
              read_ms(o, "terminated_ms", &out->terminated_ms);
    json_decref(o);
    if (!ok) {
        memset(out, 0, sizeof(*out));
        return DT_EDECODE;
    }
    return DT_OK;
}

dt_status dt__retention_encode(const dt__retention *r, char **out, size_t *out_len)
{
    if (r->completed_ms < 0 || r->failed_ms < 0 || r->terminated_ms < 0) {
        return DT_EINVAL;
    }
    json_t *o = json_pack("{s:I,s:I,s:I}", "completed_ms", (json_int_t)r->completed_ms, "failed_ms",
                          (json_int_t)r->failed_ms, "terminated_ms", (json_int_t)r->terminated_ms);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        return DT_ENOMEM;
    }
    *out_len = strlen(text);
    *out = dt_memdup(text, *out_len + 1);
    free(text); /* jansson's malloc */
    return *out != NULL ? DT_OK : DT_ENOMEM;
}
