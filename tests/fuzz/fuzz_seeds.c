/*
 * fuzz_seeds OUTDIR: writes the seed corpus of every fuzz target into OUTDIR/<target>/, made
 * with the project's own encoders from real data: the histories the engine writes for the
 * orchestrators of fuzz_orch.h (fuzz_world.h), the messages the runtime wraps them in, the
 * replies the worker's query service gives over a store holding them, and, for what nats-server
 * writes (PubAcks, consumer-create replies, header blocks), texts as nats-server 2.9.10 sent them.
 * Deterministic apart from timestamps; scripts/fuzz runs it before every campaign.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "fuzz_seeds.h"

static const char *outdir;
static unsigned written;

void seed_put(const char *target, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fuzz_fail("mkdir %s: %s", path, strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fuzz_fail("cannot write %s", path);
    }
    written++;
}

void seed_put_msg(const char *target, const char *name, const ProtobufCMessage *m)
{
    size_t len = 0;
    uint8_t *buf = fuzz_pb_pack(m, &len);
    seed_put(target, name, buf, len);
    free(buf);
}

void seed_put_text(const char *target, const char *name, const char *text)
{
    seed_put(target, name, text, strlen(text));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        fuzz_fail("mkdir %s: %s", outdir, strerror(errno));
    }
    size_t n = 0;
    fuzz_history *h = fuzz_world_record(&n);
    seeds_history(h, n);
    seeds_work_items(h, n);
    seeds_queries(h, n);
    seeds_broker();
    seeds_journal(h, n);
    fuzz_world_free(h, n);
    printf("fuzz_seeds: %u seed files in %s\n", written, outdir);
    return 0;
}
