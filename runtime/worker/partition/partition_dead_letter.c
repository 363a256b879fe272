/*
 * A message the partition cannot apply goes to the dead letters (base/dead_letter.c), logged as
 * this partition's. Called by partition.c and by the pipeline's files below it.
 */
#include <stdio.h>

#include "partition_int.h"

void dt__dead_letter(dt__partition *pt, const char *kind, const char *reason,
                     const char *instance_id, const void *data, size_t len,
                     const char *orig_subject)
{
    char who[32];
    snprintf(who, sizeof(who), "partition %u", pt->p);
    dt__dead_letter_info d = {kind, reason, instance_id, data, len, orig_subject};
    dt__worker_dead_letter(pt->w, who, &d);
}
