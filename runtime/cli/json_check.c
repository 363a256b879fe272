/*
 * Checking that a command-line input is JSON before it is sent: orchestrations and events take
 * JSON by convention, and a shell-quoting slip ('{ok:true}', a bare word) would otherwise reach
 * the orchestration as bytes it cannot parse, long after dtctl returned 0. A recursive-descent
 * check of RFC 8259 (no values are built); nesting is bounded so hostile input cannot exhaust
 * the stack.
 */
#include <string.h>

#include "cli_int.h"

#define MAX_DEPTH 512

typedef struct scan {
    const char *s;
    size_t len, at;
} scan;

static bool value(scan *p, int depth);

static void skip_ws(scan *p)
{
    while (p->at < p->len && strchr(" \t\r\n", p->s[p->at]) != NULL && p->s[p->at] != '\0') {
        p->at++;
    }
}

static bool take(scan *p, char ch)
{
    if (p->at < p->len && p->s[p->at] == ch) {
        p->at++;
        return true;
    }
    return false;
}

static bool is_digit(const scan *p)
{
    return p->at < p->len && p->s[p->at] >= '0' && p->s[p->at] <= '9';
}

static bool digits(scan *p)
{
    if (!is_digit(p)) {
        return false;
    }
    while (is_digit(p)) {
        p->at++;
    }
    return true;
}

static bool number(scan *p)
{
    (void)take(p, '-');
    if (!take(p, '0') && !digits(p)) {
        return false;
    }
    if (take(p, '.') && !digits(p)) {
        return false;
    }
    if (take(p, 'e') || take(p, 'E')) {
        if (!take(p, '+')) {
            (void)take(p, '-');
        }
        return digits(p);
    }
    return true;
}

static bool hex4(scan *p)
{
    for (int i = 0; i < 4; i++, p->at++) {
        if (p->at >= p->len || strchr("0123456789abcdefABCDEF", p->s[p->at]) == NULL ||
            p->s[p->at] == '\0') {
            return false;
        }
    }
    return true;
}

static bool string(scan *p)
{
    if (!take(p, '"')) {
        return false;
    }
    while (p->at < p->len) {
        unsigned char ch = (unsigned char)p->s[p->at];
        if (ch == '"') {
            p->at++;
            return true;
        }
        if (ch < 0x20) {
            return false;
        }
        p->at++;
        if (ch == '\\') {
            if (take(p, 'u')) {
                if (!hex4(p)) {
                    return false;
                }
            } else if (p->at >= p->len || strchr("\"\\/bfnrt", p->s[p->at]) == NULL ||
                       p->s[p->at] == '\0') {
                return false;
            } else {
                p->at++;
            }
        }
    }
    return false;
}

static bool literal(scan *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->at < n || memcmp(p->s + p->at, word, n) != 0) {
        return false;
    }
    p->at += n;
    return true;
}

/* The members of an object or elements of an array, after its opening bracket. */
static bool members(scan *p, char close, bool keyed, int depth)
{
    skip_ws(p);
    if (take(p, close)) {
        return true;
    }
    do {
        skip_ws(p);
        if (keyed) {
            if (!string(p)) {
                return false;
            }
            skip_ws(p);
            if (!take(p, ':')) {
                return false;
            }
        }
        if (!value(p, depth + 1)) {
            return false;
        }
        skip_ws(p);
    } while (take(p, ','));
    return take(p, close);
}

static bool value(scan *p, int depth)
{
    if (depth > MAX_DEPTH) {
        return false;
    }
    skip_ws(p);
    if (p->at >= p->len) {
        return false;
    }
    switch (p->s[p->at]) {
    case '{':
        p->at++;
        return members(p, '}', true, depth);
    case '[':
        p->at++;
        return members(p, ']', false, depth);
    case '"':
        return string(p);
    case 't':
        return literal(p, "true");
    case 'f':
        return literal(p, "false");
    case 'n':
        return literal(p, "null");
    default:
        return number(p);
    }
}

bool cli_json_valid(const char *s, size_t len, size_t *out_at)
{
    scan p = {s, len, 0};
    bool ok = value(&p, 0);
    if (ok) {
        skip_ws(&p);
        ok = p.at == p.len;
    }
    if (!ok && out_at != NULL) {
        *out_at = p.at;
    }
    return ok;
}

int cli_check_json(const char *what, const char *s, size_t len, bool raw, const char *usage)
{
    size_t at = 0;
    if (raw || cli_json_valid(s, len, &at)) {
        return CLI_CONTINUE;
    }
    return cli_usage_error(usage, "%s is not valid JSON (at byte %zu); --raw sends it as it is",
                           what, at);
}
