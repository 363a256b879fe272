/*
 * sample_json.h: just enough JSON reading for the samples' payloads.
 *
 * Naive on purpose: a key is found by searching for "key": anywhere in the text, so it also
 * matches inside nested objects and string values. That is fine for the flat objects the samples
 * exchange; real code would use a JSON library.
 */
#ifndef DT_SAMPLE_JSON_H
#define DT_SAMPLE_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* The integer under `key` in `json` (may be NULL), or `dflt` when absent or not a number. */
long sjson_long(const char *json, const char *key, long dflt);

/* Copies the string under `key` (without quotes; escapes are not decoded) into out (len bytes,
 * NUL-terminated). False when `json` is NULL, the key is absent, the value is not a string or
 * does not fit. */
bool sjson_str(const char *json, const char *key, char *out, size_t len);

/* Like sjson_str for a JSON text that is itself one string value ("\"Tokyo\""). */
bool sjson_unquote(const char *json, char *out, size_t len);

#endif
