/* Naive JSON reading for the samples (see sample_json.h). */
#include "sample_json.h"

#include <stdlib.h>
#include <string.h>

/* The first non-space character after "key": in json, or NULL. */
static const char *value_of(const char *json, const char *key)
{
    if (json == NULL) {
        return NULL;
    }
    size_t klen = strlen(key);
    for (const char *p = strchr(json, '"'); p != NULL; p = strchr(p + 1, '"')) {
        if (strncmp(p + 1, key, klen) != 0 || p[klen + 1] != '"') {
            continue;
        }
        const char *v = p + klen + 2;
        v += strspn(v, " \t\r\n");
        if (*v == ':') {
            v++;
            return v + strspn(v, " \t\r\n");
        }
    }
    return NULL;
}

long sjson_long(const char *json, const char *key, long dflt)
{
    const char *v = value_of(json, key);
    if (v == NULL) {
        return dflt;
    }
    char *end = NULL;
    long n = strtol(v, &end, 10);
    return end != v ? n : dflt;
}

bool sjson_unquote(const char *json, char *out, size_t len)
{
    if (json == NULL) {
        return false;
    }
    json += strspn(json, " \t\r\n");
    if (*json != '"') {
        return false;
    }
    const char *end = strchr(json + 1, '"');
    if (end == NULL || (size_t)(end - json - 1) >= len) {
        return false;
    }
    size_t n = (size_t)(end - json - 1);
    memcpy(out, json + 1, n);
    out[n] = '\0';
    return true;
}

bool sjson_str(const char *json, const char *key, char *out, size_t len)
{
    return sjson_unquote(value_of(json, key), out, len);
}
