/*
 * Fuzz target: dt__broker_consumer_reply_parse (broker-adapter/consumer_reply.c over json.c), the
 * reader of nats-server's $JS.API.CONSUMER.CREATE replies (the single-key KV watch); the replies
 * are long objects of nested keys it skips.
 *
 * Properties of an accepted reply: the description is a slice of the input; the input keeps to
 * JSON outside strings up to where the object ends (fuzz_json.h).
 */
#include "broker_int.h"
#include "fuzz.h"
#include "fuzz_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dt__consumer_reply r;
    if (dt__broker_consumer_reply_parse((const char *)data, size, &r)) {
        FUZZ_CHECK(fuzz_slice_inside(r.desc, r.desc_len, data, size));
        /* The reader stops after the object; what follows it is not read. (A skip from the top
         * may refuse what the reader took: the reader's nesting bound counts from each key.) */
        dt__json c;
        dt__json_init(&c, (const char *)data, size);
        if (dt__json_skip(&c)) {
            size_t used = (size_t)(c.p - (const char *)data);
            FUZZ_CHECK(fuzz_json_clean_outside_strings(data, used));
        }
    }
    return 0;
}
