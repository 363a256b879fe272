/*
 * journal_codec_int.h: a store batch as a log entry (schema/dt_journal.proto LogChange) and back;
 * internal to runtime/journal.
 */
#ifndef DT_JOURNAL_CODEC_INT_H
#define DT_JOURNAL_CODEC_INT_H

#include "arena_int.h"
#include "dt_journal.pb-c.h"
#include "store_int.h"

/* Packs b (borrowed; NULL: an empty change, i.e. a claim) into arena memory *out / *out_len. */
dt_status dt__journal_encode(dt__arena *a, const dt__store_batch *b, uint8_t **out,
                             size_t *out_len);

/* Unpacks an entry into *out, everything in the arena; *out_empty: the entry changes no row (a
 * claim). DT_EDECODE for bytes that are not a LogChange. */
dt_status dt__journal_decode(dt__arena *a, const uint8_t *data, size_t len, dt__store_batch *out,
                             bool *out_empty);

#endif
