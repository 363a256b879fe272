/*
 * grpc_server.c: the listening socket, the event loop and the connections' sockets.
 *
 * One thread polls the listening socket, a wake-up pipe and every connection. Handlers never
 * touch sockets: they queue output on their call, put it on the ready list and write a byte to
 * the pipe; the loop then submits that output to the call's HTTP/2 stream. Poll's timeout is the
 * nearest keepalive deadline, so an idle server sleeps.
 */
#include "grpc_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common_int.h"

static bool set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 &&
           fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

/* "host:port" with an IPv4 literal or "localhost". */
static bool parse_addr(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon - s >= 64) {
        return false;
    }
    char host[64];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    int64_t port;
    if (!dt__parse_i64(colon + 1, 0, 65535, &port)) {
        return false;
    }
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) {
        memcpy(host, "127.0.0.1", 10);
    }
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

static dt_status open_listener(dt__grpc_server *s, char *errbuf, size_t errlen)
{
    struct sockaddr_in sa;
    if (!parse_addr(s->o.listen, &sa)) {
        dt__errf(errbuf, errlen, "bad listen address '%s' (want IPV4:PORT)", s->o.listen);
        return DT_EINVAL;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0 ||
        !set_nonblock(fd)) {
        dt__errf(errbuf, errlen, "cannot listen on %s: %s", s->o.listen, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return DT_EIO;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    s->listen_fd = fd;
    s->port = ntohs(sa.sin_port);
    return DT_OK;
}

dt_status dt__grpc_server_create(const dt__grpc_server_options *o, dt__grpc_server **out,
                                 char *errbuf, size_t errlen)
{
    if (o == NULL || o->listen == NULL) {
        dt__errf(errbuf, errlen, "no listen address");
        return DT_EINVAL;
    }
    dt__grpc_server *s = dt_calloc(1, sizeof *s);
    if (s == NULL) {
        return DT_ENOMEM;
    }
    s->o = *o;
    s->o.listen = NULL;
    s->o.max_message = o->max_message != 0 ? o->max_message : 4u << 20;
    s->o.max_calls = o->max_calls != 0 ? o->max_calls : 256;
    s->o.max_connections = o->max_connections != 0 ? o->max_connections : 256;
    s->o.keepalive_ms = o->keepalive_ms > 0 ? o->keepalive_ms : 30000;
    s->o.keepalive_wait_ms = o->keepalive_wait_ms > 0 ? o->keepalive_wait_ms : 20000;
    s->listen_fd = s->wakefd[0] = s->wakefd[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->o.listen = o->listen;
    dt_status st = open_listener(s, errbuf, errlen);
    s->o.listen = NULL;
    if (st == DT_OK &&
        (pipe(s->wakefd) != 0 || !set_nonblock(s->wakefd[0]) || !set_nonblock(s->wakefd[1]))) {
        dt__errf(errbuf, errlen, "pipe: %s", strerror(errno));
        st = DT_EIO;
    }
    if (st != DT_OK) {
        dt__grpc_server_destroy(s);
        return st;
    }
    *out = s;
    return DT_OK;
}

dt_status dt__grpc_server_add_method(dt__grpc_server *s, const char *path, dt__grpc_handler fn,
                                     void *ctx)
{
    for (size_t i = 0; i < s->nmethods; i++) {
        if (strcmp(s->methods[i].path, path) == 0) {
            return DT_EEXIST;
        }
    }
    dt__grpc_method *m = dt_realloc(s->methods, (s->nmethods + 1) * sizeof *m);
    if (m == NULL) {
        return DT_ENOMEM;
    }
    s->methods = m;
    char *p = dt_strdup(path);
    if (p == NULL) {
        return DT_ENOMEM;
    }
    m[s->nmethods++] = (dt__grpc_method){.path = p, .fn = fn, .ctx = ctx};
    return DT_OK;
}

dt_status dt__grpc_server_mark_waiting(dt__grpc_server *s, const char *path)
{
    for (size_t i = 0; i < s->nmethods; i++) {
        if (strcmp(s->methods[i].path, path) == 0) {
            s->methods[i].waits = true;
            return DT_OK;
        }
    }
    return DT_ENOTFOUND;
}

int dt__grpc_server_port(const dt__grpc_server *s)
{
    return s->port;
}

void dt__grpc_server_poke(dt__grpc_server *s)
{
    uint8_t b = 1;
    ssize_t n = write(s->wakefd[1], &b, 1);
    (void)n; /* a full pipe already holds a wake-up */
}

/* Submits the output handlers queued since the last turn. A call leaves the list (queued
 * cleared) only once its successor was read: a handler may put it on s->ready again at once,
 * which rewrites its ready_next. */
static void run_ready(dt__grpc_server *s)
{
    uint8_t drain[256];
    while (read(s->wakefd[0], drain, sizeof drain) > 0) {
    }
    pthread_mutex_lock(&s->mu);
    dt__grpc_call *list = s->ready;
    s->ready = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list != NULL) {
        pthread_mutex_lock(&s->mu);
        dt__grpc_call *call = list;
        list = call->ready_next;
        call->queued = false;
        pthread_mutex_unlock(&s->mu);
        dt__grpc_conn_output(call);
        dt__grpc_call_unref(call);
    }
}

static void accept_all(dt__grpc_server *s)
{
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) {
            return; /* EAGAIN, or an error the next turn sees again */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        dt__grpc_conn *c = NULL;
        if (s->nconns >= s->o.max_connections || !set_nonblock(fd) ||
            dt__grpc_conn_open(s, fd, &c) != DT_OK) {
            close(fd);
            continue;
        }
        c->next = s->conns;
        s->conns = c;
        s->nconns++;
    }
}

/* Reads what the socket has; false when the peer closed or broke the protocol. */
static bool read_conn(dt__grpc_conn *c)
{
    uint8_t buf[16384];
    for (int i = 0; i < 8; i++) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n == 0) {
            return false;
        }
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        }
        if (!dt__grpc_conn_recv(c, buf, (size_t)n)) {
            return false;
        }
    }
    return true;
}

static int poll_timeout(const dt__grpc_server *s, int64_t now)
{
    int64_t next = -1;
    for (const dt__grpc_conn *c = s->conns; c != NULL; c = c->next) {
        int64_t at = c->ping_sent != 0 ? c->ping_sent + s->o.keepalive_wait_ms
                                       : c->last_recv + s->o.keepalive_ms;
        if (next < 0 || at < next) {
            next = at;
        }
    }
    if (next < 0) {
        return -1;
    }
    return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}

/* One turn: poll, then read, accept, submit output, keepalive, write, close. */
static void loop_turn(dt__grpc_server *s, struct pollfd *fds, dt__grpc_conn **map)
{
    size_t n = 0;
    fds[n++] = (struct pollfd){.fd = s->wakefd[0], .events = POLLIN};
    fds[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
    for (dt__grpc_conn *c = s->conns; c != NULL; c = c->next) {
        map[n] = c;
        fds[n++] = (struct pollfd){.fd = c->fd,
                                   .events = (short)(POLLIN | (c->woff < c->wlen ? POLLOUT : 0))};
    }
    int rc = poll(fds, (nfds_t)n, poll_timeout(s, dt__mono_ms()));
    if (rc < 0 && errno != EINTR) {
        return;
    }
    for (size_t i = 2; i < n && rc > 0; i++) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && !read_conn(map[i])) {
            map[i]->closing = true;
        }
    }
    run_ready(s);
    if (rc > 0 && (fds[1].revents & POLLIN)) {
        accept_all(s);
    }
    int64_t now = dt__mono_ms();
    for (dt__grpc_conn **p = &s->conns; *p != NULL;) {
        dt__grpc_conn *c = *p;
        if (!c->closing && (!dt__grpc_conn_keepalive(c, now) || !dt__grpc_conn_flush(c))) {
            c->closing = true;
        }
        if (c->closing) {
            *p = c->next;
            s->nconns--;
            dt__grpc_conn_close(c);
        } else {
            p = &c->next;
        }
    }
}

static void *loop_main(void *arg)
{
    dt__grpc_server *s = arg;
    size_t cap = (size_t)s->o.max_connections + 2;
    struct pollfd *fds = dt_calloc(cap, sizeof *fds);
    dt__grpc_conn **map = dt_calloc(cap, sizeof *map);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stop || fds == NULL || map == NULL) {
            break;
        }
        loop_turn(s, fds, map);
    }
    while (s->conns != NULL) {
        dt__grpc_conn *c = s->conns;
        s->conns = c->next;
        dt__grpc_conn_close(c);
    }
    s->nconns = 0;
    dt_free(fds);
    dt_free(map);
    return NULL;
}

dt_status dt__grpc_server_start(dt__grpc_server *s)
{
    if (pthread_create(&s->loop, NULL, loop_main, s) != 0) {
        return DT_ENOMEM;
    }
    s->started = true;
    return DT_OK;
}

void dt__grpc_server_destroy(dt__grpc_server *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    if (s->started) {
        dt__grpc_server_poke(s);
        pthread_join(s->loop, NULL);
    }
    /* Every call is cancelled now; wait for the handlers to see it and end. */
    pthread_mutex_lock(&s->mu);
    while (s->nhandlers > 0) {
        pthread_cond_wait(&s->idle, &s->mu);
    }
    dt__grpc_call *list = s->ready;
    s->ready = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list != NULL) {
        dt__grpc_call *next = list->ready_next;
        dt__grpc_call_unref(list);
        list = next;
    }
    for (size_t i = 0; i < s->nmethods; i++) {
        dt_free(s->methods[i].path);
    }
    dt_free(s->methods);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
    }
    if (s->wakefd[0] >= 0) {
        close(s->wakefd[0]);
        close(s->wakefd[1]);
    }
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    dt_free(s);
}
