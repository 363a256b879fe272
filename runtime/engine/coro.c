/*
 * coro.c: stackful coroutines over POSIX ucontext (see coro_int.h).
 *
 * A coroutine is a heap struct (dt_calloc, so leak counting sees it) holding two contexts: `self`,
 * where the coroutine continues, and `caller`, where its current resumer continues. Resume swaps
 * caller -> self and yield swaps self -> caller. The stack is one anonymous mapping: a PROT_NONE
 * guard page at the low end (stacks grow down), then the stack, which the kernel commits page by
 * page on first touch. Destroy parks the mapping in a small pool that create takes from (see
 * POOL_MAX), so instances do not pay mmap + mprotect + munmap and fresh-page faults each.
 *
 * A coroutine always leaves through one exit, coro_exit(): after its body returns, or when it is
 * destroyed while suspended. In the second case destroy switches into it once with `cancel` set;
 * the yield it is parked in sees the flag and exits at once, running no more of the body. That
 * costs one switch pair and is what lets AddressSanitizer free the coroutine's fake stack (it is
 * freed only by a switch that says the fiber is dying), which would otherwise leak.
 *
 * makecontext passes int arguments only, so the coroutine pointer travels as four 16-bit pieces:
 * each fits any int, so no conversion is implementation-defined, for 32- and 64-bit pointers alike.
 *
 * Sanitizers and valgrind: each switch is announced by __sanitizer_start_switch_fiber before it and
 * __sanitizer_finish_switch_fiber after it, on the new stack; the coroutine learns its resumer's
 * stack bounds from the finish call, since each resume may come from another thread. Before a
 * stack is unmapped its shadow is cleared: abandoned frames leave poisoned redzones that would
 * otherwise greet the next mapping at that address. When <valgrind/valgrind.h> exists the stack is
 * registered, so memcheck takes a switch for a switch rather than a wild stack-pointer move.
 * Under ThreadSanitizer each coroutine is a TSan fiber (__tsan_create_fiber), and every switch is
 * announced with __tsan_switch_to_fiber right before swapcontext/setcontext, to the coroutine's
 * fiber on resume and back to the resumer's (__tsan_get_current_fiber, learnt at each resume) on
 * yield and exit. Flags 0: a switch synchronises the two sides, as it does (one thread runs at a
 * time), so TSan follows each stack and reports real races only.
 *
 * Cost: swapcontext saves and restores the signal mask, one system call per switch. That is noise
 * next to one history event per resume; hand-written switches are the fix if profiles disagree.
 */
#include "coro_int.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "durabletask/alloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define CORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORO_TSAN 1
#endif
#endif

#ifdef CORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif
/* A switch to `fiber`, announced to TSan right before swapcontext/setcontext and in the function
 * that makes it: TSan keeps a call stack per fiber, so a helper that announced it would return
 * on the other fiber's stack. */
#ifdef CORO_TSAN
#define TSAN_SWITCH_TO(fiber) __tsan_switch_to_fiber((fiber), 0)
#else
#define TSAN_SWITCH_TO(fiber) ((void)0)
#endif

#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CORO_VALGRIND 1
#endif
#endif

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

/* Below this, signal handlers and libc calls on the coroutine stack risk hitting the guard page. */
#define MIN_STACK ((size_t)16 * 1024)

typedef enum { CO_NEW, CO_RUNNING, CO_SUSPENDED, CO_DONE } coro_state;

struct dt__coro {
    ucontext_t self;   /* where the coroutine continues */
    ucontext_t caller; /* where its current resumer continues */
    dt__coro_fn fn;
    void *arg;
    unsigned char *map; /* guard page, then the stack */
    size_t map_len;
    size_t guard_len;
    coro_state state;
    bool cancel; /* set by destroy: leave at the next switch in */
#ifdef CORO_ASAN
    void *fake_stack;          /* the coroutine's ASan fake stack while switched out */
    const void *caller_bottom; /* the resumer's stack, learnt at each switch in */
    size_t caller_size;
#endif
#ifdef CORO_VALGRIND
    unsigned vg_stack_id;
#endif
#ifdef CORO_TSAN
    void *tsan_fiber;  /* the coroutine's fiber */
    void *tsan_caller; /* its current resumer's fiber (a thread's own, or another fiber) */
#endif
};

_Static_assert(sizeof(uintptr_t) <= 8, "a pointer must fit in four 16-bit makecontext arguments");

/* Piece i (0 = lowest) of a pointer, as a non-negative int. Shifts by 16 only, so that no shift
 * reaches the width of a 32-bit uintptr_t. */
static int ptr_piece(const void *p, int i)
{
    uintptr_t v = (uintptr_t)p;
    for (; i > 0; i--) {
        v >>= 16;
    }
    return (int)(v & 0xFFFFu);
}

static dt__coro *ptr_join(int p0, int p1, int p2, int p3)
{
    uintptr_t v = (uintptr_t)p3;
    v = (v << 16) | (uintptr_t)p2;
    v = (v << 16) | (uintptr_t)p1;
    v = (v << 16) | (uintptr_t)p0;
    return (dt__coro *)v;
}

static unsigned char *stack_base(const dt__coro *co)
{
    return co->map + co->guard_len;
}

static size_t stack_len(const dt__coro *co)
{
    return co->map_len - co->guard_len;
}

/* Resumer side: runs `co` until it switches back (yield or exit). */
static void switch_in(dt__coro *co)
{
#ifdef CORO_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, stack_base(co), stack_len(co));
#endif
    co->state = CO_RUNNING;
#ifdef CORO_TSAN
    co->tsan_caller = __tsan_get_current_fiber();
    TSAN_SWITCH_TO(co->tsan_fiber);
#endif
    /* Cannot fail with contexts built by getcontext/makecontext; going on would run on a broken
     * stack, so stop. */
    if (swapcontext(&co->caller, &co->self) != 0) {
        abort();
    }
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* Coroutine side, first thing after every switch in. */
static void arrived(dt__coro *co)
{
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(co->fake_stack, &co->caller_bottom, &co->caller_size);
#else
    (void)co;
#endif
}

/* Coroutine side, last thing before a switch out. A dying coroutine passes no fake-stack slot,
 * which tells ASan to free its fake stack. */
static void leaving(dt__coro *co, bool dying)
{
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &co->fake_stack, co->caller_bottom,
                                   co->caller_size);
#else
    (void)co;
    (void)dying;
#endif
}

/* The one way out of a coroutine; control never comes back here. */
static _Noreturn void coro_exit(dt__coro *co)
{
    co->state = CO_DONE;
    leaving(co, true);
    TSAN_SWITCH_TO(co->tsan_caller);
    setcontext(&co->caller);
    abort(); /* setcontext returns only on failure */
}

static void coro_entry(int p0, int p1, int p2, int p3)
{
    dt__coro *co = ptr_join(p0, p1, p2, p3);
    arrived(co);
    co->fn(co->arg);
    coro_exit(co);
}

/*
 * The pool of unused stacks, process-wide: dt__coro_destroy parks a stack here instead of
 * unmapping it, and the next create of the same size takes it, so an instance costs neither
 * mmap + mprotect + munmap (three system calls and, for munmap, a TLB shootdown across the
 * worker's threads) nor the page faults of a fresh stack (a parked stack keeps its touched pages).
 * LIFO, so the stack taken is the one most recently used, still warm in cache. Bounded by
 * POOL_MAX stacks: a burst of live coroutines (hello5 starts thousands at once) unmaps what does
 * not fit, so memory after the burst stays at most POOL_MAX stacks' touched pages. One mutex:
 * partition threads create and destroy, and an uncontended lock costs far less than the calls
 * it saves.
 */
#define POOL_MAX 64

typedef struct {
    unsigned char *map;
    size_t len;
} pooled_stack;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pooled_stack pool[POOL_MAX];
static size_t pool_n;

/* A parked mapping of exactly `len` bytes, or NULL. */
static unsigned char *pool_take(size_t len)
{
    unsigned char *m = NULL;
    pthread_mutex_lock(&pool_mu);
    for (size_t i = pool_n; i > 0; i--) {
        if (pool[i - 1].len == len) {
            m = pool[i - 1].map;
            pool[i - 1] = pool[--pool_n];
            break;
        }
    }
    pthread_mutex_unlock(&pool_mu);
    return m;
}

/* Parks a mapping; false when the pool is full (the caller unmaps it). */
static bool pool_put(unsigned char *map, size_t len)
{
    bool parked = false;
    pthread_mutex_lock(&pool_mu);
    if (pool_n < POOL_MAX) {
        pool[pool_n++] = (pooled_stack){map, len};
        parked = true;
    }
    pthread_mutex_unlock(&pool_mu);
    return parked;
}

/* Gives co a guard page + stack (stack_size rounded up to pages): a parked one, else a new
 * mapping. */
static dt_status map_stack(dt__coro *co, size_t stack_size)
{
    long ps = sysconf(_SC_PAGESIZE);
    size_t page = ps > 0 ? (size_t)ps : 4096;
    if (stack_size > SIZE_MAX - 2 * page) {
        return DT_ENOMEM;
    }
    stack_size = (stack_size + page - 1) / page * page;
    size_t len = page + stack_size;
    unsigned char *m = pool_take(len);
    if (m == NULL) {
        void *fresh = mmap(NULL, len, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (fresh == MAP_FAILED) {
            return DT_ENOMEM;
        }
        if (mprotect(fresh, page, PROT_NONE) != 0) {
            munmap(fresh, len);
            return DT_ENOMEM;
        }
        m = fresh;
    }
    co->map = m;
    co->map_len = len;
    co->guard_len = page;
#ifdef CORO_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
#ifdef CORO_VALGRIND
    co->vg_stack_id = VALGRIND_STACK_REGISTER(stack_base(co), stack_base(co) + stack_len(co));
#endif
    return DT_OK;
}

/* Ends co's claim on its stack (its TSan fiber, valgrind registration and ASan shadow go with
 * it), then parks the mapping or unmaps it. */
static void unmap_stack(dt__coro *co)
{
#ifdef CORO_TSAN
    __tsan_destroy_fiber(co->tsan_fiber); /* never the current one: destroy runs on the resumer */
#endif
#ifdef CORO_VALGRIND
    VALGRIND_STACK_DEREGISTER(co->vg_stack_id);
#endif
#ifdef CORO_ASAN
    ASAN_UNPOISON_MEMORY_REGION(stack_base(co), stack_len(co));
#endif
    if (!pool_put(co->map, co->map_len)) {
        munmap(co->map, co->map_len);
    }
}

/* Points co->self at coro_entry on the mapped stack. */
static dt_status make_context(dt__coro *co)
{
    if (getcontext(&co->self) != 0) {
        return DT_ENOMEM; /* not expected: getcontext fails only on a bad pointer */
    }
    co->self.uc_stack.ss_sp = stack_base(co);
    co->self.uc_stack.ss_size = stack_len(co);
    co->self.uc_link = NULL; /* coro_entry never returns */
    makecontext(&co->self, (void (*)(void))coro_entry, 4, ptr_piece(co, 0), ptr_piece(co, 1),
                ptr_piece(co, 2), ptr_piece(co, 3));
    return DT_OK;
}

dt_status dt__coro_create(dt__coro_fn fn, void *arg, size_t stack_size, dt__coro **out)
{
    if (fn == NULL || out == NULL) {
        return DT_EINVAL;
    }
    if (stack_size == 0) {
        stack_size = DT__CORO_DEFAULT_STACK;
    } else if (stack_size < MIN_STACK) {
        stack_size = MIN_STACK;
    }
    /* Zeroed: ASan's swapcontext interceptor reads uc_stack of `caller`, which swapcontext never
     * fills in. */
    dt__coro *co = dt_calloc(1, sizeof(*co));
    if (co == NULL) {
        return DT_ENOMEM;
    }
    co->fn = fn;
    co->arg = arg;
    co->state = CO_NEW;
    dt_status st = map_stack(co, stack_size);
    if (st == DT_OK) {
        st = make_context(co);
        if (st != DT_OK) {
            unmap_stack(co);
        }
    }
    if (st != DT_OK) {
        dt_free(co);
        return st;
    }
    *out = co;
    return DT_OK;
}

void dt__coro_destroy(dt__coro *co)
{
    if (co == NULL) {
        return;
    }
    assert(co->state != CO_RUNNING && "dt__coro_destroy from inside the coroutine");
    if (co->state == CO_SUSPENDED) {
        co->cancel = true;
        switch_in(co);
    }
    unmap_stack(co);
    dt_free(co);
}

void dt__coro_retire(dt__coro *co)
{
    assert(co != NULL && co->state != CO_RUNNING && "dt__coro_retire from inside the coroutine");
    if (co->state == CO_SUSPENDED) {
        co->cancel = true;
        switch_in(co); /* it leaves through coro_exit, so ASan frees its fake stack */
    }
    co->state = CO_DONE;
}

dt_status dt__coro_restart(dt__coro *co, dt__coro_fn fn, void *arg)
{
    if (co == NULL || fn == NULL) {
        return DT_EINVAL;
    }
    if (co->state != CO_DONE && co->state != CO_NEW) {
        return DT_ESTATE;
    }
#ifdef CORO_ASAN
    /* Abandoned frames of the previous body left redzones on the stack. */
    ASAN_UNPOISON_MEMORY_REGION(stack_base(co), stack_len(co));
    co->fake_stack = NULL;
    co->caller_bottom = NULL;
    co->caller_size = 0;
#endif
#ifdef CORO_TSAN
    /* A fresh fiber for the new body: the old one's shadow stack ends in the abandoned frames. */
    __tsan_destroy_fiber(co->tsan_fiber);
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    memset(&co->caller, 0, sizeof(co->caller)); /* as dt__coro_create leaves it (see there) */
    co->fn = fn;
    co->arg = arg;
    co->cancel = false;
    co->state = CO_NEW;
    return make_context(co);
}

dt_status dt__coro_resume(dt__coro *co)
{
    if (co == NULL) {
        return DT_EINVAL;
    }
    if (co->state == CO_DONE || co->state == CO_RUNNING) {
        return DT_ESTATE;
    }
    switch_in(co);
    return DT_OK;
}

void dt__coro_yield(dt__coro *co)
{
    assert(co != NULL && co->state == CO_RUNNING);
    co->state = CO_SUSPENDED;
    leaving(co, false);
    TSAN_SWITCH_TO(co->tsan_caller);
    if (swapcontext(&co->self, &co->caller) != 0) {
        abort();
    }
    arrived(co);
    if (co->cancel) {
        coro_exit(co);
    }
}

bool dt__coro_finished(const dt__coro *co)
{
    return co != NULL && co->state == CO_DONE;
}
