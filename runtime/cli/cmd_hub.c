/* dtctl hub create | delete | info | retention. */
#include <string.h>

#include "cli_int.h"

static const char usage[] =
    "usage: dtctl hub create [--partitions N] [--lease-ttl-ms N] [--max-msg-size N]\n"
    "                        [--replicas N] [--duplicate-window-ms N] [--storage file|memory]\n"
    "       dtctl hub info\n"
    "       dtctl hub delete\n"
    "       dtctl hub retention [--completed-ms N] [--failed-ms N] [--terminated-ms N]\n"
    "\n"
    "create makes the hub's streams and buckets (idempotent: the same settings again are fine;\n"
    "different ones are a conflict, exit 3). info shows the settings and the messages waiting in\n"
    "the hub's streams. delete removes the hub with all its messages and status records.\n"
    "retention shows how long finished instances are kept (0: until purged by hand), and with\n"
    "options sets it (the others keep their values); the workers purge older ones.\n";

static void print_info(const cli *c, const dt_client_hub_info *h, const dt_client_hub_stats *s)
{
    char t[40];
    if (c->json) {
        json_t *o = json_pack(
            "{s:o,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:I,s:I}", "hub", dt__jconv_str(c->hub), "partitions",
            (json_int_t)h->partitions, "replicas", (json_int_t)h->replicas, "max_msg_size",
            (json_int_t)h->max_msg_size, "duplicate_window_ms", (json_int_t)h->duplicate_window_ms,
            "lease_ttl_ms", (json_int_t)h->lease_ttl_ms, "storage",
            h->memory_storage ? "memory" : "file", "created_at",
            cli_time(h->created_at_ms, t, sizeof(t)), "created_at_ms", (json_int_t)h->created_at_ms,
            "format_version", (json_int_t)h->format_version);
        if (o != NULL && s != NULL) {
            json_object_set_new(
                o, "messages",
                json_pack("{s:I,s:I,s:I,s:I}", "orchestration", (json_int_t)s->orchestration_msgs,
                          "activity", (json_int_t)s->activity_msgs, "ingress",
                          (json_int_t)s->ingress_msgs, "dead", (json_int_t)s->dead_msgs));
        }
        cli_json_print(stdout, o);
        return;
    }
    printf("%-22s %s\n", "hub:", c->hub);
    printf("%-22s %u\n", "partitions:", h->partitions);
    printf("%-22s %u\n", "replicas:", h->replicas);
    printf("%-22s %u\n", "max message size:", h->max_msg_size);
    printf("%-22s %lld\n", "duplicate window ms:", (long long)h->duplicate_window_ms);
    printf("%-22s %lld\n", "lease ttl ms:", (long long)h->lease_ttl_ms);
    printf("%-22s %s\n", "storage:", h->memory_storage ? "memory" : "file");
    printf("%-22s %s\n", "created:", cli_time(h->created_at_ms, t, sizeof(t)));
    if (s != NULL) {
        printf("%-22s orchestration %llu, activity %llu, ingress %llu, dead %llu\n",
               "messages waiting:", (unsigned long long)s->orchestration_msgs,
               (unsigned long long)s->activity_msgs, (unsigned long long)s->ingress_msgs,
               (unsigned long long)s->dead_msgs);
    }
}

/* Parses an optional numeric option into *out (unchanged when absent). */
static bool num_opt(const char *v, int64_t min, int64_t max, int64_t *out)
{
    return v == NULL || cli_i64(v, min, max, out);
}

static int hub_create(cli *c, int argc, char **argv)
{
    const char *parts = NULL, *ttl = NULL, *maxmsg = NULL, *replicas = NULL, *dup = NULL,
               *storage = NULL;
    const cli_opt opts[] = {{"--partitions", &parts, NULL},        {"--lease-ttl-ms", &ttl, NULL},
                            {"--max-msg-size", &maxmsg, NULL},     {"--replicas", &replicas, NULL},
                            {"--duplicate-window-ms", &dup, NULL}, {"--storage", &storage, NULL}};
    int rc =
        cli_parse(c, argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0, 0, NULL, usage);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    dt_client_hub_info h;
    dt_client_hub_info_init(&h);
    int64_t p = h.partitions, m = h.max_msg_size, r = h.replicas;
    if (!num_opt(parts, 1, 1024, &p) || !num_opt(ttl, 1000, INT32_MAX, &h.lease_ttl_ms) ||
        !num_opt(maxmsg, 1024, INT32_MAX, &m) || !num_opt(replicas, 1, 5, &r) ||
        !num_opt(dup, 1000, INT32_MAX, &h.duplicate_window_ms)) {
        return cli_usage_error(usage, "bad number (partitions 1..1024, replicas 1..5, "
                                      "ttl and window >= 1000 ms, max-msg-size >= 1024)");
    }
    if (storage != NULL && strcmp(storage, "file") != 0 && strcmp(storage, "memory") != 0) {
        return cli_usage_error(usage, "--storage is file or memory");
    }
    h.partitions = (uint32_t)p;
    h.max_msg_size = (uint32_t)m;
    h.replicas = (uint32_t)r;
    h.memory_storage = storage != NULL && strcmp(storage, "memory") == 0;
    if ((rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_client_hub_info got;
    dt_status st = dt_client_hub_create(c->client, &h, &got);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    print_info(c, &got, NULL);
    return CLI_EXIT_OK;
}

static int hub_info(cli *c, int argc, char **argv)
{
    int rc = cli_parse(c, argc, argv, NULL, 0, NULL, 0, 0, NULL, usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_client_hub_info h;
    dt_client_hub_stats s;
    dt_status st = dt_client_hub_get(c->client, &h);
    if (st == DT_OK) {
        st = dt_client_hub_stats_get(c->client, &s);
    }
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    print_info(c, &h, &s);
    return CLI_EXIT_OK;
}

static int hub_delete(cli *c, int argc, char **argv)
{
    int rc = cli_parse(c, argc, argv, NULL, 0, NULL, 0, 0, NULL, usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_status st = dt_client_hub_delete(c->client);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    if (c->json) {
        cli_json_print(stdout, json_pack("{s:o,s:b}", "hub", dt__jconv_str(c->hub), "deleted", 1));
    } else {
        printf("hub %s deleted\n", c->hub);
    }
    return CLI_EXIT_OK;
}

static int hub_retention(cli *c, int argc, char **argv)
{
    const char *completed = NULL, *failed = NULL, *terminated = NULL;
    const cli_opt opts[] = {{"--completed-ms", &completed, NULL},
                            {"--failed-ms", &failed, NULL},
                            {"--terminated-ms", &terminated, NULL}};
    int rc =
        cli_parse(c, argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0, 0, NULL, usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_client_retention r;
    dt_status st = dt_client_retention_get(c->client, &r);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    const char *vals[] = {completed, failed, terminated};
    int64_t *dst[] = {&r.completed_ms, &r.failed_ms, &r.terminated_ms};
    bool set = false;
    for (size_t i = 0; i < 3; i++) {
        if (vals[i] != NULL && !cli_i64(vals[i], 0, INT64_MAX / 2, dst[i])) {
            return cli_usage_error(usage, "%s must be a number of milliseconds >= 0", opts[i].name);
        }
        set = set || vals[i] != NULL;
    }
    if (set && (st = dt_client_retention_set(c->client, &r)) != DT_OK) {
        return cli_fail_client(c, st);
    }
    if (c->json) {
        cli_json_print(stdout,
                       json_pack("{s:I,s:I,s:I}", "completed_ms", (json_int_t)r.completed_ms,
                                 "failed_ms", (json_int_t)r.failed_ms, "terminated_ms",
                                 (json_int_t)r.terminated_ms));
    } else {
        printf("%-22s %lld\n%-22s %lld\n%-22s %lld\n",
               "completed kept (ms):", (long long)r.completed_ms,
               "failed kept (ms):", (long long)r.failed_ms,
               "terminated kept (ms):", (long long)r.terminated_ms);
    }
    return CLI_EXIT_OK;
}

int cmd_hub(cli *c, int argc, char **argv)
{
    if (argc == 0) {
        return cli_usage_error(usage, "hub needs a subcommand");
    }
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[0], "create") == 0) {
        return hub_create(c, argc - 1, argv + 1);
    }
    if (strcmp(argv[0], "info") == 0) {
        return hub_info(c, argc - 1, argv + 1);
    }
    if (strcmp(argv[0], "delete") == 0) {
        return hub_delete(c, argc - 1, argv + 1);
    }
    if (strcmp(argv[0], "retention") == 0) {
        return hub_retention(c, argc - 1, argv + 1);
    }
    return cli_usage_error(usage, "unknown hub subcommand '%s'", argv[0]);
}
