/*
 * test_cluster.h: a three-node nats-server JetStream cluster on loopback, owned by one test.
 *
 * Each node is a dt_test_nats (test_nats.h) named n1, n2, n3, with a client port and a route port
 * of its own, routes to all three, and its own store dir under the cluster's temp dir; so it is
 * stopped by its PID, at exit when a failed test skipped its cleanup, and on a ctest timeout
 * through the parent-death signal, like every server test_nats.c starts. A node can be killed
 * with SIGKILL and started again on the same store dir and ports, as a crashed host would come
 * back. The cluster keeps one broker connection of its own (to the whole URL list) for the
 * JetStream API requests below; it reconnects to another node when its node dies.
 *
 * Single-threaded: call everything from the test's main thread (the death signal goes to the
 * thread that forked the server).
 */
#ifndef DT_TEST_CLUSTER_H
#define DT_TEST_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "dt_broker.h"
#include "test_nats.h"

#define DT_TEST_CLUSTER_NODES 3

typedef struct dt_test_cluster {
    char *dir; /* temp dir (malloc'd): n1/, n2/, n3/, each a node's dir */
    dt_test_nats *nodes[DT_TEST_CLUSTER_NODES];
    int route_ports[DT_TEST_CLUSTER_NODES];
    char urls[DT_TEST_CLUSTER_NODES * 64]; /* "nats://127.0.0.1:<p1>,nats://...:<p2>,..." */
    dt_broker *broker;                     /* NULL until dt_test_cluster_start succeeded */
} dt_test_cluster;

/* Free ports and dirs for three nodes; nothing runs yet. Fails the test (aborts) on error. */
dt_test_cluster *dt_test_cluster_new(const char *prefix);

/*
 * Starts the three nodes and waits, up to wait_ms in all, until JetStream can place a stream with
 * three replicas: a metadata leader is elected and knows every node. It proves that by creating
 * (and deleting) a small memory stream with 3 replicas, retried while the cluster refuses it.
 * Returns false (with the reason and the nodes' log tails on stderr) when it did not get there.
 */
bool dt_test_cluster_start(dt_test_cluster *c, int64_t wait_ms);

/* Index (0..2) of the node named `name` ("n1".."n3"); -1 for any other name. */
int dt_test_cluster_node_index(const char *name);

/* SIGKILL to node i (0..2) and reaps it: its store dir and ports are kept. No-op if not running. */
void dt_test_cluster_kill(dt_test_cluster *c, int i);

/* Starts node i again on its store dir and ports and waits until its log says it is ready (it
 * then catches up with the cluster on its own). Returns false when it did not come up. */
bool dt_test_cluster_restart(dt_test_cluster *c, int i);

/*
 * Index of the node that leads stream `stream` (full name), from the cluster.leader of the
 * `$JS.API.STREAM.INFO.<stream>` reply; -1 when there is no leader now (an election is under way),
 * no such stream, or no reply within timeout_ms.
 */
int dt_test_cluster_stream_leader(dt_test_cluster *c, const char *stream, int64_t timeout_ms);

/* The same for consumer `consumer` of stream `stream` ($JS.API.CONSUMER.INFO.<stream>.<consumer>):
 * a replicated consumer has a leader of its own, elected apart from its stream's. */
int dt_test_cluster_consumer_leader(dt_test_cluster *c, const char *stream, const char *consumer,
                                    int64_t timeout_ms);

/*
 * Moves the leadership of stream `stream` (consumer NULL) or of its consumer `consumer` away from
 * node `avoid`: asks the leader to step down ($JS.API.STREAM.LEADER.STEPDOWN or
 * $JS.API.CONSUMER.LEADER.STEPDOWN) until another node leads, for at most wait_ms. Returns the
 * leader's index then, or -1 when there was no other leader in time. For a test that needs the
 * parts of a hub led by different nodes.
 */
int dt_test_cluster_move_leader(dt_test_cluster *c, const char *stream, const char *consumer,
                                int avoid, int64_t wait_ms);

/*
 * True when stream `stream` has a leader and every one of its replicas is reported current (a
 * restarted node has caught up). False otherwise, or without a reply within timeout_ms.
 */
bool dt_test_cluster_stream_current(dt_test_cluster *c, const char *stream, int64_t timeout_ms);

/*
 * Creates a file stream `name` capturing `subject` with `replicas` replicas (the default
 * 2-minute Nats-Msg-Id dedupe window), for what a test's orchestrations publish. DT_OK when it
 * was created or exists with these settings; the JetStream error text goes to stderr otherwise.
 */
dt_status dt_test_cluster_stream_create(dt_test_cluster *c, const char *name, const char *subject,
                                        int replicas);

/* Stops every node (SIGTERM by PID, SIGKILL after 5 s) and closes the connection. Idempotent. */
void dt_test_cluster_stop(dt_test_cluster *c);

/* Stops, removes the temp dir and frees. Accepts NULL. */
void dt_test_cluster_free(dt_test_cluster *c);

#endif
