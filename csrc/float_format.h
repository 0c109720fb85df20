/* float_format: the shortest decimal that reads back as the same double,
 * laid out exactly as Python's repr(float) lays it out.
 *
 * Pure C (no Python.h, no allocation, no global state): any thread may call
 * it.  The digits are those of CPython's repr (David Gay's shortest mode:
 * the fewest significant digits that round-trip, the closest of those to
 * the value, an exact tie going to the even digit), computed with
 * Giulietti's Schubfach algorithm (see float_format.c).
 */
#ifndef QBEL_FLOAT_FORMAT_H
#define QBEL_FLOAT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* "00", "01", ... "99" back to back: the two ASCII digits of n (0..99) are
 * at 2 * n.  Shared with the encoder's integer writer. */
extern const char decimal_digit_pairs[200];

/* Room float_format_shortest needs at `out`: the longest text is 24 bytes
 * ("-1.2345678901234567e-308"). */
#define FLOAT_FORMAT_BUFFER_SIZE 32

/* |value| = digits * 10^exponent, with digits free of trailing zeros
 * (digits == 0 and exponent == 0 for a zero). */
typedef struct float_decimal {
    uint64_t digits;
    int exponent;
} float_decimal;

/* The shortest round-trip decimal of |value|, a finite double (the sign is
 * ignored).  Not defined for NaN and infinities. */
float_decimal float_format_decimal(double value);

/* Write repr(value) to `out` (FLOAT_FORMAT_BUFFER_SIZE bytes, no NUL) and
 * return its length: "0.1", "-0.0", "123.0", "1e+16", "1.5e-07", "5e-324".
 * `value` must be finite: NaN and infinities have no JSON form, and callers
 * decide what to write for them.  The text is valid JSON. */
size_t float_format_shortest(double value, char *out);

#endif
