/*
 * Tests of the region allocator (runtime/common/arena.c): alignment, big requests, footprint,
 * cleanup hooks, protobuf-c unpacking into an arena, and allocation-failure injection. Every test
 * runs over the counting allocator of tests/support and checks that nothing is left behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena_int.h"
#include "dt_history.pb-c.h"
#include "durabletask/alloc.h"
#include "test_support.h"

#define ALIGN _Alignof(max_align_t)

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

static void many_odd_sizes_are_aligned_and_disjoint(void **state)
{
    (void)state;
    enum { N = 3000 };
    dt__arena *a = dt__arena_create(0);
    assert_non_null(a);
    static unsigned char *ptrs[N];
    static size_t sizes[N];
    for (size_t i = 0; i < N; i++) {
        sizes[i] = (i * 37) % 301 + (i % 3 == 0 ? 0 : 1); /* includes 0 and odd sizes */
        ptrs[i] = dt__arena_alloc(a, sizes[i]);
        assert_non_null(ptrs[i]);
        assert_int_equal((uintptr_t)ptrs[i] % ALIGN, 0);
        memset(ptrs[i], (int)(i & 0xFF), sizes[i]);
        if (sizes[i] >= sizeof(long double)) {
            *(long double *)(void *)ptrs[i] = (long double)i; /* UBSan checks the alignment */
        }
    }
    /* Distinct pointers, and no allocation overwrote another. */
    for (size_t i = 1; i < N; i++) {
        assert_ptr_not_equal(ptrs[i], ptrs[i - 1]);
    }
    for (size_t i = 0; i < N; i++) {
        size_t from = sizes[i] >= sizeof(long double) ? sizeof(long double) : 0;
        for (size_t k = from; k < sizes[i]; k++) {
            assert_int_equal(ptrs[i][k], i & 0xFF);
        }
    }
    dt__arena_destroy(a);
}

static void big_requests_get_their_own_block(void **state)
{
    (void)state;
    dt__arena *a = dt__arena_create(4096);
    assert_non_null(a);
    unsigned char *small1 = dt__arena_alloc(a, 24);
    size_t before = dt__arena_footprint(a);
    assert_int_equal(before, 4096);

    size_t big = (size_t)1 << 20;
    unsigned char *b = dt__arena_alloc(a, big);
    assert_non_null(b);
    assert_int_equal((uintptr_t)b % ALIGN, 0);
    memset(b, 0x5A, big);
    size_t after = dt__arena_footprint(a);
    /* Exactly the request plus a small header: no regular block was opened for it. */
    assert_true(after >= before + big && after <= before + big + 64);

    /* The current block is still current: the next small request fits in it. */
    unsigned char *small2 = dt__arena_alloc(a, 24);
    assert_ptr_equal(small2, small1 + 32);
    assert_int_equal(dt__arena_footprint(a), after);

    /* Requests around the big threshold (a quarter of a block) leave the big block alone. */
    for (int i = 0; i < 10; i++) {
        unsigned char *m = dt__arena_alloc(a, 1100);
        assert_non_null(m);
        memset(m, i, 1100);
    }
    assert_int_equal(b[0], 0x5A);
    assert_int_equal(b[big - 1], 0x5A);
    dt__arena_destroy(a);
}

static void overflowing_sizes_give_null(void **state)
{
    (void)state;
    dt__arena *a = dt__arena_create(0);
    assert_non_null(a);
    assert_null(dt__arena_alloc(a, SIZE_MAX));
    assert_null(dt__arena_alloc(a, SIZE_MAX - 8));
    assert_null(dt__arena_calloc(a, SIZE_MAX / 2, 3));
    assert_null(dt__arena_memdup(a, "x", SIZE_MAX));
    /* The arena is still usable afterwards. */
    assert_non_null(dt__arena_alloc(a, 10));
    dt__arena_destroy(a);
    dt__arena_destroy(NULL);
}

/* Under ASan the bytes past an allocation (its rounding slack and the rest of the block) are
 * poisoned, so overruns are reported as for malloc. */
static void asan_sees_past_the_end(void **state)
{
    (void)state;
#ifdef TEST_ASAN
    dt__arena *a = dt__arena_create(0);
    assert_non_null(a);
    unsigned char *p = dt__arena_alloc(a, 5);
    assert_false(__asan_address_is_poisoned(p + 4));
    assert_true(__asan_address_is_poisoned(p + 5));
    assert_true(__asan_address_is_poisoned(p + 100));
    unsigned char *q = dt__arena_alloc(a, 100);
    assert_false(__asan_address_is_poisoned(q + 99));
    assert_true(__asan_address_is_poisoned(q + 100));
    unsigned char *big = dt__arena_alloc(a, 50000);
    assert_true(__asan_address_is_poisoned(big + 50000));
    dt__arena_destroy(a);
#else
    skip();
#endif
}

static void calloc_memdup_strdup(void **state)
{
    (void)state;
    dt__arena *a = dt__arena_create(512); /* small blocks so the calls cross blocks */
    assert_non_null(a);
    for (int round = 0; round < 50; round++) {
        unsigned char *z = dt__arena_calloc(a, 13, 7);
        assert_non_null(z);
        for (size_t i = 0; i < 13 * 7; i++) {
            assert_int_equal(z[i], 0);
        }
        const char bin[] = {'a', '\0', 'b'};
        char *m = dt__arena_memdup(a, bin, sizeof(bin));
        assert_non_null(m);
        assert_memory_equal(m, bin, sizeof(bin));
        assert_int_equal(m[3], '\0');
        char *s = dt__arena_strdup(a, "orchestration");
        assert_string_equal(s, "orchestration");
    }
    char *e = dt__arena_memdup(a, NULL, 0);
    assert_non_null(e);
    assert_string_equal(e, "");
    assert_null(dt__arena_strdup(a, NULL));
    dt__arena_destroy(a);
}

/* A dt_allocator that tracks the live bytes it handed out, to check dt__arena_footprint. */
static size_t live_bytes;

static void *sum_alloc(size_t size, void *ctx)
{
    (void)ctx;
    max_align_t *h = malloc(sizeof(*h) + size);
    if (h == NULL) {
        return NULL;
    }
    *(size_t *)(void *)h = size;
    live_bytes += size;
    return h + 1;
}

static void *sum_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ptr;
    (void)size;
    (void)ctx;
    fail_msg("the arena never reallocates");
    return NULL;
}

static void sum_free(void *ptr, void *ctx)
{
    (void)ctx;
    max_align_t *h = (max_align_t *)ptr - 1;
    live_bytes -= *(size_t *)(void *)h;
    free(h);
}

static void footprint_is_what_the_heap_gave(void **state)
{
    (void)state;
    static const dt_allocator summing = {sum_alloc, sum_realloc, sum_free, NULL};
    dt_set_allocator(&summing);
    live_bytes = 0;
    dt__arena *a = dt__arena_create(1024);
    assert_non_null(a);
    assert_int_equal(dt__arena_footprint(a), live_bytes);
    for (size_t i = 0; i < 500; i++) {
        assert_non_null(dt__arena_alloc(a, (i * 131) % 700));
        assert_int_equal(dt__arena_footprint(a), live_bytes);
    }
    assert_non_null(dt__arena_alloc(a, 100000));
    assert_int_equal(dt__arena_footprint(a), live_bytes);
    dt__arena_destroy(a);
    assert_int_equal(live_bytes, 0);
    dt_test_alloc_install();
}

typedef struct {
    int order[16];
    int n;
} hook_log;

typedef struct {
    hook_log *log;
    int id;
    const char *arena_text; /* arena memory, still readable while hooks run */
} hook_arg;

static void record_hook(void *arg)
{
    hook_arg *h = arg;
    assert_string_equal(h->arena_text, "alive");
    h->log->order[h->log->n++] = h->id;
}

static void hooks_run_last_first(void **state)
{
    (void)state;
    hook_log log = {{0}, 0};
    dt__arena *a = dt__arena_create(512);
    assert_non_null(a);
    for (int i = 0; i < 8; i++) {
        hook_arg *h = dt__arena_alloc(a, sizeof(*h));
        assert_non_null(h);
        *h = (hook_arg){&log, i, dt__arena_strdup(a, "alive")};
        assert_int_equal(dt__arena_on_destroy(a, record_hook, h), DT_OK);
        /* Interleave other allocations so that hooks live in different blocks. */
        assert_non_null(dt__arena_alloc(a, 100));
    }
    assert_int_equal(dt__arena_on_destroy(a, NULL, NULL), DT_EINVAL);
    assert_int_equal(log.n, 0);
    dt__arena_destroy(a);
    assert_int_equal(log.n, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(log.order[i], 7 - i);
    }
}

/* Packs an ExecutionStarted event with many tags: dozens of protobuf-c allocations on unpack. */
static uint8_t *pack_started_event(size_t *len)
{
    enum { NTAGS = 64 };
    Dtpb__HistoryEvent ev = DTPB__HISTORY_EVENT__INIT;
    Dtpb__Timestamp ts = DTPB__TIMESTAMP__INIT;
    Dtpb__ExecutionStartedEvent started = DTPB__EXECUTION_STARTED_EVENT__INIT;
    Dtpb__Payload input = DTPB__PAYLOAD__INIT;
    Dtpb__ExecutionStartedEvent__TagsEntry entries[NTAGS];
    Dtpb__ExecutionStartedEvent__TagsEntry *tags[NTAGS];
    char keys[NTAGS][16];
    char values[NTAGS][24];
    for (int i = 0; i < NTAGS; i++) {
        dtpb__execution_started_event__tags_entry__init(&entries[i]);
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        snprintf(values[i], sizeof(values[i]), "value-%d", i * i);
        entries[i].key = keys[i];
        entries[i].value = values[i];
        tags[i] = &entries[i];
    }
    ts.seconds = 1700000000;
    ts.nanos = 5;
    input.value.data = (uint8_t *)"{\"n\":42}";
    input.value.len = 8;
    started.name = "Greeter";
    started.input = &input;
    started.n_tags = NTAGS;
    started.tags = tags;
    ev.event_id = 7;
    ev.timestamp = &ts;
    ev.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    ev.execution_started = &started;
    *len = dtpb__history_event__get_packed_size(&ev);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    assert_int_equal(dtpb__history_event__pack(&ev, buf), *len);
    return buf;
}

static void check_started_event(const Dtpb__HistoryEvent *ev)
{
    assert_int_equal(ev->event_id, 7);
    assert_int_equal(ev->timestamp->seconds, 1700000000);
    assert_int_equal(ev->event_type_case, DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED);
    const Dtpb__ExecutionStartedEvent *s = ev->execution_started;
    assert_string_equal(s->name, "Greeter");
    assert_int_equal(s->input->value.len, 8);
    assert_memory_equal(s->input->value.data, "{\"n\":42}", 8);
    assert_int_equal(s->n_tags, 64);
    assert_string_equal(s->tags[63]->key, "k63");
    assert_string_equal(s->tags[63]->value, "value-3969");
}

static void pb_unpack_lives_in_the_arena(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = pack_started_event(&len);
    dt__arena *a = dt__arena_create(1024);
    assert_non_null(a);
    ProtobufCAllocator *pb = dt__arena_pb_allocator(a);
    assert_non_null(pb);
    assert_ptr_equal(pb, dt__arena_pb_allocator(a));
    size_t before = dt__arena_footprint(a);

    Dtpb__HistoryEvent *ev = dtpb__history_event__unpack(pb, len, buf);
    assert_non_null(ev);
    check_started_event(ev);
    assert_true(dt__arena_footprint(a) > before); /* the decoded tree came from the arena */
    /* Freeing through the arena allocator is a no-op: the tree is still readable (ASan would
     * report a use after free otherwise). */
    dtpb__history_event__free_unpacked(ev, pb);
    check_started_event(ev);

    /* A malformed buffer fails cleanly; its partial allocations stay in the arena. */
    uint8_t bad[] = {0x1a, 0x7f, 0x0a, 0x03, 'a', 'b'};
    assert_null(dtpb__history_event__unpack(pb, sizeof(bad), bad));
    assert_null(dtpb__history_event__unpack(pb, len - 3, buf));
    dt__arena_destroy(a);
    free(buf);
}

static void pb_unpack_survives_allocation_failure(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = pack_started_event(&len);
    int failures = 0;
    for (long n = 0;; n++) {
        dt__arena *a = dt__arena_create(512);
        assert_non_null(a);
        dt_test_alloc_fail_after(n);
        Dtpb__HistoryEvent *ev = dtpb__history_event__unpack(dt__arena_pb_allocator(a), len, buf);
        dt_test_alloc_fail_after(-1);
        if (ev != NULL) {
            check_started_event(ev);
        }
        dt__arena_destroy(a);
        assert_int_equal(dt_test_alloc_outstanding(), dt_test_leakcheck_base());
        if (ev != NULL) {
            break;
        }
        failures++;
    }
    assert_true(failures > 3); /* the unpack needed several blocks, each one failed once */
    free(buf);
}

static int hooks_run;

static void count_hook(void *arg)
{
    (void)arg;
    hooks_run++;
}

/* Creates an arena and uses every entry point; stops at the first failure. Returns the number of
 * hooks registered, or -1 when the arena itself could not be created. */
static int exercise(void)
{
    dt__arena *a = dt__arena_create(512);
    if (a == NULL) {
        return -1;
    }
    int hooks = 0;
    for (int i = 0; i < 40; i++) {
        if (dt__arena_alloc(a, (size_t)(i * 29 % 200)) == NULL ||
            dt__arena_calloc(a, 3, (size_t)i) == NULL ||
            dt__arena_strdup(a, "a string copied into the arena") == NULL) {
            goto out;
        }
        if (i % 10 == 0 && dt__arena_alloc(a, 5000) == NULL) {
            goto out;
        }
        if (dt__arena_on_destroy(a, count_hook, NULL) != DT_OK) {
            goto out;
        }
        hooks++;
    }
out:
    dt__arena_destroy(a);
    return hooks;
}

static void every_allocation_failure_is_clean(void **state)
{
    (void)state;
    for (long n = 0;; n++) {
        hooks_run = 0;
        dt_test_alloc_fail_after(n);
        int hooks = exercise();
        dt_test_alloc_fail_after(-1);
        assert_int_equal(dt_test_alloc_outstanding(), dt_test_leakcheck_base());
        assert_int_equal(hooks_run, hooks < 0 ? 0 : hooks); /* failed registrations never run */
        if (hooks == 40) {
            assert_true(n > 5);
            break;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(many_odd_sizes_are_aligned_and_disjoint,
                                        dt_test_leakcheck_setup, dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(big_requests_get_their_own_block, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(overflowing_sizes_give_null, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(asan_sees_past_the_end, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(calloc_memdup_strdup, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(footprint_is_what_the_heap_gave, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(hooks_run_last_first, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(pb_unpack_lives_in_the_arena, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(pb_unpack_survives_allocation_failure,
                                        dt_test_leakcheck_setup, dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(every_allocation_failure_is_clean, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_set_allocator(NULL);
    return rc;
}
