/* dtctl list | history | purge: queries answered by the partitions' workers. */
#include <string.h>

#include "cli_int.h"

static const char list_usage[] =
    "usage: dtctl list [--status S,...] [--name N] [--prefix P] [--created-from-ms MS]\n"
    "                  [--created-to-ms MS] [--limit N] [--page TOKEN] [--payloads]\n"
    "\n"
    "Lists instances matching every filter given, partition by partition (instance ID order\n"
    "within one), at most --limit (default 100, at most 10000). When more follow, the last line\n"
    "(or next_page_token in JSON) gives the --page token of the next page. Statuses: RUNNING,\n"
    "COMPLETED, CONTINUED_AS_NEW, FAILED, CANCELED, TERMINATED, PENDING, SUSPENDED. Needs a\n"
    "running worker for every partition (exit 5 otherwise).\n";

static const char history_usage[] = "usage: dtctl history ID\n"
                                    "\n"
                                    "Shows the history of the instance's current execution.\n";

static const char purge_usage[] =
    "usage: dtctl purge [--recursive] ID\n"
    "       dtctl purge [--recursive] --status S,... [--name N] [--prefix P]\n"
    "                   [--created-from-ms MS] [--created-to-ms MS]\n"
    "       dtctl purge [--recursive] --all-finished\n"
    "\n"
    "Deletes finished (completed, failed, canceled, terminated) instances: their history and\n"
    "their status records. Purging an unfinished instance exits 3; other statuses in --status\n"
    "are ignored. --recursive also deletes the sub-orchestrations each one started, and theirs\n"
    "(those still running are left).\n";

typedef struct filter_args {
    const char *status, *name, *prefix, *from, *to;
    dt_client_runtime_status sts[8];
} filter_args;

static int make_filter(filter_args *a, dt_client_filter *f, const char *usage)
{
    memset(f, 0, sizeof(*f));
    if (a->status != NULL && !cli_statuses(a->status, a->sts, 8, &f->nstatuses)) {
        return cli_usage_error(usage, "bad --status list '%s'", a->status);
    }
    f->statuses = a->sts;
    f->name = a->name;
    f->instance_id_prefix = a->prefix;
    if ((a->from != NULL && !cli_i64(a->from, 0, INT64_MAX / 2, &f->created_from_ms)) ||
        (a->to != NULL && !cli_i64(a->to, 0, INT64_MAX / 2, &f->created_to_ms))) {
        return cli_usage_error(usage, "--created-from-ms / --created-to-ms need ms since the "
                                      "Unix epoch");
    }
    return CLI_CONTINUE;
}

int cmd_list(cli *c, int argc, char **argv)
{
    filter_args fa = {0};
    const char *limit = NULL, *page = NULL;
    bool payloads = false;
    const cli_opt opts[] = {
        {"--status", &fa.status, NULL},    {"--name", &fa.name, NULL},
        {"--prefix", &fa.prefix, NULL},    {"--created-from-ms", &fa.from, NULL},
        {"--created-to-ms", &fa.to, NULL}, {"--limit", &limit, NULL},
        {"--page", &page, NULL},           {"--payloads", NULL, &payloads}};
    int rc = cli_parse(c, argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0, 0, NULL,
                       list_usage);
    dt_client_filter f;
    if (rc == CLI_CONTINUE) {
        rc = make_filter(&fa, &f, list_usage);
    }
    int64_t n = 0;
    if (rc == CLI_CONTINUE && limit != NULL && !cli_i64(limit, 1, DT_CLIENT_PAGE_MAX, &n)) {
        rc = cli_usage_error(list_usage, "--limit is 1..%d", DT_CLIENT_PAGE_MAX);
    }
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_client_page *pg = NULL;
    dt_status st = dt_client_list(c->client, &f, page, (size_t)n, payloads, &pg);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    out_page(c, pg);
    dt_client_page_free(pg);
    return CLI_EXIT_OK;
}

int cmd_history(cli *c, int argc, char **argv)
{
    const char *id = NULL;
    int rc = cli_parse(c, argc, argv, NULL, 0, &id, 1, 1, NULL, history_usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_client_history *h = NULL;
    dt_status st = dt_client_get_history(c->client, id, &h);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    out_history(c, id, h);
    dt_client_history_free(h);
    return CLI_EXIT_OK;
}

static int purge_where(cli *c, const dt_client_filter *f, bool recursive)
{
    uint64_t n = 0;
    dt_status st = recursive ? dt_client_purge_where_recursive(c->client, f, &n)
                             : dt_client_purge_where(c->client, f, &n);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    if (c->json) {
        cli_json_print(stdout, json_pack("{s:I}", "purged", (json_int_t)n));
    } else {
        printf("purged %llu instances\n", (unsigned long long)n);
    }
    return CLI_EXIT_OK;
}

int cmd_purge(cli *c, int argc, char **argv)
{
    filter_args fa = {0};
    bool all = false, recursive = false;
    const cli_opt opts[] = {
        {"--status", &fa.status, NULL},    {"--name", &fa.name, NULL},
        {"--prefix", &fa.prefix, NULL},    {"--created-from-ms", &fa.from, NULL},
        {"--created-to-ms", &fa.to, NULL}, {"--all-finished", NULL, &all},
        {"--recursive", NULL, &recursive}};
    const char *id = NULL;
    size_t npos = 0;
    int rc = cli_parse(c, argc, argv, opts, sizeof(opts) / sizeof(opts[0]), &id, 0, 1, &npos,
                       purge_usage);
    bool filtered = fa.status != NULL || fa.name != NULL || fa.prefix != NULL || fa.from != NULL ||
                    fa.to != NULL;
    if (rc == CLI_CONTINUE && npos == 1 && (filtered || all)) {
        rc = cli_usage_error(purge_usage, "give an instance ID or a filter, not both");
    } else if (rc == CLI_CONTINUE && npos == 0 && !filtered && !all) {
        rc = cli_usage_error(purge_usage, "give an instance ID, a filter or --all-finished");
    }
    dt_client_filter f;
    if (rc == CLI_CONTINUE) {
        rc = make_filter(&fa, &f, purge_usage);
    }
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    if (npos == 0) {
        return purge_where(c, &f, recursive);
    }
    uint64_t n = 1;
    dt_status st =
        recursive ? dt_client_purge_recursive(c->client, id, &n) : dt_client_purge(c->client, id);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    char text[300];
    if (recursive) {
        snprintf(text, sizeof(text), "purged %s and %llu sub-orchestrations", id,
                 (unsigned long long)(n > 0 ? n - 1 : 0));
    } else {
        snprintf(text, sizeof(text), "purged %s", id);
    }
    out_done(c, id, "purge", text);
    return CLI_EXIT_OK;
}
