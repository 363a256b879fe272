/* One finished instance deleted from its partition (purge_int.h). */
#include "purge_int.h"

#include "protocol_int.h"

dt_status dt__purge_instance(dt__journal *j, dt__store *s, uint64_t epoch, dt_broker_kv *status_kv,
                             const char *id, uint32_t mask, dt_status *record_st)
{
    *record_st = DT_OK;
    if (j != NULL && dt__journal_behind(j)) {
        return DT_EBUSY; /* reading its log back (an append of unknown outcome) */
    }
    dt__store_batch purge = {.purge_instance_id = id, .purge_status_mask = mask};
    dt_status st = j != NULL ? dt__journal_commit(j, s, epoch, &purge)
                             : dt__store_commit_batch(s, epoch, &purge);
    if (st != DT_OK) {
        return st;
    }
    char key[3 * DT_INSTANCE_ID_MAX + 1];
    *record_st = dt__status_key(id, key, sizeof(key));
    if (*record_st == DT_OK) {
        *record_st = dt_broker_kv_delete(status_kv, key, 0);
    }
    return DT_OK;
}
