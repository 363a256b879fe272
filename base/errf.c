/* Bounded error formatting (base_int.h). */
#include "base_int.h"

#include <stdarg.h>
#include <stdio.h>

void dt__errf(char *buf, size_t len, const char *fmt, ...)
{
    if (buf == NULL || len == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}
