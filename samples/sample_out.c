/* Formatted outputs (see sample_out.h). */
#include "sample_out.h"

#include <stdarg.h>
#include <stdio.h>

void sample_orch_output(dt_orch_ctx *ctx, const char *fmt, ...)
{
    char out[SAMPLE_OUT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, sizeof(out), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(out)) {
        dt_orch_fail(ctx, "sample.OutputTooLarge", "the output does not fit in 4 KiB", NULL);
    }
    dt_orch_set_output(ctx, out, (size_t)n);
}

void sample_activity_output(dt_activity_ctx *ctx, const char *fmt, ...)
{
    char out[SAMPLE_OUT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, sizeof(out), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(out)) {
        dt_activity_fail(ctx, "sample.OutputTooLarge", "the output does not fit in 4 KiB", true);
        return;
    }
    dt_activity_set_output(ctx, out, (size_t)n);
}
