/*
 * Fuzz target: dt__broker_hub_config_decode (broker-adapter/hub_config.c), the reader of the hub
 * config record in the DT_<hub>_META bucket, which any NATS client with access may have written.
 *
 * Properties of an accepted record: it passes the config check; the adapter's own encoding of it
 * decodes to the same config; the input keeps to JSON outside strings (fuzz_json.h).
 */
#include <string.h>

#include "broker_int.h"
#include "fuzz.h"
#include "fuzz_json.h"

static bool same(const dt_broker_hub_config *a, const dt_broker_hub_config *b)
{
    char diff[256];
    return !dt__broker_hub_config_diff(a, b, diff, sizeof(diff)) &&
           a->format_version == b->format_version && a->created_at_ms == b->created_at_ms;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dt_broker_hub_config c, back;
    char err[256];
    if (dt__broker_hub_config_decode((const char *)data, size, &c, err, sizeof(err)) != DT_OK) {
        return 0;
    }
    FUZZ_CHECK(dt__broker_hub_config_check(&c, err, sizeof(err)) == DT_OK);
    FUZZ_CHECK(fuzz_json_clean_outside_strings(data, size));
    char buf[512];
    size_t len = 0;
    FUZZ_CHECK(dt__broker_hub_config_encode(&c, buf, sizeof(buf), &len) == DT_OK);
    FUZZ_CHECK(dt__broker_hub_config_decode(buf, len, &back, err, sizeof(err)) == DT_OK);
    FUZZ_CHECK(same(&c, &back));
    return 0;
}
