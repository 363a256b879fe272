/*
 * sidecar_node.c: spawning the Node.js clients of the sidecar tests.
 */
#include "sidecar_node.h"

#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef DT_JS_DIR
#error "DT_JS_DIR (the tests/js folder) must be defined by the build"
#endif

extern char **environ;

static pid_t spawn_va(int out_fd, const char *script, va_list ap)
{
    struct stat sb;
    if (stat(DT_JS_DIR "/node_modules/@grpc/grpc-js/package.json", &sb) != 0) {
        fail_msg("%s/node_modules has no @grpc/grpc-js: run scripts/bootstrap (npm ci in tests/js)",
                 DT_JS_DIR);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", DT_JS_DIR, script);
    const char *argv[24] = {"node", path};
    size_t n = 2;
    for (const char *a = va_arg(ap, const char *); a != NULL && n + 1 < 24;
         a = va_arg(ap, const char *)) {
        argv[n++] = a;
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, "node", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fail_msg("cannot run node (is Node.js installed? scripts/bootstrap): %s", strerror(rc));
    }
    return pid;
}

int sidecar_run_node(const char *script, ...)
{
    va_list ap;
    va_start(ap, script);
    pid_t pid = spawn_va(-1, script, ap);
    va_end(ap);
    int ws = 0;
    if (waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws)) {
        return -1;
    }
    return WEXITSTATUS(ws);
}

void sidecar_spawn_node(pid_t *out_pid, int *out_fd, const char *script, ...)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    va_list ap;
    va_start(ap, script);
    *out_pid = spawn_va(fds[1], script, ap);
    va_end(ap);
    close(fds[1]);
    *out_fd = fds[0];
}
