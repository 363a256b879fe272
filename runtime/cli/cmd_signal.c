/* dtctl raise | terminate | suspend | resume | rewind. */
#include <string.h>

#include "cli_int.h"

static const char raise_usage[] =
    "usage: dtctl raise ID EVENT [--data JSON] [--raw] [--key IDEMPOTENCY_KEY]\n"
    "\n"
    "Raises event EVENT with the given data to the instance. The data must be one JSON value\n"
    "(exit 1 otherwise, nothing is sent); with --raw any bytes are passed verbatim. With --key,\n"
    "repeating the same command delivers the event once. Exit 2 if there is no such instance,\n"
    "3 if it has finished.\n";

static const char terminate_usage[] =
    "usage: dtctl terminate ID [--reason R] [--recursive]\n"
    "\n"
    "Terminates the instance (and, with --recursive, its sub-orchestrations); the reason becomes\n"
    "its output.\n";

static const char suspend_usage[] = "usage: dtctl suspend ID [--reason R]\n"
                                    "\n"
                                    "Suspends the instance: its events wait until it is "
                                    "resumed.\n";

static const char resume_usage[] = "usage: dtctl resume ID [--reason R]\n"
                                   "\n"
                                   "Resumes a suspended instance.\n";

static const char rewind_usage[] =
    "usage: dtctl rewind ID [--reason R]\n"
    "\n"
    "Rewinds a failed instance: its failed activities run again, failed sub-orchestrations are\n"
    "rewound too, and it continues from where it first failed. Exit 2 if there is no such\n"
    "instance, 3 if it is not failed.\n";

/* Reports the outcome of a signal call. */
static int finish(cli *c, dt_status st, const char *id, const char *action, const char *what)
{
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    char text[512];
    snprintf(text, sizeof(text), "%s %s", what, id);
    out_done(c, id, action, text);
    return CLI_EXIT_OK;
}

int cmd_raise(cli *c, int argc, char **argv)
{
    const char *data = NULL, *key = NULL;
    bool raw = false;
    const cli_opt opts[] = {{"--data", &data, NULL}, {"--key", &key, NULL}, {"--raw", NULL, &raw}};
    const char *pos[2] = {NULL, NULL};
    int rc = cli_parse(c, argc, argv, opts, 3, pos, 2, 2, NULL, raise_usage);
    if (rc == CLI_CONTINUE && data != NULL) {
        rc = cli_check_json("--data", data, strlen(data), raw, raise_usage);
    }
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_status st = dt_client_raise_event(c->client, pos[0], pos[1], data,
                                         data != NULL ? strlen(data) : 0, key);
    return finish(c, st, pos[0], "raise", "raised event to");
}

int cmd_terminate(cli *c, int argc, char **argv)
{
    const char *reason = NULL;
    bool recursive = false;
    const cli_opt opts[] = {{"--reason", &reason, NULL}, {"--recursive", NULL, &recursive}};
    const char *id = NULL;
    int rc = cli_parse(c, argc, argv, opts, 2, &id, 1, 1, NULL, terminate_usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_status st = dt_client_terminate(c->client, id, reason, recursive);
    return finish(c, st, id, "terminate", "terminate requested for");
}

int cmd_suspend(cli *c, int argc, char **argv)
{
    const char *reason = NULL;
    const cli_opt opts[] = {{"--reason", &reason, NULL}};
    const char *id = NULL;
    int rc = cli_parse(c, argc, argv, opts, 1, &id, 1, 1, NULL, suspend_usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_status st = dt_client_suspend(c->client, id, reason);
    return finish(c, st, id, "suspend", "suspend requested for");
}

int cmd_resume(cli *c, int argc, char **argv)
{
    const char *reason = NULL;
    const cli_opt opts[] = {{"--reason", &reason, NULL}};
    const char *id = NULL;
    int rc = cli_parse(c, argc, argv, opts, 1, &id, 1, 1, NULL, resume_usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_status st = dt_client_resume(c->client, id, reason);
    return finish(c, st, id, "resume", "resume requested for");
}

int cmd_rewind(cli *c, int argc, char **argv)
{
    const char *reason = NULL;
    const cli_opt opts[] = {{"--reason", &reason, NULL}};
    const char *id = NULL;
    int rc = cli_parse(c, argc, argv, opts, 1, &id, 1, 1, NULL, rewind_usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_status st = dt_client_rewind(c->client, id, reason);
    return finish(c, st, id, "rewind", "rewind requested for");
}
