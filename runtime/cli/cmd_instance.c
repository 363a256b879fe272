/* dtctl start | status | wait. */
#include <errno.h>
#include <string.h>

#include "cli_int.h"
#include "durabletask/alloc.h"

static const char start_usage[] =
    "usage: dtctl start NAME [--id ID] [--input JSON | --input-file FILE] [--raw] [--version V]\n"
    "                   [--start-at-ms MS] [--reuse POLICY]\n"
    "                   [--execution-id ID] [--result-subject SUBJECT]\n"
    "\n"
    "Starts orchestration NAME and prints its instance ID (generated unless --id is given).\n"
    "The input must be one JSON value (exit 1 otherwise, nothing is started); with --raw any\n"
    "bytes are passed verbatim. --reuse says what happens when the ID is taken (the words of\n"
    "the Dt-Reuse-Policy header): error (default, exit 3), replace-if-finished (or replace: a\n"
    "finished instance is replaced), terminate (a running one is terminated and replaced),\n"
    "ignore (an unfinished instance stays and the start does nothing; exit 0). Giving the --id\n"
    "and --execution-id of an earlier start repeats it idempotently.\n";

static const char status_usage[] = "usage: dtctl status ID [--payloads]\n"
                                   "\n"
                                   "Shows the instance's status record; --payloads adds input,\n"
                                   "output and custom status.\n";

static const char wait_usage[] =
    "usage: dtctl wait ID [--timeout-ms N] [--start] [--payloads]\n"
    "\n"
    "Waits until the instance completes, fails or is terminated (with --start: until it has\n"
    "started), then shows its status. Without --timeout-ms it waits as long as it takes; when\n"
    "the time runs out it exits 4.\n";

static bool parse_reuse(const char *s, dt_client_reuse_policy *out)
{
    static const struct {
        const char *name;
        dt_client_reuse_policy p;
    } names[] = {{"error", DT_CLIENT_REUSE_ERROR},
                 {"replace-if-finished", DT_CLIENT_REUSE_REPLACE_IF_FINISHED},
                 {"replace", DT_CLIENT_REUSE_REPLACE_IF_FINISHED},
                 {"terminate", DT_CLIENT_REUSE_TERMINATE_AND_REPLACE},
                 {"ignore", DT_CLIENT_REUSE_IGNORE}};
    for (size_t i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].p;
            return true;
        }
    }
    return s == NULL;
}

typedef struct start_args {
    const char *id, *input, *input_file, *version, *start_at, *reuse, *exec, *result_subject;
    bool raw;
} start_args;

/* Fills the options from the parsed arguments; *file_buf receives a dt_alloc'd file input. */
static int start_options(const start_args *a, dt_client_start_options *o, char **file_buf)
{
    if (a->input != NULL && a->input_file != NULL) {
        return cli_usage_error(start_usage, "give --input or --input-file, not both");
    }
    if (!parse_reuse(a->reuse, &o->reuse_policy)) {
        return cli_usage_error(start_usage,
                               "--reuse is error, replace-if-finished, terminate or ignore");
    }
    if (a->start_at != NULL && !cli_i64(a->start_at, 0, INT64_MAX / 2, &o->start_at_ms)) {
        return cli_usage_error(start_usage, "--start-at-ms needs ms since the Unix epoch");
    }
    o->instance_id = a->id;
    o->execution_id = a->exec;
    o->version = a->version;
    o->result_subject = a->result_subject;
    if (a->input != NULL) {
        o->input = a->input;
        o->input_len = strlen(a->input);
    }
    if (a->input_file != NULL) {
        size_t len = 0;
        *file_buf = cli_read_file(a->input_file, (size_t)64 * 1024 * 1024, &len);
        if (*file_buf == NULL) {
            fprintf(stderr, "dtctl: cannot read %s: %s\n", a->input_file, strerror(errno));
            return CLI_EXIT_USAGE;
        }
        o->input = *file_buf;
        o->input_len = len;
    }
    if (o->input == NULL) {
        return CLI_CONTINUE;
    }
    return cli_check_json(a->input != NULL ? "--input" : "--input-file", o->input, o->input_len,
                          a->raw, start_usage);
}

int cmd_start(cli *c, int argc, char **argv)
{
    start_args a = {0};
    const cli_opt opts[] = {{"--id", &a.id, NULL},
                            {"--input", &a.input, NULL},
                            {"--input-file", &a.input_file, NULL},
                            {"--version", &a.version, NULL},
                            {"--start-at-ms", &a.start_at, NULL},
                            {"--reuse", &a.reuse, NULL},
                            {"--execution-id", &a.exec, NULL},
                            {"--result-subject", &a.result_subject, NULL},
                            {"--raw", NULL, &a.raw}};
    const char *name = NULL;
    int rc = cli_parse(c, argc, argv, opts, sizeof(opts) / sizeof(opts[0]), &name, 1, 1, NULL,
                       start_usage);
    dt_client_start_options o = {0};
    char *file_buf = NULL;
    if (rc == CLI_CONTINUE) {
        rc = start_options(&a, &o, &file_buf);
    }
    if (rc == CLI_CONTINUE) {
        rc = cli_client(c);
    }
    if (rc == CLI_CONTINUE) {
        char id[DT_CLIENT_ID_BUF];
        dt_status st = dt_client_schedule(c->client, name, &o, id, sizeof(id));
        if (st != DT_OK) {
            rc = cli_fail_client(c, st);
        } else {
            out_done(c, id, "start", id);
            rc = CLI_EXIT_OK;
        }
    }
    dt_free(file_buf);
    return rc;
}

int cmd_status(cli *c, int argc, char **argv)
{
    bool payloads = false;
    const cli_opt opts[] = {{"--payloads", NULL, &payloads}};
    const char *id = NULL;
    int rc = cli_parse(c, argc, argv, opts, 1, &id, 1, 1, NULL, status_usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_client_instance *in = NULL;
    dt_status st = dt_client_get_status(c->client, id, payloads, &in);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    out_instance(c, in);
    dt_client_instance_free(in);
    return CLI_EXIT_OK;
}

int cmd_wait(cli *c, int argc, char **argv)
{
    bool payloads = false, start = false;
    const char *timeout = NULL;
    const cli_opt opts[] = {{"--payloads", NULL, &payloads},
                            {"--start", NULL, &start},
                            {"--timeout-ms", &timeout, NULL}};
    const char *id = NULL;
    int rc = cli_parse(c, argc, argv, opts, 3, &id, 1, 1, NULL, wait_usage);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    int64_t t = -1;
    if (timeout != NULL && !cli_i64(timeout, 0, INT64_MAX / 2, &t)) {
        return cli_usage_error(wait_usage, "--timeout-ms needs a number >= 0");
    }
    if ((rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_client_instance *in = NULL;
    dt_status st = start ? dt_client_wait_for_start(c->client, id, t, payloads, &in)
                         : dt_client_wait_for_completion(c->client, id, t, payloads, &in);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    out_instance(c, in);
    dt_client_instance_free(in);
    return CLI_EXIT_OK;
}
