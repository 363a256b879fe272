/*
 * durabletask/alloc.h: the library's one allocator seam.
 *
 * All heap traffic of the library goes through dt_alloc/dt_calloc/dt_realloc/dt_free so that
 * tests can count allocations, detect leaks and fail the Nth allocation. By default these are
 * malloc and friends. dt_set_allocator() may be called once, before any other dt_ call; it is not
 * thread-safe and is meant for tests and embedders with their own heap.
 */
#ifndef DURABLETASK_ALLOC_H
#define DURABLETASK_ALLOC_H

#include <stddef.h>

#include "durabletask/defs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_allocator {
    void *(*alloc)(size_t size, void *ctx);
    void *(*realloc)(void *ptr, size_t size, void *ctx);
    void (*free)(void *ptr, void *ctx);
    void *ctx;
} dt_allocator;

/* Installs `a` (copied). NULL restores the default (malloc). */
DT_API void dt_set_allocator(const dt_allocator *a);

/* Returns NULL on failure. dt_alloc(0) may return NULL or a unique pointer. */
DT_API void *dt_alloc(size_t size);
/* Zeroed, overflow-checked n*size. */
DT_API void *dt_calloc(size_t n, size_t size);
DT_API void *dt_realloc(void *ptr, size_t size);
/* Accepts NULL. */
DT_API void dt_free(void *ptr);
/* Returns a dt_alloc'd copy of s (NUL-terminated) or NULL; the caller frees with dt_free. */
DT_API char *dt_strdup(const char *s);
/* Copies n bytes and appends a NUL; returns NULL on failure. The caller frees with dt_free. */
DT_API char *dt_memdup(const void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
