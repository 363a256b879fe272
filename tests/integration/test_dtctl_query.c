/*
 * dtctl's query commands (list, history, purge) end to end: this process runs the query
 * services of a two-partition hub over real SQLite stores, and runs the built dtctl binary
 * (DTCTL_PATH) against them, checking exit codes and the JSON it prints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "history/store_int.h"
#include "test_client.h"
#include "worker/query/query_int.h"

#define P 2

typedef struct dfix {
    tc_fixture *t;
    char *dir;
    dt__store *stores[P];
    uint64_t epochs[P];
    dt__query_service *svc[P];
} dfix;

static int setup(void **state)
{
    dfix *d = calloc(1, sizeof(*d));
    d->t = tc_fixture_new("dtq", P, 0);
    d->dir = dt_test_mkdtemp("dt-dtctl");
    for (uint32_t p = 0; p < P; p++) {
        char path[512], err[256] = "";
        snprintf(path, sizeof(path), "%s/p%03u.db", d->dir, p);
        assert_int_equal(dt__store_open(path, NULL, &d->stores[p], err, sizeof(err)), DT_OK);
        assert_int_equal(dt__store_claim(d->stores[p], "w", &d->epochs[p]), DT_OK);
        assert_int_equal(dt__query_service_start(d->t->b, d->t->hub, p, path, NULL, d->epochs[p],
                                                 &d->svc[p], err, sizeof(err)),
                         DT_OK);
    }
    if (system("command -v jq >/dev/null 2>&1") != 0) {
        fail_msg("jq is required to check dtctl's JSON output (apt-get install jq)");
    }
    setenv("DT_NATS_URL", dt_test_nats_url(), 1);
    setenv("DT_HUB", d->t->hub, 1);
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    dfix *d = *state;
    for (uint32_t p = 0; p < P; p++) {
        dt__query_service_stop(d->svc[p]);
        dt__store_close(d->stores[p]);
    }
    dt_test_rmtree(d->dir);
    free(d->dir);
    tc_fixture_free(d->t);
    free(d);
    return 0;
}

/* Commits an instance with a two-event history into its partition's store. */
static void add_instance(dfix *d, const char *id, int32_t status, int64_t created)
{
    Dtpb__ExecutionStartedEvent es;
    dtpb__execution_started_event__init(&es);
    es.name = "Orch";
    es.input = tc_payload(d->t, "\"in\"");
    Dtpb__EventRaisedEvent er;
    dtpb__event_raised_event__init(&er);
    er.name = "Go";
    Dtpb__HistoryEvent e[2];
    dtpb__history_event__init(&e[0]);
    e[0].event_id = -1;
    e[0].timestamp = tc_ts(d->t, created);
    e[0].event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED;
    e[0].execution_started = &es;
    dtpb__history_event__init(&e[1]);
    e[1].event_id = -1;
    e[1].timestamp = tc_ts(d->t, created + 1);
    e[1].event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    e[1].event_raised = &er;
    dt__blob blobs[2];
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        uint8_t *b = dt__pack(d->t->a, &e[i].base, &len);
        blobs[i] = (dt__blob){b, len};
    }
    dt__instance_row row = {.instance_id = id,
                            .execution_id = "x1",
                            .name = "Orch",
                            .runtime_status = status,
                            .created_ms = created,
                            .last_updated_ms = created + 1,
                            .input = {(const uint8_t *)"\"in\"", 4}};
    dt__episode_commit c = {.instance = &row, .new_events = blobs, .n_new_events = 2};
    uint32_t p = dt__partition_of(id, P);
    TB_EXPECT(dt__store_commit(d->stores[p], d->epochs[p], &c, 1), DT_OK,
              dt__store_errmsg(d->stores[p]));
    tc_put_simple(d->t, id, status);
}

/* Runs dtctl with `args` (shell words), returns its exit code; stdout in out (truncated). */
static int dtctl(const char *args, char *out, size_t len)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' %s 2>/dev/null", DTCTL_PATH, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs `jq -e FILTER` on text; true when it holds. */
static bool jq(const char *text, const char *filter)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "jq -e '%s' >/dev/null", filter);
    FILE *f = popen(cmd, "w");
    assert_non_null(f);
    fputs(text, f);
    int st = pclose(f);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#define EXPECT_JQ(text, filter)                                                                    \
    do {                                                                                           \
        if (!jq((text), (filter))) {                                                               \
            fail_msg("jq '%s' does not hold on: %s", (filter), (text));                            \
        }                                                                                          \
    } while (0)

static void test_list_history_purge(void **state)
{
    dfix *d = *state;
    add_instance(d, "a-1", DT_CLIENT_COMPLETED, 1000);
    add_instance(d, "a-2", DT_CLIENT_RUNNING, 2000);
    add_instance(d, "a-3", DT_CLIENT_FAILED, 3000);
    add_instance(d, "b-1", DT_CLIENT_COMPLETED, 4000);
    static char out[65536];

    assert_int_equal(dtctl("--json list", out, sizeof(out)), 0);
    EXPECT_JQ(out, ".instances | length == 4");
    EXPECT_JQ(out, ".next_page_token == null");
    EXPECT_JQ(out, "[.instances[].instance_id] | sort == [\"a-1\",\"a-2\",\"a-3\",\"b-1\"]");
    EXPECT_JQ(out, "all(.instances[]; .input == null)");

    assert_int_equal(
        dtctl("--json list --status completed,FAILED --prefix a- --payloads", out, sizeof(out)), 0);
    EXPECT_JQ(out, "[.instances[].instance_id] | sort == [\"a-1\",\"a-3\"]");
    EXPECT_JQ(out, "all(.instances[]; .input == \"\\\"in\\\"\")");

    /* Paging by one: follow the tokens. */
    assert_int_equal(dtctl("--json list --limit 1", out, sizeof(out)), 0);
    EXPECT_JQ(out, ".instances | length == 1");
    EXPECT_JQ(out, ".next_page_token | type == \"string\"");
    char token[256], args[512];
    const char *t = strstr(out, "\"next_page_token\":\"");
    assert_non_null(t);
    t += strlen("\"next_page_token\":\"");
    size_t tl = strcspn(t, "\"");
    snprintf(token, sizeof(token), "%.*s", (int)tl, t);
    snprintf(args, sizeof(args), "--json list --limit 1 --page '%s'", token);
    assert_int_equal(dtctl(args, out, sizeof(out)), 0);
    EXPECT_JQ(out, ".instances | length == 1");
    assert_int_equal(dtctl("list --page nonsense", out, sizeof(out)), 1);

    /* Text list: a header and one row per instance. */
    assert_int_equal(dtctl("list", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "INSTANCE"));
    assert_non_null(strstr(out, "b-1"));

    assert_int_equal(dtctl("--json history a-1", out, sizeof(out)), 0);
    EXPECT_JQ(out, ".instance_id == \"a-1\" and (.events | length == 2)");
    EXPECT_JQ(out, ".events[0].type == \"ExecutionStarted\" and .events[0].name == \"Orch\"");
    EXPECT_JQ(out, ".events[1].type == \"EventRaised\" and .events[1].name == \"Go\"");
    EXPECT_JQ(out, ".events[0].timestamp_ms == 1000 and .events[0].payload == \"\\\"in\\\"\"");
    assert_int_equal(dtctl("history a-1", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "ExecutionStarted"));
    assert_int_equal(dtctl("history nobody", out, sizeof(out)), 2);

    assert_int_equal(dtctl("purge a-2", out, sizeof(out)), 3); /* running */
    assert_int_equal(dtctl("--json purge a-1", out, sizeof(out)), 0);
    EXPECT_JQ(out, ".instance_id == \"a-1\" and .ok");
    assert_int_equal(dtctl("purge a-1", out, sizeof(out)), 2);
    assert_int_equal(
        dtctl("--json purge --status completed,failed --created-to-ms 3500", out, sizeof(out)), 0);
    EXPECT_JQ(out, ".purged == 1");
    assert_int_equal(dtctl("--json purge --all-finished", out, sizeof(out)), 0);
    EXPECT_JQ(out, ".purged == 1");
    assert_int_equal(dtctl("--json list", out, sizeof(out)), 0);
    EXPECT_JQ(out, "[.instances[].instance_id] == [\"a-2\"]");
    assert_int_equal(dtctl("purge a-2 --status completed", out, sizeof(out)), 1);
}

int main(void)
{
    dt_test_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_history_purge, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return tb_finish(failed);
}
