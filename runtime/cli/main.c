/*
 * dtctl: the command-line client of a durabletask-nats task hub. Global options, the command
 * table, error reporting and exit codes; the commands live in cmd_*.c.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_int.h"
#include "durabletask/library.h"

static const char usage[] =
    "usage: dtctl [global options] <command> [args] [global options]\n"
    "       dtctl --version\n"
    "\n"
    "Commands (dtctl <command> --help for details):\n"
    "  hub create|delete|info   manage the task hub\n"
    "  start NAME               start an orchestration; prints its instance ID\n"
    "  status ID                show an instance's status\n"
    "  wait ID                  wait for an instance to finish (or --start)\n"
    "  list                     list instances (filters, paging)\n"
    "  history ID               show an instance's history\n"
    "  raise ID EVENT           raise an event to an instance\n"
    "  terminate ID             terminate an instance\n"
    "  suspend ID               suspend an instance\n"
    "  resume ID                resume a suspended instance\n"
    "  rewind ID                rewind a failed instance (its failed calls run again)\n"
    "  purge ID | purge --status S,...   delete finished instances\n"
    "  entity get|list|signal|clean    durable entities (dtctl entity --help)\n"
    "\n"
    "Global options:\n"
    "  --url URL       NATS server URL(s), comma-separated (default: $DT_NATS_URL, else\n"
    "                  nats://127.0.0.1:4222)\n"
    "  --hub HUB       task hub (default: $DT_HUB, else \"default\")\n"
    "  --json          print one JSON object per result (errors too, on stderr)\n"
    "  --request-timeout-ms N   timeout of broker requests and queries (default 5000)\n"
    "Security options (global too; each defaults to the environment variable shown; a tls://\n"
    "URL or a CA or certificate option makes TLS required; see docs/operations.md):\n"
    "  --creds FILE      NATS credentials file (user JWT + nkey seed)      $DT_NATS_CREDS\n"
    "  --nkey FILE       file holding a user nkey seed (SU...)              $DT_NATS_NKEY\n"
    "  --token TOKEN     authentication token                               $DT_NATS_TOKEN\n"
    "  --user USER       user name (with --password)                        $DT_NATS_USER\n"
    "  --password PASS   password (prefer the variable: flags show in ps)   $DT_NATS_PASSWORD\n"
    "  --tls-ca FILE     PEM CA bundle that verifies the servers            $DT_NATS_CA\n"
    "  --tls-cert FILE   PEM client certificate for mutual TLS              $DT_NATS_CERT\n"
    "  --tls-key FILE    PEM private key of --tls-cert                      $DT_NATS_KEY\n"
    "Global options go before or after the command: dtctl status ID --json.\n"
    "\n"
    "JSON input: start --input/--input-file and raise --data must be one JSON value (exit 1\n"
    "otherwise, nothing is sent); --raw passes any bytes verbatim.\n"
    "\n"
    "Exit codes: 0 ok, 1 usage or invalid argument, 2 not found, 3 exists / conflict / wrong\n"
    "state, 4 timeout, 5 broker or other error.\n";

typedef struct command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
} command;

static const command commands[] = {
    {"hub", cmd_hub},       {"start", cmd_start},         {"status", cmd_status},
    {"wait", cmd_wait},     {"list", cmd_list},           {"history", cmd_history},
    {"raise", cmd_raise},   {"terminate", cmd_terminate}, {"suspend", cmd_suspend},
    {"resume", cmd_resume}, {"purge", cmd_purge},         {"rewind", cmd_rewind},
    {"entity", cmd_entity},
};

int cli_exit_code(dt_status st)
{
    switch (st) {
    case DT_OK:
        return CLI_EXIT_OK;
    case DT_EINVAL:
        return CLI_EXIT_USAGE;
    case DT_ENOTFOUND:
        return CLI_EXIT_NOTFOUND;
    case DT_EEXIST:
    case DT_ECONFLICT:
    case DT_ESTATE:
        return CLI_EXIT_CONFLICT;
    case DT_ETIMEOUT:
        return CLI_EXIT_TIMEOUT;
    default:
        return CLI_EXIT_ERROR;
    }
}

int cli_fail(const cli *c, dt_status st, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->json) {
        cli_json_print(stderr,
                       json_pack("{s:{s:s,s:o,s:i}}", "error", "status", dt_status_name(st),
                                 "message", dt__jconv_str(msg), "exit_code", cli_exit_code(st)));
    } else {
        fprintf(stderr, "dtctl: %s\n", msg);
    }
    return cli_exit_code(st);
}

int cli_fail_client(const cli *c, dt_status st)
{
    return cli_fail(c, st, "%s", dt_client_errmsg(c->client));
}

void cli_globals(cli *c, cli_opt out[CLI_NGLOBALS])
{
    out[0] = (cli_opt){"--url", &c->url, NULL};
    out[1] = (cli_opt){"--hub", &c->hub, NULL};
    out[2] = (cli_opt){"--json", NULL, &c->json};
    out[3] = (cli_opt){"--request-timeout-ms", &c->timeout_arg, NULL};
    out[4] = (cli_opt){"--creds", &c->sec.creds_file, NULL};
    out[5] = (cli_opt){"--nkey", &c->sec.nkey_seed_file, NULL};
    out[6] = (cli_opt){"--token", &c->sec.token, NULL};
    out[7] = (cli_opt){"--user", &c->sec.user, NULL};
    out[8] = (cli_opt){"--password", &c->sec.password, NULL};
    out[9] = (cli_opt){"--tls-ca", &c->sec.tls_ca_file, NULL};
    out[10] = (cli_opt){"--tls-cert", &c->sec.tls_cert_file, NULL};
    out[11] = (cli_opt){"--tls-key", &c->sec.tls_key_file, NULL};
}

int cli_client(cli *c)
{
    if (c->client != NULL) {
        return CLI_CONTINUE;
    }
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = c->url;
    o.hub = c->hub;
    o.connection_name = "dtctl";
    o.security = c->sec;
    int64_t t = 0;
    if (c->timeout_arg != NULL && !cli_i64(c->timeout_arg, 1, INT64_MAX / 2, &t)) {
        return cli_usage_error(usage, "--request-timeout-ms needs a positive number");
    }
    if (t > 0) {
        o.request_timeout_ms = t;
    }
    char err[512] = "";
    dt_status st = dt_client_create(&o, &c->client, err, sizeof(err));
    if (st != DT_OK) {
        return cli_fail(c, st, "%s", err[0] != '\0' ? err : dt_status_str(st));
    }
    return CLI_CONTINUE;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

/* Parses the options before the command in argv[1..): returns the index of the command, or 0
 * after setting *rc to the exit code (help, version, or a usage error). */
static int parse_globals(cli *c, int argc, char **argv, int *rc)
{
    bool help = false, version = false;
    cli_opt opts[CLI_NGLOBALS + 3];
    cli_globals(c, opts);
    opts[CLI_NGLOBALS] = (cli_opt){"--help", NULL, &help};
    opts[CLI_NGLOBALS + 1] = (cli_opt){"-h", NULL, &help};
    opts[CLI_NGLOBALS + 2] = (cli_opt){"--version", NULL, &version};
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && !help && !version; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        const cli_opt *o = NULL;
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && o == NULL; k++) {
            o = strlen(opts[k].name) == len && strncmp(opts[k].name, argv[i], len) == 0 ? &opts[k]
                                                                                        : NULL;
        }
        if (o == NULL || (o->flag != NULL && eq != NULL) ||
            (o->value != NULL && eq == NULL && i + 1 >= argc)) {
            /* only the name: a mistyped --pasword=SECRET must not echo the secret */
            *rc = cli_usage_error(usage, "bad global option '%.*s'", (int)len, argv[i]);
            return 0;
        }
        if (o->flag != NULL) {
            *o->flag = true;
        } else {
            *o->value = eq != NULL ? eq + 1 : argv[++i];
        }
    }
    if (help || version) {
        if (help) {
            fputs(usage, stdout);
        } else {
            printf("dtctl %s (durabletask-nats)\n", DTCTL_VERSION);
        }
        *rc = CLI_EXIT_OK;
        return 0;
    }
    dt_nats_security_from_env(&c->sec); /* what no flag set */
    if (i == argc) {
        *rc = cli_usage_error(usage, "no command");
        return 0;
    }
    return i;
}

static int run(cli *c, int argc, char **argv)
{
    int rc = CLI_EXIT_OK;
    int i = parse_globals(c, argc, argv, &rc);
    if (i == 0) {
        return rc;
    }
    if (strcmp(argv[i], "help") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strcmp(argv[i], commands[k].name) == 0) {
            return commands[k].run(c, argc - i - 1, argv + i + 1);
        }
    }
    return cli_usage_error(usage, "unknown command '%s'", argv[i]);
}

/* True when stdout is a pipe or socket whose reader has gone (poll reports POLLERR on the write
 * end of a pipe without readers). */
static bool reader_gone(void)
{
    struct pollfd p = {.fd = STDOUT_FILENO, .events = 0, .revents = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}

int main(int argc, char **argv)
{
    /* A reader that stopped reading (dtctl list | head -1) is not an error: writes then fail with
     * EPIPE instead of killing the process, and the end below stays quiet about them. */
    (void)signal(SIGPIPE, SIG_IGN);
    cli c = {.url = env_or("DT_NATS_URL", NULL), .hub = env_or("DT_HUB", "default")};
    int rc = run(&c, argc, argv);
    dt_client_destroy(c.client);
    (void)dt_library_shutdown();
    /* Output goes through stdio unchecked call by call; a failed write (full disk, closed pipe)
     * shows in the stream's error flag, checked once here. */
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno == EPIPE || reader_gone()) {
            return rc;
        }
        (void)fputs("dtctl: cannot write the output\n", stderr);
        return rc == CLI_EXIT_OK ? CLI_EXIT_ERROR : rc;
    }
    return rc;
}
