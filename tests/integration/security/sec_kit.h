/*
 * sec_kit.h: helpers of the connection-security tests. Each test runs nats-servers of its own
 * (tests/support/test_nats.h) configured for one kind of authentication or TLS, with keys and
 * certificates generated at test time (make_tls.sh with openssl, tests/js/make_auth.mjs with the
 * NATS authors' nkeys.js and nats-jwt), and checks that a worker and a client connect and run an
 * orchestration, that wrong credentials fail with DT_EAUTH, and that no secret shows in any error
 * text or log line.
 */
#ifndef DT_SEC_KIT_H
#define DT_SEC_KIT_H

#include <stdbool.h>
#include <stddef.h>

#include "durabletask/client.h"
#include "durabletask/worker.h"
#include "test_nats.h"

/* Fresh temp dir for a test's keys and certificates (malloc'd; sk_rmdir removes and frees). */
char *sk_mkdir(void);
void sk_rmdir(char *dir);

/* make_tls.sh: DIR/ca.pem, server.pem/.key, client.pem/.key, other-ca.pem. */
void sk_make_tls(const char *dir);
/* A user nkey: DIR/user.nk; its public key into pub. */
void sk_make_nkey(const char *dir, char *pub, size_t len);
/* Operator mode: DIR/user.creds, DIR/stranger.creds and the server lines in DIR/operator.conf. */
void sk_make_creds(const char *dir);
/* Reads DIR/name into a malloc'd string (fails the test when missing). */
char *sk_slurp(const char *dir, const char *name);
/* DIR/name into buf; returns buf. */
const char *sk_path(const char *dir, const char *name, char *buf, size_t len);

/* Starts `s` with `extra` config (and debug logging, so that a refusal's cause is in the log),
 * failing the test when it does not come up. */
void sk_start(dt_test_nats *s, const char *extra);

/* Fails the test with the printf-style message, after printing the logs of the servers that are
 * still running (dt_test_nats_print_logs). */
void sk_fail(const char *fmt, ...);

/*
 * A worker and a client on `url` with `sec` run one orchestration (an activity greets the input)
 * on a fresh hub, which is deleted afterwards. Fails the test on any error (with the servers' logs
 * printed; everything it made is freed first), and when `secret` (may be NULL) shows in a worker
 * log line.
 */
void sk_run_orchestration(const char *url, const dt_nats_security *sec, const char *secret);

/* Registers the orchestration of sk_run_orchestration ("greet" and its activity) on `w`. */
void sk_register(dt_worker *w);
/* A client on `url` runs "greet" once on `hub`, whose worker (sk_register) is running. */
void sk_greet(const char *url, const dt_nats_security *sec, const char *hub);

/*
 * Both must be refused: a client (dt_client_create) and a worker start (dt_worker_start, limited
 * to 2 attempts), each with `want` (DT_EAUTH for credentials), and neither error text nor the
 * worker's log may contain `secret`. The client's error text is returned in err.
 */
void sk_expect_refused(const char *url, const dt_nats_security *sec, dt_status want,
                       const char *secret, char *err, size_t len);

/* Fails the test when `text` contains `secret` (NULL secret: no check). */
void sk_assert_no_secret(const char *text, const char *secret);

/* The worker log lines collected by the kit's log sink (static buffer; reset by sk_log_reset). */
const char *sk_log_text(void);
void sk_log_reset(void);
void sk_log_sink(dt_log_level level, const char *instance_id, const char *msg, void *ctx);

#endif
