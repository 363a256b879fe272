/*
 * durabletask/library.h: the library as a whole: its version, and the one global teardown.
 *
 * The library needs no initialisation: the NATS client library (nats.c) it connects through is
 * set up on the first connection of a worker or client. That set-up holds threads and memory for
 * the rest of the process; dt_library_shutdown() releases them, so that a leak checker sees a
 * clean exit. Calling it is optional.
 *
 * Layer: none; sits beside every module (it reaches the broker adapter for the teardown).
 * Threads: dt_version is thread-safe; dt_library_shutdown must run when no other dt_ call does.
 */
#ifndef DURABLETASK_LIBRARY_H
#define DURABLETASK_LIBRARY_H

#include "durabletask/defs.h"
#include "durabletask/status.h"
#include "durabletask/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library the program runs with, "MAJOR.MINOR.PATCH" (static; never NULL).
 * Compare with DT_VERSION_STRING, the version of the headers it was compiled with. */
DT_API const char *dt_version(void);

/*
 * Tears down the library's process-wide state (nats.c's threads and memory) and waits for it,
 * up to 5 s. Call once, at the end of the process, after every worker and client was destroyed:
 * no worker or client may be created afterwards (nats.c cannot be set up again in one process).
 * Further calls do nothing. DT_OK, or DT_ETIMEOUT when nats.c's threads did not end in time.
 */
DT_API dt_status dt_library_shutdown(void);

#ifdef __cplusplus
}
#endif
#endif
