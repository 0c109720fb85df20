/* float_format: double -> shortest round-trip decimal -> repr(float) text.
 *
 * The algorithm is Schubfach, from Raffaello Giulietti, "The Schubfach way
 * to render doubles" (2020, revised 2022; https://drive.google.com/file/d/
 * 1gp5xv4CAa78SVgCeWfGqqI4FfYYYuNFb), written here from the paper.  In
 * outline, for a positive double v = c * 2^q:
 *
 *   - The rounding interval R: the reals that read back as v.  Its ends lie
 *     half way to the neighbouring doubles (a quarter below v when v is a
 *     power of two with a closer lower neighbour), and belong to R when c is
 *     even, since a reader breaks the tie to the even significand.
 *   - k = floor(log10(width of R)), so that R holds at least one multiple of
 *     10^k and at most one multiple of 10^(k+1).
 *   - With a 126-bit upper approximation g of 10^-k (csrc/float_format_table.h)
 *     we get 4 * v * 10^-k and the same for both ends of R, each as an
 *     integer whose lowest bit says "inexact" (round to odd); the paper
 *     proves that this keeps every comparison below exact.
 *   - If R holds a multiple of 10^(k+1), it is the unique shortest decimal.
 *     Otherwise the answer has the digits of 10^k: of s = floor(v * 10^-k)
 *     and s + 1, the one in R, or the closer when both are (the even one on
 *     a tie), which is what David Gay's dtoa (CPython's repr) returns.
 *
 * A regular double first tries schubfach_regular(): one product instead of
 * three, the same digits wherever it decides (it declines, with a proved
 * margin, where it cannot), Schubfach proper for the rest.
 *
 * The layout follows CPython's float_repr_style 'short': fixed notation with
 * ".0" for integers when the decimal point falls within -4 < decpt <= 16,
 * "d.ddde+XX" otherwise.
 */
#include "float_format.h"

#include <stdbool.h>
#include <string.h>

#include "float_format_table.h"

#if defined(__GNUC__) || defined(__clang__)
#define FORCE_INLINE inline __attribute__((always_inline))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define COLD_NOINLINE __attribute__((noinline, cold))
#else
#define COLD_NOINLINE
#define FORCE_INLINE inline
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif

#define SIGNIFICAND_BITS 52
#define HIDDEN_BIT ((uint64_t)1 << SIGNIFICAND_BITS)
#define EXPONENT_MASK 0x7ff
/* v = c * 2^q with q = biased exponent - EXPONENT_BIAS (1 for subnormals) */
#define EXPONENT_BIAS 1075

/* ---- 64 x 64 -> 128-bit products ---------------------------------------- */

#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 uint128;

static inline uint64_t
multiply_full(uint64_t a, uint64_t b, uint64_t *low)
{
    uint128 product = (uint128)a * b;
    *low = (uint64_t)product;
    return (uint64_t)(product >> 64);
}
#else
/* Schoolbook on 32-bit halves, for compilers without a 128-bit type. */
static inline uint64_t
multiply_full(uint64_t a, uint64_t b, uint64_t *low)
{
    uint64_t a_low = (uint32_t)a, a_high = a >> 32;
    uint64_t b_low = (uint32_t)b, b_high = b >> 32;
    uint64_t low_low = a_low * b_low;
    uint64_t high_low = a_high * b_low;
    uint64_t low_high = a_low * b_high;
    uint64_t high_high = a_high * b_high;
    uint64_t middle = (low_low >> 32) + (uint32_t)high_low + (uint32_t)low_high;
    *low = (middle << 32) | (uint32_t)low_low;
    return high_high + (high_low >> 32) + (low_high >> 32) + (middle >> 32);
}
#endif

/* floor(g * x / 2^127) for the 126-bit g = {high, low}, with its lowest bit
 * set when bits 64..126 of the product are not all zero: "round to odd", the
 * paper's rop().  The lowest 64 bits are left out on purpose: g exceeds
 * 10^-k * 2^-r by less than 1, so they hold that error (< x < 2^64) and
 * would flag an exact product as inexact. */
static inline uint64_t
round_to_odd(const uint64_t g[2], uint64_t x)
{
    uint64_t discarded;
    uint64_t low_product_high = multiply_full(g[1], x, &discarded);
    uint64_t middle_low;
    uint64_t middle_high = multiply_full(g[0], x, &middle_low);
    /* middle = floor(g * x / 2^64); it stays below 2^124 */
    middle_low += low_product_high;
    middle_high += middle_low < low_product_high;
    const uint64_t below_point = ((uint64_t)1 << 63) - 1;
    return (middle_high << 1) | (middle_low >> 63) | ((middle_low & below_point) != 0);
}

/* ---- exact integer logarithms (constants proved by the table generator) -- */

/* floor(x / 2^LOG_SHIFT) for a possibly negative x: shift a biased,
 * non-negative value, since >> of a negative int is implementation-defined. */
static inline int
floor_shift(int64_t x)
{
    const int64_t bias = (int64_t)1 << 40; /* a multiple of 2^LOG_SHIFT, > |x| */
    return (int)((uint64_t)(x + bias) >> FLOAT_FORMAT_LOG_SHIFT) -
           (int)(bias >> FLOAT_FORMAT_LOG_SHIFT);
}

/* floor(log10(2^q)) */
static inline int
floor_log10_pow2(int q)
{
    return floor_shift((int64_t)q * FLOAT_FORMAT_LOG10_2);
}

/* floor(log10(3/4 * 2^q)) */
static inline int
floor_log10_three_quarters_pow2(int q)
{
    return floor_shift((int64_t)q * FLOAT_FORMAT_LOG10_2 - FLOAT_FORMAT_LOG10_4_3);
}

/* floor(log2(10^e)) */
static inline int
floor_log2_pow10(int e)
{
    return floor_shift((int64_t)e * FLOAT_FORMAT_LOG2_10);
}

/* ---- the shortest decimal ----------------------------------------------- */

/* A decimal digits * 10^exponent whose digits are `length` long. */
typedef struct counted_decimal {
    uint64_t digits;
    int exponent;
    int length;
} counted_decimal;

/* Granlund and Montgomery's test: n is a multiple of 10^j exactly when
 * n * 5^-j (mod 2^64), which is then n / 5^j, has j low zero bits and,
 * rotated right by j, is at most (2^64 - 1) / 10^j; it is then n / 10^j.
 * One multiplication tests and divides, and a step that fails costs no
 * branch. */
static const struct {
    uint64_t inverse_of_power_of_5; /* 5^j * this == 1 (mod 2^64) */
    uint64_t largest_quotient;      /* (2^64 - 1) / 10^j */
} trailing_zero_steps[4] = {
    {0xc767074b22e90e21u, 184467440737u},        /* j = 8 */
    {0xd288ce703afb7e91u, 1844674407370955u},    /* j = 4 */
    {0x8f5c28f5c28f5c29u, 184467440737095516u},  /* j = 2 */
    {0xcccccccccccccccdu, 1844674407370955161u}, /* j = 1 */
};

static inline uint64_t
rotate_right(uint64_t x, int bits)
{
    return (x >> bits) | (x << (64 - bits)); /* 1 <= bits <= 8 */
}

/* n * 10^exponent (n > 0, `length` digits) with n's trailing zeros moved
 * into the exponent. */
static FORCE_INLINE counted_decimal
strip_trailing_zeros(uint64_t n, int exponent, int length)
{
    uint64_t tenth = rotate_right(n * trailing_zero_steps[3].inverse_of_power_of_5, 1);
    if (tenth > trailing_zero_steps[3].largest_quotient) {
        return (counted_decimal){n, exponent, length}; /* the usual case */
    }
    /* then up to 15 more zeros (17 digits, at least one not zero) */
    n = tenth;
    int removed = 1;
    for (int step = 0; step < 4; step++) {
        int j = 8 >> step;
        uint64_t quotient = rotate_right(n * trailing_zero_steps[step].inverse_of_power_of_5, j);
        bool divides = quotient <= trailing_zero_steps[step].largest_quotient;
        n = divides ? quotient : n;
        removed += divides ? j : 0;
    }
    return (counted_decimal){n, exponent + removed, length - removed};
}

/* Schubfach proper, for v = c * 2^q > 0; `irregular` when v is a power of
 * two whose lower neighbour is closer than its upper one.  The digits come
 * back with any trailing zeros, length not filled in.  The variables
 * ending in b are values times 4, so that half and quarter steps of 2^q are
 * integers. */
static FORCE_INLINE counted_decimal
schubfach(uint64_t c, int q, bool irregular)
{
    /* an odd c loses the ties at both ends of R: make the tests strict */
    const uint64_t out = c & 1;
    const uint64_t cb = c << 2;
    const uint64_t cbr = cb + 2;
    uint64_t cbl;
    int k;
    if (irregular) {
        cbl = cb - 1;
        k = floor_log10_three_quarters_pow2(q);
    }
    else {
        cbl = cb - 2;
        k = floor_log10_pow2(q);
    }
    /* g * 2^r = 10^-k; shifting by h turns the product's scale into 2^127 */
    const int h = q + floor_log2_pow10(-k) + 2;
    const uint64_t *g = float_format_powers[k - FLOAT_FORMAT_K_MIN];
    const uint64_t vb = round_to_odd(g, cb << h);
    const uint64_t vbl = round_to_odd(g, cbl << h);
    const uint64_t vbr = round_to_odd(g, cbr << h);

    const uint64_t s = vb >> 2;
    /* One digit fewer: the multiples of 10^(k+1) on either side of v, s10
     * and s10 + 1 in units of 10^(k+1).  If exactly one is in R, it is the
     * unique shortest (both would mean R is wider than 10^(k+1)). */
    const uint64_t s10 = s / 10;
    const bool shorter_low_in = vbl + out <= s10 * 40;
    const bool shorter_high_in = s10 * 40 + 40 + out <= vbr;
    const bool shorter = shorter_low_in != shorter_high_in;
    /* Else the digits of 10^k: at least one of s and s + 1 is in R; when
     * both are, the closer to v wins (vb against 4s + 2, their midpoint),
     * the even one on a tie. */
    const bool s_in = vbl + out <= s << 2;
    const bool t_in = ((s + 1) << 2) + out <= vbr;
    const uint64_t midpoint = (s << 2) + 2;
    const uint64_t t_closer = (vb > midpoint) | ((vb == midpoint) & (s & 1));
    const uint64_t take_t = t_in & ((uint64_t)!s_in | t_closer);
    /* For random doubles "shorter" is a coin toss (16 or 17 digits), so
     * both answers are computed and one selected by a mask: compilers turn
     * a ?: here into a branch that mispredicts half the time. */
    const uint64_t shorter_mask = (uint64_t)0 - shorter;
    const uint64_t digits =
        ((s10 + shorter_high_in) & shorter_mask) | ((s + take_t) & ~shorter_mask);
    return (counted_decimal){digits, k + shorter, 0};
}

/* schubfach() for a regular v = c * 2^q (not a power of two with the closer
 * lower neighbour), from one product instead of three, after the "yy" and
 * zmij formatters' idea; the error analysis here is ours.  With k as in
 * schubfach(), V = v * 10^-k lies in [2^52, 10 * 2^53), and R is
 * [V - H, V + H] with H = 2^q * 10^-k / 2 in [1/2, 5):
 *   - a multiple of 10 in R is the shortest answer, and at most one fits
 *     (2H < 10): 10 * floor(V / 10) when V mod 10 < H, the next one when
 *     V mod 10 + H > 10;
 *   - else the integer nearest V, always in R as |V - round(V)| <= 1/2 <= H.
 * The product is scaled by 10^-(k+1) (the table's next entry), so that it
 * gives floor(V / 10), the digits but the last, directly, and the last
 * digit comes from the fraction off the critical path, instead of a
 * division of floor(V) by 10 on it.
 * g * (c << s) / 2^128 = V / 5 + e with 0 <= e < 2^-71 (g exceeds its exact
 * value by at most 1, c << s < 2^56); the high word is floor(V / 5) and the
 * middle one its fraction, so floor(V / 10) and the fraction f of V / 10 in
 * 0.64 fixed point (within 2 units of the exact one) follow by a one-bit
 * shift.  H / 10 in 0.64 (within 1 unit) is g shifted.  Where an exact
 * comparison could go either way -- f within 2^-56 of H / 10 or of
 * 1 - H / 10, 10f within 2^-56 of an odd half (ties included) -- `decided`
 * is false and schubfach() decides exactly; elsewhere the answer is
 * schubfach()'s, so the ends' tie rules (c even or odd) never matter here.
 * Near a multiple of 10 the computed and exact V may fall on either side of
 * it: both then choose that multiple. */
typedef struct regular_decimal {
    /* the digits but the last: floor(V / 10), or its successor when that
     * multiple of 10 is the answer; 15 or 16 digits, below 10^16 */
    uint64_t head;
    /* the last digit, 1..9, when !shorter */
    uint64_t last_digit;
    int exponent; /* k: v is about (10 * head + last_digit) * 10^k */
    bool shorter; /* the answer is head * 10^(k + 1) */
    bool decided;
} regular_decimal;

static FORCE_INLINE regular_decimal
schubfach_regular_split(uint64_t c, int q)
{
    const int k = floor_log10_pow2(q);
    /* 0 <= s <= 3 over the whole range (checked by the C test) */
    const int s = q + floor_log2_pow10(-(k + 1)) + 4;
    const uint64_t *g = float_format_powers[k + 1 - FLOAT_FORMAT_K_MIN];
    const uint64_t x = c << s;
    uint64_t discarded, middle;
    const uint64_t low_product_high = multiply_full(g[1], x, &discarded);
    uint64_t fifths = multiply_full(g[0], x, &middle);
    middle += low_product_high;
    fifths += middle < low_product_high;

    const uint64_t tens = fifths >> 1;
    const uint64_t fraction = (fifths << 63) | (middle >> 1);
    /* H / 10 * 2^64 = g * 2^(s - 66); g < 2^126, so g >> 62 fits a word */
    const uint64_t half_width = ((g[0] << 2) | (g[1] >> 62)) >> (4 - s);
    uint64_t tenths_low;
    const uint64_t tenths = multiply_full(fraction, 10, &tenths_low);
    const uint64_t half = (uint64_t)1 << 63;
    /* |a - b| <= m as (a - b + m) <= 2m in wrapping arithmetic */
    const uint64_t margin = 256;
    const bool undecided = (fraction - half_width + margin <= 2 * margin) |
                           (fraction + half_width + margin <= 2 * margin) |
                           (tenths_low - half + margin <= 2 * margin);
    const bool low_in = fraction < half_width;
    const bool high_in = fraction + half_width < fraction; /* carries past 1 */
    return (regular_decimal){tens + high_in, tenths + (tenths_low > half), k,
                             low_in | high_in, !undecided};
}

/* The same as digits and exponent, for float_format_decimal and the tests. */
typedef struct fast_decimal {
    counted_decimal decimal;
    bool decided;
} fast_decimal;

static inline fast_decimal
schubfach_regular(uint64_t c, int q)
{
    regular_decimal split = schubfach_regular_split(c, q);
    uint64_t digits = split.shorter ? split.head : split.head * 10 + split.last_digit;
    return (fast_decimal){{digits, split.exponent + split.shorter, 0}, split.decided};
}

/* Schubfach proper for what schubfach_regular() leaves: subnormals, the
 * irregular powers of two and the undecided (about 1 in 10^16 random
 * doubles).  Out of line, so that the hot path keeps only `bits` alive
 * across the fast product instead of spilling c, q and the flags. */
static COLD_NOINLINE counted_decimal
shortest_decimal_exact(uint64_t bits)
{
    const uint64_t fraction = bits & (HIDDEN_BIT - 1);
    const int biased_exponent = (int)((bits >> SIGNIFICAND_BITS) & EXPONENT_MASK);
    counted_decimal exact;
    if (biased_exponent == 0) {
        exact = schubfach(fraction, 1 - EXPONENT_BIAS, false);
    }
    else {
        exact = schubfach(fraction | HIDDEN_BIT, biased_exponent - EXPONENT_BIAS,
                          fraction == 0 && biased_exponent > 1);
    }
    return strip_trailing_zeros(exact.digits, exact.exponent, decimal_digit_count(exact.digits));
}

/* The shortest decimal of |value| (finite, not zero) and its length.  A
 * normal double's Schubfach digits number 15 to 17 before stripping (v *
 * 10^-k lies in [2^52, 10 * 2^53), one digit fewer when shorter), so two
 * compares count them, off the table lookup of decimal_digit_count. */
static FORCE_INLINE counted_decimal
shortest_decimal(uint64_t bits)
{
    const uint64_t fraction = bits & (HIDDEN_BIT - 1);
    const int biased_exponent = (int)((bits >> SIGNIFICAND_BITS) & EXPONENT_MASK);
    if (UNLIKELY(biased_exponent == 0)) {
        return shortest_decimal_exact(bits);
    }
    const uint64_t c = fraction | HIDDEN_BIT;
    const int q = biased_exponent - EXPONENT_BIAS;
    /* An integer below 2^53 is its own shortest decimal: no other decimal
     * with as few digits lies within half a unit of it. */
    if (-SIGNIFICAND_BITS <= q && q <= 0) {
        const uint64_t integer = c >> -q;
        if (integer << -q == c) {
            return strip_trailing_zeros(integer, 0, decimal_digit_count(integer));
        }
    }
    const bool irregular = fraction == 0 && biased_exponent > 1;
    fast_decimal fast = schubfach_regular(c, q);
    if (UNLIKELY(irregular | !fast.decided)) {
        return shortest_decimal_exact(bits);
    }
    const counted_decimal normal = fast.decimal;
    const int length = 15 + (normal.digits >= 1000000000000000u) +
                       (normal.digits >= 10000000000000000u);
    return strip_trailing_zeros(normal.digits, normal.exponent, length);
}

float_decimal
float_format_decimal(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits << 1) == 0) {
        return (float_decimal){0, 0};
    }
    counted_decimal decimal = shortest_decimal(bits);
    return (float_decimal){decimal.digits, decimal.exponent};
}

/* ---- layout --------------------------------------------------------------- */

const char decimal_digit_pairs[200] = "00010203040506070809"
                                      "10111213141516171819"
                                      "20212223242526272829"
                                      "30313233343536373839"
                                      "40414243444546474849"
                                      "50515253545556575859"
                                      "60616263646566676869"
                                      "70717273747576777879"
                                      "80818283848586878889"
                                      "90919293949596979899";

static const uint64_t powers_of_ten[17] = {
    1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u,
    1000000000u, 10000000000u, 100000000000u, 1000000000000u, 10000000000000u,
    100000000000000u, 1000000000000000u, 10000000000000000u};

/* floor(n / 10^f) for n < 2^57 and f in 1..16, by a multiplication: the
 * layout splits the digits at the point without a division instruction. */
static inline uint64_t
divide_by_power_of_ten(uint64_t n, int f)
{
    uint64_t low;
    uint64_t high = multiply_full(n, float_format_pow10_divisors[f].multiplier, &low);
    return high >> float_format_pow10_divisors[f].shift;
}

/* Write the digits of n < 2^57 split after its first `head` (1..16) digits
 * by a '.', the `length - head` others (1..16) following with their
 * leading zeros: "12.5", "1.05". */
static inline void
write_split_digits(char *out, uint64_t n, int length, int head)
{
    int fraction_length = length - head;
    uint64_t integer = divide_by_power_of_ten(n, fraction_length);
    uint64_t fraction = n - integer * powers_of_ten[fraction_length];
    /* in this order: each store may spill zeros past its digits */
    decimal_write_digits(out, integer, head);
    out[head] = '.';
    decimal_write_digits(out + head + 1, fraction, fraction_length);
}

/* "e+XX" or "e-XXX" for 10^exponent at p; returns the end. */
static char *
write_exponent(char *p, int exponent)
{
    *p++ = 'e';
    *p++ = exponent < 0 ? '-' : '+';
    unsigned magnitude = (unsigned)(exponent < 0 ? -exponent : exponent);
    if (magnitude >= 100) {
        *p++ = (char)('0' + magnitude / 100);
        magnitude %= 100;
    }
    memcpy(p, decimal_digit_pairs + 2 * magnitude, 2);
    return p + 2;
}

#ifdef DECIMAL_SWAR_DIGITS
/* ---- layout from digit words (little-endian targets) ---------------------
 *
 * The digits are made as text in registers, 8 a word, before the layout
 * is chosen: the length comes from the text (its trailing '0' bytes) and
 * not from a chain of multiplications, and the layout stores words. */

/* A decimal's significant digits as text, the first in the lowest byte of
 * first8; bytes past `length` undefined. */
typedef struct digit_text {
    uint64_t first8;
    uint64_t next8;
    uint64_t last; /* the 17th digit in the low byte */
    int length;    /* 1..17 */
    int decpt;     /* the value is 0.ddd * 10^decpt */
} digit_text;

/* The 16 digits of n < 10^16, leading zeros included, as two words. */
static FORCE_INLINE void
sixteen_digit_words(uint64_t n, uint64_t *first8, uint64_t *next8)
{
#ifdef DECIMAL_SSE2_DIGITS
    decimal_sixteen_digits(n, first8, next8);
#else
    *first8 = decimal_eight_digits((uint32_t)(n / 100000000));
    *next8 = decimal_eight_digits((uint32_t)(n % 100000000));
#endif
}

/* An integer below 2^53, its own shortest decimal: "123.0". */
static size_t
write_integer(char *out, uint64_t integer)
{
    int length = decimal_digit_count(integer);
    decimal_write_digits(out, integer, length);
    memcpy(out + length, ".0", 2);
    return (size_t)length + 2;
}

#define ASCII_ZEROS 0x3030303030303030u

/* The text of schubfach_regular_split's answer.  Its head has 15 or 16
 * digits and is never 0; a 15-digit head's leading '0' is shifted out (a
 * mask, not a branch).  The length is 16 or 17 minus that zero, minus the
 * trailing zeros when the answer is the head alone (the last digit is 1..9
 * otherwise); the point's place does not depend on which. */
static FORCE_INLINE digit_text
text_of_regular(regular_decimal split)
{
    uint64_t words[2];
    sixteen_digit_words(split.head, &words[0], &words[1]);
    const uint64_t last = '0' + split.last_digit;
    const int lead = split.head < 1000000000000000u;
    const uint64_t drop = (uint64_t)0 - (uint64_t)lead;
    const uint64_t first8 = (words[0] & ~drop) | (((words[0] >> 8) | (words[1] << 56)) & drop);
    const uint64_t next8 = (words[1] & ~drop) | (((words[1] >> 8) | (last << 56)) & drop);
    /* trailing '0' bytes of the 16 head digits: whole zero bytes at the top
     * of the digit values; the head is not 0, so one word is not */
    const uint64_t values_high = words[1] - ASCII_ZEROS, values_low = words[0] - ASCII_ZEROS;
    const uint64_t top = values_high != 0 ? values_high : values_low;
    const int trailing_zeros = (values_high != 0 ? 0 : 8) + (__builtin_clzll(top) >> 3);
    const int length = split.shorter ? 16 - lead - trailing_zeros : 17 - lead;
    return (digit_text){first8, next8, last, length, split.exponent + 17 - lead};
}

/* The text of an exact answer (digits free of trailing zeros). */
static digit_text
text_of_counted(counted_decimal decimal)
{
    uint64_t head = decimal.length <= 16 ? decimal.digits * powers_of_ten[16 - decimal.length]
                                         : decimal.digits / 10;
    uint64_t last = '0' + decimal.digits % 10;
    digit_text text = {0, 0, last, decimal.length, decimal.exponent + decimal.length};
    sixteen_digit_words(head, &text.first8, &text.next8);
    return text;
}

/* The 8 bytes of `digits` (one a byte) with a '.' after the first `point`
 * (1..7) and the rest one byte later, the last dropped. */
static FORCE_INLINE uint64_t
insert_point(uint64_t digits, int point)
{
    uint64_t below = ((uint64_t)1 << (8 * point)) - 1;
    uint64_t above = ~((((uint64_t)1 << (8 * point)) << 8) - 1); /* 0 when point is 7 */
    return (digits & below) | ((uint64_t)'.' << (8 * point)) | ((digits << 8) & above);
}

/* The 17 bytes of text at out (some past its length). */
static FORCE_INLINE void
store_text(char *out, const digit_text *text)
{
    memcpy(out, &text->first8, 8);
    memcpy(out + 8, &text->next8, 8);
    out[16] = (char)text->last;
}

/* The digits with a '.' after the first `point` (1..16, < length): every
 * digit is stored one place to the right, then the words up to the point
 * once more from registers with the point in place, so that nothing is
 * divided at the point nor read back. */
static FORCE_INLINE size_t
layout_with_point(char *out, const digit_text *text, int point)
{
    store_text(out + 1, text);
    if (point < 8) {
        uint64_t word = insert_point(text->first8, point);
        memcpy(out, &word, 8);
    }
    else {
        memcpy(out, &text->first8, 8);
        if (point < 16) {
            uint64_t word = insert_point(text->next8, point - 8);
            memcpy(out + 8, &word, 8);
        }
        else {
            memcpy(out + 8, &text->next8, 8);
            out[16] = '.';
        }
    }
    return (size_t)text->length + 1;
}

/* repr's layout: fixed notation when -4 < decpt <= 16 ("0.00ddd",
 * "dd.ddd", "ddd00.0"), "d.ddde+XX" otherwise. */
static FORCE_INLINE size_t
layout_text(char *out, digit_text text)
{
    const int decpt = text.decpt, length = text.length;
    if (LIKELY(decpt > -4 && decpt <= 16)) {
        if (decpt <= 0) {
            /* "0." and -decpt zeros (at most 3) before the digits */
            memcpy(out, "0.000000", 8);
            store_text(out + 2 - decpt, &text);
            return (size_t)(2 - decpt + length);
        }
        if (decpt < length) {
            return layout_with_point(out, &text, decpt);
        }
        /* an integer (2^53 or more): the digits, zeros up to the point, ".0" */
        store_text(out, &text);
        memcpy(out + length, "0000000000000000", 16);
        memcpy(out + decpt, ".0", 2);
        return (size_t)decpt + 2;
    }
    char *p = out + 1;
    if (length > 1) {
        p = out + layout_with_point(out, &text, 1);
    }
    else {
        out[0] = (char)text.first8;
    }
    return (size_t)(write_exponent(p, decpt - 1) - out);
}

/* Subnormals, irregular powers of two and undecided values: out of line. */
static COLD_NOINLINE size_t
format_exactly(uint64_t bits, char *out)
{
    return layout_text(out, text_of_counted(shortest_decimal_exact(bits)));
}

/* repr of a positive finite double (bits without the sign), not zero. */
static FORCE_INLINE size_t
format_positive(uint64_t bits, char *out)
{
    const uint64_t fraction = bits & (HIDDEN_BIT - 1);
    const int biased_exponent = (int)((bits >> SIGNIFICAND_BITS) & EXPONENT_MASK);
    if (UNLIKELY(biased_exponent == 0)) {
        return format_exactly(bits, out);
    }
    const uint64_t c = fraction | HIDDEN_BIT;
    const int q = biased_exponent - EXPONENT_BIAS;
    if (-SIGNIFICAND_BITS <= q && q <= 0) {
        const uint64_t integer = c >> -q;
        if (integer << -q == c) {
            return write_integer(out, integer);
        }
    }
    const bool irregular = fraction == 0 && biased_exponent > 1;
    const regular_decimal split = schubfach_regular_split(c, q);
    if (UNLIKELY(irregular | !split.decided)) {
        return format_exactly(bits, out);
    }
    return layout_text(out, text_of_regular(split));
}

#else
/* ---- layout from the decimal (other targets) ----------------------------- */

/* "d.ddde+XX": repr's form when the point falls outside -4 < decpt <= 16. */
static size_t
layout_exponential(char *out, uint64_t digits, int length, int decpt)
{
    char *p;
    if (length > 1) {
        write_split_digits(out, digits, length, 1);
        p = out + length + 1;
    }
    else {
        out[0] = (char)('0' + digits);
        p = out + 1;
    }
    return (size_t)(write_exponent(p, decpt - 1) - out);
}

/* Fixed notation, -4 < decpt <= 16: "0.00ddd", "dd.ddd" or "ddd00.0". */
static size_t
layout_fixed(char *out, uint64_t digits, int length, int decpt)
{
    if (decpt <= 0) {
        /* "0." and -decpt zeros (at most 3) before the digits */
        memcpy(out, "0.000000", 8);
        decimal_write_digits(out + 2 - decpt, digits, length);
        return (size_t)(2 - decpt + length);
    }
    if (decpt < length) {
        write_split_digits(out, digits, length, decpt);
        return (size_t)length + 1;
    }
    /* an integer: the digits, zeros up to the point (at most 15), ".0" */
    decimal_write_digits(out, digits, length);
    memcpy(out + length, "0000000000000000", 16);
    memcpy(out + decpt, ".0", 2);
    return (size_t)decpt + 2;
}

static size_t
format_positive(uint64_t bits, char *out)
{
    counted_decimal decimal = shortest_decimal(bits);
    int length = decimal.length;
    /* value = 0.ddd * 10^decpt */
    int decpt = decimal.exponent + length;
    if (decpt > -4 && decpt <= 16) {
        return layout_fixed(out, decimal.digits, length, decpt);
    }
    return layout_exponential(out, decimal.digits, length, decpt);
}
#endif

size_t
float_format_shortest(double value, char *out)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    const size_t sign = (size_t)(bits >> 63); /* -0.0 too */
    out[0] = '-';
    if ((bits << 1) == 0) {
        memcpy(out + sign, "0.0", 3);
        return sign + 3;
    }
    return sign + format_positive(bits & ~((uint64_t)1 << 63), out + sign);
}
