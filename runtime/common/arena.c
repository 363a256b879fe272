/*
 * arena.c: the region allocator of arena_int.h.
 *
 * The arena header sits at the start of its first heap block, so creating an arena costs one
 * dt_alloc. Allocation bumps a pointer through the current block, in steps rounded up to
 * _Alignof(max_align_t) so every result suits any type (dt_alloc, like malloc, returns blocks
 * aligned that way). When the current block cannot hold a request:
 *  - a request of at most a quarter of a block opens a new block, which becomes current; what was
 *    left of the old one (under a quarter of it) is abandoned;
 *  - a larger request gets a block of exactly its size, and the current block stays current, so
 *    big payloads neither waste nor split the blocks that small objects share.
 * Every block but the first is chained on one list; nothing is freed before dt__arena_destroy.
 * Cleanup hooks are themselves allocated from the arena and kept newest first: registering costs
 * no heap call, and destroy runs them in reverse order of registration.
 *
 * Under AddressSanitizer the unused part of each block is poisoned and each allocation is
 * unpoisoned to its exact size, so a read or write past the end of an allocation into its rounding
 * slack or into the unused tail of its block is reported as for malloc. (Adjacent allocations have
 * no redzone between them; big allocations get malloc's own redzone.)
 */
#include "arena_int.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "durabletask/alloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif

#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN         _Alignof(max_align_t)
#define ROUND_UP(n)   (((n) + ALIGN - 1) / ALIGN * ALIGN)
#define DEFAULT_CHUNK ((size_t)4096)
/* Small enough for tests to force many blocks, big enough that the header is a minor cost. */
#define MIN_CHUNK ((size_t)512)

/* Header of every block after the first. */
typedef struct block {
    struct block *next;
    size_t size; /* bytes obtained from dt_alloc, header included */
} block;

#define BLOCK_HDR ROUND_UP(sizeof(block))

typedef struct hook {
    struct hook *next;
    void (*fn)(void *arg);
    void *arg;
} hook;

struct dt__arena {
    unsigned char *pos; /* next free byte of the current block, ALIGN-aligned */
    unsigned char *end; /* one past the last byte of the current block */
    block *blocks;      /* every block but the first (which holds this struct), newest first */
    hook *hooks;        /* newest first */
    size_t chunk_size;  /* bytes of each regular block, the first one included */
    size_t big;         /* requests (rounded) above this get a block of their own */
    size_t footprint;   /* bytes obtained from dt_alloc */
    ProtobufCAllocator pb;
};

#define ARENA_HDR ROUND_UP(sizeof(dt__arena))

static void *pb_alloc(void *ctx, size_t size)
{
    return dt__arena_alloc(ctx, size);
}

/* Unpacked messages die with the arena, so protobuf-c's frees (including the ones it makes to
 * clean up after a failed unpack) have nothing to do. */
static void pb_free(void *ctx, void *ptr)
{
    (void)ctx;
    (void)ptr;
}

dt__arena *dt__arena_create(size_t chunk_size)
{
    if (chunk_size == 0) {
        chunk_size = DEFAULT_CHUNK;
    } else if (chunk_size < MIN_CHUNK) {
        chunk_size = MIN_CHUNK;
    }
    dt__arena *a = dt_alloc(chunk_size);
    if (a == NULL) {
        return NULL;
    }
    assert((uintptr_t)a % ALIGN == 0);
    *a = (dt__arena){
        .pos = (unsigned char *)a + ARENA_HDR,
        .end = (unsigned char *)a + chunk_size,
        .chunk_size = chunk_size,
        .big = (chunk_size - BLOCK_HDR) / 4,
        .footprint = chunk_size,
    };
    a->pb = (ProtobufCAllocator){pb_alloc, pb_free, a};
    POISON(a->pos, (size_t)(a->end - a->pos));
    return a;
}

/* Pops each hook before calling it, so a hook that registers another one does not loop. */
static void run_hooks(dt__arena *a)
{
    hook *h;
    while ((h = a->hooks) != NULL) {
        a->hooks = h->next;
        h->fn(h->arg);
    }
}

void dt__arena_destroy(dt__arena *a)
{
    if (a == NULL) {
        return;
    }
    run_hooks(a);
    /* Unpoison before freeing: an embedder's dt_allocator may reuse the memory without ASan
     * knowing it was ever poisoned. */
    block *b = a->blocks;
    while (b != NULL) {
        block *next = b->next;
        UNPOISON(b, b->size);
        dt_free(b);
        b = next;
    }
    UNPOISON(a, a->chunk_size);
    dt_free(a);
}

/* Hands out `n` (rounded) bytes of the current block, of which the caller asked for `size`. */
static void *take(dt__arena *a, size_t size, size_t n)
{
    void *p = a->pos;
    a->pos += n;
    UNPOISON(p, size);
    return p;
}

/* Gets `bytes` from the heap as a new block on the list; returns its usable part or NULL. */
static unsigned char *new_block(dt__arena *a, size_t bytes)
{
    block *b = dt_alloc(bytes);
    if (b == NULL) {
        return NULL;
    }
    assert((uintptr_t)b % ALIGN == 0);
    b->next = a->blocks;
    b->size = bytes;
    a->blocks = b;
    a->footprint += bytes;
    return (unsigned char *)b + BLOCK_HDR;
}

/* The current block cannot hold `n` bytes: either give the request a block of its own or move on
 * to a fresh regular block. */
static void *alloc_slow(dt__arena *a, size_t size, size_t n)
{
    if (n > a->big) {
        /* Sized to the request, not to n: malloc's redzone then catches overruns. */
        if (size > SIZE_MAX - BLOCK_HDR) {
            return NULL;
        }
        return new_block(a, BLOCK_HDR + size);
    }
    unsigned char *data = new_block(a, a->chunk_size);
    if (data == NULL) {
        return NULL;
    }
    a->pos = data;
    a->end = (unsigned char *)a->blocks + a->chunk_size;
    POISON(a->pos, (size_t)(a->end - a->pos));
    return take(a, size, n);
}

void *dt__arena_alloc(dt__arena *a, size_t size)
{
    assert(a != NULL);
    /* Zero-size requests still get a distinct pointer, as NULL means out of memory. */
    size_t n = size == 0 ? 1 : size;
    if (n > SIZE_MAX - (ALIGN - 1)) {
        return NULL;
    }
    n = ROUND_UP(n);
    if (n > (size_t)(a->end - a->pos)) {
        return alloc_slow(a, size, n);
    }
    return take(a, size, n);
}

void *dt__arena_calloc(dt__arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = dt__arena_alloc(a, n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

void *dt__arena_memdup(dt__arena *a, const void *p, size_t n)
{
    if (n == SIZE_MAX) {
        return NULL;
    }
    unsigned char *s = dt__arena_alloc(a, n + 1);
    if (s == NULL) {
        return NULL;
    }
    if (n > 0) {
        memcpy(s, p, n);
    }
    s[n] = '\0';
    return s;
}

char *dt__arena_strdup(dt__arena *a, const char *s)
{
    return s == NULL ? NULL : dt__arena_memdup(a, s, strlen(s));
}

dt_status dt__arena_on_destroy(dt__arena *a, void (*fn)(void *arg), void *arg)
{
    if (fn == NULL) {
        return DT_EINVAL;
    }
    hook *h = dt__arena_alloc(a, sizeof(*h));
    if (h == NULL) {
        return DT_ENOMEM;
    }
    *h = (hook){a->hooks, fn, arg};
    a->hooks = h;
    return DT_OK;
}

size_t dt__arena_footprint(const dt__arena *a)
{
    return a == NULL ? 0 : a->footprint;
}

ProtobufCAllocator *dt__arena_pb_allocator(dt__arena *a)
{
    return &a->pb;
}

bool dt__arena_grow(dt__arena *a, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return true;
    }
    size_t nc = *cap == 0 ? 8 : *cap * 2;
    void *g = dt__arena_calloc(a, nc, elem);
    if (g == NULL) {
        return false;
    }
    if (n > 0) {
        memcpy(g, *arr, n * elem);
    }
    *arr = g;
    *cap = nc;
    return true;
}
