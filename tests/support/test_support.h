/*
 * test_support.h: helpers shared by the test executables.
 */
#ifndef DT_TEST_SUPPORT_H
#define DT_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path the caller frees. */
char *dt_test_mkdtemp(const char *prefix);
/* Removes a directory tree (best effort). */
void dt_test_rmtree(const char *path);

/*
 * Installs a counting allocator over malloc. dt_test_alloc_outstanding() is the number of live
 * dt_alloc blocks; dt_test_alloc_fail_after(n) makes the (n+1)th allocation from now and every
 * one after it fail (n < 0 disables failure injection); dt_test_alloc_fail_once(n) makes only the
 * (n+1)th fail, as a transient shortage would. dt_test_alloc_injection_pending() is true while
 * the injected failure has not happened yet.
 */
void dt_test_alloc_install(void);
long dt_test_alloc_outstanding(void);
void dt_test_alloc_fail_after(long n);
void dt_test_alloc_fail_once(long n);
int dt_test_alloc_injection_pending(void);

/*
 * cmocka setup/teardown pair that installs the counting allocator and fails the test when the
 * test body leaves dt_alloc blocks behind.
 */
int dt_test_leakcheck_setup(void **state);
int dt_test_leakcheck_teardown(void **state);
/* Live dt_alloc blocks when the current test's setup ran. */
long dt_test_leakcheck_base(void);

/*
 * The URL of the nats-server started by scripts/test (DT_TEST_NATS_URL), or NULL when unset; tests
 * that need a broker fail when it is NULL rather than pass silently.
 */
const char *dt_test_nats_url(void);

/*
 * The first prefix of an error text that is repeated right after itself ("partition 0: partition
 * 0: ..." gives "partition 0: "), copied into buf; NULL when no "<prefix>: " is doubled. Error
 * texts are wrapped once per layer, never twice with the same words.
 */
const char *dt_test_repeated_prefix(const char *msg, char *buf, size_t len);

#endif
