/*
 * sidecar_kit.c: the set-up the sidecar and remote tests share (sidecar_kit.h).
 */
#include "sidecar_kit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

dt_client *sidecar_kit_hub(const char *url, const char *hub)
{
    dt_client_options co;
    dt_client_options_init(&co);
    co.nats_url = url;
    co.hub = hub;
    dt_client *c = NULL;
    assert_int_equal(dt_client_create(&co, &c, NULL, 0), DT_OK);
    dt_client_hub_info hi;
    dt_client_hub_info_init(&hi);
    hi.partitions = 2;
    hi.memory_storage = true;
    assert_int_equal(dt_client_hub_create(c, &hi, NULL), DT_OK);
    return c;
}

dt__sidecar *sidecar_kit_start(const dt__sidecar_options *o, char port[16])
{
    char err[512] = "";
    dt__sidecar *s = NULL;
    dt_status st = dt__sidecar_start(o, &s, err, sizeof err);
    if (st != DT_OK) {
        fail_msg("sidecar: %s (%s)", err, dt_status_name(st));
    }
    snprintf(port, 16, "%d", dt__sidecar_port(s));
    return s;
}
