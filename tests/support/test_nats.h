/*
 * test_nats.h: nats-server processes owned by one test, and running helper programs.
 *
 * A test that needs a server configured its own way (authentication, TLS, a server that comes up
 * late) gets one here: a free loopback port, a temp dir with the config file, the JetStream store
 * and the log, started with `nats-server -c <dir>/nats.conf` and stopped by its PID. Nothing is
 * ever stopped by name: the machine is shared with other people's servers. Servers still running
 * when the test process exits (a failed test jumps past its cleanup) are stopped then, and on
 * Linux a server also gets SIGTERM when the thread that started it dies (a ctest timeout).
 */
#ifndef DT_TEST_NATS_H
#define DT_TEST_NATS_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct dt_test_nats {
    pid_t pid; /* 0 while not running */
    int port;
    char *dir;      /* temp dir (malloc'd): nats.conf, nats.log, js/ */
    char url[64];   /* nats://127.0.0.1:<port> */
    int ready_seen; /* "Server is ready" lines counted so far (one per start) */
} dt_test_nats;

/* A loopback TCP port nobody listened on a moment ago. */
int dt_test_free_port(void);

/* A server on a free port with its temp dir; nothing runs yet. Fails the test on error. */
dt_test_nats *dt_test_nats_new(const char *prefix);

/*
 * Writes <dir>/nats.conf (listen on the port, JetStream in <dir>/js, log to <dir>/nats.log) plus
 * `extra` (more config text; may be NULL), starts nats-server with it and waits up to 15 s until
 * its log says it is ready. Returns false (the log's tail printed) when it did not come up. Call
 * it from a thread that outlives the server (the main thread): see the death signal above.
 */
bool dt_test_nats_start(dt_test_nats *s, const char *extra);

/*
 * Prints (to stderr) the last 4,000 characters of the log of every server started here and still
 * running. Call it before failing a test on a refused or broken connection: the server's side of
 * the story is gone once the test's temp dirs are removed.
 */
void dt_test_nats_print_logs(void);

/* Stops the server (SIGTERM to its PID, SIGKILL after 5 s) and reaps it. Idempotent. */
void dt_test_nats_stop(dt_test_nats *s);

/* Kills the server with SIGKILL (a crash: no clean shutdown of its store) and reaps it. Its dir,
 * port and config stay, so dt_test_nats_start starts it again on the same store. Idempotent. */
void dt_test_nats_kill(dt_test_nats *s);

/* Prints the last 4000 bytes of the server's log to stderr, headed by `why`. */
void dt_test_nats_print_log(const dt_test_nats *s, const char *why);

/* Stops, removes the temp dir and frees. Accepts NULL. */
void dt_test_nats_free(dt_test_nats *s);

/*
 * Runs argv[0] (searched on PATH) with argv, `env` (NULL-terminated "NAME=value" entries added to
 * the environment; may be NULL), stdin from /dev/null and stdout / stderr into the given files
 * (NULL: /dev/null). Returns its exit status, or -1 when it could not run or was killed.
 */
int dt_test_run(char *const argv[], char *const env[], const char *out_path, const char *err_path);

/* Reads a whole (small) file into a malloc'd NUL-terminated string; NULL on error. */
char *dt_test_read_file(const char *path);

#endif
