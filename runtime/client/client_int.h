/*
 * client_int.h: what the files of runtime/client share (internal, dt__client_ prefix).
 *
 * client.c holds the handle, hub management and IDs; schedule.c starts instances; signal.c
 * raises events and terminates / suspends / resumes; status.c reads and waits on the status
 * bucket; scatter.c asks the partition owners (list, history, purge); convert.c turns protobuf
 * messages into the public result structs.
 *
 * Result objects own an arena holding everything they point to; the public struct is the first
 * member of a holder that also records the arena, so freeing the struct frees the arena.
 */
#ifndef DT_CLIENT_INT_H
#define DT_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_int.h"
#include "common_int.h"
#include "dt_broker.h"
#include "durabletask/client.h"
#include "protocol_int.h"

/* Room left in a message for headers and NATS framing when checking sizes against the hub's
 * max_msg_size. */
#define DT__CLIENT_HEADROOM 1024
/* Bytes of a status-bucket key buffer (every ID byte may become "=XX"). */
#define DT__CLIENT_KEY_BUF (3 * DT_INSTANCE_ID_MAX + 1)

struct dt_client {
    dt_broker *b;
    char hub[DT_BROKER_HUB_NAME_MAX + 1];
    int64_t request_timeout_ms;
    bool have_cfg;
    dt_broker_hub_config cfg;
    dt_broker_kv *status_kv;                /* opened with the config; NULL until then */
    char status_bucket[DT_BROKER_NAME_BUF]; /* its name, for single-key reads and watches */
    /* Sends a start without waiting, so that its status record can go in the same round trip
     * (schedule.c); created on first use, destroyed with the client. */
    dt_broker_publisher *pub;
    char err[512];
};

/* Formats c->err and returns st. */
dt_status dt__client_fail(dt_client *c, dt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads the hub's config and opens its status bucket on first use. DT_ENOTFOUND: no hub. */
dt_status dt__client_ensure_hub(dt_client *c);

/* Validates an instance ID (DT_EINVAL with a message naming `what`). */
dt_status dt__client_check_id(dt_client *c, const char *what, const char *id);
/* Validates an orchestration or event name. */
dt_status dt__client_check_name(dt_client *c, const char *what, const char *name);

/* A random number in [0, 2^63). */
dt_status dt__client_rand63(dt_client *c, int64_t *out);

/* "dt.<hub>.<orch|query>.<partition>" of `id` or of partition p. */
dt_status dt__client_partition_subject(dt_client *c, dt_broker_family f, uint32_t p, char *buf,
                                       size_t len);

/* Packs `m` into arena memory and checks its size against the hub's limit (DT_ETOOLARGE). */
dt_status dt__client_pack_checked(dt_client *c, dt__arena *a, const ProtobufCMessage *m,
                                  const char *what, uint8_t **out, size_t *out_len);

/* The outgoing form of an OrchestrationMessage: to the instance's partition, packed into `a`,
 * Nats-Msg-Id = dedupe_id. `subject` (caller's, DT_BROKER_NAME_BUF bytes) holds the subject that
 * *out points to; `m` must outlive *out. */
dt_status dt__client_orch_outmsg(dt_client *c, dt__arena *a, const Dt__OrchestrationMessage *m,
                                 char *subject, dt_broker_outmsg *out);

/* Publishes an OrchestrationMessage to the instance's partition with Nats-Msg-Id = dedupe_id. */
dt_status dt__client_publish_orch(dt_client *c, dt__arena *a, const Dt__OrchestrationMessage *m,
                                  dt_broker_puback *out_ack);

/* Initialises *ts (caller's memory) to `ms`; dt__ts_to_ms (pb_int.h) is the inverse. */
void dt__client_ts_set(Dt__Timestamp *ts, int64_t ms);

/* Reads and decodes the instance's status record into arena memory. DT_ENOTFOUND if absent;
 * *out_rev (may be NULL) receives the record's revision. */
dt_status dt__client_status_read(dt_client *c, dt__arena *a, const char *id,
                                 Dt__InstanceStatus **out, uint64_t *out_rev);

/* Reads the instance's record as last written, deletes included: on DT_OK *out is the record,
 * or NULL when there is none (deleted: *out_rev is the delete marker's revision; never written:
 * 0). Equal revisions mean the same state (schedule.c builds start identities from them). */
dt_status dt__client_status_last(dt_client *c, dt__arena *a, const char *id,
                                 Dt__InstanceStatus **out, uint64_t *out_rev);

bool dt__client_status_finished(int32_t s);
/* A record with payloads_omitted (too large for one message): fills in its input, output,
 * custom status and failure details, each read from the partition's owner (scatter.c). */
dt_status dt__client_status_complete(dt_client *c, dt__arena *a, Dt__InstanceStatus *s);

/* ---- convert.c ---- */

/* Fills *out from `s` (strings and payloads copied into `a`; payloads only when with_payloads). */
dt_status dt__client_instance_from_pb(dt__arena *a, const Dt__InstanceStatus *s, bool with_payloads,
                                      dt_client_instance *out);
/* Fills *out from a decoded event and its packed form. */
dt_status dt__client_event_from_pb(dt__arena *a, const Dt__HistoryEvent *e, const uint8_t *raw,
                                   size_t raw_len, dt_client_event *out);
/* Converts a failure tree (depth-bounded); NULL for NULL. */
const dt_failure *dt__client_failure_from_pb(dt__arena *a, const Dt__TaskFailureDetails *f);

/* Result holders: allocate with the arena inside; free frees the arena. */
dt_client_instance *dt__client_instance_new(dt__arena *a);
dt_client_page *dt__client_page_new(dt__arena *a);
dt_client_history *dt__client_history_new(dt__arena *a);

#endif
