/*
 * Names of a task hub's JetStream objects and subjects, and their validation.
 *
 * Hub names are restricted to [A-Za-z0-9_-] so that one name is at once a subject token, a
 * stream-name part and a bucket-name part. Because every object name ends in a fixed suffix
 * (_ORCH, _ACT, _IN, _DEAD, _LOG, _META, _LEASES, _STATUS) and no suffix ends with another, two
 * hubs can never map to the same object.
 */
#include "broker_int.h"

#include <string.h>

static const char *const stream_suffix[] = {"ORCH", "ACT", "IN", "DEAD", "LOG"};
static const char *const bucket_suffix[] = {"META", "LEASES", "STATUS"};
static const char *const family_token[] = {"orch", "act", "in", "dead", "query", "log"};

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool dt_broker_hub_name_valid(const char *hub)
{
    if (hub == NULL || hub[0] == '\0') {
        return false;
    }
    size_t n = 0;
    for (; hub[n] != '\0'; n++) {
        if (n >= DT_BROKER_HUB_NAME_MAX || !name_char(hub[n])) {
            return false;
        }
    }
    return true;
}

/* One token of length n: printable ASCII, no space, '.', '*' or '>'. */
static bool token_valid_n(const char *t, size_t n)
{
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>') {
            return false;
        }
    }
    return true;
}

bool dt_broker_token_valid(const char *token)
{
    return token != NULL && token_valid_n(token, strlen(token));
}

/* Dot-separated tokens; "*" may stand for a token and a final ">" for the rest. */
static bool tail_valid(const char *tail)
{
    if (tail == NULL || tail[0] == '\0') {
        return false;
    }
    const char *p = tail;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
        bool wild = (n == 1 && p[0] == '*') || (n == 1 && p[0] == '>' && dot == NULL);
        if (!wild && !token_valid_n(p, n)) {
            return false;
        }
        if (dot == NULL) {
            return true;
        }
        p = dot + 1;
    }
}

/* Writes "<prefix><a><sep><b>[.<c>]" into buf. */
/* Concatenates prefix a sep b ["." c] into buf (no snprintf: subjects are built per message). */
static dt_status put_name(char *buf, size_t len, const char *prefix, const char *a, const char *sep,
                          const char *b, const char *c)
{
    if (buf == NULL || len == 0) {
        return DT_EINVAL;
    }
    const char *parts[] = {prefix, a, sep, b, c != NULL ? "." : "", c != NULL ? c : ""};
    size_t n = 0;
    for (size_t i = 0; i < DT__ARRAY_LEN(parts); i++) {
        size_t k = strlen(parts[i]);
        if (k >= len - n) {
            buf[0] = '\0';
            return DT_ETOOLARGE;
        }
        memcpy(buf + n, parts[i], k);
        n += k;
    }
    buf[n] = '\0';
    return DT_OK;
}

dt_status dt_broker_stream_name(const char *hub, dt_broker_stream s, char *buf, size_t len)
{
    if (!dt_broker_hub_name_valid(hub) || (unsigned)s >= DT__ARRAY_LEN(stream_suffix)) {
        return DT_EINVAL;
    }
    return put_name(buf, len, "DT_", hub, "_", stream_suffix[s], NULL);
}

dt_status dt_broker_bucket_name(const char *hub, dt_broker_bucket k, char *buf, size_t len)
{
    if (!dt_broker_hub_name_valid(hub) || (unsigned)k >= DT__ARRAY_LEN(bucket_suffix)) {
        return DT_EINVAL;
    }
    return put_name(buf, len, "DT_", hub, "_", bucket_suffix[k], NULL);
}

dt_status dt_broker_subject(const char *hub, dt_broker_family f, const char *tail, char *buf,
                            size_t len)
{
    if (!dt_broker_hub_name_valid(hub) || (unsigned)f >= DT__ARRAY_LEN(family_token) ||
        !tail_valid(tail)) {
        return DT_EINVAL;
    }
    return put_name(buf, len, "dt.", hub, ".", family_token[f], tail);
}

bool dt_broker_kv_key_valid(const char *key)
{
    if (key == NULL || key[0] == '\0') {
        return false;
    }
    size_t n = strlen(key);
    if (key[0] == '.' || key[n - 1] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c == '.' && key[i + 1] == '.') {
            return false;
        }
        if (!name_char(c) && c != '.' && c != '/' && c != '=') {
            return false;
        }
    }
    return true;
}
