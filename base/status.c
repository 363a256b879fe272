/* Text for dt_status values, generated from the same DT_STATUS_MAP as the enum. */
#include "durabletask/status.h"

const char *dt_status_str(dt_status s)
{
    switch (s) {
#define DT_STATUS_STR_(name, num, text)                                                            \
    case DT_##name:                                                                                \
        return text;
        DT_STATUS_MAP(DT_STATUS_STR_)
#undef DT_STATUS_STR_
    }
    return "unknown status";
}

const char *dt_status_name(dt_status s)
{
    switch (s) {
#define DT_STATUS_NAME_(name, num, text)                                                           \
    case DT_##name:                                                                                \
        return #name;
        DT_STATUS_MAP(DT_STATUS_NAME_)
#undef DT_STATUS_NAME_
    }
    return "UNKNOWN";
}

/* Pin the persisted numbers. */
_Static_assert(DT_OK == 0, "DT_OK is persisted as 0");
_Static_assert(DT_ETASKFAILED == 13, "status numbers are persisted");
_Static_assert(DT_EBUSY == 19, "status numbers are persisted");
_Static_assert(DT_EAUTH == 20, "status numbers are persisted");
