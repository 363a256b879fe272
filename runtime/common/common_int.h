/*
 * common_int.h: small helpers shared by every module of the runtime (internal, dt__ prefix), on
 * top of base_int.h (the allocator, status codes, clocks and dt__errf, which the broker adapter
 * uses as well).
 */
#ifndef DT_COMMON_INT_H
#define DT_COMMON_INT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "base_int.h"
#include "durabletask/alloc.h"
#include "durabletask/status.h"
/* `ms` since the epoch as ISO-8601 UTC with milliseconds, "2026-12-07T14:30:00.123Z", into buf
 * (at least DT__ISO8601_BUF bytes); returns buf. */
#define DT__ISO8601_BUF 32
const char *dt__iso8601_ms(int64_t ms, char *buf, size_t len);
/* Parses all of `s` as a decimal integer in [min, max] into *out; false otherwise (empty, junk,
 * overflow, out of range). */
bool dt__parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/*
 * The options rule's struct_size (durabletask/defs.h), options.c. dt__options_read copies the
 * caller's options struct `src` (borrowed; its first member the size_t struct_size) into `dst`
 * of this library's `size` bytes: the caller's fields, then zeros (defaults) for the fields its
 * older header lacked; dst's struct_size is set to `size`. struct_size 0 stands for `base`, the
 * layout of the release that introduced struct_size (today: the whole struct; once a field is
 * appended, offsetof that field). DT_EVERSION for a larger struct (a newer header) whose fields
 * past `size` are not all zero, DT_EINVAL for a struct_size too small to hold itself.
 */
dt_status dt__options_read(void *dst, size_t size, const void *src, size_t base);
/* Writes the library's struct `src` (`size` bytes) into the caller's `dst`: no more bytes than
 * the caller's struct_size says it has (0: `base`); dst keeps its struct_size. */
void dt__options_write(void *dst, const void *src, size_t size, size_t base);

/* PERSISTED (IDs derived from them are stored): never change these three. */
#define DT__FNV64_OFFSET 0xcbf29ce484222325ULL
/* FNV-1a 64-bit over the bytes of s (NULL hashes as empty), continuing from h. */
uint64_t dt__fnv1a64(uint64_t h, const char *s);
/* The splitmix64 finalizer: spreads the bits of x. */
uint64_t dt__mix64(uint64_t x);
/* Formats 128 bits as an RFC 4122 UUID of the given version (4 random, 5 name-based). */
void dt__format_uuid(uint64_t hi, uint64_t lo, unsigned version, char out[37]);
/* Turns a UUID in `s` (36 chars) into the form of execution IDs, in place: its 32 hex digits
 * without dashes (.NET's Guid.ToString("N"), the form the Durable Task Scheduler mints and the
 * SDKs derive sub-orchestration IDs from: "<execution ID>:<4 hex digits>"). */
void dt__uuid_compact(char *s);

/* A ProtobufCAllocator that routes protobuf-c's heap traffic through dt_alloc/dt_free. */
ProtobufCAllocator *dt__pb_allocator(void);

#endif
