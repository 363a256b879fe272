/*
 * cli_int.h: what the files of dtctl share.
 *
 * main.c parses the global options and dispatches; args.c parses a command's options; out.c
 * prints results (human, or JSON built with jansson in the form of jconv.h); cmd_*.c are the
 * commands, one file per group (hub; start/status/wait; raise/terminate/suspend/resume;
 * list/history/purge).
 *
 * Every command returns a process exit code (CLI_EXIT_*). Results go to stdout, one JSON object
 * per result with --json; errors go to stderr (as a JSON object with --json).
 */
#ifndef DT_CLI_INT_H
#define DT_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "durabletask/client.h"
#include "jconv.h"

/* Exit codes (documented in `dtctl --help`). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_USAGE = 1,    /* bad command line, invalid argument */
    CLI_EXIT_NOTFOUND = 2, /* no such instance or hub */
    CLI_EXIT_CONFLICT = 3, /* exists, conflicting settings, wrong state */
    CLI_EXIT_TIMEOUT = 4,
    CLI_EXIT_ERROR = 5 /* broker and everything else */
};

/* Returned by cli_parse when the command should go on. */
#define CLI_CONTINUE (-1)

/* The global options; set before or after the command (cli_globals). */
typedef struct cli {
    const char *url;      /* --url, $DT_NATS_URL, or NULL (the client's default) */
    dt_nats_security sec; /* --creds, --token, ..., else $DT_NATS_CREDS, $DT_NATS_TOKEN, ... */
    const char *hub;      /* --hub, $DT_HUB, or "default" */
    bool json;
    const char *timeout_arg; /* --request-timeout-ms as given; checked by cli_client() */
    dt_client *client;       /* connected by cli_client() on first use */
} cli;

/* The exit code of a status. */
int cli_exit_code(dt_status st);

/* Prints an error for `st` (text from fmt) to stderr and returns its exit code. */
int cli_fail(const cli *c, dt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* cli_fail with the client's error message. */
int cli_fail_client(const cli *c, dt_status st);

/* Connects on first use (checking --request-timeout-ms first). Returns CLI_CONTINUE, or an exit
 * code after printing the error. */
int cli_client(cli *c);

/* ---- args.c ---- */

typedef struct cli_opt {
    const char *name;   /* "--id" */
    const char **value; /* option with a value: receives it (NULL for flags) */
    bool *flag;         /* flag: set to true (NULL for options with a value) */
} cli_opt;

/* Number of global options. */
#define CLI_NGLOBALS 12

/* Fills out[] with the global options (--url, --hub, --json, --request-timeout-ms and the
 * security options) bound to c's fields (main.c). */
void cli_globals(cli *c, cli_opt out[CLI_NGLOBALS]);

/*
 * Parses a command's argv[0..argc) into options and positionals (at most max_pos, at least
 * min_pos, into pos[]). Accepts "--opt value" and "--opt=value", the command's options and the
 * global ones (so `dtctl status ID --json` works like `dtctl --json status ID`); "--" ends
 * options. -h/--help prints the usage to stdout. Returns CLI_CONTINUE, or the exit code (0 after
 * help, CLI_EXIT_USAGE after an error message and the usage on stderr).
 */
int cli_parse(cli *c, int argc, char **argv, const cli_opt *opts, size_t nopts, const char **pos,
              size_t min_pos, size_t max_pos, size_t *out_npos, const char *usage);

/* Prints "dtctl: <msg>" and the usage to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing (whole string, range-checked). */
bool cli_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parses "RUNNING,completed,..." into out[0..*n) (cap entries at most). */
bool cli_statuses(const char *list, dt_client_runtime_status *out, size_t cap, size_t *n);

/* Reads a whole file (at most max bytes) into a dt_alloc'd buffer; NULL with errno set. */
char *cli_read_file(const char *path, size_t max, size_t *out_len);

/* ---- json_check.c ---- */

/* True when s[0..len) is one JSON value (RFC 8259, surrounding whitespace allowed, UTF-8 not
 * checked); else false with *out_at the byte offset where it stops being JSON. Nesting is
 * bounded (512 levels). */
bool cli_json_valid(const char *s, size_t len, size_t *out_at);

/* The rule for JSON inputs (start --input/--input-file, raise --data): unless `raw`, the bytes
 * must be JSON. Returns CLI_CONTINUE, or CLI_EXIT_USAGE after a message naming `what`. */
int cli_check_json(const char *what, const char *s, size_t len, bool raw, const char *usage);

/* ---- out.c: JSON output (jansson; the objects' form is jconv.h's) ---- */

/* Prints `v` (a new reference, taken) compactly on one line to f; memory exhausted: "null". */
void cli_json_print(FILE *f, json_t *v);

/* ---- out.c ---- */

/* "2024-05-01T12:00:00.123Z" into buf (>= 32 bytes); "-" for 0. */
const char *cli_time(int64_t ms, char *buf, size_t len);
/* One instance: a JSON object, or "key: value" lines. */
void out_instance(const cli *c, const dt_client_instance *in);
/* A page of instances: JSON {"instances": [...], "next_page_token": ...} or a table. */
void out_page(const cli *c, const dt_client_page *pg);
/* A history: JSON {"instance_id": ..., "events": [...]} or a table. */
void out_history(const cli *c, const char *id, const dt_client_history *h);
/* A one-line result of an action: JSON {"instance_id": id, "<key>": <value>} or the text. */
void out_done(const cli *c, const char *id, const char *action, const char *text);

/* ---- commands ---- */

int cmd_hub(cli *c, int argc, char **argv);
int cmd_start(cli *c, int argc, char **argv);
int cmd_status(cli *c, int argc, char **argv);
int cmd_wait(cli *c, int argc, char **argv);
int cmd_raise(cli *c, int argc, char **argv);
int cmd_terminate(cli *c, int argc, char **argv);
int cmd_rewind(cli *c, int argc, char **argv);
int cmd_suspend(cli *c, int argc, char **argv);
int cmd_resume(cli *c, int argc, char **argv);
int cmd_list(cli *c, int argc, char **argv);
int cmd_history(cli *c, int argc, char **argv);
int cmd_purge(cli *c, int argc, char **argv);
int cmd_entity(cli *c, int argc, char **argv);

#endif
