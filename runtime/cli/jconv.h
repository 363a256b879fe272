/*
 * jconv.h: the JSON form of the client API's results (durabletask/client.h), built with jansson.
 *
 * One definition of what an instance, a failure and a history event look like in JSON, shared by
 * `dtctl --json` (runtime/cli) and the dashboard's HTTP API (runtime/dashboard), so the two never
 * drift apart. Payloads are opaque bytes: they become JSON strings (by convention they hold JSON
 * text a consumer may parse again); bytes that are not UTF-8 become U+FFFD, because jansson only
 * accepts valid UTF-8.
 *
 * Every function returns a NEW reference the caller releases with json_decref, or NULL when
 * memory ran out. Arguments are borrowed for the call. Thread-safe (no shared state).
 */
#ifndef DT_CLI_JCONV_H
#define DT_CLI_JCONV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/client.h"

/* A string of the bytes data[0..len) (invalid UTF-8 replaced), or json null when data is NULL. */
json_t *dt__jconv_bytes(const void *data, size_t len);

/* A string of the NUL-terminated s (NULL: json null). */
json_t *dt__jconv_str(const char *s);

/* "2024-05-01T12:00:00.123Z" into buf (>= 32 bytes); "-" for 0. Returns buf. */
const char *dt__jconv_time_text(int64_t ms, char *buf, size_t len);

/* Sets obj[key] to the time as text (null for 0) and obj[key "_ms"] to the number. 0 on
 * success, -1 when memory ran out. */
int dt__jconv_set_time(json_t *obj, const char *key, int64_t ms);

/* {"type","message","stack_trace","non_retriable","inner"}, or json null for NULL. Inner
 * failures deeper than 32 levels are cut (a chain is bounded, a malformed one must not recurse
 * without end). */
json_t *dt__jconv_failure(const dt_failure *f);

/* {"instance_id","name","execution_id","runtime_status","version","created_at(_ms)",
 *  "last_updated_at(_ms)","parent_instance_id","input","output","custom_status","failure",
 *  "tags"} */
json_t *dt__jconv_instance(const dt_client_instance *in);

/* {"event_id","timestamp(_ms)","type","name","instance_id",["task_id"],["fire_at(_ms)"],
 *  "payload","failure"} */
json_t *dt__jconv_event(const dt_client_event *e);

#endif
