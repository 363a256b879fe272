/*
 * grpc_h2.c: one connection's HTTP/2 session and the gRPC framing on it (event-loop thread only).
 *
 * Requests: a HEADERS frame opens a call (:method POST, content-type application/grpc, :path,
 * grpc-timeout); DATA carries one length-prefixed message (1 byte compressed flag, 4 bytes
 * big-endian length), read into a buffer no larger than that message, which must not exceed
 * max_message. When the client ends the stream, the call is checked and its handler started.
 * Anything wrong is answered at once with a status in a trailers-only response, so that bad
 * input never reaches a handler and never costs more than its own stream.
 *
 * Responses: headers, then the queued messages as DATA through a deferred data source (the
 * loop resumes it when a handler queues more), then trailers with grpc-status and grpc-message.
 * A call that ends without a message gets a trailers-only response.
 */
#include "grpc_int.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common_int.h"

#define PATH_MAX_LEN 512

static dt__grpc_call *stream_call(nghttp2_session *h2, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(h2, stream_id);
}

/* grpc-message is percent-encoded: bytes outside printable ASCII, and '%'. */
static void percent_encode(const char *in, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p != 0 && o + 4 < len; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '%') {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = 0;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

/* Submits a trailers-only response: the call ends here with `code` and `message`. */
static void respond_status(dt__grpc_call *call, const char *http_status, dt__grpc_code code,
                           const char *message)
{
    char codebuf[12], msgbuf[1024];
    dt__errf(codebuf, sizeof codebuf, "%d", (int)code);
    percent_encode(message != NULL ? message : "", msgbuf, sizeof msgbuf);
    nghttp2_nv nva[] = {NV(":status", http_status), NV("content-type", "application/grpc"),
                        NV("grpc-status", codebuf), NV("grpc-message", msgbuf)};
    size_t n = msgbuf[0] != 0 ? 4 : 3;
    nghttp2_session *h2 = call->conn->h2;
    call->responded = true;
    if (nghttp2_submit_response(h2, call->stream_id, nva, n, NULL) != 0) {
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    /* The client may still be sending (an oversized message): once the response is out (an
     * RST_STREAM submitted now would overtake it), tell it to stop (on_frame_send). */
    call->rst_after_response = !call->request_ended;
}

static void reject(dt__grpc_call *call, dt__grpc_code code, const char *message)
{
    respond_status(call, "200", code, message);
}

/* The data source of a response: the call's queued messages, then the trailers. */
static ssize_t read_response(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
                             uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)user;
    dt__grpc_call *call = src->ptr;
    bool eof = false;
    size_t n = dt__grpc_call_take(call, buf, length, &eof);
    if (n == 0 && !eof) {
        return NGHTTP2_ERR_DEFERRED;
    }
    if (eof) {
        char codebuf[12], msgbuf[1024];
        pthread_mutex_lock(&call->srv->mu);
        dt__errf(codebuf, sizeof codebuf, "%d", (int)call->code);
        percent_encode(call->message != NULL ? call->message : "", msgbuf, sizeof msgbuf);
        pthread_mutex_unlock(&call->srv->mu);
        nghttp2_nv nva[] = {NV("grpc-status", codebuf), NV("grpc-message", msgbuf)};
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        call->responded = true;
        if (nghttp2_submit_trailer(h2, stream_id, nva, msgbuf[0] != 0 ? 2 : 1) != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

void dt__grpc_conn_output(dt__grpc_call *call)
{
    if (call->conn == NULL || call->responded) {
        return;
    }
    nghttp2_session *h2 = call->conn->h2;
    if (call->data_started) {
        nghttp2_session_resume_data(h2, call->stream_id);
        return;
    }
    pthread_mutex_lock(&call->srv->mu);
    bool only_status = call->finished && call->out_head == NULL;
    dt__grpc_code code = call->code;
    char *message = call->message != NULL ? dt_strdup(call->message) : NULL;
    pthread_mutex_unlock(&call->srv->mu);
    if (only_status) {
        respond_status(call, "200", code, message);
        dt_free(message);
        return;
    }
    dt_free(message);
    nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider dp = {.source.ptr = call, .read_callback = read_response};
    call->data_started = true;
    if (nghttp2_submit_response(h2, call->stream_id, nva, 2, &dp) != 0) {
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_INTERNAL_ERROR);
    }
}

/* grpc-timeout: at most 8 digits and a unit (H M S m u n); 0 when absent or malformed. */
static int64_t parse_timeout(const uint8_t *v, size_t len)
{
    if (len < 2 || len > 9) {
        return 0;
    }
    int64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return 0;
        }
        n = n * 10 + (v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        return n * 3600000;
    case 'M':
        return n * 60000;
    case 'S':
        return n * 1000;
    case 'm':
        return n;
    case 'u':
        return n / 1000 + 1;
    case 'n':
        return n / 1000000 + 1;
    default:
        return 0;
    }
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *user)
{
    dt__grpc_conn *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    dt__grpc_call *call = dt__grpc_call_new(c->srv, c, frame->hd.stream_id);
    if (call == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    }
    call->conn_next = c->calls;
    c->calls = call;
    nghttp2_session_set_stream_user_data(h2, frame->hd.stream_id, call);
    return 0;
}

static bool content_type_grpc(const uint8_t *v, size_t len)
{
    static const char base[] = "application/grpc";
    size_t b = sizeof base - 1;
    return len >= b && memcmp(v, base, b) == 0 && (len == b || v[b] == '+' || v[b] == ';');
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)flags;
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    dt__grpc_call *call = stream_call(h2, frame->hd.stream_id);
    if (call == NULL) {
        return 0;
    }
    if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
        if (valuelen > PATH_MAX_LEN || call->path != NULL) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        call->path = dt_memdup(value, valuelen);
        if (call->path == NULL) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    } else if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
        size_t n = valuelen < sizeof call->method - 1 ? valuelen : sizeof call->method - 1;
        memcpy(call->method, value, n);
        call->method[n] = 0;
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        call->content_type_ok = content_type_grpc(value, valuelen);
    } else if (namelen == 12 && memcmp(name, "grpc-timeout", 12) == 0) {
        int64_t ms = parse_timeout(value, valuelen);
        call->deadline = ms > 0 ? dt__mono_ms() + ms : 0;
    }
    return 0;
}

/* Makes room for `need` bytes of the body (at most in_want): doubling, from 16 KiB. */
static bool grow_in(dt__grpc_call *call, size_t need)
{
    if (need <= call->in_cap) {
        return true;
    }
    size_t cap = call->in_cap > 0 ? call->in_cap : 16384;
    while (cap < need) {
        cap *= 2;
    }
    if (cap > call->in_want) {
        cap = call->in_want;
    }
    uint8_t *p = dt_realloc(call->in, cap);
    if (p == NULL) {
        return false;
    }
    call->in = p;
    call->in_cap = cap;
    return true;
}

/* Appends request bytes: the 5-byte prefix, then the message body, no more than it announced. */
static void take_request_bytes(dt__grpc_call *call, const uint8_t *data, size_t len)
{
    while (len > 0 && call->hdr_len < 5) {
        call->hdr[call->hdr_len++] = *data++;
        len--;
        if (call->hdr_len < 5) {
            continue;
        }
        uint32_t mlen = (uint32_t)call->hdr[1] << 24 | (uint32_t)call->hdr[2] << 16 |
                        (uint32_t)call->hdr[3] << 8 | call->hdr[4];
        if (call->hdr[0] != 0) {
            reject(call, DT_GRPC_UNIMPLEMENTED, "compressed messages are not supported");
            return;
        }
        if (mlen > call->srv->o.max_message) {
            char msg[128];
            dt__errf(msg, sizeof msg, "request message of %u bytes exceeds the limit of %zu", mlen,
                     call->srv->o.max_message);
            reject(call, DT_GRPC_RESOURCE_EXHAUSTED, msg);
            return;
        }
        call->in_want = mlen;
    }
    if (len == 0) {
        return;
    }
    if (len > call->in_want - call->in_len) {
        reject(call, DT_GRPC_INTERNAL, "more than one request message on a call that takes one");
        return;
    }
    if (!grow_in(call, call->in_len + len)) {
        reject(call, DT_GRPC_RESOURCE_EXHAUSTED, "out of memory for the request");
        return;
    }
    memcpy(call->in + call->in_len, data, len);
    call->in_len += len;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    (void)user;
    dt__grpc_call *call = stream_call(h2, stream_id);
    if (call != NULL && !call->responded && !call->dispatched) {
        take_request_bytes(call, data, len);
    }
    return 0;
}

static const dt__grpc_method *find_method(const dt__grpc_server *s, const char *path)
{
    for (size_t i = 0; i < s->nmethods; i++) {
        if (strcmp(s->methods[i].path, path) == 0) {
            return &s->methods[i];
        }
    }
    return NULL;
}

/* The client ended its side of the stream: check the request and start its handler. */
static void request_complete(dt__grpc_call *call)
{
    call->request_ended = true;
    if (call->responded || call->dispatched) {
        return;
    }
    char msg[PATH_MAX_LEN + 64];
    if (strcmp(call->method, "POST") != 0) {
        respond_status(call, "405", DT_GRPC_UNIMPLEMENTED, "gRPC requests use POST");
        return;
    }
    if (!call->content_type_ok) {
        respond_status(call, "415", DT_GRPC_INTERNAL, "content-type must be application/grpc");
        return;
    }
    call->m = call->path != NULL ? find_method(call->srv, call->path) : NULL;
    if (call->m == NULL) {
        dt__errf(msg, sizeof msg, "unknown method %s", call->path != NULL ? call->path : "(none)");
        reject(call, DT_GRPC_UNIMPLEMENTED, msg);
        return;
    }
    if (call->hdr_len < 5 || call->in_len < call->in_want) {
        reject(call, DT_GRPC_INTERNAL, "the request ended before a complete message");
        return;
    }
    if (!dt__grpc_call_dispatch(call)) {
        reject(call, DT_GRPC_RESOURCE_EXHAUSTED, "too many calls in progress");
    }
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *user)
{
    dt__grpc_conn *c = user;
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        c->ping_sent = 0;
        return 0;
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        dt__grpc_call *call = stream_call(h2, frame->hd.stream_id);
        if (call != NULL) {
            request_complete(call);
        }
    }
    return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *user)
{
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        return 0;
    }
    dt__grpc_call *call = stream_call(h2, frame->hd.stream_id);
    if (call != NULL && call->rst_after_response) {
        call->rst_after_response = false;
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static void unlink_call(dt__grpc_conn *c, dt__grpc_call *call)
{
    for (dt__grpc_call **p = &c->calls; *p != NULL; p = &(*p)->conn_next) {
        if (*p == call) {
            *p = call->conn_next;
            return;
        }
    }
}

static int on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code, void *user)
{
    (void)error_code;
    dt__grpc_conn *c = user;
    dt__grpc_call *call = stream_call(h2, stream_id);
    if (call == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
    unlink_call(c, call);
    call->conn = NULL;
    dt__grpc_call_cancel(call); /* no effect on a call that already finished */
    dt__grpc_call_unref(call);
    return 0;
}

dt_status dt__grpc_conn_open(dt__grpc_server *s, int fd, dt__grpc_conn **out)
{
    dt__grpc_conn *c = dt_calloc(1, sizeof *c);
    if (c == NULL) {
        return DT_ENOMEM;
    }
    c->srv = s;
    c->fd = fd;
    c->last_recv = dt__mono_ms();
    nghttp2_session_callbacks *cb = NULL;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        dt_free(c);
        return DT_ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    int rc = nghttp2_session_server_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        dt_free(c);
        return DT_ENOMEM;
    }
    /* The stream limit is the server's call limit, not less: grpc-js gives channels to one
     * address one connection, so an app's client and worker share it, and a limit of 100 let
     * 100 open waits hold every stream while the worker's CompleteOrchestratorTask, the calls
     * that would end them, queued in the client behind them. Beyond max_calls a call gets
     * RESOURCE_EXHAUSTED (a clear error) rather than a stall, and waiting calls beyond their
     * share (dt__grpc_server_mark_waiting) too, so their streams turn over and the calls that
     * end the waits get through. */
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->o.max_calls},
                                   {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384}};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2);
    *out = c;
    return DT_OK;
}

bool dt__grpc_conn_recv(dt__grpc_conn *c, const uint8_t *data, size_t len)
{
    c->last_recv = dt__mono_ms();
    ssize_t n = nghttp2_session_mem_recv(c->h2, data, len);
    return n >= 0 && (size_t)n == len;
}

/* Writes buf as far as the socket takes it; returns the bytes written, or -1 on an error. */
static ssize_t write_some(int fd, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return -1;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

bool dt__grpc_conn_flush(dt__grpc_conn *c)
{
    if (c->woff < c->wlen) {
        ssize_t n = write_some(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n < 0) {
            return false;
        }
        c->woff += (size_t)n;
        if (c->woff < c->wlen) {
            return true; /* the loop waits for POLLOUT */
        }
        c->woff = c->wlen = 0;
    }
    for (;;) {
        const uint8_t *data = NULL;
        ssize_t len = nghttp2_session_mem_send(c->h2, &data);
        if (len < 0) {
            return false;
        }
        if (len == 0) {
            break;
        }
        ssize_t n = write_some(c->fd, data, (size_t)len);
        if (n < 0) {
            return false;
        }
        if (n < len) {
            size_t rest = (size_t)(len - n);
            uint8_t *w = dt_realloc(c->wbuf, rest);
            if (w == NULL) {
                return false;
            }
            memcpy(w, data + n, rest);
            c->wbuf = w;
            c->wlen = rest;
            c->woff = 0;
            return true;
        }
    }
    return nghttp2_session_want_read(c->h2) || nghttp2_session_want_write(c->h2);
}

bool dt__grpc_conn_keepalive(dt__grpc_conn *c, int64_t now)
{
    const dt__grpc_server_options *o = &c->srv->o;
    if (c->ping_sent != 0) {
        return now - c->ping_sent < o->keepalive_wait_ms;
    }
    if (now - c->last_recv >= o->keepalive_ms) {
        if (nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) == 0) {
            c->ping_sent = now;
        }
    }
    return true;
}

void dt__grpc_conn_close(dt__grpc_conn *c)
{
    /* nghttp2_session_del reports no stream closes: cancel the calls here. */
    dt__grpc_call *call = c->calls;
    while (call != NULL) {
        dt__grpc_call *next = call->conn_next;
        call->conn = NULL;
        dt__grpc_call_cancel(call);
        dt__grpc_call_unref(call);
        call = next;
    }
    nghttp2_session_del(c->h2);
    close(c->fd);
    dt_free(c->wbuf);
    dt_free(c);
}
