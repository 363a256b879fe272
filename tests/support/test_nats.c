/* nats-server processes owned by a test, and helper programs run to completion (test_nats.h). */
#include "test_nats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

extern char **environ;

#define READY_WAIT_MS 15000
#define STOP_WAIT_MS  5000
#define MAX_LIVE      32

/* Servers started and not yet stopped: a failing test (cmocka jumps out of it) leaves its server
 * running, so they are stopped at exit too. */
static dt_test_nats *live[MAX_LIVE];

static void stop_live(void)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        dt_test_nats_stop(live[i]);
    }
}

static void track(dt_test_nats *s, bool on)
{
    static bool registered;
    if (!registered) {
        registered = atexit(stop_live) == 0;
    }
    for (int i = 0; i < MAX_LIVE; i++) {
        if (on ? live[i] == NULL : live[i] == s) {
            live[i] = on ? s : NULL;
            return;
        }
    }
}

static void die(const char *what)
{
    fprintf(stderr, "test_nats: %s: %s\n", what, strerror(errno));
    abort();
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int dt_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        die("no free port");
    }
    close(fd);
    return ntohs(a.sin_port);
}

dt_test_nats *dt_test_nats_new(const char *prefix)
{
    dt_test_nats *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->dir = dt_test_mkdtemp(prefix)) == NULL) {
        die("nats server dir");
    }
    s->port = dt_test_free_port();
    snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", s->port);
    return s;
}

char *dt_test_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1) {
            break;
        }
        char *bigger = realloc(buf, cap *= 2);
        if (bigger == NULL) {
            free(buf);
        }
        buf = bigger;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
    }
    return buf;
}

/* True once the log holds more "Server is ready" lines than starts seen so far. */
static bool log_says_ready(dt_test_nats *s)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/nats.log", s->dir);
    char *log = dt_test_read_file(path);
    int ready = 0;
    for (const char *p = log; p != NULL && (p = strstr(p, "Server is ready")) != NULL; p++) {
        ready++;
    }
    free(log);
    if (ready > s->ready_seen) {
        s->ready_seen = ready;
        return true;
    }
    return false;
}

static void write_config(const dt_test_nats *s, const char *extra)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/nats.conf", s->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        die(path);
    }
    fprintf(f,
            "listen: 127.0.0.1:%d\n"
            "log_file: \"%s/nats.log\"\n"
            "jetstream { store_dir: \"%s/js\" }\n"
            "%s\n",
            s->port, s->dir, s->dir, extra != NULL ? extra : "");
    fclose(f);
}

static void print_log_tail(const dt_test_nats *s)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/nats.log", s->dir);
    char *log = dt_test_read_file(path);
    size_t n = log != NULL ? strlen(log) : 0;
    fprintf(stderr, "nats-server log (%s):\n%s\n", path,
            log != NULL ? log + (n > 4000 ? n - 4000 : 0) : "");
    free(log);
}

void dt_test_nats_print_logs(void)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        if (live[i] != NULL) {
            print_log_tail(live[i]);
        }
    }
}

bool dt_test_nats_start(dt_test_nats *s, const char *extra)
{
    write_config(s, extra);
    char conf[512];
    snprintf(conf, sizeof(conf), "%s/nats.conf", s->dir);
    char *argv[] = {"nats-server", "-c", conf, NULL};
    s->pid = fork();
    if (s->pid == 0) {
#ifdef __linux__
        /* Killed with this test (a ctest timeout) instead of outliving it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (s->pid < 0) {
        fprintf(stderr, "cannot fork for nats-server: %s\n", strerror(errno));
        s->pid = 0;
        return false;
    }
    track(s, true);
    for (int64_t end = now_ms() + READY_WAIT_MS; !log_says_ready(s);) {
        bool exited = waitpid(s->pid, NULL, WNOHANG) == s->pid;
        if (exited || now_ms() > end) {
            print_log_tail(s);
            if (exited) {
                s->pid = 0; /* reaped: never signal a PID that may be reused */
                track(s, false);
            }
            dt_test_nats_stop(s);
            return false;
        }
        sleep_ms(20);
    }
    return true;
}

void dt_test_nats_stop(dt_test_nats *s)
{
    if (s == NULL || s->pid <= 0) {
        return;
    }
    kill(s->pid, SIGTERM);
    int64_t end = now_ms() + STOP_WAIT_MS;
    while (waitpid(s->pid, NULL, WNOHANG) == 0) {
        if (now_ms() > end) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            break;
        }
        sleep_ms(10);
    }
    s->pid = 0;
    track(s, false);
}

void dt_test_nats_kill(dt_test_nats *s)
{
    if (s == NULL || s->pid <= 0) {
        return;
    }
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    s->pid = 0;
    track(s, false);
}

void dt_test_nats_print_log(const dt_test_nats *s, const char *why)
{
    fprintf(stderr, "%s\n", why);
    print_log_tail(s);
}

void dt_test_nats_free(dt_test_nats *s)
{
    if (s == NULL) {
        return;
    }
    dt_test_nats_stop(s);
    dt_test_rmtree(s->dir);
    free(s->dir);
    free(s);
}

/* environ plus `extra`, in a malloc'd array (the strings are borrowed). */
static char **merged_env(char *const extra[])
{
    size_t n = 0, k = 0;
    while (environ[n] != NULL) {
        n++;
    }
    while (extra != NULL && extra[k] != NULL) {
        k++;
    }
    char **env = calloc(n + k + 1, sizeof(*env));
    if (env == NULL) {
        die("env");
    }
    for (size_t i = 0; i < k; i++) {
        env[i] = extra[i]; /* first: getenv returns the first match */
    }
    memcpy(env + k, environ, n * sizeof(*env));
    return env;
}

int dt_test_run(char *const argv[], char *const env[], const char *out_path, const char *err_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path != NULL ? out_path : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path != NULL ? err_path : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char **envp = merged_env(env);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    if (rc != 0) {
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
