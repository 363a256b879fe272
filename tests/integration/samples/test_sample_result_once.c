/*
 * Result subjects with a plain subscriber, as the event-driven sample uses them: the service
 * receives the InstanceStatus once, and the partition goes on at once.
 *
 * Written for a defect the sample showed (fixed in runtime/worker/partition/outbox.c, which now
 * asks whether a stream captures such a subject and sends a plain message when none does): the
 * worker published result subjects through JetStream first; with a plain subscriber and no stream
 * there is neither a PubAck nor "no responders", so it waited for the ack timeout (about 2 s) and
 * then sent the result again on core NATS. The service got it twice, and the instance's partition
 * stalled meanwhile (the dt-samples throughput burst after the event-driven sample fell from ~900
 * to ~240 orchestrations/s).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <nats/nats.h>

#include "dt_broker.h"
#include "event_driven.h"
#include "samples_kit.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The service hears of its instance exactly once. */
static void test_result_delivered_once(void **state)
{
    sk_env *e = *state;
    char subject[128], err[256] = "";
    snprintf(subject, sizeof(subject), "signup.%s.results.once", e->hub);
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, e->url), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&sub, nc, subject), NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);

    dt_client_instance *st = NULL;
    if (welcome_service_request(e->url, e->hub, "welcome-once", "{\"user\":\"once\"}", subject,
                                SK_WAIT_MS, &st, err, sizeof(err)) != 0) {
        fail_msg("service request: %s", err);
    }
    dt_client_instance_free(st);
    int count = 0;
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, sub, 4000) == NATS_OK) {
        count++;
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    assert_int_equal(count, 1);
}

/* Right after a result was published, other instances run without delay on every partition. */
static void test_no_partition_stall(void **state)
{
    sk_env *e = *state;
    char subject[128], err[256] = "";
    snprintf(subject, sizeof(subject), "signup.%s.results.stall", e->hub);
    dt_client_instance *st = NULL;
    if (welcome_service_request(e->url, e->hub, "welcome-stall", "{\"user\":\"s\"}", subject,
                                SK_WAIT_MS, &st, err, sizeof(err)) != 0) {
        fail_msg("service request: %s", err);
    }
    dt_client_instance_free(st);
    int64_t t0 = mono_ms();
    for (int i = 0; i < 16; i++) { /* 16 IDs cover the 4 partitions */
        char id[32];
        snprintf(id, sizeof(id), "probe-%d", i);
        sk_start(e, "hello_cities", id, NULL);
    }
    for (int i = 0; i < 16; i++) {
        char id[32];
        snprintf(id, sizeof(id), "probe-%d", i);
        dt_client_instance_free(sk_wait(e, id));
    }
    int64_t ms = mono_ms() - t0;
    printf("16 instances after a result publish: %lld ms\n", (long long)ms);
    /* A stalled partition waits out the PubAck timeout (2 s) at least once. */
    assert_true(ms < 1900);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_delivered_once),
        cmocka_unit_test(test_no_partition_stall),
    };
    int rc = cmocka_run_group_tests(tests, sk_group_setup, sk_group_teardown);
    dt_broker_global_shutdown();
    return rc;
}
