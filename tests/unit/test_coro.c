/*
 * Tests of the stackful coroutines (runtime/engine/coro.c): values across many switches, ten
 * thousand live coroutines resumed in interleaved order, destruction while suspended, deep
 * recursion and big frames on the coroutine stack, resumption from another thread, the guard
 * page, state errors, the floating-point control state and entry alignment a switch must keep,
 * and stacks cycled through the pool. Meant to pass unchanged under ASan+UBSan and valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena_int.h"
#include "durabletask/alloc.h"
#include "engine/coro_int.h"
#include "test_support.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

/* ---- ping-pong ---- */

typedef struct {
    dt__coro *co;
    long in;  /* written by the resumer */
    long out; /* written by the coroutine */
    int rounds;
} pingpong;

static void pingpong_body(void *arg)
{
    pingpong *p = arg;
    long total = 0; /* lives on the coroutine stack across every yield */
    for (int i = 0; i < p->rounds; i++) {
        total += p->in;
        p->out = p->in * 2 + total;
        dt__coro_yield(p->co);
    }
    p->out = -total;
}

static void values_cross_many_yields(void **state)
{
    (void)state;
    pingpong p = {NULL, 0, 0, 5000};
    assert_int_equal(dt__coro_create(pingpong_body, &p, 0, &p.co), DT_OK);
    long total = 0;
    for (int i = 0; i < p.rounds; i++) {
        p.in = i * 3 + 1;
        total += p.in;
        assert_int_equal(dt__coro_resume(p.co), DT_OK);
        assert_false(dt__coro_finished(p.co));
        assert_int_equal(p.out, p.in * 2 + total);
    }
    assert_int_equal(dt__coro_resume(p.co), DT_OK);
    assert_true(dt__coro_finished(p.co));
    assert_int_equal(p.out, -total);
    assert_int_equal(dt__coro_resume(p.co), DT_ESTATE);
    dt__coro_destroy(p.co);
}

/* ---- ten thousand at once ---- */

#ifdef DT_TSAN
/* Every coroutine is a TSan fiber, and TSan counts fibers against its limit of 8,128 threads;
 * each switch costs TSan far more, too (the scale is ASan's job, the switches TSan's). */
enum { MANY = 1000, MANY_ROUNDS = 5 };
#else
enum { MANY = 10000, MANY_ROUNDS = 5 };
#endif

typedef struct {
    dt__coro *co;
    uint64_t id;
    int steps;
    uint64_t result;
} counter;

static uint64_t mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x100000001b3u;
}

static void counter_body(void *arg)
{
    counter *c = arg;
    uint64_t h = c->id; /* on the coroutine stack: must survive 9,999 other stacks' activity */
    for (int i = 0; i < MANY_ROUNDS; i++) {
        c->steps++;
        h = mix(h, (uint64_t)i);
        dt__coro_yield(c->co);
    }
    c->result = h;
}

static uint64_t expected_result(uint64_t id)
{
    uint64_t h = id;
    for (int i = 0; i < MANY_ROUNDS; i++) {
        h = mix(h, (uint64_t)i);
    }
    return h;
}

static void ten_thousand_interleaved(void **state)
{
    (void)state;
    counter *cs = calloc(MANY, sizeof(*cs));
    assert_non_null(cs);
    for (size_t i = 0; i < MANY; i++) {
        cs[i].id = i;
        assert_int_equal(dt__coro_create(counter_body, &cs[i], 16 * 1024, &cs[i].co), DT_OK);
    }
    /* Each round visits all coroutines in a different order (7919 is prime, coprime to MANY). */
    for (int r = 0; r < MANY_ROUNDS; r++) {
        for (size_t k = 0; k < MANY; k++) {
            counter *c = &cs[(k * 7919 + (size_t)r * 101) % MANY];
            assert_int_equal(c->steps, r);
            assert_int_equal(dt__coro_resume(c->co), DT_OK);
            assert_int_equal(c->steps, r + 1);
        }
    }
    /* Odd ones run to completion; even ones are destroyed while suspended. */
    for (size_t i = 0; i < MANY; i++) {
        if (i % 2 == 1) {
            assert_int_equal(dt__coro_resume(cs[i].co), DT_OK);
            assert_true(dt__coro_finished(cs[i].co));
            assert_int_equal(cs[i].result, expected_result(i));
        } else {
            assert_false(dt__coro_finished(cs[i].co));
        }
        dt__coro_destroy(cs[i].co);
    }
    free(cs);
}

/* ---- destroy while suspended ---- */

/* Coroutine bodies record what they saw and the test asserts afterwards: a failing cmocka assert
 * longjmps, which must not happen across stacks. */
typedef struct {
    dt__coro *co;
    dt__arena *arena;
    int setup_ok;
    int after_yield; /* the body must never get this far */
    int hook_ran;
} abandoned;

static void mark_hook(void *arg)
{
    ((abandoned *)arg)->hook_ran++;
}

static void abandoned_body(void *arg)
{
    abandoned *s = arg;
    /* What an orchestrator does: arena memory and a cleanup hook, then suspend. */
    char *text = dt__arena_strdup(s->arena, "waiting for an activity");
    s->setup_ok = text != NULL && dt__arena_on_destroy(s->arena, mark_hook, s) == DT_OK;
    char local[256];
    memset(local, 'x', sizeof(local));
    dt__coro_yield(s->co);
    s->after_yield = local[0] + (int)strlen(text);
}

static void destroy_while_suspended(void **state)
{
    (void)state;
    abandoned s = {NULL, dt__arena_create(0), 0, 0, 0};
    assert_non_null(s.arena);
    assert_int_equal(dt__coro_create(abandoned_body, &s, 64 * 1024, &s.co), DT_OK);
    assert_int_equal(dt__coro_resume(s.co), DT_OK);
    assert_true(s.setup_ok);
    assert_false(dt__coro_finished(s.co));
    dt__coro_destroy(s.co);
    assert_int_equal(s.after_yield, 0);
    assert_int_equal(s.hook_ran, 0);
    dt__arena_destroy(s.arena);
    assert_int_equal(s.hook_ran, 1);
}

static void never_run(void *arg)
{
    *(int *)arg = 1;
}

static void destroy_before_first_resume(void **state)
{
    (void)state;
    int ran = 0;
    dt__coro *co = NULL;
    assert_int_equal(dt__coro_create(never_run, &ran, 0, &co), DT_OK);
    assert_false(dt__coro_finished(co));
    dt__coro_destroy(co);
    dt__coro_destroy(NULL);
    assert_int_equal(ran, 0);
}

/* ---- deep recursion and big frames ---- */

typedef struct {
    dt__coro *co;
    unsigned depth;
    unsigned long sum;
} deep;

static unsigned long recurse(dt__coro *co, unsigned depth)
{
    volatile unsigned char pad[48];
    pad[0] = (unsigned char)depth;
    pad[47] = (unsigned char)(depth >> 8);
    if (depth == 0) {
        dt__coro_yield(co); /* suspend with the whole chain of frames live */
        return 1;
    }
    unsigned long below = recurse(co, depth - 1);
    return below + pad[0] + ((unsigned long)pad[47] << 8);
}

static void deep_body(void *arg)
{
    deep *d = arg;
    d->sum = recurse(d->co, d->depth);
}

static void deep_recursion_with_yield_at_the_bottom(void **state)
{
    (void)state;
    deep d = {NULL, 2000, 0};
    assert_int_equal(dt__coro_create(deep_body, &d, 1024 * 1024, &d.co), DT_OK);
    assert_int_equal(dt__coro_resume(d.co), DT_OK);
    assert_false(dt__coro_finished(d.co));
    assert_int_equal(dt__coro_resume(d.co), DT_OK);
    assert_true(dt__coro_finished(d.co));
    assert_int_equal(d.sum, 1 + (unsigned long)d.depth * (d.depth + 1) / 2);
    dt__coro_destroy(d.co);
}

typedef struct {
    dt__coro *co;
    unsigned long checksum;
} bigframe;

static void bigframe_body(void *arg)
{
    bigframe *b = arg;
    unsigned char buf[32 * 1024];
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (unsigned char)(i * 7);
    }
    dt__coro_yield(b->co);
    unsigned long sum = 0;
    for (size_t i = 0; i < sizeof(buf); i++) {
        sum += buf[i];
    }
    b->checksum = sum;
}

static void big_local_buffer(void **state)
{
    (void)state;
    bigframe b = {NULL, 0};
    assert_int_equal(dt__coro_create(bigframe_body, &b, 64 * 1024, &b.co), DT_OK);
    assert_int_equal(dt__coro_resume(b.co), DT_OK);
    /* Reuse the resumer's stack heavily between the two halves. */
    volatile unsigned char scratch[32 * 1024];
    memset((void *)scratch, 0xEE, sizeof(scratch));
    assert_int_equal(dt__coro_resume(b.co), DT_OK);
    assert_true(dt__coro_finished(b.co));
    unsigned long expect = 0;
    for (size_t i = 0; i < 32 * 1024; i++) {
        expect += (unsigned char)(i * 7);
    }
    assert_int_equal(b.checksum, expect);
    dt__coro_destroy(b.co);
}

/* ---- resumed from several threads ---- */

typedef struct {
    dt__coro *co;
    int steps;
    char trace[8];
} hopper;

static void hopper_body(void *arg)
{
    hopper *h = arg;
    char trace[8] = ""; /* on the coroutine stack while it hops between threads */
    for (int i = 0; i < 6; i++) {
        trace[i] = (char)('a' + i);
        h->steps++;
        dt__coro_yield(h->co);
    }
    memcpy(h->trace, trace, sizeof(trace));
}

static void *resume_on_thread(void *arg)
{
    hopper *h = arg;
    return dt__coro_resume(h->co) == DT_OK ? arg : NULL;
}

static void resumed_from_other_threads(void **state)
{
    (void)state;
    hopper h = {NULL, 0, ""};
    assert_int_equal(dt__coro_create(hopper_body, &h, 0, &h.co), DT_OK);
    for (int i = 0; i < 7; i++) {
        if (i % 2 == 0) {
            assert_int_equal(dt__coro_resume(h.co), DT_OK);
        } else {
            pthread_t t;
            void *ret = NULL;
            assert_int_equal(pthread_create(&t, NULL, resume_on_thread, &h), 0);
            assert_int_equal(pthread_join(t, &ret), 0);
            assert_ptr_equal(ret, &h);
        }
    }
    assert_int_equal(h.steps, 6);
    assert_true(dt__coro_finished(h.co));
    assert_string_equal(h.trace, "abcdef");
    dt__coro_destroy(h.co);
}

/* ---- the guard page ---- */

static volatile unsigned long recursion_limit = ~0ul; /* volatile: no infinite-recursion warning */

static unsigned long overflow(unsigned long n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    if (n >= recursion_limit) {
        return 0;
    }
    return overflow(n + 1) + (unsigned long)pad[0];
}

static void overflow_body(void *arg)
{
    *(unsigned long *)arg = overflow(0);
}

static void exit_on_segv(int sig)
{
    (void)sig;
    _exit(42);
}

/* In a child process: overflow a 16 KiB coroutine stack; the guard page must stop it with SIGSEGV
 * rather than let it write into whatever lies below. */
static void run_overflow_child(void)
{
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = exit_on_segv;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGSEGV, &sa, NULL) != 0 ||
        sigaction(SIGBUS, &sa, NULL) != 0) {
        _exit(2);
    }
    /* Plain malloc and a static pointer: the coroutine is still reachable at _exit, so valgrind
     * does not count the child's deliberate leak as an error (which would change the exit code). */
    dt_set_allocator(NULL);
    static unsigned long result;
    static dt__coro *co;
    if (dt__coro_create(overflow_body, &result, 16 * 1024, &co) != DT_OK) {
        _exit(3);
    }
    dt__coro_resume(co);
    _exit(0); /* not reached: the overflow never returns */
}

static void stack_overflow_hits_the_guard_page(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        run_overflow_child();
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
#ifdef TEST_ASAN
    /* Our handler exits 42; ASan, when told to keep SIGSEGV for itself, reports the stack overflow
     * and exits 1. Either way the overflow was caught, not silently absorbed. */
    assert_true(WEXITSTATUS(status) == 42 || WEXITSTATUS(status) == 1);
#else
    assert_int_equal(WEXITSTATUS(status), 42);
#endif
}

/* ---- errors ---- */

static void noop(void *arg)
{
    (void)arg;
}

static void state_and_argument_errors(void **state)
{
    (void)state;
    dt__coro *co = NULL;
    assert_int_equal(dt__coro_create(NULL, NULL, 0, &co), DT_EINVAL);
    assert_int_equal(dt__coro_create(noop, NULL, 0, NULL), DT_EINVAL);
    assert_int_equal(dt__coro_resume(NULL), DT_EINVAL);
    assert_false(dt__coro_finished(NULL));

    assert_int_equal(dt__coro_create(noop, NULL, 1, &co), DT_OK); /* raised to the minimum */
    assert_int_equal(dt__coro_resume(co), DT_OK);
    assert_true(dt__coro_finished(co));
    assert_int_equal(dt__coro_resume(co), DT_ESTATE);
    assert_int_equal(dt__coro_resume(co), DT_ESTATE);
    dt__coro_destroy(co);
}

static void create_fails_cleanly_without_memory(void **state)
{
    (void)state;
    dt__coro *co = (dt__coro *)&co; /* must stay untouched on failure */
    dt_test_alloc_fail_after(0);
    assert_int_equal(dt__coro_create(noop, NULL, 0, &co), DT_ENOMEM);
    dt_test_alloc_fail_after(-1);
    assert_ptr_equal(co, (dt__coro *)&co);
    /* A stack no address space can hold. */
    assert_int_equal(dt__coro_create(noop, NULL, SIZE_MAX / 2, &co), DT_ENOMEM);
    assert_int_equal(dt__coro_create(noop, NULL, SIZE_MAX, &co), DT_ENOMEM);
    assert_ptr_equal(co, (dt__coro *)&co);
}

/* ---- what a switch keeps ---- */

typedef struct {
    dt__coro *co;
    int entry_aligned;
    int mode_before_yield;
    int mode_after_yield;
} fpenv_state;

/* The ABI's alignment at a call: the frame address (rsp after `push rbp` on x86-64; sp on
 * aarch64) is 16-byte aligned in any function entered with a correctly aligned stack. */
static __attribute__((noinline)) int frame_aligned(void)
{
    return ((uintptr_t)__builtin_frame_address(0) & 15) == 0;
}

static void fpenv_body(void *arg)
{
    fpenv_state *s = arg;
    s->entry_aligned = frame_aligned();
    s->mode_before_yield = fegetround(); /* the creating thread's */
    fesetround(FE_UPWARD);
    dt__coro_yield(s->co);
    s->mode_after_yield = fegetround(); /* its own, whatever the resumer set meanwhile */
    fesetround(FE_TONEAREST);
}

/* The floating-point control state (the rounding mode lives in both MXCSR and the x87 control
 * word on x86-64) is callee-saved: each side of a switch keeps its own. And the first switch into
 * a fresh coroutine enters it with the ABI's stack alignment. */
static void switch_keeps_fp_control_and_alignment(void **state)
{
    (void)state;
    fpenv_state s = {0};
    assert_int_equal(fegetround(), FE_TONEAREST);
    assert_int_equal(dt__coro_create(fpenv_body, &s, 0, &s.co), DT_OK);
    assert_int_equal(dt__coro_resume(s.co), DT_OK);
    assert_int_equal(fegetround(), FE_TONEAREST); /* the coroutine's FE_UPWARD stayed there */
    fesetround(FE_DOWNWARD);
    assert_int_equal(dt__coro_resume(s.co), DT_OK);
    int mine = fegetround();
    fesetround(FE_TONEAREST);
    assert_true(dt__coro_finished(s.co));
    dt__coro_destroy(s.co);
    assert_int_equal(mine, FE_DOWNWARD);
    assert_int_equal(s.entry_aligned, 1);
    assert_int_equal(s.mode_before_yield, FE_TONEAREST);
    assert_int_equal(s.mode_after_yield, FE_UPWARD);
}

/* ---- the stack pool ---- */

enum { POOL_CYCLES = 600 };

/* Create, run and destroy POOL_CYCLES coroutines of three stack sizes, so that destroyed stacks
 * are parked and handed to later creates. Every other one is destroyed while suspended deep in
 * a recursion: its abandoned frames (ASan redzones among them) are left on a stack the next
 * coroutine of that size gets, which must find it as clean as a new one. Returns the number of
 * wrong results. */
static int pool_cycles(unsigned seed)
{
    static const size_t sizes[] = {32 * 1024, 64 * 1024, 0};
    int wrong = 0;
    for (unsigned i = 0; i < POOL_CYCLES; i++) {
        deep d = {NULL, 10 + (i * 7 + seed) % 40, 0};
        if (dt__coro_create(deep_body, &d, sizes[(i + seed) % 3], &d.co) != DT_OK) {
            return wrong + 1;
        }
        wrong += dt__coro_resume(d.co) != DT_OK || dt__coro_finished(d.co);
        if (i % 2 == 0) {
            wrong += dt__coro_resume(d.co) != DT_OK || !dt__coro_finished(d.co);
            wrong += d.sum != 1 + (unsigned long)d.depth * (d.depth + 1) / 2;
        } else {
            wrong += d.sum != 0; /* abandoned at the bottom: never returned */
        }
        dt__coro_destroy(d.co);
    }
    return wrong;
}

static void many_cycles_through_the_pool(void **state)
{
    (void)state;
    assert_int_equal(pool_cycles(0), 0);
}

static void *pool_cycles_thread(void *arg)
{
    *(int *)arg = pool_cycles(1);
    return NULL;
}

/* Two threads create and destroy at once: the pool is shared, so a stack parked by one thread
 * is taken by the other (TSan checks the hand-over). */
static void pool_shared_by_threads(void **state)
{
    (void)state;
    int wrong_other = -1;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pool_cycles_thread, &wrong_other), 0);
    int wrong_here = pool_cycles(2);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(wrong_here, 0);
    assert_int_equal(wrong_other, 0);
}

/* A retired coroutine restarts from the top of a new body, on the same stack, as often as
 * needed; abandoning a suspended body on the way. */
static void retire_and_restart(void **state)
{
    (void)state;
    counter a = {.id = 7}, b = {.id = 9};
    dt__coro *co = NULL;
    assert_int_equal(dt__coro_create(counter_body, &a, 64 * 1024, &co), DT_OK);
    a.co = co;
    assert_int_equal(dt__coro_resume(co), DT_OK);
    assert_int_equal(a.steps, 1);
    assert_int_equal(dt__coro_restart(co, counter_body, &b), DT_ESTATE); /* suspended */
    dt__coro_retire(co);                                                 /* abandons a */
    assert_true(dt__coro_finished(co));
    for (int round = 0; round < 3; round++) {
        b = (counter){.id = (uint64_t)(9 + round), .co = co};
        assert_int_equal(dt__coro_restart(co, counter_body, &b), DT_OK);
        assert_false(dt__coro_finished(co));
        while (!dt__coro_finished(co)) {
            assert_int_equal(dt__coro_resume(co), DT_OK);
        }
        assert_int_equal(b.steps, MANY_ROUNDS);
        assert_true(b.result == expected_result(b.id));
        dt__coro_retire(co); /* finished: nothing to abandon */
    }
    assert_int_equal(a.steps, 1); /* the abandoned body never ran again */
    dt__coro_destroy(co);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(values_cross_many_yields, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(ten_thousand_interleaved, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(destroy_while_suspended, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(destroy_before_first_resume, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(deep_recursion_with_yield_at_the_bottom,
                                        dt_test_leakcheck_setup, dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(big_local_buffer, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(resumed_from_other_threads, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(stack_overflow_hits_the_guard_page, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(state_and_argument_errors, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(create_fails_cleanly_without_memory,
                                        dt_test_leakcheck_setup, dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(switch_keeps_fp_control_and_alignment,
                                        dt_test_leakcheck_setup, dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(many_cycles_through_the_pool, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(pool_shared_by_threads, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
        cmocka_unit_test_setup_teardown(retire_and_restart, dt_test_leakcheck_setup,
                                        dt_test_leakcheck_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dt_set_allocator(NULL);
    return rc;
}
