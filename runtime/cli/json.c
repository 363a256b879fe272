/*
 * A small streaming JSON writer for dtctl's --json output. It tracks nesting to place commas,
 * escapes strings per RFC 8259 and replaces invalid UTF-8 with U+FFFD, so that any payload
 * bytes print as valid JSON.
 */
#include <string.h>

#include "cli_int.h"

void json_init(cli_json *j, FILE *f)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
    j->first[0] = true;
}

/* Writes the separator a new value needs in the current container. */
static void sep(cli_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (!j->first[j->depth]) {
        fputc(',', j->f);
    }
    j->first[j->depth] = false;
}

static void open_c(cli_json *j, char ch)
{
    sep(j);
    fputc(ch, j->f);
    if (j->depth + 1 < CLI_JSON_DEPTH) {
        j->depth++;
    }
    j->first[j->depth] = true;
}

static void close_c(cli_json *j, char ch)
{
    fputc(ch, j->f);
    if (j->depth > 0) {
        j->depth--;
    }
    if (j->depth == 0) {
        fputc('\n', j->f);
        j->first[0] = true;
    }
}

void json_obj_begin(cli_json *j)
{
    open_c(j, '{');
}

void json_obj_end(cli_json *j)
{
    close_c(j, '}');
}

void json_arr_begin(cli_json *j)
{
    open_c(j, '[');
}

void json_arr_end(cli_json *j)
{
    close_c(j, ']');
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
    if (len == 0 || len > n || p[0] > 0xf4 || p[0] == 0xc0 || p[0] == 0xc1) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    /* Overlong 3/4-byte forms, surrogates, and code points above U+10FFFF. */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)) {
        return 0;
    }
    return len;
}

static void escaped(FILE *f, const unsigned char *p, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char ch = p[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
        } else if (ch == '\n') {
            fputs("\\n", f);
        } else if (ch == '\r') {
            fputs("\\r", f);
        } else if (ch == '\t') {
            fputs("\\t", f);
        } else if (ch < 0x20 || ch == 0x7f) {
            fprintf(f, "\\u%04x", ch);
        } else if (ch < 0x80) {
            fputc(ch, f);
        } else {
            size_t len = utf8_len(p + i, n - i);
            if (len == 0) {
                fputs("\\ufffd", f);
                i++;
                continue;
            }
            fwrite(p + i, 1, len, f);
            i += len;
            continue;
        }
        i++;
    }
    fputc('"', f);
}

void json_key(cli_json *j, const char *k)
{
    sep(j);
    escaped(j->f, (const unsigned char *)k, strlen(k));
    fputc(':', j->f);
    j->after_key = true;
}

void json_str(cli_json *j, const char *s)
{
    if (s == NULL) {
        json_null(j);
        return;
    }
    json_bytes(j, s, strlen(s));
}

void json_bytes(cli_json *j, const void *data, size_t len)
{
    if (data == NULL) {
        json_null(j);
        return;
    }
    sep(j);
    escaped(j->f, data, len);
}

void json_i64(cli_json *j, int64_t v)
{
    sep(j);
    fprintf(j->f, "%lld", (long long)v);
}

void json_bool(cli_json *j, bool v)
{
    sep(j);
    fputs(v ? "true" : "false", j->f);
}

void json_null(cli_json *j)
{
    sep(j);
    fputs("null", j->f);
}

void json_kv_str(cli_json *j, const char *k, const char *v)
{
    json_key(j, k);
    json_str(j, v);
}

void json_kv_bytes(cli_json *j, const char *k, const void *data, size_t len)
{
    json_key(j, k);
    json_bytes(j, data, len);
}

void json_kv_i64(cli_json *j, const char *k, int64_t v)
{
    json_key(j, k);
    json_i64(j, v);
}

void json_kv_bool(cli_json *j, const char *k, bool v)
{
    json_key(j, k);
    json_bool(j, v);
}
