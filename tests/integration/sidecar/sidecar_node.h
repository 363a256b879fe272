/*
 * sidecar_node.h: runs a Node.js script of tests/js for the sidecar tests.
 *
 * The scripts are real gRPC clients (@grpc/grpc-js, @microsoft/durabletask-js, node:http2 and
 * node:net for malformed input); scripts/bootstrap installs node and tests/js/node_modules.
 */
#ifndef DT_TEST_SIDECAR_NODE_H
#define DT_TEST_SIDECAR_NODE_H

/*
 * Runs `node DT_JS_DIR/<script> args...` (args NULL-terminated) with its output on ours, and
 * returns its exit code (-1 when it could not run or died by a signal). Fails the test with a
 * clear message when node or tests/js/node_modules/@grpc/grpc-js is missing.
 */
int sidecar_run_node(const char *script, ...);

#include <sys/types.h>

/* Starts the script without waiting: *out_pid is the child, *out_fd the read end of a pipe on
 * its stdout (the caller closes it, and kills and reaps the child). */
void sidecar_spawn_node(pid_t *out_pid, int *out_fd, const char *script, ...);

#endif
