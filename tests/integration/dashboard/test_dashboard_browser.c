/*
 * The dashboard's page in a real browser: sets up a hub, a worker and instances of every kind
 * (dash_kit.h), serves the dashboard, and runs tests/js/dashboard_browser.mjs (playwright-core
 * driving /usr/bin/chromium headless), which checks the views and writes their screenshots to
 * docs/img/. Node, tests/js/node_modules and chromium come from scripts/bootstrap; a missing
 * one fails the test with a message saying so.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dash_kit.h"
#include "test_support.h"

#ifndef DT_JS_DIR
#error "DT_JS_DIR (the tests/js folder) must be defined by the build"
#endif
#ifndef DT_IMG_DIR
#error "DT_IMG_DIR (where screenshots go by default: the build tree) must be defined by the build"
#endif

#define BROWSER_S 150 /* the whole browser run at most */

extern char **environ;

static void need(const char *path, const char *what)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fail_msg("%s is missing (%s): scripts/bootstrap installs it", path, what);
    }
}

/* Runs node on the script; returns its exit status (-1: killed after BROWSER_S). */
static int run_browser(const char *url, const char *prefix)
{
    /* Screenshots go to the build tree, so that a test run leaves the checkout as it was;
     * DT_SCREENSHOT_DIR=docs/img refreshes the ones the docs show. */
    const char *img = getenv("DT_SCREENSHOT_DIR");
    char *argv[] = {"node",
                    DT_JS_DIR "/dashboard_browser.mjs",
                    (char *)url,
                    (char *)prefix,
                    (char *)(img != NULL && img[0] != '\0' ? img : DT_IMG_DIR),
                    NULL};
    pid_t pid = 0;
    assert_int_equal(posix_spawnp(&pid, "node", NULL, NULL, argv, environ), 0);
    for (int i = 0; i < BROWSER_S * 10; i++) {
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(100 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void test_browser(void **state)
{
    (void)state;
    need("/usr/bin/chromium", "Debian package chromium");
    need(DT_JS_DIR "/node_modules/playwright-core/package.json", "npm ci in tests/js");
    dk_env env;
    dk_setup(&env, "dash_web", NULL);
    char prefix[64], tour[96], wait1[96], wait2[96], wait3[96], failing[96];
    snprintf(prefix, sizeof(prefix), "web-%d-", (int)getpid());
    snprintf(tour, sizeof(tour), "%stour", prefix);
    snprintf(wait1, sizeof(wait1), "%swait-1", prefix);
    snprintf(wait2, sizeof(wait2), "%swait-2", prefix);
    snprintf(wait3, sizeof(wait3), "%swait-3", prefix);
    snprintf(failing, sizeof(failing), "%sfail", prefix);
    dk_schedule(&env, "dash_tour", tour, "{\"order\":42}");
    dk_schedule(&env, "dash_wait", wait1, NULL);
    dk_schedule(&env, "dash_wait", wait2, NULL);
    dk_schedule(&env, "dash_wait", wait3, NULL);
    dk_schedule(&env, "dash_fail", failing, NULL);
    /* Raise "go" once the tour waits for it, so its wait has a length of its own. */
    for (int i = 0; i < 200; i++) {
        dt_client_instance *in = NULL;
        assert_int_equal(dt_client_get_status(env.c, tour, true, &in), DT_OK);
        bool waiting = in->custom_status != NULL && strstr(in->custom_status, "waiting") != NULL;
        dt_client_instance_free(in);
        if (waiting) {
            break;
        }
        usleep(50 * 1000);
    }
    usleep(300 * 1000);
    assert_int_equal(dt_client_raise_event(env.c, tour, "go", "\"now\"", 5, NULL), DT_OK);
    dk_wait_status(&env, tour, DT_CLIENT_COMPLETED, 20000);
    dk_wait_status(&env, failing, DT_CLIENT_FAILED, 20000);
    dk_wait_status(&env, wait1, DT_CLIENT_RUNNING, 20000);
    dk_wait_status(&env, wait2, DT_CLIENT_RUNNING, 20000);
    dk_wait_status(&env, wait3, DT_CLIENT_RUNNING, 20000);

    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)env.port);
    int rc = run_browser(url, prefix);
    dk_teardown(&env);
    if (rc != 0) {
        fail_msg("dashboard_browser.mjs failed (exit %d); its output is above", rc);
    }
}

int main(void)
{
    if (dt_test_nats_url() == NULL) {
        fprintf(stderr, "DT_TEST_NATS_URL is not set\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_browser)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
