/*
 * The allocator seam (see durabletask/alloc.h). A plain function-pointer table: the cost is one
 * indirect call per allocation, which is noise next to what the library does with the memory.
 */
#include "durabletask/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *default_alloc(size_t size, void *ctx)
{
    (void)ctx;
    return malloc(size);
}

static void *default_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void default_free(void *ptr, void *ctx)
{
    (void)ctx;
    free(ptr);
}

static dt_allocator current = {default_alloc, default_realloc, default_free, NULL};

void dt_set_allocator(const dt_allocator *a)
{
    if (a == NULL) {
        current = (dt_allocator){default_alloc, default_realloc, default_free, NULL};
    } else {
        current = *a;
    }
}

void *dt_alloc(size_t size)
{
    return current.alloc(size, current.ctx);
}

void *dt_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = current.alloc(n * size, current.ctx);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

void *dt_realloc(void *ptr, size_t size)
{
    return current.realloc(ptr, size, current.ctx);
}

void dt_free(void *ptr)
{
    if (ptr != NULL) {
        current.free(ptr, current.ctx);
    }
}

char *dt_memdup(const void *p, size_t n)
{
    char *s = dt_alloc(n + 1);
    if (s == NULL) {
        return NULL;
    }
    if (n > 0) {
        memcpy(s, p, n);
    }
    s[n] = '\0';
    return s;
}

char *dt_strdup(const char *s)
{
    return s == NULL ? NULL : dt_memdup(s, strlen(s));
}
