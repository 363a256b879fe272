/*
 * Command-line parsing for dtctl's commands: options from a table ("--opt value", "--opt=value",
 * flags) and the global options, positionals, help, strict numbers and status lists; plus
 * reading an input file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "durabletask/alloc.h"

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dtctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (usage != NULL) {
        fputs(usage, stderr);
    }
    return CLI_EXIT_USAGE;
}

static const cli_opt *find_opt(const cli_opt *opts, size_t nopts, const char *arg, size_t len)
{
    for (size_t i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, arg, len) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

/* Handles argv[*i], an option of the command or a global one; advances *i past its value. */
static int parse_opt(cli *c, int argc, char **argv, int *i, const cli_opt *opts, size_t nopts,
                     const char *usage)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    cli_opt globals[CLI_NGLOBALS];
    cli_globals(c, globals);
    const cli_opt *o = find_opt(opts, nopts, arg, len);
    if (o == NULL) {
        o = find_opt(globals, CLI_NGLOBALS, arg, len);
    }
    if (o == NULL) {
        return cli_usage_error(usage, "unknown option '%.*s'", (int)len, arg);
    }
    if (o->flag != NULL) {
        if (eq != NULL) {
            return cli_usage_error(usage, "option %s takes no value", o->name);
        }
        *o->flag = true;
        return CLI_CONTINUE;
    }
    if (eq != NULL) {
        *o->value = eq + 1;
    } else if (*i + 1 < argc) {
        *o->value = argv[++*i];
    } else {
        return cli_usage_error(usage, "option %s needs a value", o->name);
    }
    return CLI_CONTINUE;
}

int cli_parse(cli *c, int argc, char **argv, const cli_opt *opts, size_t nopts, const char **pos,
              size_t min_pos, size_t max_pos, size_t *out_npos, const char *usage)
{
    size_t npos = 0;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_pos && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (!only_pos && arg[0] == '-' && arg[1] != '\0') {
            int rc = parse_opt(c, argc, argv, &i, opts, nopts, usage);
            if (rc != CLI_CONTINUE) {
                return rc;
            }
            continue;
        }
        if (npos == max_pos) {
            return cli_usage_error(usage, "unexpected argument '%s'", arg);
        }
        pos[npos++] = arg;
    }
    if (npos < min_pos) {
        return cli_usage_error(usage, "missing arguments");
    }
    if (out_npos != NULL) {
        *out_npos = npos;
    }
    return CLI_CONTINUE;
}

bool cli_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || s[0] == '\0') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

bool cli_statuses(const char *list, dt_client_runtime_status *out, size_t cap, size_t *n)
{
    size_t k = 0;
    const char *p = list;
    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char name[32];
        if (len == 0 || len >= sizeof(name) || k == cap) {
            return false;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if (dt_client_runtime_status_parse(name, &out[k++]) != DT_OK) {
            return false;
        }
        p = comma != NULL ? comma + 1 : NULL;
    }
    *n = k;
    return k > 0;
}

char *cli_read_file(const char *path, size_t max, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = dt_alloc(max + 1);
    size_t n = buf != NULL ? fread(buf, 1, max + 1, f) : 0;
    int err = buf == NULL ? ENOMEM : ferror(f) ? EIO : n > max ? EFBIG : 0;
    (void)fclose(f); /* opened for reading: nothing to lose */
    if (err != 0) {
        dt_free(buf);
        errno = err;
        return NULL;
    }
    buf[n] = '\0';
    *out_len = n;
    return buf;
}
