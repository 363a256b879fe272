/*
 * Fuzz target: the headers of received messages, as the runtime reads them. nats.c keeps the
 * header block of a received message raw and parses it on the first lookup; the runtime then
 * looks up the ingress headers (Dt-Instance-Id, Dt-Version, Dt-Reuse-Policy, Dt-Start-At,
 * Dt-Result-Subject, Nats-Msg-Id) through dt_broker_msg_header, the KV operation of a stored
 * KV message (dt__broker_kv_msg_op: delete markers and purges) and the Status of a reply (the
 * publisher's "no responders"). Any publisher chooses the header block of its message.
 *
 * Input (FUZZ_HEADERS_INPUT): the header block's length (2 bytes, little endian, cut to what
 * follows), then the block and the body, as nats-server delivers an HMSG. The message is built
 * with natsMsg_create, the constructor nats.c's protocol parser calls for a received message; it
 * is not in nats.c's public headers, so it is declared here as nats.c 3.4.1 (src/msg.h) defines
 * it. nats.c itself is not instrumented: its parser is exercised (crashes and the ASan
 * interceptors' checks still count), but libFuzzer sees only the runtime's side of the coverage.
 *
 * Property: the runtime's lookups (dt_broker_msg_header) give the same answer every time for a
 * message: a value, "not found", or DT_EDECODE for a header block that does not parse.
 */
#include <string.h>

#include "broker_int.h"
#include "fuzz.h"
#include "protocol_int.h"

natsStatus natsMsg_create(natsMsg **newMsg, const char *subject, int subjLen, const char *reply,
                          int replyLen, const char *buf, int bufLen, int hdrLen);

static const char *const names[] = {DT_HDR_INSTANCE_ID, DT_HDR_VERSION,  DT_HDR_RESULT_SUBJECT,
                                    DT_HDR_REUSE,       DT_HDR_START_AT, DT_HDR_MSG_ID,
                                    DT_HDR_REASON,      "Status",        "Description",
                                    "KV-Operation"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(dt__broker_global_init() == DT_OK);
    return 0;
}

#define NNAMES (sizeof(names) / sizeof(names[0]))

/* The ingress's view (dt_broker_msg_header): the same answer every time it asks. */
static void runtime_lookups(natsMsg *nm)
{
    dt_broker_msg *m = dt__broker_msg_wrap(nm, DT__MSG_CORE, NULL, NULL);
    FUZZ_CHECK(m != NULL);
    dt_status first[NNAMES];
    const char *value[NNAMES];
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < NNAMES; i++) {
            const char *v = NULL;
            dt_status st = dt_broker_msg_header(m, names[i], &v);
            FUZZ_CHECK(st == DT_OK || st == DT_ENOTFOUND || st == DT_EDECODE);
            FUZZ_CHECK(st != DT_OK || v != NULL);
            if (round == 0) {
                first[i] = st;
                value[i] = v;
            } else if (st != first[i] || (st == DT_OK && strcmp(v, value[i]) != 0)) {
                fuzz_fail("header %s: %s then %s", names[i], dt_status_name(first[i]),
                          dt_status_name(st));
            }
        }
    }
    dt_broker_msg_destroy(m); /* destroys nm */
}

/* The KV watch's and the publisher's readers, straight on the natsMsg (memory safety only: what
 * nats.c answers on a bad block is its own affair). */
static void raw_lookups(natsMsg *nm)
{
    (void)dt__broker_kv_msg_op(nm);
    (void)natsMsg_IsNoResponders(nm);
    const char **keys = NULL;
    int nkeys = 0;
    if (natsMsgHeader_Keys(nm, &keys, &nkeys) == NATS_OK) {
        for (int i = 0; i < nkeys; i++) {
            const char *v = NULL;
            (void)natsMsgHeader_Get(nm, keys[i], &v);
        }
        free((void *)keys);
    }
    natsMsg_Destroy(nm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536) {
        return 0;
    }
    size_t hl = (size_t)data[0] | (size_t)data[1] << 8, n = size - 2;
    hl = hl < n ? hl : n;
    static const char subject[] = "dt.fuzz.in.start.greet";
    for (int pass = 0; pass < 2; pass++) {
        natsMsg *nm = NULL;
        FUZZ_CHECK(natsMsg_create(&nm, subject, (int)strlen(subject), NULL, 0,
                                  (const char *)data + 2, (int)n, (int)hl) == NATS_OK);
        if (pass == 0) {
            runtime_lookups(nm);
        } else {
            raw_lookups(nm);
        }
    }
    return 0;
}
