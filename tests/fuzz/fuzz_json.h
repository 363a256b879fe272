/*
 * fuzz_json.h: a check the JSON targets share. The adapter's reader (broker-adapter/json.c) is
 * deliberately loose inside strings (raw slices, escapes not interpreted), but outside them an
 * input it accepts must keep to JSON's grammar in the one way a byte-level check can tell: no NUL
 * or other control byte except whitespace.
 */
#ifndef DT_FUZZ_JSON_H
#define DT_FUZZ_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when every byte outside the strings of data[0..size) is printable or JSON whitespace. */
static inline bool fuzz_json_clean_outside_strings(const uint8_t *data, size_t size)
{
    bool in_string = false;
    for (size_t i = 0; i < size; i++) {
        uint8_t c = data[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return false;
        }
    }
    return true;
}

/* True when [p, p + n) lies inside data[0..size) (p NULL with n 0 is fine). */
static inline bool fuzz_slice_inside(const void *p, size_t n, const uint8_t *data, size_t size)
{
    const uint8_t *s = p;
    return (s == NULL && n == 0) || (s >= data && n <= size && s - data <= (ptrdiff_t)(size - n));
}

#endif
