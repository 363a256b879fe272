/*
 * coro.c: stackful coroutines (see coro_int.h): a hand-written context switch on x86-64, POSIX
 * ucontext elsewhere.
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
 * The switch. swapcontext saves and restores the signal mask, an rt_sigprocmask system call per
 * switch: 13 to 33 per hello5 orchestration, half the worker's system calls, and system calls are
 * dear in this VM (docs/performance.md, "The coroutines' cost"). So on x86-64 a switch is
 * dt__coro_switch, a dozen instructions that save what the SysV ABI makes callee-saved (rbp, rbx,
 * r12-r15, the MXCSR and x87 control words) on the running stack and load the same from the
 * other, and nothing else: the signal mask is a thread's, set before the worker starts its
 * threads and never per coroutine, so leaving it alone is right, and better than swapcontext
 * (which would put back the creating thread's mask on a coroutine resumed by another thread).
 * Why not "makecontext once, then _setjmp/_longjmp": with _FORTIFY_SOURCE longjmp is
 * __longjmp_chk, which aborts on a jump to another stack, and glibc mangles and checks the saved
 * pointers; a switch of our own is shorter and has no such rules. Every other architecture, a
 * build with shadow stacks (-fcf-protection: a ret to another stack's address would fault; glibc's
 * swapcontext knows shadow stacks), and -DDT_CORO_UCONTEXT use swapcontext; the tests run the
 * same either way. makecontext passes int arguments only, so there the coroutine pointer travels
 * as four 16-bit pieces: each fits any int, so no conversion is implementation-defined.
 *
 * Sanitizers and valgrind: each switch is announced by __sanitizer_start_switch_fiber before it and
 * __sanitizer_finish_switch_fiber after it, on the new stack; the coroutine learns its resumer's
 * stack bounds from the finish call, since each resume may come from another thread. Before a
 * stack is unmapped its shadow is cleared: abandoned frames leave poisoned redzones that would
 * otherwise greet the next mapping at that address. When <valgrind/valgrind.h> exists the stack is
 * registered, so memcheck takes a switch for a switch rather than a wild stack-pointer move.
 * Under ThreadSanitizer each coroutine is a TSan fiber (__tsan_create_fiber), and every switch is
 * announced with __tsan_switch_to_fiber right before the switch, to the coroutine's
 * fiber on resume and back to the resumer's (__tsan_get_current_fiber, learnt at each resume) on
 * yield and exit. Flags 0: a switch synchronises the two sides, as it does (one thread runs at a
 * time), so TSan follows each stack and reports real races only.
 * The hand-written switch needs nothing more: ASan's swapcontext interceptor is not involved (its
 * shadow clearing is done here, see above), and valgrind and TSan see a stack switch either way.
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
/* A switch to `fiber`, announced to TSan right before CTX_SWAP/CTX_JUMP and in the function that
 * makes it: TSan keeps a call stack per fiber, so a helper that announced it would return on the
 * other fiber's stack. (dt__coro_switch, assembly, is not instrumented: it may come after.) */
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

/*
 * The context switch. On x86-64 (LP64, ELF, without shadow stacks) a hand-written one, below;
 * anywhere else, or with -DDT_CORO_UCONTEXT, swapcontext. CTX_SWAP(from, to) saves where the
 * running code continues into *from and continues *to; CTX_JUMP(to) continues *to for good. Macros,
 * not functions: TSan must see the switch in the function that announced it (see TSAN_SWITCH_TO).
 */
#if defined(__x86_64__) && !defined(__ILP32__) && defined(__ELF__) &&                              \
    !defined(DT_CORO_UCONTEXT) && !(defined(__CET__) && (__CET__ & 2))
#define CORO_ASM_SWITCH 1
#endif

#ifdef CORO_ASM_SWITCH
/*
 * dt__coro_switch(save, to): pushes the callee-saved registers (rbp, rbx, r12-r15) and the
 * callee-saved control words (MXCSR, x87 CW: SysV ABI 3.2.1) on the running stack, stores the
 * stack pointer in *save, loads `to` as the stack pointer and pops the same from there, then
 * returns into whatever called dt__coro_switch on that stack. Everything else is caller-saved,
 * so a plain call/ret frame is a whole context. A fresh coroutine's stack is made to look as if
 * it had called dt__coro_switch from dt__coro_boot (make_context): the pops load r12 = the
 * coroutine, r13 = coro_entry, rbp = 0 (the end of frame-pointer chains), and the ret enters
 * dt__coro_boot with rsp 16-byte aligned, so its call gives coro_entry the ABI's entry alignment.
 */
__asm__(".pushsection .text\n"
        ".globl dt__coro_switch\n"
        ".hidden dt__coro_switch\n"
        ".type dt__coro_switch, @function\n"
        ".p2align 4\n"
        "dt__coro_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size dt__coro_switch, .-dt__coro_switch\n"
        ".globl dt__coro_boot\n"
        ".hidden dt__coro_boot\n"
        ".type dt__coro_boot, @function\n"
        ".p2align 4\n"
        "dt__coro_boot:\n"
        "    movq %r12, %rdi\n"
        "    callq *%r13\n"
        "    ud2\n" /* coro_entry never returns */
        ".size dt__coro_boot, .-dt__coro_boot\n"
        ".popsection\n");

void dt__coro_switch(void **save, void *to) __attribute__((visibility("hidden")));
void dt__coro_boot(void) __attribute__((visibility("hidden")));

typedef void *coro_ctx; /* the saved stack pointer */
#define CTX_SWAP(from, to) dt__coro_switch((from), *(to))
#define CTX_JUMP(to)                                                                               \
    do {                                                                                           \
        void *gone_;                                                                               \
        dt__coro_switch(&gone_, *(to));                                                            \
    } while (0)
#else
typedef ucontext_t coro_ctx;
/* Cannot fail with contexts built by getcontext/makecontext; going on would run on a broken
 * stack, so stop. */
#define CTX_SWAP(from, to)                                                                         \
    do {                                                                                           \
        if (swapcontext((from), (to)) != 0) {                                                      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
#define CTX_JUMP(to) setcontext(to)
#endif

/* Below this, signal handlers and libc calls on the coroutine stack risk hitting the guard page. */
#define MIN_STACK ((size_t)16 * 1024)

typedef enum { CO_NEW, CO_RUNNING, CO_SUSPENDED, CO_DONE } coro_state;

struct dt__coro {
    coro_ctx self;   /* where the coroutine continues */
    coro_ctx caller; /* where its current resumer continues */
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

#ifndef CORO_ASM_SWITCH
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
#endif

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
    CTX_SWAP(&co->caller, &co->self);
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
    CTX_JUMP(&co->caller);
    abort(); /* never comes back (setcontext returns only on failure) */
}

static void coro_run(dt__coro *co)
{
    arrived(co);
    co->fn(co->arg);
    coro_exit(co);
}

#ifdef CORO_ASM_SWITCH
static void coro_entry(dt__coro *co) /* called by dt__coro_boot */
{
    coro_run(co);
}
#else
static void coro_entry(int p0, int p1, int p2, int p3)
{
    coro_run(ptr_join(p0, p1, p2, p3));
}
#endif

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

#ifdef CORO_ASM_SWITCH
/* Points co->self at coro_entry on the mapped stack: the frame dt__coro_switch pops (control
 * words, r15, r14, r13, r12, rbx, rbp, return address), at the top of the stack with 16 bytes to
 * spare, so that rsp after its ret is 16-byte aligned. The control words are the creating
 * thread's, as getcontext would take them. */
static dt_status make_context(dt__coro *co)
{
    uintptr_t top = (uintptr_t)(stack_base(co) + stack_len(co)) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 10 * sizeof(uint64_t));
    uint32_t mxcsr = 0;
    uint16_t fpu_cw = 0;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpu_cw));
    f[0] = mxcsr | ((uint64_t)fpu_cw << 32); /* MXCSR at (%rsp), CW at 4(%rsp) */
    f[1] = 0;                                /* r15 */
    f[2] = 0;                                /* r14 */
    f[3] = (uint64_t)(uintptr_t)coro_entry;  /* r13 */
    f[4] = (uint64_t)(uintptr_t)co;          /* r12 */
    f[5] = 0;                                /* rbx */
    f[6] = 0;                                /* rbp */
    f[7] = (uint64_t)(uintptr_t)dt__coro_boot;
    f[8] = 0;
    f[9] = 0;
    co->self = f;
    return DT_OK;
}
#else
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
#endif

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
     * fills in (the ucontext switch). */
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
    CTX_SWAP(&co->self, &co->caller);
    arrived(co);
    if (co->cancel) {
        coro_exit(co);
    }
}

bool dt__coro_finished(const dt__coro *co)
{
    return co != NULL && co->state == CO_DONE;
}
