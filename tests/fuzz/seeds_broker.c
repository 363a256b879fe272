/* Seeds of the broker adapter's targets (fuzz_seeds.h): what nats-server sends (texts as
 * nats-server 2.9.10 sent them, captured from its wire) and the hub config record as the adapter
 * writes it. */
#include <string.h>

#include "broker_int.h"
#include "fuzz.h"
#include "fuzz_seeds.h"

static void pubacks(void)
{
    seed_put_text("fuzz_puback", "stored", "{\"stream\":\"S\", \"seq\":1}");
    seed_put_text("fuzz_puback", "duplicate", "{\"stream\":\"S\", \"seq\":1,\"duplicate\": true}");
    seed_put_text("fuzz_puback", "wrong-last-seq",
                  "{\"error\":{\"code\":400,\"err_code\":10071,\"description\":\"wrong last "
                  "sequence: 1\"},\"stream\":\"S\",\"seq\":0}");
    seed_put_text("fuzz_puback", "domain",
                  "{\"stream\":\"DT_fuzz_ORCH\",\"domain\":\"hub\",\"seq\":18446744073709551}");
}

static void consumer_replies(void)
{
    seed_put_text(
        "fuzz_consumer_reply", "created",
        "{\"type\":\"io.nats.jetstream.api.v1.consumer_create_response\",\"stream_name\":"
        "\"KV_b\",\"name\":\"ujrvz05y\",\"created\":\"2026-12-07T14:38:46.981504544Z\","
        "\"config\":{\"deliver_policy\":\"last_per_subject\",\"ack_policy\":\"none\","
        "\"max_deliver\":-1,\"filter_subject\":\"$KV.b.\\u003e\",\"replay_policy\":\"instant\","
        "\"deliver_subject\":\"_I.push\",\"inactive_threshold\":5000000000,\"num_replicas\":0,"
        "\"mem_storage\":true},\"delivered\":{\"consumer_seq\":0,\"stream_seq\":0},"
        "\"ack_floor\":{\"consumer_seq\":0,\"stream_seq\":0},\"num_ack_pending\":0,"
        "\"num_redelivered\":0,\"num_waiting\":0,\"num_pending\":3}");
    seed_put_text("fuzz_consumer_reply", "stream-not-found",
                  "{\"type\":\"io.nats.jetstream.api.v1.consumer_create_response\",\"error\":"
                  "{\"code\":404,\"err_code\":10059,\"description\":\"stream not found\"}}");
    seed_put_text(
        "fuzz_consumer_reply", "stream-create",
        "{\"type\":\"io.nats.jetstream.api.v1.stream_create_response\",\"config\":{\"name\":"
        "\"S\",\"subjects\":[\"s.\\u003e\"],\"retention\":\"limits\",\"max_consumers\":-1,"
        "\"max_msgs\":-1,\"max_bytes\":-1,\"max_age\":0,\"max_msgs_per_subject\":-1,"
        "\"max_msg_size\":-1,\"discard\":\"old\",\"storage\":\"memory\",\"num_replicas\":1,"
        "\"duplicate_window\":120000000000,\"allow_direct\":false,\"mirror_direct\":false,"
        "\"sealed\":false,\"deny_delete\":false,\"deny_purge\":false,\"allow_rollup_hdrs\":"
        "false},\"created\":\"2026-12-07T14:38:46.974824782Z\",\"state\":{\"messages\":0,"
        "\"bytes\":0,\"first_seq\":0,\"first_ts\":\"0001-01-01T00:00:00Z\",\"last_seq\":0,"
        "\"last_ts\":\"0001-01-01T00:00:00Z\",\"consumer_count\":0},\"did_create\":true}");
}

static void hub_configs(void)
{
    dt_broker_hub_config c;
    dt_broker_hub_config_init(&c);
    c.format_version = DT_BROKER_HUB_FORMAT_VERSION;
    c.created_at_ms = 1796654336140LL;
    char buf[512];
    size_t len = 0;
    FUZZ_CHECK(dt__broker_hub_config_encode(&c, buf, sizeof(buf), &len) == DT_OK);
    seed_put("fuzz_hub_config", "defaults", buf, len);
    c.partitions = DT_BROKER_MAX_PARTITIONS;
    c.replicas = 3;
    c.storage = DT_BROKER_STORAGE_MEMORY;
    c.max_msg_size = 8 * 1024 * 1024;
    c.duplicate_window_ms = 600000;
    c.lease_ttl_ms = 2000;
    FUZZ_CHECK(dt__broker_hub_config_encode(&c, buf, sizeof(buf), &len) == DT_OK);
    seed_put("fuzz_hub_config", "memory-max", buf, len);
    /* A later format that added a key without a version bump: readers skip it. */
    seed_put_text(
        "fuzz_hub_config", "unknown-key",
        "{\"format_version\":1,\"partitions\":4,\"replicas\":1,\"max_msg_size\":"
        "1048576,\"duplicate_window_ms\":120000,\"lease_ttl_ms\":10000,\"storage\":"
        "\"file\",\"created_at_ms\":0,\"placement\":{\"tags\":[\"a\",\"b\"],\"x\":null}}");
}

/* FUZZ_HEADERS_INPUT: the header block's length (2 bytes, little endian), the block, the body. */
static void header_block(const char *name, const char *block, const char *body)
{
    size_t hl = strlen(block), bl = strlen(body);
    uint8_t buf[1024];
    FUZZ_CHECK(2 + hl + bl <= sizeof(buf));
    buf[0] = (uint8_t)(hl & 0xff);
    buf[1] = (uint8_t)(hl >> 8);
    memcpy(buf + 2, block, hl);
    memcpy(buf + 2 + hl, body, bl);
    seed_put("fuzz_msg_headers", name, buf, 2 + hl + bl);
}

static void headers(void)
{
    header_block("no-responders", "NATS/1.0 503\r\n\r\n", "");
    header_block("pull-timeout",
                 "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n"
                 "Nats-Pending-Bytes: 0\r\n\r\n",
                 "");
    header_block("kv-delete", "NATS/1.0\r\nKV-Operation: DEL\r\n\r\n", "");
    header_block("kv-purge", "NATS/1.0\r\nKV-Operation: PURGE\r\nNats-Rollup: sub\r\n\r\n", "");
    header_block("work-item", "NATS/1.0\r\nNats-Msg-Id: i1/e1/start/0\r\n\r\n", "hello");
    header_block("ingress-start",
                 "NATS/1.0\r\nNats-Msg-Id: order-7\r\nDt-Instance-Id: order-7\r\n"
                 "Dt-Version: 2\r\nDt-Reuse-Policy: replace-if-finished\r\n"
                 "Dt-Start-At: 1796654336140\r\nDt-Result-Subject: app.results.order-7\r\n\r\n",
                 "{\"city\":\"Tokyo\"}");
    header_block("ingress-raise", "NATS/1.0\r\nDt-Instance-Id: order-7\r\n\r\n", "true");
    header_block("no-headers", "", "plain body");
}

/* fuzz_ingress's input: partitions, subject tail, then as FUZZ_HEADERS_INPUT. */
static void ingress_request(const char *name, uint8_t partitions, const char *tail,
                            const char *block, const char *body)
{
    size_t tl = strlen(tail), hl = strlen(block), bl = strlen(body);
    uint8_t buf[1024];
    FUZZ_CHECK(4 + tl + hl + bl <= sizeof(buf) && tl < 256);
    size_t k = 0;
    buf[k++] = partitions;
    buf[k++] = (uint8_t)tl;
    memcpy(buf + k, tail, tl);
    k += tl;
    buf[k++] = (uint8_t)(hl & 0xff);
    buf[k++] = (uint8_t)(hl >> 8);
    memcpy(buf + k, block, hl);
    memcpy(buf + k + hl, body, bl);
    seed_put("fuzz_ingress", name, buf, k + hl + bl);
}

/* Requests as the README, docs/protocol.md and the Node.js tests send them. */
static void ingress_requests(void)
{
    ingress_request("start", 4, "start.hello_cities",
                    "NATS/1.0\r\nDt-Instance-Id: order-42\r\nNats-Msg-Id: order-42-start\r\n"
                    "Dt-Result-Subject: orders.done\r\n\r\n",
                    "{\"qty\":3}");
    ingress_request("start-all-headers", 8, "start.approval",
                    "NATS/1.0\r\nNats-Msg-Id: order-7\r\nDt-Instance-Id: order-7\r\n"
                    "Dt-Version: 2\r\nDt-Reuse-Policy: replace-if-finished\r\n"
                    "Dt-Start-At: 1796654336140\r\nDt-Result-Subject: app.results.order-7\r\n\r\n",
                    "{\"request\":\"order-7\"}");
    ingress_request("start-ignore", 2, "start.chain",
                    "NATS/1.0\r\nDt-Instance-Id: c-1\r\nDt-Reuse-Policy: ignore\r\n\r\n", "1");
    ingress_request("start-no-id", 4, "start.chain", "", "1");
    ingress_request("raise", 4, "raise.approval",
                    "NATS/1.0\r\nDt-Instance-Id: order-7\r\nNats-Msg-Id: approval-order-7\r\n"
                    "\r\n",
                    "{\"approved\":true}");
    ingress_request("terminate", 1, "terminate", "NATS/1.0\r\nDt-Instance-Id: order-8\r\n\r\n",
                    "cancelled by operator");
    ingress_request("suspend", 3, "suspend", "NATS/1.0\r\nDt-Instance-Id: order-8\r\n\r\n", "");
    ingress_request("resume", 3, "resume", "NATS/1.0\r\nDt-Instance-Id: order-8\r\n\r\n", "");
    ingress_request("bad-policy", 4, "start.chain",
                    "NATS/1.0\r\nDt-Instance-Id: c-2\r\nDt-Reuse-Policy: replace\r\n\r\n", "2");
}

void seeds_broker(void)
{
    ingress_requests();
    pubacks();
    consumer_replies();
    hub_configs();
    headers();
}
