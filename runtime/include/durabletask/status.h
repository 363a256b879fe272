/*
 * durabletask/status.h: the one status type of the durabletask library.
 *
 * Every fallible public function returns a dt_status. DT_OK is 0; every other value is an error
 * whose text dt_status_str() gives. The list is generated from DT_STATUS_MAP so the enum and the
 * strings never disagree.
 *
 * PERSISTED: status codes appear in failure records and in dtctl exit codes. Never renumber an
 * entry; retire one by renaming it DT_EOBSOLETEn and keeping its number.
 */
#ifndef DURABLETASK_STATUS_H
#define DURABLETASK_STATUS_H

#include "durabletask/defs.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DT_STATUS_MAP(XX)                                                                          \
    XX(OK, 0, "success")                                                                           \
    XX(EINVAL, 1, "invalid argument")                                                              \
    XX(ENOMEM, 2, "out of memory")                                                                 \
    XX(ETOOLARGE, 3, "value exceeds a configured limit")                                           \
    XX(ENOTFOUND, 4, "not found")                                                                  \
    XX(EEXIST, 5, "already exists")                                                                \
    XX(EIO, 6, "I/O error")                                                                        \
    XX(ECORRUPT, 7, "stored data is corrupt or not a durabletask store")                           \
    XX(EVERSION, 8, "stored data has a newer format version than this build understands")          \
    XX(EFENCED, 9, "partition ownership was lost (fencing epoch changed)")                         \
    XX(ETIMEOUT, 10, "timed out")                                                                  \
    XX(EBROKER, 11, "message broker error")                                                        \
    XX(EDECODE, 12, "malformed message")                                                           \
    XX(ETASKFAILED, 13, "task failed")                                                             \
    XX(ENONDETERMINISM, 14, "non-deterministic orchestration")                                     \
    XX(ECONFLICT, 15, "conflicting configuration")                                                 \
    XX(ESTATE, 16, "operation not valid in the current state")                                     \
    XX(EUNKNOWNNAME, 17, "no orchestrator or activity registered under that name")                 \
    XX(ECLOSED, 18, "handle or connection is closed")                                              \
    XX(EBUSY, 19, "resource busy")                                                                 \
    XX(EAUTH, 20, "the broker refused the credentials, or TLS failed")

typedef enum dt_status {
/* NOLINTNEXTLINE(bugprone-macro-parentheses): `name` is pasted into an identifier */
#define DT_STATUS_ENUM_(name, num, text) DT_##name = num,
    DT_STATUS_MAP(DT_STATUS_ENUM_)
#undef DT_STATUS_ENUM_
} dt_status;

/* Returns a static, never-NULL English description of `s` (unknown values give a generic text). */
DT_API const char *dt_status_str(dt_status s);

/* Returns the static name of `s` without the DT_ prefix ("EINVAL"), or "UNKNOWN". */
DT_API const char *dt_status_name(dt_status s);

#ifdef __cplusplus
}
#endif
#endif
