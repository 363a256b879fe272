/*
 * coro_int.h: stackful coroutines for orchestration instances (internal).
 *
 * Each orchestration instance runs its user function on its own coroutine with a small private
 * stack, so that dt_await() can suspend in the middle of plain sequential C and the engine can
 * resume it when history delivers the awaited result. Switches are symmetric between the thread
 * that calls dt__coro_resume() and the coroutine; a coroutine never switches to another coroutine.
 *
 * Stacks are mmap'd with a guard page below them, so an overflow faults instead of corrupting the
 * heap; pages are committed lazily by the kernel, so a 256 KiB stack that uses 8 KiB costs 8 KiB.
 * The guard is one page: a single frame larger than a page can step over it unless the code is
 * built with -fstack-clash-protection, so keep big buffers in the arena, not on the stack.
 *
 * Under AddressSanitizer every switch is announced with __sanitizer_start_switch_fiber /
 * __sanitizer_finish_switch_fiber, so ASan tracks the right stack and reports real errors only;
 * under ThreadSanitizer each coroutine is a TSan fiber and every switch is announced with
 * __tsan_switch_to_fiber.
 *
 * Threads: a coroutine is confined to the thread that resumes it for the duration of a resume;
 * it may be resumed from different threads at different times if the caller serializes. Code on a
 * coroutine that may move between threads must not keep thread-local state (errno included)
 * across a yield: the compiler may cache the old thread's address.
 */
#ifndef DT_CORO_INT_H
#define DT_CORO_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "durabletask/status.h"

typedef struct dt__coro dt__coro;

/* The body of a coroutine. `arg` is borrowed from dt__coro_create's caller. When it returns the
 * coroutine is finished and control goes back to the resumer for the last time. */
typedef void (*dt__coro_fn)(void *arg);

/* Default stack size (bytes, excluding the guard page). */
#define DT__CORO_DEFAULT_STACK ((size_t)256 * 1024)

/*
 * Creates a suspended coroutine that will run fn(arg) on its first resume. stack_size 0 means
 * DT__CORO_DEFAULT_STACK; below 16 KiB it is raised to 16 KiB; it is rounded up to whole pages.
 * On DT_OK *out owns the coroutine; free it with dt__coro_destroy. Returns DT_ENOMEM when the
 * struct cannot be allocated or the stack cannot be mapped (each stack is two kernel mappings, so
 * vm.max_map_count, 65530 by default, caps live coroutines near 32,000), DT_EINVAL when fn or out
 * is NULL. A parked stack of the same size (see dt__coro_destroy) is used before a new mapping.
 */
dt_status dt__coro_create(dt__coro_fn fn, void *arg, size_t stack_size, dt__coro **out);

/*
 * Frees the coroutine. Its stack is parked in a process-wide pool of at most 64 unused stacks
 * (the next create of the same size takes it, touched pages and all) or, when the pool is full,
 * unmapped. Accepts NULL. A coroutine may be destroyed while suspended
 * (none of its body runs again and nothing on its stack is unwound, which is why orchestration
 * memory lives in arenas; internally destroy switches into it once so that it leaves through its
 * normal exit, which sanitizers need), but never from inside itself. Same thread rules as resume.
 */
void dt__coro_destroy(dt__coro *co);

/*
 * Reuse instead of unmap + mmap (a stack per instance costs system calls and TLB shootdowns):
 * dt__coro_retire ends `co` (a suspended body is abandoned, as by destroy) but keeps its stack;
 * dt__coro_restart makes a retired (or never started) coroutine run fn(arg) from the top on its
 * next resume. Restart returns DT_ESTATE for a suspended or running coroutine. Not from inside
 * `co`.
 */
void dt__coro_retire(dt__coro *co);
dt_status dt__coro_restart(dt__coro *co, dt__coro_fn fn, void *arg);

/*
 * Runs `co` until it yields or finishes; DT_OK either way (ask dt__coro_finished). Must not be
 * called from inside a coroutine. Returns DT_ESTATE on a finished or running coroutine, DT_EINVAL
 * on NULL.
 */
dt_status dt__coro_resume(dt__coro *co);

/* Suspends the calling coroutine and returns control to its resumer. Only from inside `co`. */
void dt__coro_yield(dt__coro *co);

/* True once the body function has returned. */
bool dt__coro_finished(const dt__coro *co);

#endif
