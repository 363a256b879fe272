/*
 * sample_out.h: outputs formatted like printf, for the samples' orchestrators and activities.
 *
 * An output that does not fit in SAMPLE_OUT_MAX bytes fails the orchestration or activity
 * (type "sample.OutputTooLarge") rather than being cut into invalid JSON. Call only from the
 * orchestrator or activity whose context is passed.
 */
#ifndef DT_SAMPLE_OUT_H
#define DT_SAMPLE_OUT_H

#include "durabletask/activity.h"
#include "durabletask/orchestration.h"

#define SAMPLE_OUT_MAX 4096

void sample_orch_output(dt_orch_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void sample_activity_output(dt_activity_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
