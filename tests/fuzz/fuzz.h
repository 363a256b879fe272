/*
 * fuzz.h: what the libFuzzer targets of tests/fuzz share (built only with DT_BUILD_FUZZ=ON and
 * clang; scripts/fuzz builds and runs them, docs/testing.md describes them).
 *
 * Each target is one LLVMFuzzerTestOneInput over one decoder of bytes that come from outside the
 * process. Sanitizers catch memory and undefined-behaviour errors; FUZZ_CHECK catches a broken
 * property (a decoder that disagrees with its reference, an accepted input that does not survive
 * a round trip) and aborts, which libFuzzer reports as a crash with the input saved.
 */
#ifndef DT_FUZZ_H
#define DT_FUZZ_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The partition subjects of the hub the targets and seeds pretend to serve ("dt.<hub>.orch."). */
#define FUZZ_ORCH_PREFIX "dt.fuzz.orch."

/* Aborts (a crash to libFuzzer) when `cond` is false, naming the property that broke. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Prints the broken property and aborts. */
void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/*
 * Compares two unpacked messages of the same type field by field, through their descriptor:
 * scalars, strings (NULL-ness and bytes), bytes (length, bytes and whether data is NULL), nested
 * and repeated messages, oneof cases, presence flags and unknown fields. Returns true when they
 * are equal; otherwise writes the path of the first difference into why (e.g.
 * "HistoryEvent.task_failed.failure_details.error_type").
 */
bool fuzz_pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *why, size_t len);

/* Packs m with protobuf-c into a malloc'd buffer (the caller frees it); aborts on out of memory. */
uint8_t *fuzz_pb_pack(const ProtobufCMessage *m, size_t *out_len);

#endif
