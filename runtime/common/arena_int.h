/*
 * arena_int.h: region allocator for everything one orchestration instance allocates (internal).
 *
 * All memory of an instance (decoded events, task results, strings, memory the orchestrator asks
 * for through its context) comes from its arena and is freed at once when the instance leaves
 * the cache or completes. This is what makes abandoning a suspended coroutine safe: nothing on
 * its stack owns heap memory. Other resources register cleanup hooks that run, in reverse order
 * of registration, when the arena is destroyed.
 *
 * Blocks are chained chunks obtained from dt_alloc; a request larger than a chunk gets a chunk of
 * its own. Memory is never returned to the heap before dt__arena_destroy.
 *
 * Threads: confined to one thread at a time (caller serializes).
 */
#ifndef DT_ARENA_INT_H
#define DT_ARENA_INT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/status.h"

typedef struct dt__arena dt__arena;

/* chunk_size is the size of each heap block: 0 means 4 KiB, values below 512 are raised to 512.
 * Returns NULL when out of memory. Free with dt__arena_destroy. */
dt__arena *dt__arena_create(size_t chunk_size);

/* Runs the cleanup hooks (last registered first) and then frees every block; hooks therefore may
 * still read arena memory. Accepts NULL. */
void dt__arena_destroy(dt__arena *a);

/* Returns `size` bytes aligned for any type (_Alignof(max_align_t)), or NULL when out of memory
 * (or size overflows). Size 0 gives a distinct non-NULL pointer. Lives until dt__arena_destroy.
 * Amortised O(1): a bump in the current block; requests over a quarter of a block get their own. */
void *dt__arena_alloc(dt__arena *a, size_t size);
/* Zeroed dt__arena_alloc of n*size (overflow-checked). */
void *dt__arena_calloc(dt__arena *a, size_t n, size_t size);
/* Copies n bytes into the arena and appends a NUL byte (so byte strings print as C strings). */
void *dt__arena_memdup(dt__arena *a, const void *p, size_t n);
/* Copies a C string (NULL gives NULL). */
char *dt__arena_strdup(dt__arena *a, const char *s);

/*
 * Grows the arena array *arr (n used, *cap allocated, elements of elem bytes) so that one more
 * element fits: a doubled copy (old memory stays in the arena until it is destroyed, which is
 * fine for batch-lived arrays). Returns false when out of memory (*arr unchanged).
 */
bool dt__arena_grow(dt__arena *a, void **arr, size_t *cap, size_t n, size_t elem);

/* Registers fn(arg) to run when the arena is destroyed. Returns DT_ENOMEM on failure (fn is then
 * not registered and the caller still owns what arg refers to), DT_EINVAL when fn is NULL. The
 * record comes from the arena itself, so it counts in the footprint. */
dt_status dt__arena_on_destroy(dt__arena *a, void (*fn)(void *arg), void *arg);

/* Total bytes obtained from the heap by this arena (for memory accounting and tests). */
size_t dt__arena_footprint(const dt__arena *a);

/* A protobuf-c allocator whose allocations come from `a` and whose frees are no-ops, so that
 * protobuf__unpack() output lives exactly as long as the arena (calling *_free_unpacked on it is
 * harmless). The returned struct is embedded in the arena, so this never fails and returns the
 * same pointer every time. */
ProtobufCAllocator *dt__arena_pb_allocator(dt__arena *a);

/*
 * Unpacks the message of type `d` from data[0..len) into `a`, like
 * protobuf_c_message_unpack(d, dt__arena_pb_allocator(a), len, data) and with the same result,
 * but in one pass for plain messages (arena_pb.c says which), and refusing what dt__pb_wire_ok
 * refuses (pb_int.h). Returns NULL for malformed input or when out of memory. `data` is borrowed
 * (nothing of the result points into it). For proto3 message types only (no required fields).
 */
ProtobufCMessage *dt__arena_unpack(dt__arena *a, const ProtobufCMessageDescriptor *d, size_t len,
                                   const uint8_t *data);

#endif
