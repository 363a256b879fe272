/*
 * Unit tests of the metrics registry and its text exposition (runtime/metrics): label and HELP
 * escaping, value spelling, cumulative histograms, name look-up with "_other", a whole render
 * read back by the strict reader of tests/support/prom_text.c, and counters written by several
 * threads at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "durabletask/alloc.h"
#include "metrics_int.h"
#include "prom_text.h"
#include "test_support.h"

static void test_label_escaping(void **state)
{
    (void)state;
    dt__mbuf b = {0};
    dt__mbuf_label_value(&b, "a\\b\"c\nd");
    assert_false(b.failed);
    assert_string_equal(b.data, "a\\\\b\\\"c\\nd");
    dt__mbuf_free(&b);
    dt__mbuf_header(&b, "m", "gauge", "help with \\ and\nnewline and \"quotes\"");
    assert_string_equal(b.data,
                        "# HELP m help with \\\\ and\\nnewline and \"quotes\"\n# TYPE m gauge\n");
    dt__mbuf_free(&b);
}

static void test_values(void **state)
{
    (void)state;
    dt__mbuf b = {0};
    dt__mbuf_sample(&b, "a", "", 42);
    dt__mbuf_sample(&b, "b", "x=\"1\"", 0.25);
    dt__mbuf_sample(&b, "c", "", 1.0 / 0.0);
    dt__mbuf_sample(&b, "d", "", 1e20);
    assert_string_equal(b.data, "a 42\nb{x=\"1\"} 0.25\nc +Inf\nd 1e+20\n");
    dt__mbuf_free(&b);
}

static void test_histogram(void **state)
{
    (void)state;
    static const int64_t bounds[] = {10, 100, 1000};
    dt__mhist h;
    dt__mhist_init(&h, bounds, 3, 1000);
    int64_t obs[] = {0, 10, 11, 100, 500, 5000, -3};
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
        dt__mhist_observe(&h, obs[i]);
    }
    dt__mbuf b = {0};
    dt__mbuf_header(&b, "h_seconds", "histogram", "a test");
    dt__mbuf_histogram(&b, "h_seconds", "k=\"v\"", &h);
    const char *want = "# HELP h_seconds a test\n# TYPE h_seconds histogram\n"
                       "h_seconds_bucket{k=\"v\",le=\"0.01\"} 3\n"
                       "h_seconds_bucket{k=\"v\",le=\"0.1\"} 5\n"
                       "h_seconds_bucket{k=\"v\",le=\"1\"} 6\n"
                       "h_seconds_bucket{k=\"v\",le=\"+Inf\"} 7\n"
                       "h_seconds_sum{k=\"v\"} 5.621\n"
                       "h_seconds_count{k=\"v\"} 7\n";
    assert_string_equal(b.data, want);
    prom_doc d;
    assert_true(prom_parse(b.data, b.len, &d));
    prom_free(&d);
    dt__mbuf_free(&b);
}

static void test_reader_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "m{a=\"x\\q\"} 1\n",        /* bad escape */
        "m 1\nn 2\nm 3\n",          /* samples apart */
        "# TYPE m counter\nm -1\n", /* negative counter */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "m 1",    /* no final newline */
        "1m 1\n", /* bad name */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        prom_doc d;
        assert_false(prom_parse(bad[i], strlen(bad[i]), &d));
        prom_free(&d);
    }
}

static dt__metrics *registry(void)
{
    const char *orchs[] = {"chain", "fan\"out"};
    const char *acts[] = {"hello", "hello", "slash\\name"}; /* one name on two queues */
    dt__metrics_names n = {orchs, 2, acts, 3};
    dt__metrics *m = NULL;
    assert_int_equal(dt__metrics_create(&n, &m), DT_OK);
    return m;
}

static void test_names(void **state)
{
    (void)state;
    dt__metrics *m = registry();
    assert_int_equal(m->n_names[DT__MKIND_ACT], 2);
    assert_string_equal(dt__metrics_name(m, DT__MKIND_ACT, "hello")->name, "hello");
    assert_string_equal(dt__metrics_name(m, DT__MKIND_ACT, "nope")->name, "_other");
    assert_string_equal(dt__metrics_name(m, DT__MKIND_ACT, NULL)->name, "_other");
    assert_string_equal(dt__metrics_name(m, DT__MKIND_ORCH, "fan\"out")->name, "fan\"out");
    dt__metrics_destroy(m);
}

static void test_render(void **state)
{
    (void)state;
    dt__metrics *m = registry();
    dt__metrics_activity_started(m, "hello");
    dt__metrics_activity_done(m, "hello", 1500, false);
    dt__metrics_activity_started(m, "slash\\name");
    dt__metrics_activity_done(m, "slash\\name", 3, true);
    dt__metrics_activity_done(m, "unknown", 7, false);
    dt__metrics_activity_refused(m, "unknown");
    dt__metrics_batch(m, DT__MKIND_ORCH, 3);
    dt__metrics_batch(m, DT__MKIND_ORCH, 0); /* empty fetches are not batches */
    dt__metrics_episode(m, 20, true, false);
    dt__metrics_episode(m, 20, false, true);
    dt__metrics_episode(m, 20, false, false);
    dt__metrics_partition(m, 3, true);
    dt__metrics_publish_error(NULL, DT__MKIND_ACT); /* NULL registry: nothing */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(dt__metrics_render(m, &text, &len), DT_OK);
    prom_doc d;
    bool ok = prom_parse(text, len, &d);
    if (!ok) {
        fprintf(stderr, "%s\n%s\n", d.error, text);
    }
    assert_true(ok);
    double v = -1;
    assert_true(
        prom_get(&d, "dt_work_items_completed_total", "kind=\"activity\",name=\"hello\"", &v));
    assert_true(v == 1);
    assert_true(
        prom_get(&d, "dt_work_items_failed_total", "kind=\"activity\",name=\"slash\\\\name\"", &v));
    assert_true(v == 1);
    assert_true(
        prom_get(&d, "dt_work_items_completed_total", "kind=\"activity\",name=\"_other\"", &v));
    assert_true(v == 1);
    assert_true(
        prom_get(&d, "dt_work_items_failed_total", "kind=\"activity\",name=\"_other\"", &v));
    assert_true(v == 1);
    assert_true(prom_get(&d, "dt_work_items_started_total",
                         "kind=\"orchestration\",name=\"fan\\\"out\"", &v));
    assert_true(v == 0);
    assert_true(prom_get(&d, "dt_activity_duration_seconds_count", "name=\"hello\"", &v));
    assert_true(v == 1);
    assert_true(
        prom_get(&d, "dt_activity_duration_seconds_bucket", "name=\"hello\",le=\"0.001\"", &v));
    assert_true(v == 0);
    assert_true(
        prom_get(&d, "dt_activity_duration_seconds_bucket", "name=\"hello\",le=\"0.0025\"", &v));
    assert_true(v == 1);
    assert_true(prom_get(&d, "dt_batch_size_count", "kind=\"orchestration\"", &v));
    assert_true(v == 1);
    assert_true(prom_get(&d, "dt_replay_cache_hits_total", "", &v) && v == 1);
    assert_true(prom_get(&d, "dt_replay_cache_misses_total", "", &v) && v == 1);
    assert_true(prom_get(&d, "dt_episode_duration_seconds_count", "", &v) && v == 3);
    assert_true(prom_get(&d, "dt_partitions_owned", "", &v) && v == 1);
    assert_true(prom_get(&d, "process_resident_memory_bytes", "", &v) && v > 0);
    assert_true(prom_get(&d, "process_open_fds", "", &v) && v > 0);
    assert_true(prom_get(&d, "process_start_time_seconds", "", &v) && v > 1.7e9);
    assert_true(prom_get(&d, "process_cpu_seconds_total", "", &v) && v >= 0);
    assert_int_equal(prom_count(&d, "dt_queue_pending"), 0); /* no source set */
    prom_free(&d);
    dt_free(text);
    dt__metrics_destroy(m);
}

#define THREADS 4
#define PER     20000

static void *hammer(void *arg)
{
    dt__metrics *m = arg;
    for (int i = 0; i < PER; i++) {
        dt__metrics_activity_started(m, "hello");
        dt__metrics_activity_done(m, "hello", i % 3000, false);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    dt__metrics *m = registry();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, hammer, m), 0);
    }
    for (int i = 0; i < 5; i++) { /* renders while the counters move */
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(dt__metrics_render(m, &text, &len), DT_OK);
        prom_doc d;
        assert_true(prom_parse(text, len, &d));
        prom_free(&d);
        dt_free(text);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    dt__mname *e = dt__metrics_name(m, DT__MKIND_ACT, "hello");
    assert_int_equal(atomic_load(&e->completed), THREADS * PER);
    assert_int_equal(atomic_load(&e->started), THREADS * PER);
    uint64_t n = 0;
    for (size_t i = 0; i <= e->duration.n_bounds; i++) {
        n += atomic_load(&e->duration.counts[i]);
    }
    assert_int_equal(n, THREADS * PER);
    dt__metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_reader_refuses),
        cmocka_unit_test_setup_teardown(test_names, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(test_render, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(test_threads, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
