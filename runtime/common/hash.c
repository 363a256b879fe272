/* Fixed, portable hashing and UUID formatting (see common_int.h): the same values on every
 * machine and build, because persisted IDs are derived from them. */
#include <stdio.h>

#include "common_int.h"

uint64_t dt__fnv1a64(uint64_t h, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t dt__mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void dt__uuid_compact(char *s)
{
    char *w = s;
    for (const char *r = s; *r != '\0'; r++) {
        if (*r != '-') {
            *w++ = *r;
        }
    }
    *w = '\0';
}

void dt__format_uuid(uint64_t hi, uint64_t lo, unsigned version, char out[37])
{
    hi = (hi & ~0xf000ULL) | ((uint64_t)(version & 0xf) << 12);
    lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; /* RFC 4122 variant */
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
             (unsigned)((hi >> 16) & 0xffff), (unsigned)(hi & 0xffff), (unsigned)(lo >> 48),
             (unsigned long long)(lo & 0xffffffffffffULL));
}
