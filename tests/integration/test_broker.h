/*
 * test_broker.h: helpers shared by the broker-adapter integration tests (test_broker_*.c).
 * Include after <cmocka.h>. Everything is static inline so each test executable takes only what
 * it uses.
 */
#ifndef DT_TEST_BROKER_H
#define DT_TEST_BROKER_H

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dt_broker.h"
#include "durabletask/alloc.h"
#include "test_support.h"

/* Connects to the suite's nats-server; fails the test (never skips) when there is none. */
static inline dt_broker *tb_connect_opts(dt_broker_options *o)
{
    const char *url = dt_test_nats_url();
    if (url == NULL) {
        fail_msg("DT_TEST_NATS_URL is not set: run the integration tests through scripts/test");
    }
    o->urls = url;
    if (o->name == NULL) {
        o->name = "dt-broker-test";
    }
    dt_broker *b = NULL;
    char err[256] = "";
    dt_status st = dt_broker_connect(o, &b, err, sizeof(err));
    if (st != DT_OK) {
        fail_msg("connect to %s: %s (%s)", url, dt_status_name(st), err);
    }
    return b;
}

static inline dt_broker *tb_connect(void)
{
    dt_broker_options o;
    dt_broker_options_init(&o);
    return tb_connect_opts(&o);
}

/* A name unique across parallel test processes: <prefix>_<pid>_<counter>_<clock bits>. */
static inline void tb_unique(char *buf, size_t len, const char *prefix)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(buf, len, "%s_%ld_%u_%lx", prefix, (long)getpid(), ++counter,
             (unsigned long)(ts.tv_nsec ^ ts.tv_sec) & 0xffffu);
}

/* Creates a hub named <prefix>_<unique> with settings `c` (NULL: defaults with memory storage). */
static inline void tb_hub(dt_broker *b, const char *prefix, const dt_broker_hub_config *c,
                          char *name, size_t len)
{
    dt_broker_hub_config d;
    if (c == NULL) {
        dt_broker_hub_config_init(&d);
        d.storage = DT_BROKER_STORAGE_MEMORY;
        c = &d;
    }
    tb_unique(name, len, prefix);
    dt_status st = dt_broker_hub_create(b, name, c, NULL);
    if (st != DT_OK) {
        fail_msg("create hub %s: %s (%s)", name, dt_status_name(st), dt_broker_errmsg(b));
    }
}

static inline void tb_hub_delete(dt_broker *b, const char *name)
{
    dt_status st = dt_broker_hub_delete(b, name);
    if (st != DT_OK) {
        fail_msg("delete hub %s: %s (%s)", name, dt_status_name(st), dt_broker_errmsg(b));
    }
}

/* Asserts a status, printing both names and the handle's error text on failure. */
#define TB_EXPECT(st, want, errtext)                                                               \
    do {                                                                                           \
        dt_status tb_st_ = (st);                                                                   \
        if (tb_st_ != (want)) {                                                                    \
            fail_msg("%s: got %s, want %s (%s)", #st, dt_status_name(tb_st_),                      \
                     dt_status_name(want), (errtext));                                             \
        }                                                                                          \
    } while (0)

static inline int64_t tb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void tb_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Publishes `text` to `subject` synchronously and returns the stream sequence. */
static inline uint64_t tb_publish(dt_broker *b, const char *subject, const char *msg_id,
                                  const char *text)
{
    dt_broker_outmsg m = {.subject = subject, .msg_id = msg_id, .data = text, .len = strlen(text)};
    dt_broker_puback ack = {0};
    TB_EXPECT(dt_broker_publish(b, &m, &ack), DT_OK, dt_broker_errmsg(b));
    return ack.stream_seq;
}

/*
 * The end of every test main(): tears nats.c down (so LeakSanitizer sees no nats.c threads or
 * buffers) and checks that every dt_alloc block was freed. Returns the exit code.
 */
static inline int tb_finish(int failed)
{
    if (dt_broker_global_shutdown() != DT_OK) {
        fprintf(stderr, "dt_broker_global_shutdown timed out\n");
        failed++;
    }
    long left = dt_test_alloc_outstanding();
    if (left != 0) {
        fprintf(stderr, "%ld dt_alloc blocks leaked\n", left);
        failed++;
    }
    return failed;
}

#endif
