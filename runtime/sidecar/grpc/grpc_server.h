/*
 * grpc_server.h: the gRPC server transport of dt-sidecar, as its services see it (internal).
 *
 * A server listens on one TCP address and serves gRPC over HTTP/2 cleartext with prior knowledge
 * (no TLS, no HTTP/1.1 upgrade). It supports what TaskHubSidecarService needs: unary calls and
 * server-streaming calls, each with exactly one request message, uncompressed. Methods are
 * registered by full path ("/TaskHubSidecarService/Hello"); any other path is answered
 * UNIMPLEMENTED with a message.
 *
 * Threads: one event-loop thread does all socket and HTTP/2 work and never blocks. Each call
 * whose request is complete runs its handler on a thread of its own (bounded by max_calls:
 * RESOURCE_EXHAUSTED beyond), so a handler may block for as long as its call lasts (a client
 * API call, a wait of minutes, a work-item stream). What a handler sends is queued and the loop
 * is woken to write it. When the client cancels the call (RST_STREAM), its deadline passes on
 * the client, or the connection goes away, the call is marked cancelled and its waits return.
 *
 * The implementation is nghttp2 with gRPC framing of its own (grpc_*.c beside this header);
 * only this header is seen by the services, so another transport (gRPC C core) could replace
 * it with the same functions.
 */
#ifndef DT_SIDECAR_GRPC_SERVER_H
#define DT_SIDECAR_GRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask/status.h"

/* gRPC status codes (the protocol's numbers). */
typedef enum dt__grpc_code {
    DT_GRPC_OK = 0,
    DT_GRPC_CANCELLED = 1,
    DT_GRPC_UNKNOWN = 2,
    DT_GRPC_INVALID_ARGUMENT = 3,
    DT_GRPC_DEADLINE_EXCEEDED = 4,
    DT_GRPC_NOT_FOUND = 5,
    DT_GRPC_ALREADY_EXISTS = 6,
    DT_GRPC_PERMISSION_DENIED = 7,
    DT_GRPC_RESOURCE_EXHAUSTED = 8,
    DT_GRPC_FAILED_PRECONDITION = 9,
    DT_GRPC_ABORTED = 10,
    DT_GRPC_OUT_OF_RANGE = 11,
    DT_GRPC_UNIMPLEMENTED = 12,
    DT_GRPC_INTERNAL = 13,
    DT_GRPC_UNAVAILABLE = 14,
    DT_GRPC_DATA_LOSS = 15,
    DT_GRPC_UNAUTHENTICATED = 16
} dt__grpc_code;

typedef struct dt__grpc_server dt__grpc_server;
/* One call. Handed to a handler, which owns it until dt__grpc_call_finish. */
typedef struct dt__grpc_call dt__grpc_call;

/* Runs the call on its own thread; must end with dt__grpc_call_finish (if it returns without,
 * the call ends INTERNAL). `ctx` is the pointer given to dt__grpc_server_add_method. */
typedef void (*dt__grpc_handler)(dt__grpc_call *call, void *ctx);

typedef struct dt__grpc_server_options {
    const char *listen;        /* "host:port" (IPv4 literal or localhost); port 0: any free one */
    size_t max_message;        /* largest message either way; 0: 4 MiB */
    uint32_t max_calls;        /* calls whose handlers run at once; 0: 256 */
    uint32_t max_connections;  /* 0: 256 */
    int64_t keepalive_ms;      /* a connection idle this long gets a PING; 0: 30000 */
    int64_t keepalive_wait_ms; /* and is closed if its ACK is not back in this; 0: 20000 */
} dt__grpc_server_options;

/*
 * Binds and listens on o->listen (borrowed). On DT_OK *out is a new server, not yet serving
 * (add methods, then dt__grpc_server_start). DT_EINVAL for a bad address, DT_EIO when it cannot
 * be bound (errbuf, may be NULL, says why).
 */
dt_status dt__grpc_server_create(const dt__grpc_server_options *o, dt__grpc_server **out,
                                 char *errbuf, size_t errlen);

/* Registers `path` (copied) for `fn`; before start only. DT_EEXIST for a path given twice. */
dt_status dt__grpc_server_add_method(dt__grpc_server *s, const char *path, dt__grpc_handler fn,
                                     void *ctx);

/*
 * Marks a registered method as one whose calls wait for what other calls bring about
 * (WaitForInstanceCompletion waits for the worker's CompleteOrchestratorTask). At most max_calls
 * minus a reserve (max_calls / 8, at least 1) of them run at once, and one beyond is
 * RESOURCE_EXHAUSTED at once: the calls that end the waits always find a handler and a stream.
 * Without the reserve, an app that opened more waits than the stream limit on the connection it
 * shares with its worker (grpc-js gives both one) hung: the waits held every stream and handler,
 * and the worker's completions queued in the client behind them. DT_ENOTFOUND for an unknown
 * path; before start only.
 */
dt_status dt__grpc_server_mark_waiting(dt__grpc_server *s, const char *path);

/* The bound port (useful with port 0). */
int dt__grpc_server_port(const dt__grpc_server *s);

/* Starts the event-loop thread. */
dt_status dt__grpc_server_start(dt__grpc_server *s);

/* Stops serving: closes every connection (their calls are cancelled), waits for running
 * handlers to finish, frees `s`. Accepts NULL. */
void dt__grpc_server_destroy(dt__grpc_server *s);

/* ---- Calls (from the handler's thread unless said otherwise) ---- */

/* The request message (without the gRPC length prefix); lives as long as the call. */
const uint8_t *dt__grpc_call_request(const dt__grpc_call *call, size_t *out_len);

/* The method's path ("/TaskHubSidecarService/Hello"); lives as long as the call. */
const char *dt__grpc_call_path(const dt__grpc_call *call);

/* The client's deadline (grpc-timeout) as dt__mono_ms time; 0 when it gave none. */
int64_t dt__grpc_call_deadline(const dt__grpc_call *call);

/*
 * Queues one response message (copied). Unary calls send at most one; streams any number. Blocks
 * while more than ~1 MiB of earlier messages of this call are still unwritten (the client reads
 * slowly), until the call is cancelled. DT_ECLOSED when the call is cancelled, DT_ETOOLARGE when
 * the message exceeds max_message (nothing sent).
 */
dt_status dt__grpc_call_send(dt__grpc_call *call, const void *msg, size_t len);

/* Ends the call with `code` and `message` (copied; NULL: none) after the queued messages. The
 * call must not be used afterwards. */
void dt__grpc_call_finish(dt__grpc_call *call, dt__grpc_code code, const char *message);

/* True once the client cancelled the call or went away. */
bool dt__grpc_call_cancelled(dt__grpc_call *call);

/*
 * Waits until dt__grpc_call_wake was called since the previous wait, the call is cancelled, or
 * timeout_ms (< 0: no bound) passed. Returns false when cancelled, true otherwise.
 */
bool dt__grpc_call_wait(dt__grpc_call *call, int64_t timeout_ms);

/* Wakes dt__grpc_call_wait. Any thread, until the handler finishes the call; only signals. */
void dt__grpc_call_wake(void *call);

#endif
