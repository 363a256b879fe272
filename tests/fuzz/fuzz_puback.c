/*
 * Fuzz target: dt__broker_puback_parse (broker-adapter/puback.c over json.c), the reader of the
 * PubAcks nats-server sends for every JetStream publish (the async publisher parses them itself).
 *
 * Properties of an accepted PubAck: it has a sequence or an error; its description is a slice of
 * the input; the input keeps to JSON outside strings (fuzz_json.h); the fast path for the common
 * shapes and the JSON reader agree.
 */
#include "broker_int.h"
#include "fuzz.h"
#include "fuzz_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dt__puback pa, pj;
    bool fast = dt__broker_puback_parse((const char *)data, size, &pa);
    bool json = dt__broker_puback_parse_json((const char *)data, size, &pj);
    FUZZ_CHECK(fast == json);
    if (fast) {
        FUZZ_CHECK(pa.seq == pj.seq && pa.duplicate == pj.duplicate &&
                   pa.has_error == pj.has_error);
    }
    if (fast) {
        FUZZ_CHECK(fuzz_slice_inside(pa.desc, pa.desc_len, data, size));
        FUZZ_CHECK(pa.has_error || pa.err_code == 0);
        FUZZ_CHECK(fuzz_json_clean_outside_strings(data, size));
    }
    return 0;
}
