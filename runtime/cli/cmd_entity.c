/* dtctl entity get | list | signal | clean. */
#include <jansson.h>
#include <string.h>

#include "cli_int.h"
#include "durabletask/entity.h"

static const char usage[] =
    "usage: dtctl entity get NAME KEY [--no-state]\n"
    "       dtctl entity list [--name NAME] [--key-prefix P] [--modified-from MS]\n"
    "                         [--modified-to MS] [--state] [--empty] [--limit N] [--page-token T]\n"
    "       dtctl entity signal NAME KEY OPERATION [--input DATA] [--at MS] [--key K]\n"
    "       dtctl entity clean [--no-empty] [--no-locks]\n"
    "\n"
    "Entities are named by NAME (letters, digits, '-', '_'; any case) and KEY (printable, no\n"
    "spaces); their ID is @<name>@<key>. get shows one (exit 2 when it does not exist); list\n"
    "pages through them (times in ms since the Unix epoch; --empty also lists entities without\n"
    "state); signal sends an operation (--input any bytes, --at a later delivery time, --key an\n"
    "idempotency key: the same command again signals once); clean removes empty entities and\n"
    "releases locks held by orchestrations that no longer run.\n";

static json_t *entity_json(const dt_entity_metadata *m)
{
    char t[40];
    json_t *o =
        json_pack("{s:o,s:o,s:o,s:s,s:I,s:i,s:b}", "instance_id", dt__jconv_str(m->instance_id),
                  "name", dt__jconv_str(m->name), "key", dt__jconv_str(m->key), "last_modified",
                  cli_time(m->last_modified_ms, t, sizeof(t)), "last_modified_ms",
                  (json_int_t)m->last_modified_ms, "backlog", (int)m->backlog_queue_size,
                  "has_state", m->has_state);
    if (o != NULL) {
        json_object_set_new(o, "locked_by",
                            m->locked_by != NULL ? dt__jconv_str(m->locked_by) : json_null());
        if (m->state != NULL) {
            json_object_set_new(o, "state", json_stringn(m->state, m->state_len));
        }
    }
    return o;
}

static void print_entity(const cli *c, const dt_entity_metadata *m)
{
    if (c->json) {
        cli_json_print(stdout, entity_json(m));
        return;
    }
    char t[40];
    printf("%s  modified %s  %s%s  backlog %d%s%.*s\n", m->instance_id,
           cli_time(m->last_modified_ms, t, sizeof(t)),
           m->locked_by != NULL ? "locked by " : "unlocked",
           m->locked_by != NULL ? m->locked_by : "", (int)m->backlog_queue_size,
           m->state != NULL ? "  state " : "", m->state != NULL ? (int)m->state_len : 0,
           m->state != NULL ? (const char *)m->state : "");
}

static int entity_get(cli *c, int argc, char **argv)
{
    bool no_state = false;
    const cli_opt opts[] = {{"--no-state", NULL, &no_state}};
    const char *pos[2] = {NULL, NULL};
    int rc = cli_parse(c, argc, argv, opts, 1, pos, 2, 2, NULL, usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_entity_metadata *m = NULL;
    dt_status st = dt_client_get_entity(c->client, pos[0], pos[1], !no_state, &m);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    print_entity(c, m);
    dt_entity_metadata_free(m);
    return CLI_EXIT_OK;
}

static int entity_list(cli *c, int argc, char **argv)
{
    const char *name = NULL, *kp = NULL, *from = NULL, *to = NULL, *limit = NULL, *tok = NULL;
    bool state = false, empty = false;
    const cli_opt opts[] = {{"--name", &name, NULL},          {"--key-prefix", &kp, NULL},
                            {"--modified-from", &from, NULL}, {"--modified-to", &to, NULL},
                            {"--limit", &limit, NULL},        {"--page-token", &tok, NULL},
                            {"--state", NULL, &state},        {"--empty", NULL, &empty}};
    int rc =
        cli_parse(c, argc, argv, opts, sizeof(opts) / sizeof(opts[0]), NULL, 0, 0, NULL, usage);
    dt_entity_query q;
    dt_entity_query_init(&q);
    int64_t v = 0;
    if (rc == CLI_CONTINUE && from != NULL) {
        rc = cli_i64(from, 0, INT64_MAX, &q.last_modified_from_ms)
                 ? CLI_CONTINUE
                 : cli_usage_error(usage, "--modified-from needs milliseconds");
    }
    if (rc == CLI_CONTINUE && to != NULL) {
        rc = cli_i64(to, 0, INT64_MAX, &q.last_modified_to_ms)
                 ? CLI_CONTINUE
                 : cli_usage_error(usage, "--modified-to needs milliseconds");
    }
    if (rc == CLI_CONTINUE && limit != NULL) {
        rc = cli_i64(limit, 1, 1000, &v) ? CLI_CONTINUE
                                         : cli_usage_error(usage, "--limit needs 1..1000");
        q.page_size = (size_t)v;
    }
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    q.name = name;
    q.key_prefix = kp;
    q.include_state = state;
    q.include_empty = empty;
    q.page_token = tok;
    dt_entity_page *pg = NULL;
    dt_status st = dt_client_query_entities(c->client, &q, &pg);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    if (c->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < pg->n; i++) {
            json_array_append_new(arr, entity_json(&pg->entities[i]));
        }
        cli_json_print(stdout, json_pack("{s:o,s:o}", "entities", arr, "next_page_token",
                                         pg->next_token != NULL ? dt__jconv_str(pg->next_token)
                                                                : json_null()));
    } else {
        for (size_t i = 0; i < pg->n; i++) {
            print_entity(c, &pg->entities[i]);
        }
        if (pg->next_token != NULL) {
            printf("next page: --page-token '%s'\n", pg->next_token);
        }
    }
    dt_entity_page_free(pg);
    return CLI_EXIT_OK;
}

static int entity_signal(cli *c, int argc, char **argv)
{
    const char *input = NULL, *at = NULL, *key = NULL;
    const cli_opt opts[] = {{"--input", &input, NULL}, {"--at", &at, NULL}, {"--key", &key, NULL}};
    const char *pos[3] = {NULL, NULL, NULL};
    int rc = cli_parse(c, argc, argv, opts, 3, pos, 3, 3, NULL, usage);
    dt_entity_signal_options o;
    dt_entity_signal_options_init(&o);
    if (rc == CLI_CONTINUE && at != NULL) {
        rc = cli_i64(at, 1, INT64_MAX, &o.signal_at_ms)
                 ? CLI_CONTINUE
                 : cli_usage_error(usage, "--at needs milliseconds since the Unix epoch");
    }
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    o.idempotency_key = key;
    dt_status st = dt_client_signal_entity(c->client, pos[0], pos[1], pos[2], input,
                                           input != NULL ? strlen(input) : 0, &o);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    char id[DT_ENTITY_ID_MAX + 1], text[DT_ENTITY_ID_MAX + 160];
    dt_entity_id(pos[0], pos[1], id, sizeof(id));
    snprintf(text, sizeof(text), "signalled %s to %s", pos[2], id);
    out_done(c, id, "signal", text);
    return CLI_EXIT_OK;
}

static int entity_clean(cli *c, int argc, char **argv)
{
    bool no_empty = false, no_locks = false;
    const cli_opt opts[] = {{"--no-empty", NULL, &no_empty}, {"--no-locks", NULL, &no_locks}};
    int rc = cli_parse(c, argc, argv, opts, 2, NULL, 0, 0, NULL, usage);
    if (rc != CLI_CONTINUE || (rc = cli_client(c)) != CLI_CONTINUE) {
        return rc;
    }
    dt_entity_clean_result r = {0};
    dt_status st = dt_client_clean_entities(c->client, !no_empty, !no_locks, &r);
    if (st != DT_OK) {
        return cli_fail_client(c, st);
    }
    if (c->json) {
        cli_json_print(stdout, json_pack("{s:I,s:I}", "empty_removed", (json_int_t)r.empty_removed,
                                         "locks_released", (json_int_t)r.locks_released));
    } else {
        printf("removed %zu empty entities, released %zu orphaned locks\n", r.empty_removed,
               r.locks_released);
    }
    return CLI_EXIT_OK;
}

int cmd_entity(cli *c, int argc, char **argv)
{
    if (argc == 0) {
        return cli_usage_error(usage, "entity needs a subcommand");
    }
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*run)(cli *c, int argc, char **argv);
    } subs[] = {{"get", entity_get},
                {"list", entity_list},
                {"signal", entity_signal},
                {"clean", entity_clean}};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[0], subs[i].name) == 0) {
            return subs[i].run(c, argc - 1, argv + 1);
        }
    }
    return cli_usage_error(usage, "unknown entity subcommand '%s'", argv[0]);
}
