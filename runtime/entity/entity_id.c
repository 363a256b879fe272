/*
 * Entity IDs: "@<lowercased name>@<key>", as the Durable Task protocol writes them. Names are
 * subject tokens (they appear in dt.<hub>.in.signal.<name>), so letters, digits, '-' and '_';
 * keys are printable ASCII without spaces (an ID must be a valid instance ID).
 */
#include <stdio.h>
#include <string.h>

#include "entity_int.h"

static void say(char *why, size_t len, const char *msg)
{
    if (why != NULL && len > 0) {
        snprintf(why, len, "%s", msg);
    }
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

dt_status dt_entity_id_check(const char *name, const char *key, char *why, size_t why_len)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > DT_ENTITY_NAME_MAX) {
        say(why, why_len, "invalid entity name: 1 to 64 characters required");
        return DT_EINVAL;
    }
    for (const char *s = name; *s != '\0'; s++) {
        if (!name_char(*s)) {
            say(why, why_len,
                "invalid entity name: only letters, digits, '-' and '_' (no '@', '.', spaces)");
            return DT_EINVAL;
        }
    }
    if (key == NULL || key[0] == '\0' || strlen(key) > DT_ENTITY_KEY_MAX) {
        say(why, why_len, "invalid entity key: 1 to 180 characters required");
        return DT_EINVAL;
    }
    for (const char *s = key; *s != '\0'; s++) {
        if (*s <= ' ' || *s > '~') {
            say(why, why_len, "invalid entity key: printable ASCII characters without spaces");
            return DT_EINVAL;
        }
    }
    return DT_OK;
}

dt_status dt_entity_id(const char *name, const char *key, char *buf, size_t len)
{
    dt_status st = dt_entity_id_check(name, key, NULL, 0);
    if (st != DT_OK) {
        return st;
    }
    size_t n = strlen(name), k = strlen(key);
    if (buf == NULL || n + k + 3 > len) {
        return DT_ETOOLARGE;
    }
    buf[0] = '@';
    for (size_t i = 0; i < n; i++) {
        char c = name[i]; /* ASCII only: tolower() would follow the process's locale */
        buf[1 + i] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    buf[1 + n] = '@';
    memcpy(buf + 2 + n, key, k + 1);
    return DT_OK;
}

dt_status dt_entity_id_parse(const char *id, char *name, size_t name_len, char *key, size_t key_len)
{
    if (!dt__entity_is_id(id)) {
        return DT_EINVAL;
    }
    const char *at = strchr(id + 1, '@');
    size_t n = (size_t)(at - id - 1), k = strlen(at + 1);
    char nbuf[DT_ENTITY_NAME_MAX + 1];
    if (n == 0 || n > DT_ENTITY_NAME_MAX) {
        return DT_EINVAL;
    }
    memcpy(nbuf, id + 1, n);
    nbuf[n] = '\0';
    if (dt_entity_id_check(nbuf, at + 1, NULL, 0) != DT_OK) {
        return DT_EINVAL;
    }
    if (name == NULL || key == NULL || n + 1 > name_len || k + 1 > key_len) {
        return DT_ETOOLARGE;
    }
    memcpy(name, nbuf, n + 1);
    memcpy(key, at + 1, k + 1);
    return DT_OK;
}

bool dt__entity_is_id(const char *instance_id)
{
    return instance_id != NULL && instance_id[0] == '@' && strchr(instance_id + 1, '@') != NULL;
}
