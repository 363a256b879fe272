/* Tests of the common helpers: status texts, the allocator seam, time stamps and log lines. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common_int.h"
#include "protocol/protocol_int.h"
#include "durabletask/status.h"
#include "durabletask/worker.h"
#include "test_support.h"

static void status_texts_cover_every_code(void **state)
{
    (void)state;
    assert_string_equal(dt_status_str(DT_OK), "success");
    assert_string_equal(dt_status_name(DT_ETOOLARGE), "ETOOLARGE");
    assert_string_equal(dt_status_name((dt_status)999), "UNKNOWN");
    for (int s = 0; s <= DT_EAUTH; s++) {
        assert_string_not_equal(dt_status_name((dt_status)s), "UNKNOWN");
    }
}

static void allocator_counts_and_fails_on_demand(void **state)
{
    (void)state;
    dt_test_alloc_install();
    long base = dt_test_alloc_outstanding();
    char *s = dt_strdup("hello");
    assert_non_null(s);
    assert_string_equal(s, "hello");
    assert_int_equal(dt_test_alloc_outstanding(), base + 1);
    dt_free(s);
    assert_int_equal(dt_test_alloc_outstanding(), base);

    dt_test_alloc_fail_after(1);
    void *a = dt_alloc(8);
    void *b = dt_alloc(8);
    assert_non_null(a);
    assert_null(b);
    dt_test_alloc_fail_after(-1);
    dt_free(a);
    assert_null(dt_calloc(SIZE_MAX / 2, 4));
    dt_set_allocator(NULL);
}

/* IDs derived from these hashes are persisted (GUIDs, execution IDs, ingress instance IDs,
 * partitions): their values must never change. FNV-1a of "a" is the published test vector. */
static void hashes_are_pinned(void **state)
{
    (void)state;
    assert_true(dt__fnv1a64(DT__FNV64_OFFSET, "a") == 0xaf63dc4c8601ec8cULL);
    assert_true(dt__mix64(1) == 0x910a2dec89025cc1ULL);
    char u[37];
    dt__derived_uuid("hub", "id:x", u);
    assert_string_equal(u, "40ec8242-2ddb-5841-824c-1347925609da");
    dt__format_uuid(0, 0, 4, u);
    assert_string_equal(u, "00000000-0000-4000-8000-000000000000");
    assert_int_equal(dt__partition_of("order-42", 4), 0);
}

static void iso8601_is_utc_with_milliseconds(void **state)
{
    (void)state;
    char b[DT__ISO8601_BUF];
    assert_string_equal(dt__iso8601_ms(1796653800123, b, sizeof(b)), "2026-12-07T14:30:00.123Z");
    assert_string_equal(dt__iso8601_ms(0, b, sizeof(b)), "1970-01-01T00:00:00.000Z");
    assert_string_equal(dt__iso8601_ms(-1, b, sizeof(b)), "1969-12-31T23:59:59.999Z");
}

/* Runs dt_worker_log_stderr with stderr sent to a file; returns what it wrote. */
static void capture_log(const char *instance_id, const char *ctx, char *out, size_t len)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0 && dup2(fileno(f), STDERR_FILENO) >= 0);
    dt_worker_log_stderr(DT_LOG_WARN, instance_id, "lease lost", (void *)ctx);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(f);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* Worker log lines start with an ISO-8601 UTC time stamp, so lines of a fleet line up. */
static void worker_log_lines_carry_a_utc_timestamp(void **state)
{
    (void)state;
    char line[256];
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "dt-samples-worker: warn: order-7: lease lost\n$",
                             REG_EXTENDED),
                     0);
    capture_log("order-7", "dt-samples-worker", line, sizeof(line));
    if (regexec(&re, line, 0, NULL, 0) != 0) {
        fail_msg("log line '%s' does not match", line);
    }
    regfree(&re);
    capture_log(NULL, NULL, line, sizeof(line));
    assert_non_null(strstr(line, "Z durabletask: warn: lease lost\n"));
}

/* The check the error-text tests use: a prefix written twice is found, a single one is not. */
static void repeated_prefixes_are_found(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(dt_test_repeated_prefix("partition 0: partition 0: busy", b, sizeof(b)),
                        "partition 0: ");
    assert_string_equal(dt_test_repeated_prefix("store: open x: open x: gone", b, sizeof(b)),
                        "open x: ");
    assert_null(dt_test_repeated_prefix("partition 0: no instance 'a: b'", b, sizeof(b)));
    assert_null(dt_test_repeated_prefix("a: b: c", b, sizeof(b)));
    assert_null(dt_test_repeated_prefix("", b, sizeof(b)));
}

/* Timestamps from outside may hold any seconds: far ones saturate instead of overflowing
 * (found by the fuzz targets: UBSan's signed overflow on a work item's or a query filter's
 * timestamp). */
static void timestamps_saturate(void **state)
{
    (void)state;
    Dtpb__Timestamp ts = DTPB__TIMESTAMP__INIT;
    ts.seconds = 1700000000;
    ts.nanos = 999999999;
    assert_true(dt__ts_to_ms(&ts) == 1700000000999LL);
    ts.seconds = -2;
    ts.nanos = 500000000;
    assert_true(dt__ts_to_ms(&ts) == -1500);
    const int64_t last = (INT64_MAX - 2148) / 1000; /* the largest seconds converted exactly */
    ts.seconds = last;
    ts.nanos = INT32_MAX;
    assert_true(dt__ts_to_ms(&ts) == last * 1000 + 2147);
    ts.seconds = last + 1;
    assert_true(dt__ts_to_ms(&ts) == INT64_MAX);
    ts.seconds = 432771129369085672LL;
    assert_true(dt__ts_to_ms(&ts) == INT64_MAX);
    ts.seconds = -last;
    ts.nanos = INT32_MIN;
    assert_true(dt__ts_to_ms(&ts) == -last * 1000 - 2147);
    ts.seconds = INT64_MIN;
    assert_true(dt__ts_to_ms(&ts) == INT64_MIN);
    assert_true(dt__ts_to_ms(NULL) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_texts_cover_every_code),
        cmocka_unit_test(allocator_counts_and_fails_on_demand),
        cmocka_unit_test(hashes_are_pinned),
        cmocka_unit_test(iso8601_is_utc_with_milliseconds),
        cmocka_unit_test(worker_log_lines_carry_a_utc_timestamp),
        cmocka_unit_test(repeated_prefixes_are_found),
        cmocka_unit_test(timestamps_saturate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
