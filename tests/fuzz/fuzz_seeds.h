/*
 * fuzz_seeds.h: the seed writer (fuzz_seeds.c) and its parts, one file per family of targets.
 */
#ifndef DT_FUZZ_SEEDS_H
#define DT_FUZZ_SEEDS_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "fuzz_world.h"

/* Write one seed file <outdir>/<target>/<name>; abort on failure. */
void seed_put(const char *target, const char *name, const void *data, size_t len);
void seed_put_msg(const char *target, const char *name, const ProtobufCMessage *m);
void seed_put_text(const char *target, const char *name, const char *text);

/* seeds_history.c: fuzz_arena_pb (every stored event) and fuzz_engine (episodes). */
void seeds_history(const fuzz_history *h, size_t n);
/* seeds_work.c: fuzz_orch_msg and fuzz_activity_request. */
void seeds_work_items(const fuzz_history *h, size_t n);
/* seeds_query.c: fuzz_query_request, fuzz_query_response and fuzz_status_record. */
void seeds_queries(const fuzz_history *h, size_t n);
/* seeds_broker.c: fuzz_puback, fuzz_consumer_reply, fuzz_hub_config and fuzz_msg_headers. */
void seeds_broker(void);
/* seeds_journal.c: partition log entries of fuzz_journal. */
void seeds_journal(const fuzz_history *h, size_t n);

#endif
