/*
 * A program outside the project, built by test_install against an installed durabletask (with
 * find_package and with pkg-config, as C and as C++): it checks that the headers and the
 * library agree on the version, creates and destroys a worker without connecting, and, when
 * DT_TEST_NATS_URL is set, connects a client and reads a hub. Written in the common subset of C
 * and C++ so that one file checks both languages' view of the headers.
 *
 *   dt_consumer <data dir>      exit 0 on success
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <durabletask/alloc.h>
#include <durabletask/client.h>
#include <durabletask/library.h>
#include <durabletask/worker.h>

static void noop_orchestrator(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    dt_orch_set_output(ctx, "1", 1);
}

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "dt_consumer: %s: %s\n", what, why);
    return 1;
}

static int worker_round_trip(const char *data_dir)
{
    dt_worker_options o;
    memset(&o, 0, sizeof(o));
    o.hub = "install_test";
    o.data_dir = data_dir;
    dt_worker *w = NULL;
    char err[256];
    err[0] = '\0';
    if (dt_worker_create(&o, &w, err, sizeof(err)) != DT_OK) {
        return fail("dt_worker_create", err);
    }
    dt_status st = dt_worker_add_orchestrator(w, "noop", noop_orchestrator, NULL);
    dt_worker_destroy(w);
    return st == DT_OK ? 0 : fail("dt_worker_add_orchestrator", dt_status_str(st));
}

static int client_round_trip(const char *url)
{
    dt_client_options o;
    dt_client_options_init(&o);
    o.nats_url = url;
    o.hub = "install_test_absent";
    dt_client *c = NULL;
    char err[256];
    err[0] = '\0';
    if (dt_client_create(&o, &c, err, sizeof(err)) != DT_OK) {
        return fail("dt_client_create", err);
    }
    dt_client_hub_info info;
    dt_status st = dt_client_hub_get(c, &info);
    dt_client_destroy(c);
    if (st != DT_ENOTFOUND) {
        return fail("dt_client_hub_get on a hub that does not exist", dt_status_name(st));
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        return fail("usage", "dt_consumer <data dir>");
    }
    printf("durabletask %s (headers %s)\n", dt_version(), DT_VERSION_STRING);
    if (strcmp(dt_version(), DT_VERSION_STRING) != 0) {
        return fail("version", "the library and its headers differ");
    }
    char *copy = dt_strdup("x");
    dt_free(copy);
    int rc = worker_round_trip(argv[1]);
    const char *url = getenv("DT_TEST_NATS_URL");
    if (rc == 0 && url != NULL && url[0] != '\0') {
        rc = client_round_trip(url);
    }
    if (dt_library_shutdown() != DT_OK) {
        rc = fail("dt_library_shutdown", "timed out");
    }
    return rc;
}
