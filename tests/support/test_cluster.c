/* A three-node nats-server JetStream cluster owned by a test (test_cluster.h). */
#include "test_cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "test_support.h"

#define CLUSTER_NAME  "dtc"
#define REQUEST_MS    2000
#define RETRY_MS      250
#define PROBE_STREAM  "DT_TEST_CLUSTER_PROBE"
#define PROBE_SUBJECT "dt_test_cluster.probe"

static void die(const char *what)
{
    fprintf(stderr, "test_cluster: %s: %s\n", what, strerror(errno));
    abort();
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

dt_test_cluster *dt_test_cluster_new(const char *prefix)
{
    dt_test_cluster *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->dir = dt_test_mkdtemp(prefix)) == NULL) {
        die("cluster dir");
    }
    size_t used = 0;
    for (int i = 0; i < DT_TEST_CLUSTER_NODES; i++) {
        dt_test_nats *s = calloc(1, sizeof(*s));
        size_t len = strlen(c->dir) + 8;
        if (s == NULL || (s->dir = malloc(len)) == NULL) {
            die("node");
        }
        snprintf(s->dir, len, "%s/n%d", c->dir, i + 1);
        if (mkdir(s->dir, 0700) != 0) {
            die(s->dir);
        }
        s->port = dt_test_free_port();
        snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", s->port);
        c->route_ports[i] = dt_test_free_port();
        c->nodes[i] = s;
        used += (size_t)snprintf(c->urls + used, sizeof(c->urls) - used, "%s%s", i > 0 ? "," : "",
                                 s->url);
    }
    return c;
}

int dt_test_cluster_node_index(const char *name)
{
    for (int i = 0; i < DT_TEST_CLUSTER_NODES; i++) {
        char want[8];
        snprintf(want, sizeof(want), "n%d", i + 1);
        if (name != NULL && strcmp(name, want) == 0) {
            return i;
        }
    }
    return -1;
}

/* The config text node i adds to test_nats.c's (listen, log, JetStream store dir). */
static void node_config(const dt_test_cluster *c, int i, char *buf, size_t len)
{
    char routes[DT_TEST_CLUSTER_NODES * 48];
    size_t used = 0;
    for (int k = 0; k < DT_TEST_CLUSTER_NODES; k++) {
        used += (size_t)snprintf(routes + used, sizeof(routes) - used, "%s\"nats://127.0.0.1:%d\"",
                                 k > 0 ? ", " : "", c->route_ports[k]);
    }
    snprintf(buf, len,
             "server_name: n%d\n"
             "cluster {\n"
             "  name: " CLUSTER_NAME "\n"
             "  listen: \"127.0.0.1:%d\"\n"
             "  routes: [%s]\n"
             "}\n",
             i + 1, c->route_ports[i], routes);
}

bool dt_test_cluster_restart(dt_test_cluster *c, int i)
{
    char extra[1024];
    node_config(c, i, extra, sizeof(extra));
    return dt_test_nats_start(c->nodes[i], extra);
}

void dt_test_cluster_kill(dt_test_cluster *c, int i)
{
    dt_test_nats_kill(c->nodes[i]);
}

/* Sends a JetStream API request; the reply's body (malloc'd, NUL-terminated) or NULL. */
static char *api_request(dt_test_cluster *c, const char *subject, const char *body,
                         int64_t timeout_ms)
{
    dt_broker_outmsg m = {.subject = subject, .data = body, .len = body != NULL ? strlen(body) : 0};
    dt_broker_msg *reply = NULL;
    if (c->broker == NULL || dt_broker_request(c->broker, &m, timeout_ms, &reply) != DT_OK) {
        return NULL;
    }
    size_t n = dt_broker_msg_len(reply);
    char *text = malloc(n + 1);
    if (text != NULL) {
        memcpy(text, dt_broker_msg_data(reply), n);
        text[n] = '\0';
    }
    dt_broker_msg_destroy(reply);
    return text;
}

/* Creates stream `name`; true on success. The last error reply goes to `err` ("" if none). */
static bool stream_create(dt_test_cluster *c, const char *name, const char *subject, int replicas,
                          const char *storage, char *err, size_t errlen)
{
    char api[256], body[512];
    snprintf(api, sizeof(api), "$JS.API.STREAM.CREATE.%s", name);
    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"subjects\":[\"%s\"],\"num_replicas\":%d,\"storage\":\"%s\"}", name,
             subject, replicas, storage);
    char *reply = api_request(c, api, body, REQUEST_MS);
    bool ok = reply != NULL && strstr(reply, "\"error\"") == NULL;
    snprintf(err, errlen, "%s", reply != NULL ? reply : "no reply");
    free(reply);
    return ok;
}

static void print_logs(const dt_test_cluster *c, const char *why)
{
    for (int i = 0; i < DT_TEST_CLUSTER_NODES; i++) {
        dt_test_nats_print_log(c->nodes[i], why);
    }
}

/* Retries an R3 probe stream until the cluster accepts it (then deletes it) or the deadline. */
static bool wait_placeable(dt_test_cluster *c, int64_t deadline)
{
    char err[512] = "";
    while (!stream_create(c, PROBE_STREAM, PROBE_SUBJECT, DT_TEST_CLUSTER_NODES, "memory", err,
                          sizeof(err))) {
        if (now_ms() > deadline) {
            fprintf(stderr, "test_cluster: no stream with %d replicas: %s\n", DT_TEST_CLUSTER_NODES,
                    err);
            return false;
        }
        sleep_ms(RETRY_MS);
    }
    free(api_request(c, "$JS.API.STREAM.DELETE." PROBE_STREAM, NULL, REQUEST_MS));
    return true;
}

bool dt_test_cluster_start(dt_test_cluster *c, int64_t wait_ms)
{
    int64_t deadline = now_ms() + wait_ms;
    for (int i = 0; i < DT_TEST_CLUSTER_NODES; i++) {
        if (!dt_test_cluster_restart(c, i)) {
            return false;
        }
    }
    dt_broker_options o;
    dt_broker_options_init(&o);
    o.urls = c->urls;
    o.name = "test_cluster";
    char err[256];
    if (dt_broker_connect(&o, &c->broker, err, sizeof(err)) != DT_OK) {
        fprintf(stderr, "test_cluster: connect to %s: %s\n", c->urls, err);
        return false;
    }
    if (!wait_placeable(c, deadline)) {
        print_logs(c, "test_cluster: not ready");
        return false;
    }
    return true;
}

/* The "cluster" object of a STREAM.INFO reply, or NULL. Points into `reply`. */
static const char *cluster_part(const char *reply)
{
    return reply != NULL && strstr(reply, "\"error\"") == NULL ? strstr(reply, "\"cluster\":{")
                                                               : NULL;
}

/* Copies the cluster's leader name into buf ("" when none). */
static void leader_name(const char *cluster, char *buf, size_t len)
{
    buf[0] = '\0';
    const char *p = cluster != NULL ? strstr(cluster, "\"leader\":\"") : NULL;
    if (p != NULL) {
        p += strlen("\"leader\":\"");
        const char *q = strchr(p, '"');
        size_t n = q != NULL ? (size_t)(q - p) : 0;
        snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), p);
    }
}

static char *stream_info(dt_test_cluster *c, const char *stream, int64_t timeout_ms)
{
    char api[256];
    snprintf(api, sizeof(api), "$JS.API.STREAM.INFO.%s", stream);
    return api_request(c, api, NULL, timeout_ms);
}

int dt_test_cluster_stream_leader(dt_test_cluster *c, const char *stream, int64_t timeout_ms)
{
    char *reply = stream_info(c, stream, timeout_ms);
    char name[32];
    leader_name(cluster_part(reply), name, sizeof(name));
    free(reply);
    return dt_test_cluster_node_index(name);
}

int dt_test_cluster_consumer_leader(dt_test_cluster *c, const char *stream, const char *consumer,
                                    int64_t timeout_ms)
{
    char api[256];
    snprintf(api, sizeof(api), "$JS.API.CONSUMER.INFO.%s.%s", stream, consumer);
    char *reply = api_request(c, api, NULL, timeout_ms);
    char name[32];
    leader_name(cluster_part(reply), name, sizeof(name));
    free(reply);
    return dt_test_cluster_node_index(name);
}

/* The leader of the stream, or of its consumer when consumer is not NULL. */
static int leader_of(dt_test_cluster *c, const char *stream, const char *consumer)
{
    return consumer != NULL ? dt_test_cluster_consumer_leader(c, stream, consumer, REQUEST_MS)
                            : dt_test_cluster_stream_leader(c, stream, REQUEST_MS);
}

int dt_test_cluster_move_leader(dt_test_cluster *c, const char *stream, const char *consumer,
                                int avoid, int64_t wait_ms)
{
    char api[256];
    if (consumer != NULL) {
        snprintf(api, sizeof(api), "$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s", stream, consumer);
    } else {
        snprintf(api, sizeof(api), "$JS.API.STREAM.LEADER.STEPDOWN.%s", stream);
    }
    int64_t deadline = now_ms() + wait_ms;
    int leader = leader_of(c, stream, consumer);
    while (leader < 0 || leader == avoid) {
        if (now_ms() > deadline) {
            return -1;
        }
        if (leader == avoid) {
            free(api_request(c, api, NULL, REQUEST_MS));
        }
        sleep_ms(RETRY_MS);
        leader = leader_of(c, stream, consumer);
    }
    return leader;
}

/* Counts occurrences of `needle` in [p, end). */
static int count_in(const char *p, const char *end, const char *needle)
{
    int n = 0;
    for (const char *q = p; (q = strstr(q, needle)) != NULL && q < end; q++) {
        n++;
    }
    return n;
}

bool dt_test_cluster_stream_current(dt_test_cluster *c, const char *stream, int64_t timeout_ms)
{
    char *reply = stream_info(c, stream, timeout_ms);
    const char *cl = cluster_part(reply);
    char leader[32];
    leader_name(cl, leader, sizeof(leader));
    bool current = false;
    const char *reps = cl != NULL ? strstr(cl, "\"replicas\":[") : NULL;
    const char *end = reps != NULL ? strchr(reps, ']') : NULL;
    if (leader[0] != '\0' && end != NULL) {
        /* PeerInfo: {"name":..,"current":bool,"offline":bool (omitted when false),..}: every
         * other replica listed and current. */
        int names = count_in(reps, end, "\"name\":");
        current =
            names == DT_TEST_CLUSTER_NODES - 1 && count_in(reps, end, "\"current\":true") == names;
    }
    free(reply);
    return current;
}

dt_status dt_test_cluster_stream_create(dt_test_cluster *c, const char *name, const char *subject,
                                        int replicas)
{
    char err[512];
    if (!stream_create(c, name, subject, replicas, "file", err, sizeof(err))) {
        fprintf(stderr, "test_cluster: create stream %s: %s\n", name, err);
        return DT_EBROKER;
    }
    return DT_OK;
}

void dt_test_cluster_stop(dt_test_cluster *c)
{
    if (c == NULL) {
        return;
    }
    dt_broker_close(c->broker);
    c->broker = NULL;
    for (int i = 0; i < DT_TEST_CLUSTER_NODES; i++) {
        dt_test_nats_stop(c->nodes[i]);
    }
}

void dt_test_cluster_free(dt_test_cluster *c)
{
    if (c == NULL) {
        return;
    }
    dt_test_cluster_stop(c);
    for (int i = 0; i < DT_TEST_CLUSTER_NODES; i++) {
        dt_test_nats_free(c->nodes[i]);
    }
    dt_test_rmtree(c->dir);
    free(c->dir);
    free(c);
}
