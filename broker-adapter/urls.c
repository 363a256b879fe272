/*
 * Server URL lists: splitting "nats://a:4222, nats://b:4222" into the array natsOptions_SetServers
 * takes (nats.c 3.4.1's natsOptions_SetURL takes one URL only and fails on a list, NATS-NOTES
 * fact 10), spotting tls:// schemes, and dt_nats_url_redact(), which every log line and error
 * text that names a URL goes through so that user info (user:password@, token@) never leaks.
 */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_URL "nats://127.0.0.1:4222"

/* Bounds of one item of a list: [*b, *e) with surrounding spaces dropped; returns the start of
 * the next item or NULL at the end. */
static const char *next_item(const char *p, const char **b, const char **e)
{
    const char *comma = strchr(p, ',');
    const char *end = comma != NULL ? comma : p + strlen(p);
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    const char *q = end;
    while (q > p && (q[-1] == ' ' || q[-1] == '\t')) {
        q--;
    }
    *b = p;
    *e = q;
    return comma != NULL ? comma + 1 : NULL;
}

void dt__broker_url_list_free(char **list, int n)
{
    for (int i = 0; list != NULL && i < n; i++) {
        dt_free(list[i]);
    }
    dt_free(list);
}

dt_status dt__broker_url_list(const char *urls, char ***out, int *out_n, char *err, size_t len)
{
    const char *src = urls != NULL ? urls : DEFAULT_URL;
    char **list = dt_calloc(DT__BROKER_MAX_URLS, sizeof(*list));
    if (list == NULL) {
        return dt__broker_errbuf(err, len, DT_ENOMEM, "out of memory");
    }
    int n = 0;
    dt_status st = DT_OK;
    for (const char *p = src; p != NULL && st == DT_OK;) {
        const char *b = NULL, *e = NULL;
        p = next_item(p, &b, &e);
        if (e == b) {
            st = dt__broker_errbuf(err, len, DT_EINVAL, "empty server URL in the list");
        } else if (n == DT__BROKER_MAX_URLS) {
            st = dt__broker_errbuf(err, len, DT_EINVAL, "more than %d server URLs",
                                   DT__BROKER_MAX_URLS);
        } else if ((list[n] = dt_memdup(b, (size_t)(e - b))) == NULL) {
            st = dt__broker_errbuf(err, len, DT_ENOMEM, "out of memory");
        } else {
            n++;
        }
    }
    if (st != DT_OK) {
        dt__broker_url_list_free(list, n);
        return st;
    }
    *out = list;
    *out_n = n;
    return DT_OK;
}

bool dt__broker_urls_want_tls(char **list, int n)
{
    for (int i = 0; i < n; i++) {
        if (strncasecmp(list[i], "tls://", 6) == 0) {
            return true;
        }
    }
    return false;
}

/* Appends [b, e) to buf at *at, truncating; keeps buf NUL-terminated. */
static void append(char *buf, size_t len, size_t *at, const char *b, const char *e)
{
    size_t n = (size_t)(e - b);
    if (*at + 1 >= len) {
        return;
    }
    if (n > len - 1 - *at) {
        n = len - 1 - *at;
    }
    memcpy(buf + *at, b, n);
    *at += n;
    buf[*at] = '\0';
}

char *dt_nats_url_redact(const char *urls, char *buf, size_t len)
{
    if (buf == NULL || len == 0) {
        return buf;
    }
    buf[0] = '\0';
    size_t at = 0;
    bool first = true;
    static const char comma[] = ",";
    for (const char *p = urls != NULL ? urls : DEFAULT_URL; p != NULL;) {
        const char *b = NULL, *e = NULL;
        p = next_item(p, &b, &e);
        if (!first) {
            append(buf, len, &at, comma, comma + 1);
        }
        first = false;
        /* The authority runs from after "scheme://" (or the start) to the first '/'; its user
         * info ends at its last '@' (a password may contain '@' when not percent-encoded). */
        const char *sep = strstr(b, "://");
        const char *auth = sep != NULL && sep < e ? sep + 3 : b;
        append(buf, len, &at, b, auth);
        const char *slash = memchr(auth, '/', (size_t)(e - auth));
        const char *auth_end = slash != NULL ? slash : e;
        const char *host = auth;
        for (const char *c = auth; c < auth_end; c++) {
            host = *c == '@' ? c + 1 : host;
        }
        append(buf, len, &at, host, e);
    }
    return buf;
}
