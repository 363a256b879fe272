/* Helpers shared by the test executables. */
#include "test_support.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durabletask/alloc.h"

char *dt_test_mkdtemp(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    size_t len = strlen(base) + strlen(prefix) + 16;
    char *path = malloc(len);
    if (path == NULL) {
        return NULL;
    }
    snprintf(path, len, "%s/%s.XXXXXX", base, prefix);
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void dt_test_rmtree(const char *path)
{
    if (path != NULL) {
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* Header in front of each block so that frees can be counted without a side table. */
typedef union {
    size_t size;
    max_align_t align;
} block_hdr;

static long outstanding;
static long fail_countdown = -1;
static int fail_once; /* the failure at countdown 0 disables injection */

static int should_fail(void)
{
    if (fail_countdown < 0) {
        return 0;
    }
    if (fail_countdown == 0) {
        if (fail_once) {
            fail_countdown = -1;
        }
        return 1;
    }
    fail_countdown--;
    return 0;
}

static void *count_alloc(size_t size, void *ctx)
{
    (void)ctx;
    if (should_fail()) {
        return NULL;
    }
    block_hdr *h = malloc(sizeof(*h) + size);
    if (h == NULL) {
        return NULL;
    }
    h->size = size;
    __atomic_add_fetch(&outstanding, 1, __ATOMIC_RELAXED);
    return h + 1;
}

static void count_free(void *ptr, void *ctx)
{
    (void)ctx;
    if (ptr == NULL) {
        return;
    }
    __atomic_sub_fetch(&outstanding, 1, __ATOMIC_RELAXED);
    free((block_hdr *)ptr - 1);
}

static void *count_realloc(void *ptr, size_t size, void *ctx)
{
    if (ptr == NULL) {
        return count_alloc(size, ctx);
    }
    if (should_fail()) {
        return NULL;
    }
    block_hdr *h = realloc((block_hdr *)ptr - 1, sizeof(*h) + size);
    if (h == NULL) {
        return NULL;
    }
    h->size = size;
    return h + 1;
}

void dt_test_alloc_install(void)
{
    static const dt_allocator a = {count_alloc, count_realloc, count_free, NULL};
    dt_set_allocator(&a);
}

long dt_test_alloc_outstanding(void)
{
    return __atomic_load_n(&outstanding, __ATOMIC_RELAXED);
}

void dt_test_alloc_fail_after(long n)
{
    fail_once = 0;
    fail_countdown = n;
}

void dt_test_alloc_fail_once(long n)
{
    fail_once = 1;
    fail_countdown = n;
}

int dt_test_alloc_injection_pending(void)
{
    return fail_countdown >= 0;
}

static long leakcheck_base;

int dt_test_leakcheck_setup(void **state)
{
    (void)state;
    dt_test_alloc_install();
    dt_test_alloc_fail_after(-1);
    leakcheck_base = dt_test_alloc_outstanding();
    return 0;
}

int dt_test_leakcheck_teardown(void **state)
{
    (void)state;
    dt_test_alloc_fail_after(-1);
    long now = dt_test_alloc_outstanding();
    if (now != leakcheck_base) {
        fprintf(stderr, "%ld dt_alloc blocks leaked by the test\n", now - leakcheck_base);
        return -1; /* cmocka reports a failed teardown as a test failure */
    }
    return 0;
}

long dt_test_leakcheck_base(void)
{
    return leakcheck_base;
}

const char *dt_test_nats_url(void)
{
    const char *u = getenv("DT_TEST_NATS_URL");
    return (u != NULL && u[0] != '\0') ? u : NULL;
}

const char *dt_test_repeated_prefix(const char *msg, char *buf, size_t len)
{
    for (const char *p = strstr(msg, ": "); p != NULL; p = strstr(p + 1, ": ")) {
        /* Every "<segment>: " ending at p, from each earlier segment start. */
        for (const char *start = msg; start < p; start++) {
            if (start != msg && (start - msg < 2 || start[-1] != ' ' || start[-2] != ':')) {
                continue;
            }
            size_t n = (size_t)(p + 2 - start);
            if (strncmp(start, p + 2, n) == 0) {
                snprintf(buf, len, "%.*s", (int)n, start);
                return buf;
            }
        }
    }
    return NULL;
}
