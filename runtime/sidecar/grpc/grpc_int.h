/*
 * grpc_int.h: what the files of the nghttp2 transport share (internal to runtime/sidecar/grpc).
 *
 * grpc_server.c owns the listening socket, the event loop and the connections' sockets;
 * grpc_h2.c is one connection's HTTP/2 session (nghttp2 callbacks, gRPC framing, responses);
 * grpc_call.c is the call object the handlers use and the threads they run on.
 *
 * Locking: one mutex per server (s->mu) guards every field marked [mu] of the server and its
 * calls; fields marked [loop] belong to the event-loop thread alone. The loop never blocks on a
 * handler: handlers change [mu] state, put their call on s->ready and write s->wakefd.
 */
#ifndef DT_SIDECAR_GRPC_INT_H
#define DT_SIDECAR_GRPC_INT_H

#include <nghttp2/nghttp2.h>
#include <pthread.h>

#include "grpc_server.h"

/* Unwritten bytes of one call above which dt__grpc_call_send waits. */
#define DT__GRPC_SEND_HIGH (1u << 20)

typedef struct dt__grpc_method {
    char *path;
    dt__grpc_handler fn;
    void *ctx;
    bool waits; /* dt__grpc_server_mark_waiting */
} dt__grpc_method;

typedef struct dt__grpc_buf {
    struct dt__grpc_buf *next;
    size_t len, off;
    uint8_t data[];
} dt__grpc_buf;

typedef struct dt__grpc_conn dt__grpc_conn;

struct dt__grpc_call {
    dt__grpc_server *srv;
    int refs; /* [mu] the loop's stream, the handler, the ready list */

    /* Request side [loop] until dispatch, then read-only. */
    dt__grpc_conn *conn; /* [loop] NULL once the stream is closed */
    int32_t stream_id;
    struct dt__grpc_call *conn_next; /* [loop] the connection's calls */
    char *path;
    char method[8];
    bool content_type_ok;
    bool request_ended;      /* [loop] the client ended its side of the stream */
    bool dispatched;         /* [loop] a handler runs or ran */
    bool responded;          /* [loop] final headers (or trailers-only) submitted */
    bool rst_after_response; /* [loop] the request was cut short: reset once responded */
    bool data_started;       /* [loop] response headers with a data source submitted */
    int64_t deadline;
    uint8_t hdr[5]; /* the request message's prefix */
    size_t hdr_len;
    /* Its body: in_want bytes (the prefix's length); the buffer grows as they arrive, so a
     * prefix alone costs no memory. */
    uint8_t *in;
    size_t in_len, in_cap, in_want;
    const dt__grpc_method *m;

    /* Response side [mu]. */
    dt__grpc_buf *out_head, *out_tail;
    size_t out_bytes;
    bool finished; /* the handler called finish */
    dt__grpc_code code;
    char *message;
    bool cancelled;
    bool woken;
    bool queued; /* on s->ready */
    struct dt__grpc_call *ready_next;
    pthread_cond_t cond; /* send waits for room, wait for wake/cancel */
};

struct dt__grpc_conn {
    dt__grpc_server *srv;
    int fd;
    nghttp2_session *h2;
    dt__grpc_call *calls; /* [loop] open streams */
    uint8_t *wbuf;        /* unwritten bytes nghttp2 produced */
    size_t wlen, woff;
    int64_t last_recv;
    int64_t ping_sent; /* 0: none outstanding */
    bool closing;
    struct dt__grpc_conn *next;
};

struct dt__grpc_server {
    dt__grpc_server_options o;
    int listen_fd;
    int port;
    int wakefd[2]; /* pipe: handlers write one byte, the loop drains */
    pthread_t loop;
    bool started;

    dt__grpc_method *methods;
    size_t nmethods;

    dt__grpc_conn *conns; /* [loop] */
    uint32_t nconns;      /* [loop] */

    pthread_mutex_t mu;
    pthread_cond_t idle;  /* [mu] signalled when nhandlers drops to 0 */
    uint32_t nhandlers;   /* [mu] */
    uint32_t nwaiting;    /* [mu] handlers of methods marked waiting */
    dt__grpc_call *ready; /* [mu] calls with output for the loop */
    bool stopping;        /* [mu] */
};

/* grpc_h2.c */
dt_status dt__grpc_conn_open(dt__grpc_server *s, int fd, dt__grpc_conn **out);
/* Feeds received bytes; false when the connection must close (protocol error). */
bool dt__grpc_conn_recv(dt__grpc_conn *c, const uint8_t *data, size_t len);
/* Writes what nghttp2 has to send; false when the connection must close. */
bool dt__grpc_conn_flush(dt__grpc_conn *c);
/* Submits the output the handler of `call` queued (on the loop thread). */
void dt__grpc_conn_output(dt__grpc_call *call);
/* Cancels the connection's calls and frees it (closes the socket). */
void dt__grpc_conn_close(dt__grpc_conn *c);
/* Sends a keepalive PING when idle; false when an earlier one went unanswered too long. */
bool dt__grpc_conn_keepalive(dt__grpc_conn *c, int64_t now);

/* grpc_call.c */
dt__grpc_call *dt__grpc_call_new(dt__grpc_server *s, dt__grpc_conn *conn, int32_t stream_id);
/* Drops one reference; frees the call with the last. Takes s->mu itself. */
void dt__grpc_call_unref(dt__grpc_call *call);
/* Marks the call cancelled (stream closed before finish) and wakes its handler. */
void dt__grpc_call_cancel(dt__grpc_call *call);
/* Starts the handler thread; false when max_calls are running or no thread can start. */
bool dt__grpc_call_dispatch(dt__grpc_call *call);
/* Moves up to `len` queued response bytes into buf; sets *eof when finished and drained.
 * Returns the bytes copied (0 and !*eof: nothing yet). */
size_t dt__grpc_call_take(dt__grpc_call *call, uint8_t *buf, size_t len, bool *eof);

/* grpc_server.c: wakes the loop (any thread, s->mu held or not). */
void dt__grpc_server_poke(dt__grpc_server *s);

#endif
