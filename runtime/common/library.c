/*
 * The library as a whole (durabletask/library.h): the version it was built as, and the
 * process-wide teardown, which is the broker adapter's (nats.c's threads and memory).
 */
#include <stdatomic.h>

#include "durabletask/library.h"
#include "dt_broker.h"

/* The string is compiled into the library: the version it was built as, whatever headers the
 * program calling it was compiled with. */
const char *dt_version(void)
{
    return DT_VERSION_STRING;
}

dt_status dt_library_shutdown(void)
{
    static atomic_flag done = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&done)) {
        return DT_OK;
    }
    return dt_broker_global_shutdown();
}
