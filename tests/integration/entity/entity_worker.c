/*
 * entity_worker: a worker process serving the test entities (entity_funcs.h), for the tests that
 * kill a worker with SIGKILL. Usage: entity_worker URL HUB DATA_DIR. Stops on SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "durabletask/worker.h"
#include "entity_funcs.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: entity_worker URL HUB DATA_DIR\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts: sigwait below */
    dt_worker_options o = {.nats_url = argv[1], .hub = argv[2], .data_dir = argv[3]};
    dt_worker *w = NULL;
    char err[256];
    if (dt_worker_create(&o, &w, err, sizeof(err)) != DT_OK) {
        fprintf(stderr, "entity_worker: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (dt_worker_add_entity(w, "counter", ef_counter, NULL) != DT_OK ||
        dt_worker_start(w) != DT_OK) {
        fprintf(stderr, "entity_worker: %s\n", dt_worker_errmsg(w));
        rc = 1;
    } else {
        int sig = 0;
        sigwait(&set, &sig);
        dt_worker_stop(w, 5000);
    }
    dt_worker_destroy(w);
    return rc;
}
