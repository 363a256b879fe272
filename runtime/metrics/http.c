/*
 * The /metrics endpoint: libmicrohttpd with its internal polling thread, on a socket this file
 * binds itself, so that a bad address or a port in use is reported at start with the system's
 * words (and port 0 picks a free port, read back with dt__metrics_http_port).
 *
 * Only GET (and HEAD) of /metrics is served; anything else is 404 or 405. Each scrape renders
 * the registry on the HTTP thread (dt__metrics_render): worker threads never wait for it.
 * Bounded: at most HTTP_CONN_MAX connections at once, each closed after HTTP_TIMEOUT_S idle.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common_int.h"
#include "metrics_http_int.h"

#define HTTP_CONN_MAX  16
#define HTTP_TIMEOUT_S 10
#define CONTENT_TYPE   "text/plain; version=0.0.4; charset=utf-8"

struct dt__metrics_http {
    struct MHD_Daemon *d;
    dt__metrics *m;
    int port;
};

/* Splits "host:port", "[v6]:port", ":port" or "port" into host (NULL: every IPv4 interface)
 * and port. False on a malformed address. */
static bool split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
    const char *colon = strrchr(addr, ':');
    const char *h = addr, *p = colon != NULL ? colon + 1 : addr;
    size_t hl = colon != NULL ? (size_t)(colon - addr) : 0;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    } else if (hl > 0 && memchr(h, ':', hl) != NULL) {
        return false; /* an IPv6 address needs brackets */
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (*p == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 65535 || hl >= hlen) {
        return false;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, plen, "%ld", v);
    return true;
}

/* A listening socket on addr, or -1 with *st and err set. */
static int listen_on(const char *addr, int *family, dt_status *st, char *err, size_t len)
{
    *st = DT_EINVAL;
    char host[256], port[8];
    if (addr == NULL || !split_addr(addr, host, sizeof(host), port, sizeof(port))) {
        dt__errf(err, len,
                 "metrics_addr '%s' is not an address: use host:port, [ipv6]:port or :port "
                 "(port 0..65535)",
                 addr != NULL ? addr : "(null)");
        return -1;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host[0] != '\0' ? host : "0.0.0.0", port, &hints, &ai);
    if (rc != 0) {
        dt__errf(err, len, "metrics_addr '%s': %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    int why = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        why = errno;
        *st = why == EADDRINUSE ? DT_EBUSY : why == EADDRNOTAVAIL ? DT_EINVAL : DT_EIO;
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
        dt__errf(err, len, "metrics_addr '%s': cannot listen: %s", addr, strerror(why));
    }
    *family = ai->ai_family;
    freeaddrinfo(ai);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        return -1;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *text, size_t len,
                             const char *type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    dt__metrics_http *h = cls;
    static int seen;
    if (*con_cls == NULL) { /* headers only: the answer comes with the next call */
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body is ignored */
        return MHD_YES;
    }
    bool get =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (strcmp(url, "/metrics") != 0) {
        static const char nf[] = "not found: the metrics are at /metrics\n";
        return reply(c, MHD_HTTP_NOT_FOUND, nf, sizeof(nf) - 1, "text/plain");
    }
    if (!get) {
        static const char na[] = "only GET\n";
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, na, sizeof(na) - 1, "text/plain");
    }
    char *text = NULL;
    size_t len = 0;
    dt_status st = dt__metrics_render(h->m, &text, &len);
    if (st != DT_OK) {
        const char *why = dt_status_str(st);
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, why, strlen(why), "text/plain");
    }
    enum MHD_Result ret = reply(c, MHD_HTTP_OK, text, len, CONTENT_TYPE);
    dt_free(text);
    return ret;
}

dt_status dt__metrics_http_start(const char *addr, dt__metrics *m, dt__metrics_http **out,
                                 char *err, size_t len)
{
    int family = AF_INET;
    dt_status st = DT_OK;
    int fd = listen_on(addr, &family, &st, err, len);
    if (fd < 0) {
        return st;
    }
    dt__metrics_http *h = dt_calloc(1, sizeof(*h));
    if (h == NULL) {
        close(fd);
        return DT_ENOMEM;
    }
    h->m = m;
    h->port = bound_port(fd);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_MAX,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S, MHD_OPTION_END);
    if (h->d == NULL) {
        close(fd);
        dt_free(h);
        dt__errf(err, len, "metrics_addr '%s': the HTTP server did not start", addr);
        return DT_EIO;
    }
    *out = h;
    return DT_OK;
}

int dt__metrics_http_port(const dt__metrics_http *h)
{
    return h != NULL ? h->port : -1;
}

void dt__metrics_http_stop(dt__metrics_http *h)
{
    if (h == NULL) {
        return;
    }
    MHD_stop_daemon(h->d); /* joins its thread and closes the listening socket */
    dt_free(h);
}
