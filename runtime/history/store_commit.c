/*
 * Fenced writes: the batch commit of episodes (with the outbox rows published since the last
 * one deleted in the same transaction), and deletes of outbox rows and timers by id.
 *
 * A batch is validated completely before the transaction starts, so that the common rejections
 * (oversized payload, missing field) cost no I/O; what only the database can tell (duplicate
 * identities, history bound, fencing) is checked inside the transaction, and any failure rolls
 * the whole batch back.
 */
#include <inttypes.h>
#include <string.h>

#include "common_int.h"
#include "store_db_int.h"

/* ---- validation (no database access) ---- */

static dt_status check_str(dt__store *s, const char *v, bool required, const char *what)
{
    if (v == NULL) {
        return required ? dt__store_failf(s, DT_EINVAL, "commit to %s: %s missing", s->path, what)
                        : DT_OK;
    }
    size_t n = strlen(v);
    if (required && n == 0) {
        return dt__store_failf(s, DT_EINVAL, "commit to %s: %s empty", s->path, what);
    }
    if (n > DT__STORE_MAX_ID_LEN) {
        return dt__store_failf(s, DT_ETOOLARGE, "commit to %s: %s is %zu bytes (max %d)", s->path,
                               what, n, DT__STORE_MAX_ID_LEN);
    }
    return DT_OK;
}

static dt_status check_blob(dt__store *s, dt__blob b, bool required, const char *what)
{
    if (b.data == NULL) {
        return required ? dt__store_failf(s, DT_EINVAL, "commit to %s: %s missing", s->path, what)
                        : DT_OK;
    }
    if (b.len > s->opts.max_blob_bytes) {
        return dt__store_failf(s, DT_ETOOLARGE, "commit to %s: %s is %zu bytes (max %zu)", s->path,
                               what, b.len, s->opts.max_blob_bytes);
    }
    return DT_OK;
}

static dt_status check_instance(dt__store *s, const dt__instance_row *r)
{
    if (r == NULL) {
        return dt__store_failf(s, DT_EINVAL, "commit to %s: episode without instance", s->path);
    }
    dt_status st = check_str(s, r->instance_id, true, "instance_id");
    st = st != DT_OK ? st : check_str(s, r->execution_id, true, "execution_id");
    st = st != DT_OK ? st : check_str(s, r->name, true, "name");
    st = st != DT_OK ? st : check_str(s, r->version, false, "version");
    st = st != DT_OK ? st : check_str(s, r->parent_instance_id, false, "parent_instance_id");
    st = st != DT_OK ? st : check_blob(s, r->input, false, "input");
    st = st != DT_OK ? st : check_blob(s, r->output, false, "output");
    st = st != DT_OK ? st : check_blob(s, r->custom_status, false, "custom_status");
    st = st != DT_OK ? st : check_blob(s, r->failure_details, false, "failure_details");
    st = st != DT_OK ? st : check_blob(s, r->tags, false, "tags");
    if (st == DT_OK && (r->runtime_status < 0 || r->runtime_status > 31)) {
        st = dt__store_failf(s, DT_EINVAL, "commit to %s: runtime status %" PRId32 " invalid",
                             s->path, r->runtime_status);
    }
    return st;
}

static dt_status check_rows(dt__store *s, const dt__episode_commit *e)
{
    dt_status st = DT_OK;
    for (size_t i = 0; st == DT_OK && i < e->n_new_events; i++) {
        st = check_blob(s, e->new_events[i], true, "history event");
    }
    for (size_t i = 0; st == DT_OK && i < e->n_applied; i++) {
        st = check_str(s, e->applied_ids[i], true, "applied id");
    }
    for (size_t i = 0; st == DT_OK && i < e->n_new_timers; i++) {
        st = check_str(s, e->new_timers[i].dedupe_id, true, "timer dedupe_id");
        st = st != DT_OK ? st : check_blob(s, e->new_timers[i].payload, true, "timer payload");
    }
    for (size_t i = 0; st == DT_OK && i < e->n_outbox; i++) {
        const dt__outbox_msg *m = &e->outbox[i];
        st = check_str(s, m->subject, true, "outbox subject");
        st = st != DT_OK ? st : check_str(s, m->msg_id, true, "outbox msg_id");
        st = st != DT_OK ? st : check_blob(s, m->payload, true, "outbox payload");
        st = st != DT_OK ? st : check_blob(s, m->headers, false, "outbox headers");
    }
    return st;
}

static bool arrays_present(const dt__episode_commit *e)
{
    return (e->n_new_events == 0 || e->new_events != NULL) &&
           (e->n_applied == 0 || e->applied_ids != NULL) &&
           (e->n_delete_timers == 0 || e->delete_timer_ids != NULL) &&
           (e->n_new_timers == 0 || e->new_timers != NULL) &&
           (e->n_outbox == 0 || e->outbox != NULL) &&
           (e->n_delete_parked == 0 || e->delete_parked_ids != NULL);
}

static dt_status check_parks(dt__store *s, const dt__parked_new *p, size_t n)
{
    if (n > 0 && p == NULL) {
        return dt__store_failf(s, DT_EINVAL, "commit to %s: NULL parked array", s->path);
    }
    dt_status st = DT_OK;
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        st = check_str(s, p[i].instance_id, true, "parked instance_id");
        st = st != DT_OK ? st : check_str(s, p[i].dedupe_id, true, "parked dedupe_id");
        st = st != DT_OK ? st : check_blob(s, p[i].payload, true, "parked payload");
    }
    return st;
}

static dt_status validate(dt__store *s, const dt__episode_commit *eps, size_t n, size_t n_parks)
{
    if ((eps == NULL && n > 0) || n + n_parks == 0) {
        return dt__store_failf(s, DT_EINVAL, "commit to %s: no episodes", s->path);
    }
    dt_status st = DT_OK;
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        if (!arrays_present(&eps[i])) {
            return dt__store_failf(s, DT_EINVAL, "commit to %s: episode %zu has a NULL array",
                                   s->path, i);
        }
        st = check_instance(s, eps[i].instance);
        st = st != DT_OK ? st : check_rows(s, &eps[i]);
    }
    return st;
}

/* ---- one episode, inside the transaction ---- */

/* Runs `id` with the instance id as its only parameter. */
static dt_status exec_by_instance(dt__store *s, dt__store_sql id, const char *instance_id,
                                  const char *what)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, id, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, instance_id, &rc);
    return dt__store_exec(s, st, rc, what);
}

static dt_status stored_history_len(dt__store *s, const char *instance_id, uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    dt_status status = dt__store_stmt(s, DT__SQL_INST_LEN, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, instance_id, &rc);
    status = dt__store_step_row(s, st, rc, "read history length", &row);
    if (status == DT_OK) {
        *out = row ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
    }
    return status;
}

static dt_status delete_timers(dt__store *s, const dt__episode_commit *e)
{
    const char *id = e->instance->instance_id;
    dt_status status = DT_OK;
    if (e->delete_all_timers) {
        status = exec_by_instance(s, DT__SQL_TIMER_DEL_INST, id, "delete instance timers");
    }
    sqlite3_stmt *st = NULL;
    if (status == DT_OK && e->n_delete_timers > 0) {
        status = dt__store_stmt(s, DT__SQL_TIMER_DEL_OF_INST, &st);
    }
    for (size_t i = 0; status == DT_OK && i < e->n_delete_timers; i++) {
        int rc = SQLITE_OK;
        dt__store_bind_i64(st, 1, e->delete_timer_ids[i], &rc);
        dt__store_bind_text(st, 2, id, &rc);
        status = dt__store_exec(s, st, rc, "delete timer");
    }
    return status;
}

/* Binds the 15 columns of a whole row (parameters 1..15) with history_len as given. */
static void bind_row(sqlite3_stmt *st, const dt__instance_row *r, uint64_t history_len, int *rc)
{
    dt__store_bind_text(st, 1, r->instance_id, rc);
    dt__store_bind_text(st, 2, r->execution_id, rc);
    dt__store_bind_text(st, 3, r->name, rc);
    dt__store_bind_text(st, 4, r->version, rc);
    dt__store_bind_i64(st, 5, r->runtime_status, rc);
    dt__store_bind_i64(st, 6, r->created_ms, rc);
    dt__store_bind_i64(st, 7, r->last_updated_ms, rc);
    dt__store_bind_i64(st, 8, r->completed_ms, rc);
    dt__store_bind_text(st, 9, r->parent_instance_id, rc);
    dt__store_bind_i64(st, 10, (int64_t)history_len, rc);
    dt__store_bind_blob(st, 11, r->input, rc);
    dt__store_bind_blob(st, 12, r->output, rc);
    dt__store_bind_blob(st, 13, r->custom_status, rc);
    dt__store_bind_blob(st, 14, r->failure_details, rc);
    dt__store_bind_blob(st, 15, r->tags, rc);
}

/* Inserts or replaces the whole row. */
static dt_status upsert_instance(dt__store *s, const dt__instance_row *r, uint64_t history_len)
{
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, DT__SQL_INST_UPSERT, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    bind_row(st, r, history_len, &rc);
    return dt__store_exec(s, st, rc, "write instance");
}

/* Updates the columns an episode changes, on condition that the row is at `base` events. */
static dt_status update_episode_fields(dt__store *s, const dt__episode_commit *e, uint64_t base)
{
    const dt__instance_row *r = e->instance;
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, DT__SQL_INST_UPDATE_AT, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, r->instance_id, &rc);
    dt__store_bind_i64(st, 2, r->runtime_status, &rc);
    dt__store_bind_i64(st, 3, r->last_updated_ms, &rc);
    dt__store_bind_i64(st, 4, r->completed_ms, &rc);
    dt__store_bind_i64(st, 5, (int64_t)(base + e->n_new_events), &rc);
    dt__store_bind_blob(st, 6, r->output, &rc);
    dt__store_bind_blob(st, 7, r->custom_status, &rc);
    dt__store_bind_blob(st, 8, r->failure_details, &rc);
    dt__store_bind_i64(st, 9, (int64_t)base, &rc);
    return dt__store_exec(s, st, rc, "update instance");
}

/* Writes the whole row, on condition that the stored row is at `base` events (base 0: absent,
 * or at 0). */
static dt_status replace_row(dt__store *s, const dt__episode_commit *e, uint64_t base)
{
    sqlite3_stmt *st = NULL;
    dt_status status =
        dt__store_stmt(s, base == 0 ? DT__SQL_INST_UPSERT_AT : DT__SQL_INST_REPLACE_AT, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    bind_row(st, e->instance, base + e->n_new_events, &rc);
    if (base > 0) {
        dt__store_bind_i64(st, 16, (int64_t)base, &rc);
    }
    return dt__store_exec(s, st, rc, "write instance");
}

/*
 * Writes the row of an episode that ran on `base` stored events, on condition that the stored
 * row is still at that length: *out_done false when it is not, with nothing written. Rows of the
 * same execution update only what an episode changes, so the input and the start record (the
 * largest columns) are not rewritten every episode.
 */
static dt_status write_row_at(dt__store *s, const dt__episode_commit *e, uint64_t base,
                              bool *out_done)
{
    dt_status status =
        e->episode_fields_only ? update_episode_fields(s, e, base) : replace_row(s, e, base);
    if (status == DT_OK) {
        *out_done = sqlite3_changes64(s->db) == 1;
    }
    return status;
}

/* How many events from index i on share one history row: as many as fit in
 * DT__STORE_HISTORY_ROW_BYTES packed, at least one. *out_bytes is their packed size. */
static size_t row_span(const dt__episode_commit *e, size_t i, size_t *out_bytes)
{
    size_t bytes = 0, k = i;
    for (; k < e->n_new_events; k++) {
        size_t len = e->new_events[k].len;
        size_t add = dt__store_varint_len(len) + len;
        if (k > i && bytes + add > DT__STORE_HISTORY_ROW_BYTES) {
            break;
        }
        bytes += add;
    }
    *out_bytes = bytes;
    return k - i;
}

/* Packs n events from `first` into the handle's scratch buffer (bytes long). */
static dt_status pack_row(dt__store *s, const dt__blob *first, size_t n, size_t bytes,
                          dt__blob *out)
{
    if (bytes > s->scratch_cap) {
        uint8_t *b = dt_realloc(s->scratch, bytes);
        if (b == NULL) {
            return dt__store_failf(s, DT_ENOMEM, "commit to %s: out of memory packing history",
                                   s->path);
        }
        s->scratch = b;
        s->scratch_cap = bytes;
    }
    uint8_t *p = s->scratch;
    for (size_t k = 0; k < n; k++) {
        p = dt__store_varint_put(p, first[k].len);
        if (first[k].len > 0) {
            memcpy(p, first[k].data, first[k].len);
        }
        p += first[k].len;
    }
    *out = (dt__blob){s->scratch, bytes};
    return DT_OK;
}

/* Appends the episode's events from seq first_seq on: one row per DT__STORE_HISTORY_ROW_BYTES
 * (usually one per episode); a row of one event holds it as it is. */
static dt_status append_events(dt__store *s, const dt__episode_commit *e, uint64_t first_seq)
{
    sqlite3_stmt *st = NULL;
    dt_status status = e->n_new_events > 0 ? dt__store_stmt(s, DT__SQL_HIST_APPEND, &st) : DT_OK;
    for (size_t i = 0, n = 0; status == DT_OK && i < e->n_new_events; i += n) {
        size_t bytes = 0;
        n = row_span(e, i, &bytes);
        dt__blob row = e->new_events[i];
        if (n > 1) {
            status = pack_row(s, &e->new_events[i], n, bytes, &row);
        }
        int rc = SQLITE_OK;
        dt__store_bind_text(st, 1, e->instance->instance_id, &rc);
        dt__store_bind_i64(st, 2, (int64_t)(first_seq + i), &rc);
        dt__store_bind_i64(st, 3, (int64_t)n, &rc);
        dt__store_bind_blob(st, 4, row, &rc);
        status = status != DT_OK ? status : dt__store_exec(s, st, rc, "append history");
    }
    return status;
}

/*
 * An entity never completes, so its applied identities are forgotten by age instead: those
 * recorded more than applied_keep_ms before this episode. The time is the episode's own
 * (last_updated_ms, carried by the partition log), not the clock of whoever applies the batch,
 * so a rebuild from the log prunes exactly the same rows.
 */
static dt_status prune_aged(dt__store *s, const dt__episode_commit *e)
{
    const dt__instance_row *r = e->instance;
    if (r->instance_id[0] != '@' || r->last_updated_ms <= s->opts.applied_keep_ms) {
        return DT_OK;
    }
    sqlite3_stmt *st = NULL;
    dt_status status = dt__store_stmt(s, DT__SQL_APPLIED_AGED, &st);
    if (status != DT_OK) {
        return status;
    }
    int rc = SQLITE_OK;
    dt__store_bind_text(st, 1, r->instance_id, &rc);
    dt__store_bind_i64(st, 2, r->last_updated_ms - s->opts.applied_keep_ms, &rc);
    return dt__store_exec(s, st, rc, "prune aged applied messages");
}

static dt_status record_applied(dt__store *s, const dt__episode_commit *e)
{
    sqlite3_stmt *st = NULL;
    const char *id = e->instance->instance_id;
    dt_status status = e->n_applied > 0 ? dt__store_stmt(s, DT__SQL_APPLIED_ADD, &st) : DT_OK;
    for (size_t i = 0; status == DT_OK && i < e->n_applied; i++) {
        int rc = SQLITE_OK;
        dt__store_bind_text(st, 1, id, &rc);
        dt__store_bind_text(st, 2, e->applied_ids[i], &rc);
        dt__store_bind_i64(st, 3, e->instance->last_updated_ms, &rc);
        status = dt__store_exec(s, st, rc, "record applied message");
    }
    if (status == DT_OK && e->prune_applied) {
        status = exec_by_instance(s, DT__SQL_APPLIED_PRUNE, id, "prune applied messages");
    } else if (status == DT_OK && e->n_applied > 0) {
        status = prune_aged(s, e);
    }
    return status;
}

static dt_status add_timers(dt__store *s, const dt__episode_commit *e)
{
    sqlite3_stmt *st = NULL;
    dt_status status = e->n_new_timers > 0 ? dt__store_stmt(s, DT__SQL_TIMER_ADD, &st) : DT_OK;
    for (size_t i = 0; status == DT_OK && i < e->n_new_timers; i++) {
        const dt__timer_new *t = &e->new_timers[i];
        int rc = SQLITE_OK;
        dt__store_bind_text(st, 1, e->instance->instance_id, &rc);
        dt__store_bind_i64(st, 2, t->fire_at_ms, &rc);
        dt__store_bind_text(st, 3, t->dedupe_id, &rc);
        dt__store_bind_blob(st, 4, t->payload, &rc);
        status = dt__store_exec(s, st, rc, "add timer");
        if (t->fire_at_ms < s->timer_floor_ms) {
            s->timer_floor_ms = t->fire_at_ms; /* kept a lower bound, whatever becomes of it */
        }
    }
    return status;
}

static dt_status add_outbox(dt__store *s, const dt__episode_commit *e)
{
    sqlite3_stmt *st = NULL;
    dt_status status = e->n_outbox > 0 ? dt__store_stmt(s, DT__SQL_OUTBOX_ADD, &st) : DT_OK;
    for (size_t i = 0; status == DT_OK && i < e->n_outbox; i++) {
        const dt__outbox_msg *m = &e->outbox[i];
        int rc = SQLITE_OK;
        dt__store_bind_text(st, 1, m->subject, &rc);
        dt__store_bind_text(st, 2, m->msg_id, &rc);
        dt__store_bind_blob(st, 3, m->payload, &rc);
        dt__store_bind_blob(st, 4, m->headers, &rc);
        status = dt__store_exec(s, st, rc, "add outbox message");
        if (status == DT_OK && e->outbox_ids != NULL) {
            e->outbox_ids[i] = (int64_t)sqlite3_last_insert_rowid(s->db);
        }
    }
    return status;
}

static dt_status check_bound(dt__store *s, const dt__episode_commit *e, uint64_t len)
{
    uint64_t max = s->opts.max_history_len;
    if (len > max || e->n_new_events > max - len) {
        return dt__store_failf(s, DT_ETOOLARGE,
                               "commit to %s: history of '%s' would exceed %" PRIu64 " events",
                               s->path, e->instance->instance_id, max);
    }
    return DT_OK;
}

/*
 * The row and the history. The stored length comes from the writer when it knows it (the write
 * is fenced by the epoch and a batch holds one episode per instance, so the length the episode
 * read is still the stored one; the row's write verifies it anyway); otherwise, or when the
 * verification fails, it is read here.
 */
static dt_status apply_history(dt__store *s, const dt__episode_commit *e)
{
    const char *id = e->instance->instance_id;
    uint64_t len = 0;
    bool done = false;
    dt_status status = DT_OK;
    if (e->reset_history) {
        status = exec_by_instance(s, DT__SQL_HIST_RESET, id, "reset history");
    } else if (e->base_known) {
        len = e->base_history_len;
        status = check_bound(s, e, len);
        status = status != DT_OK ? status : write_row_at(s, e, len, &done);
        if (status == DT_OK && !done) {
            /* The episode ran on a history that is not the stored one (another writer, a purge
             * in between): its events must not be appended to a different history. The batch
             * fails; the caller runs it again from what is stored. */
            s->stats.unexpected_rows++;
            return dt__store_failf(s, DT_ESTATE,
                                   "commit to %s: instance '%s' is no longer at history length "
                                   "%llu (its episode ran on another history)",
                                   s->path, id, (unsigned long long)len);
        }
    }
    if (status == DT_OK && !done) {
        if (!e->reset_history) {
            status = stored_history_len(s, id, &len);
        }
        status = status != DT_OK ? status : check_bound(s, e, len);
        status = status != DT_OK ? status : upsert_instance(s, e->instance, len + e->n_new_events);
    }
    return status == DT_OK ? append_events(s, e, len) : status;
}

static dt_status apply_episode(dt__store *s, const dt__episode_commit *e, int64_t *parked_delta)
{
    dt_status status = delete_timers(s, e);
    status = status != DT_OK ? status : apply_history(s, e);
    status = status != DT_OK ? status : record_applied(s, e);
    status = status != DT_OK ? status : add_timers(s, e);
    status = status != DT_OK ? status : add_outbox(s, e);
    return status != DT_OK ? status
                           : dt__store_parked_del_in_txn(s, e->delete_parked_ids,
                                                         e->n_delete_parked, parked_delta);
}

/* Deletes rows by id with the cached statement `id`, inside the caller's transaction. */
static dt_status delete_each(dt__store *s, dt__store_sql id, const int64_t *ids, size_t n,
                             const char *what)
{
    sqlite3_stmt *st = NULL;
    dt_status status = n > 0 ? dt__store_stmt(s, id, &st) : DT_OK;
    for (size_t i = 0; status == DT_OK && i < n; i++) {
        int rc = SQLITE_OK;
        dt__store_bind_i64(st, 1, ids[i], &rc);
        status = dt__store_exec(s, st, rc, what);
    }
    return status;
}

/*
 * Deletes outbox rows by id, one statement per run of consecutive ids (ids[k+1] == ids[k] + 1):
 * the rows of one flight were inserted by one transaction and usually are such a run, so a batch
 * costs one DELETE instead of one per row. A range covers exactly the ids of its run.
 */
static dt_status delete_outbox_runs(dt__store *s, const int64_t *ids, size_t n)
{
    sqlite3_stmt *st = NULL;
    dt_status status = n > 0 ? dt__store_stmt(s, DT__SQL_OUTBOX_DEL_RANGE, &st) : DT_OK;
    for (size_t i = 0; status == DT_OK && i < n;) {
        size_t j = i;
        while (j + 1 < n && ids[j] < INT64_MAX && ids[j + 1] == ids[j] + 1) {
            j++;
        }
        int rc = SQLITE_OK;
        dt__store_bind_i64(st, 1, ids[i], &rc);
        dt__store_bind_i64(st, 2, ids[j], &rc);
        status = dt__store_exec(s, st, rc, "delete outbox rows");
        i = j + 1;
    }
    return status;
}

dt_status dt__store_commit(dt__store *s, uint64_t expected_epoch, const dt__episode_commit *eps,
                           size_t n)
{
    dt__store_batch b = {.eps = eps, .n = n};
    return dt__store_commit_batch(s, expected_epoch, &b);
}

dt_status dt__store_commit_settled(dt__store *s, uint64_t expected_epoch,
                                   const dt__episode_commit *eps, size_t n,
                                   const int64_t *published_ids, size_t n_published)
{
    dt__store_batch b = {
        .eps = eps, .n = n, .published_ids = published_ids, .n_published = n_published};
    return dt__store_commit_batch(s, expected_epoch, &b);
}

static dt_status validate_batch(dt__store *s, const dt__store_batch *b)
{
    if (b == NULL) {
        return dt__store_failf(s, DT_EINVAL, "commit to %s: no batch", s->path);
    }
    bool other = b->n_parks > 0 || b->n_published > 0 || b->n_delete_parked > 0 ||
                 b->n_delete_timers > 0 || b->purge_instance_id != NULL;
    dt_status status = validate(s, b->eps, b->n, other ? 1 : 0);
    status = status != DT_OK ? status : check_parks(s, b->parks, b->n_parks);
    if (status == DT_OK && ((b->n_published > 0 && b->published_ids == NULL) ||
                            (b->n_delete_parked > 0 && b->delete_parked_ids == NULL) ||
                            (b->n_delete_timers > 0 && b->delete_timer_ids == NULL))) {
        status = dt__store_failf(s, DT_EINVAL, "commit to %s: NULL id array", s->path);
    }
    if (status == DT_OK && b->purge_instance_id != NULL && b->purge_instance_id[0] == '\0') {
        status = dt__store_failf(s, DT_EINVAL, "purge in %s: instance id missing", s->path);
    }
    if (status == DT_OK && s->open_batch != NULL) {
        status = dt__store_failf(s, DT_EINVAL, "commit to %s: a batch is already open", s->path);
    }
    return status;
}

/* Everything of the batch, in its documented order, inside the open transaction. */
static dt_status apply_batch(dt__store *s, const dt__store_batch *b, int64_t *parked_delta)
{
    dt_status status = delete_outbox_runs(s, b->published_ids, b->n_published);
    for (size_t i = 0; status == DT_OK && i < b->n; i++) {
        status = apply_episode(s, &b->eps[i], parked_delta);
    }
    if (status == DT_OK) {
        status = dt__store_parked_add_in_txn(s, b->parks, b->n_parks, parked_delta);
    }
    if (status == DT_OK) {
        status =
            dt__store_parked_del_in_txn(s, b->delete_parked_ids, b->n_delete_parked, parked_delta);
    }
    if (status == DT_OK) {
        status = delete_each(s, DT__SQL_TIMER_DEL, b->delete_timer_ids, b->n_delete_timers,
                             "delete timers");
    }
    if (status == DT_OK && b->purge_instance_id != NULL) {
        status = dt__store_purge_in_txn(s, b->purge_instance_id, b->purge_status_mask);
    }
    return status;
}

dt_status dt__store_batch_begin(dt__store *s, uint64_t expected_epoch, const dt__store_batch *b)
{
    dt_status status = validate_batch(s, b);
    if (status == DT_OK) {
        status = dt__store_begin_write(s, expected_epoch);
    }
    if (status != DT_OK) {
        return status;
    }
    int64_t parked_delta = 0;
    status = apply_batch(s, b, &parked_delta);
    if (status != DT_OK) {
        status = dt__store_end_write(s, status);
        dt__store_parked_note(s, status, 0);
        if (s->applied.on) {
            dt__store_applied_off(s);
            s->applied.rebuild = true;
        }
        return status;
    }
    s->open_batch = b;
    s->open_parked_delta = parked_delta;
    return DT_OK;
}

dt_status dt__store_batch_end(dt__store *s, bool commit, uint64_t log_seq)
{
    const dt__store_batch *b = s->open_batch;
    if (b == NULL) {
        return dt__store_failf(s, DT_EINVAL, "end of a batch in %s: none is open", s->path);
    }
    s->open_batch = NULL;
    dt_status status = commit ? DT_OK : DT_ESTATE /* any error: ROLLBACK */;
    if (commit && log_seq > 0) {
        sqlite3_stmt *st = NULL;
        status = dt__store_stmt(s, DT__SQL_LOG_SEQ_SET, &st);
        if (status == DT_OK) {
            int rc = SQLITE_OK;
            dt__store_bind_i64(st, 1, (int64_t)log_seq, &rc);
            status = dt__store_exec(s, st, rc, "record log position");
        }
    }
    status = dt__store_end_write(s, status);
    dt__store_parked_note(s, status, s->open_parked_delta);
    if (status == DT_OK) {
        dt__store_applied_note_commit(s, b->eps, b->n); /* durable now */
    } else if (s->applied.on) {
        /* Whether a failed COMMIT reached the file is not certain: read the table instead. */
        dt__store_applied_off(s);
        s->applied.rebuild = true;
    }
    return commit ? status : DT_OK;
}

dt_status dt__store_commit_batch(dt__store *s, uint64_t expected_epoch, const dt__store_batch *b)
{
    dt_status status = dt__store_batch_begin(s, expected_epoch, b);
    return status == DT_OK ? dt__store_batch_end(s, true, 0) : status;
}

/* ---- deletes by id: batches of one kind of field, through the same write path ---- */

dt_status dt__store_outbox_delete(dt__store *s, uint64_t expected_epoch, const int64_t *ids,
                                  size_t n)
{
    dt__store_batch b = {.published_ids = ids, .n_published = n};
    return n == 0 ? DT_OK : dt__store_commit_batch(s, expected_epoch, &b);
}

dt_status dt__store_timers_delete(dt__store *s, uint64_t expected_epoch, const int64_t *ids,
                                  size_t n)
{
    dt__store_batch b = {.delete_timer_ids = ids, .n_delete_timers = n};
    return n == 0 ? DT_OK : dt__store_commit_batch(s, expected_epoch, &b);
}
