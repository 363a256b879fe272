/*
 * What the pool's threads share below the pool's life cycle (activity_pool.c), its loop
 * (activity_loop.c) and its ticker (activity_ticker.c): the stop flag, the log line and the
 * release of a slot's last reference. Calls nothing of the worker.
 */
#include <stdarg.h>
#include <stdio.h>

#include "activity_int.h"
#include "common_int.h"

bool dt__act_stopping(const dt__activity_pool *p)
{
    return __atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE);
}

void dt__act_log(const dt__activity_pool *p, dt_log_level level, const char *instance_id,
                 const char *fmt, ...)
{
    if (p->cfg.log == NULL) {
        return;
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    p->cfg.log(level, instance_id, line, p->cfg.log_ctx);
}

void dt__act_slot_release(dt__act_slot *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    /* Handles left only by a slot whose thread never started. */
    dt_broker_consumer_close(s->consumer);
    dt_broker_publisher_destroy(s->pub);
    pthread_mutex_destroy(&s->mu);
    dt_free(s);
}
