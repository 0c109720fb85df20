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
#include <string.h>

/* ---- decimal digits (shared with the encoder's integer writer) ---------- */

/* "00", "01", ... "99" back to back: the two ASCII digits of n (0..99) are
 * at 2 * n. */
extern const char decimal_digit_pairs[200];

/* Number of decimal digits of n (0 has one), 1..20. */
static inline int
decimal_digit_count(uint64_t n)
{
    static const uint64_t powers[20] = {
        1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u,
        1000000000u, 10000000000u, 100000000000u, 1000000000000u, 10000000000000u,
        100000000000000u, 1000000000000000u, 10000000000000000u, 100000000000000000u,
        1000000000000000000u, 10000000000000000000u};
#if defined(__GNUC__) || defined(__clang__)
    /* log10(n) from log2(n): 1233/4096 ~ log10(2); one compare corrects it */
    int bits = 64 - __builtin_clzll(n | 1);
    int guess = (bits * 1233) >> 12;
    return guess + ((n | 1) >= powers[guess]); /* 0 has one digit too */
#else
    int length = 1;
    while (length < 20 && n >= powers[length]) {
        length++;
    }
    return length;
#endif
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    (defined(__GNUC__) || defined(__clang__))
#define DECIMAL_SWAR_DIGITS 1
/* the float layout calls it twice with widths the inlined copy can fold */
#define DECIMAL_FORCE_INLINE __attribute__((always_inline))
/* The 8 ASCII digits of x < 10^8, leading zeros included, the first in the
 * lowest byte (so a little-endian store writes them in order).  No loop and
 * no division: x splits into 4-digit halves in 32-bit lanes, 2-digit
 * quarters in 16-bit lanes, digits in bytes, each step a multiply by a
 * reciprocal that is exact for the lane's range (u/100 = u*10486 >> 20 for
 * u < 10^4; u/10 = u*103 >> 10 for u < 100); no lane overflows into the
 * next, and the masks drop what the shifts bring in from above. */
static inline uint64_t
decimal_eight_digits(uint32_t x)
{
    uint64_t halves = (uint64_t)(x / 10000) | ((uint64_t)(x % 10000) << 32);
    uint64_t high_pairs = ((halves * 10486) >> 20) & 0x0000007F0000007FULL;
    uint64_t pairs = high_pairs | ((halves - high_pairs * 100) << 16);
    uint64_t tens = ((pairs * 103) >> 10) & 0x000F000F000F000FULL;
    uint64_t digits = tens | ((pairs - tens * 10) << 8);
    return digits + 0x3030303030303030ULL;
}

#if defined(__SSE2__)
#include <emmintrin.h>
#define DECIMAL_SSE2_DIGITS 1
/* The 16 digits of n < 10^16 (leading zeros included) as two words like
 * decimal_eight_digits's: the same steps, 4-digit quarters to pairs to
 * digits, done on all four quarters at once in 16-bit lanes (u/100 =
 * (u * 5243) >> 19 for u < 10^4, u/10 = (u * 6554) >> 16 for u < 100). */
static inline void
decimal_sixteen_digits(uint64_t n, uint64_t *first8, uint64_t *last8)
{
    uint64_t high = n / 100000000, low = n % 100000000;
    /* the halves' 4-digit quarters in 16-bit lanes 0..3, split in 64-bit
     * lanes (u/10^4 = (u * 3518437209) >> 45 for u < 10^8), then gathered */
    __m128i halves = _mm_set_epi64x((long long)low, (long long)high);
    __m128i upper = _mm_srli_epi64(_mm_mul_epu32(halves, _mm_set1_epi32((int)3518437209u)), 45);
    __m128i lower = _mm_sub_epi64(halves, _mm_mul_epu32(upper, _mm_set1_epi32(10000)));
    __m128i quarters = _mm_shuffle_epi32(_mm_or_si128(upper, _mm_slli_epi64(lower, 16)),
                                         _MM_SHUFFLE(3, 1, 2, 0));
    __m128i hundreds = _mm_srli_epi16(_mm_mulhi_epu16(quarters, _mm_set1_epi16(5243)), 3);
    __m128i rest = _mm_sub_epi16(quarters, _mm_mullo_epi16(hundreds, _mm_set1_epi16(100)));
    __m128i pairs = _mm_unpacklo_epi16(hundreds, rest);
    __m128i tens = _mm_mulhi_epu16(pairs, _mm_set1_epi16(6554));
    __m128i units = _mm_sub_epi16(pairs, _mm_mullo_epi16(tens, _mm_set1_epi16(10)));
    __m128i digits = _mm_add_epi8(_mm_or_si128(tens, _mm_slli_epi16(units, 8)),
                                  _mm_set1_epi8('0'));
    *first8 = (uint64_t)_mm_cvtsi128_si64(digits);
    *last8 = (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(digits, digits));
}
#endif

/* The last `width` (1..8) digits of x < 10^8 as one 8-byte store at out;
 * the bytes after them are left zero. */
static inline void
decimal_store_low_digits(char *out, uint32_t x, int width)
{
    uint64_t word = decimal_eight_digits(x) >> (8 * (8 - width));
    memcpy(out, &word, 8);
}

/* Write n < 10^width as exactly `width` digits (1..20, leading zeros
 * included) at out.  Stores 8 bytes at a time: up to 7 bytes after
 * out + width may be overwritten, so the caller's buffer needs that room
 * (and writes what follows the digits after this call). */
static inline DECIMAL_FORCE_INLINE void
decimal_write_digits(char *out, uint64_t n, int width)
{
    if (width <= 8) {
        decimal_store_low_digits(out, (uint32_t)n, width);
        return;
    }
    uint64_t low = n % 100000000, high = n / 100000000;
    if (width <= 16) {
        decimal_store_low_digits(out, (uint32_t)high, width - 8);
    }
    else {
        decimal_store_low_digits(out, (uint32_t)(high / 100000000), width - 16);
        uint64_t middle = decimal_eight_digits((uint32_t)(high % 100000000));
        memcpy(out + width - 16, &middle, 8);
    }
    uint64_t last = decimal_eight_digits((uint32_t)low);
    memcpy(out + width - 8, &last, 8);
}
#else
static inline void
decimal_write_digits(char *out, uint64_t n, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + n % 10);
        n /= 10;
    }
}
#endif

/* Room float_format_shortest needs at `out`: the longest text is 24 bytes
 * ("-1.2345678901234567e-308"); the rest is room for 8- and 16-byte stores
 * past the text's end. */
#define FLOAT_FORMAT_BUFFER_SIZE 48

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
