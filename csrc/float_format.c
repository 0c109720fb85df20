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
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define COLD_NOINLINE __attribute__((noinline, cold))
#else
#define COLD_NOINLINE
#define FORCE_INLINE inline
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
 * g * (c << (h + 1)) / 2^128 = V + e with 0 <= e < 2^-69 (g exceeds its
 * exact value by at most 1, c << h < 2^58), so the high word is floor(V)
 * and the middle one V's fraction, to within 2^-64 together; V mod 10 and
 * H in 4.60 fixed point are then within 2^-59 of the exact values.  Where
 * an exact comparison could go either way -- V mod 10 or 10 - V mod 10
 * within 2^-56 of H, V's fraction within 2^-56 of 1/2 (ties included) --
 * `decided` is false and schubfach() decides exactly; elsewhere the
 * answer is schubfach()'s, so the ends' tie rules (c even or odd) never
 * matter here.  Near a multiple of 10 the computed and exact V may fall
 * on either side of it: both then choose that multiple. */
typedef struct fast_decimal {
    counted_decimal decimal;
    bool decided;
} fast_decimal;

static FORCE_INLINE fast_decimal
schubfach_regular(uint64_t c, int q)
{
    const int k = floor_log10_pow2(q);
    const int h = q + floor_log2_pow10(-k) + 2;
    const uint64_t *g = float_format_powers[k - FLOAT_FORMAT_K_MIN];
    const uint64_t x = c << (h + 1);
    uint64_t discarded, fraction;
    const uint64_t low_product_high = multiply_full(g[1], x, &discarded);
    uint64_t integral = multiply_full(g[0], x, &fraction);
    fraction += low_product_high;
    integral += fraction < low_product_high;

    const uint64_t tens = integral / 10;
    const uint64_t remainder = ((integral - tens * 10) << 60) | (fraction >> 4);
    /* H * 2^60 = g * 2^(h - 68), 2 <= h <= 5 */
    const uint64_t half_width = ((g[0] << 1) | (g[1] >> 63)) >> (5 - h);
    const uint64_t ten = (uint64_t)10 << 60;
    const uint64_t half = (uint64_t)1 << 63;
    /* |a - b| <= m as (a - b + m) <= 2m in wrapping arithmetic */
    const uint64_t margin = 16, tie_margin = 256;
    const bool undecided = (remainder - half_width + margin <= 2 * margin) |
                           (remainder + half_width - ten + margin <= 2 * margin) |
                           (fraction - half + tie_margin <= 2 * tie_margin);
    const bool low_in = remainder < half_width;
    const bool high_in = remainder + half_width > ten;
    const bool shorter = low_in | high_in;
    /* selected by a mask, as in schubfach() (shorter is a coin toss) */
    const uint64_t shorter_mask = (uint64_t)0 - shorter;
    const uint64_t digits =
        ((tens + high_in) & shorter_mask) | ((integral + (fraction > half)) & ~shorter_mask);
    return (fast_decimal){{digits, k + shorter, 0}, !undecided};
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

#ifdef DECIMAL_SWAR_DIGITS
/* decimal_write_digits for width 1..17 that also returns the first 8
 * digits as the word stored for them (bytes past `width` zero) and, in
 * *next, the 9th to 16th digits as a word (for width >= 9; bytes past `width`
 * undefined).  Width 16 also writes a '0' at out[-1]: the caller has that
 * byte and writes it after. */
static FORCE_INLINE uint64_t
write_digits_keeping_head(char *out, uint64_t n, int width, uint64_t *next)
{
    if (width <= 8) {
        uint64_t word = decimal_eight_digits((uint32_t)n) >> (8 * (8 - width));
        memcpy(out, &word, 8);
        *next = 0;
        return word;
    }
    uint64_t top = n / 10000000000000000u; /* a 17th digit, or 0 */
    uint64_t middle, last;
#ifdef DECIMAL_SSE2_DIGITS
    decimal_sixteen_digits(n - top * 10000000000000000u, &middle, &last);
#else
    uint64_t rest = n - top * 10000000000000000u;
    middle = decimal_eight_digits((uint32_t)(rest / 100000000));
    last = decimal_eight_digits((uint32_t)(rest % 100000000));
#endif
    if (width < 16) {
        uint64_t first = middle >> (8 * (16 - width));
        memcpy(out, &first, 8);
        memcpy(out + width - 8, &last, 8);
        *next = last >> (8 * (16 - width));
        return first | ((last << (8 * (width - 9))) << 8); /* no shift by 64 */
    }
    /* 16 or 17 digits, a coin toss for random doubles: no branch on which,
     * the 17 (a leading '0' for 16) end at out + width */
    top += '0';
    out[width - 17] = (char)top;
    memcpy(out + width - 16, &middle, 8);
    memcpy(out + width - 8, &last, 8);
    const uint64_t seventeen = (uint64_t)0 - (uint64_t)(width == 17);
    *next = (((middle >> 56) | (last << 8)) & seventeen) | (last & ~seventeen);
    return ((top | (middle << 8)) & seventeen) | (middle & ~seventeen);
}

/* The 8 bytes of `digits` (one a byte) with a '.' after the first `point`
 * (0..7) and the rest one byte later, the last dropped. */
static FORCE_INLINE uint64_t
insert_point(uint64_t digits, int point)
{
    uint64_t below = ((uint64_t)1 << (8 * point)) - 1;
    uint64_t above = ~((((uint64_t)1 << (8 * point)) << 8) - 1); /* 0 when point is 7 */
    return (digits & below) | ((uint64_t)'.' << (8 * point)) | ((digits << 8) & above);
}

/* The `length` digits of n with a '.' after the first `point` (1..7,
 * < length): every digit is written one place to the right, then the
 * first 8 bytes once more from the head word in a register, the point in
 * place, so that nothing is divided at the point nor read back. */
static FORCE_INLINE size_t
write_digits_with_point(char *out, uint64_t n, int length, int point)
{
    uint64_t next;
    uint64_t word = insert_point(write_digits_keeping_head(out + 1, n, length, &next), point);
    memcpy(out, &word, 8);
    return (size_t)length + 1;
}

/* The same for a point after 8 to 15 digits (< length): the first 8 bytes
 * and the 8 up to the point from registers. */
static size_t
write_digits_with_late_point(char *out, uint64_t n, int length, int point)
{
    uint64_t next;
    uint64_t head = write_digits_keeping_head(out + 1, n, length, &next);
    uint64_t word = insert_point(next, point - 8);
    memcpy(out, &head, 8);
    memcpy(out + 8, &word, 8);
    return (size_t)length + 1;
}

/* The `length` (1..17) digits of n at out, by the vector path for the 15
 * to 17 of most doubles; 16 digits also write a '0' at out[-1]. */
static FORCE_INLINE void
write_leading_digits(char *out, uint64_t n, int length)
{
    uint64_t next;
    (void)write_digits_keeping_head(out, n, length, &next);
}
#else
static void
write_leading_digits(char *out, uint64_t n, int length)
{
    decimal_write_digits(out, n, length);
}
static size_t
write_digits_with_point(char *out, uint64_t n, int length, int point)
{
    write_split_digits(out, n, length, point);
    return (size_t)length + 1;
}

static size_t
write_digits_with_late_point(char *out, uint64_t n, int length, int point)
{
    return write_digits_with_point(out, n, length, point);
}
#endif

/* "d.ddde+XX": repr's form when the point falls outside -4 < decpt <= 16. */
static size_t
layout_exponential(char *out, uint64_t digits, int length, int decpt)
{
    char *p;
    if (length > 1) {
        p = out + write_digits_with_point(out, digits, length, 1);
    }
    else {
        out[0] = (char)('0' + digits);
        p = out + 1;
    }
    int exponent = decpt - 1;
    *p++ = 'e';
    *p++ = exponent < 0 ? '-' : '+';
    unsigned magnitude = (unsigned)(exponent < 0 ? -exponent : exponent);
    if (magnitude >= 100) {
        *p++ = (char)('0' + magnitude / 100);
        magnitude %= 100;
    }
    memcpy(p, decimal_digit_pairs + 2 * magnitude, 2);
    return (size_t)(p + 2 - out);
}

/* Fixed notation, -4 < decpt <= 16: "0.00ddd", "dd.ddd" or "ddd00.0". */
static size_t
layout_fixed(char *out, uint64_t digits, int length, int decpt)
{
    if (decpt <= 0) {
        /* "0." and -decpt zeros (at most 3) before the digits */
        memcpy(out, "0.000000", 8);
        write_leading_digits(out + 2 - decpt, digits, length);
        out[1] = '.'; /* 16 digits put a '0' before them, the '.' when decpt is 0 */
        return (size_t)(2 - decpt + length);
    }
    if (decpt < length) {
        if (decpt < 8) {
            return write_digits_with_point(out, digits, length, decpt);
        }
        if (decpt < 16) {
            return write_digits_with_late_point(out, digits, length, decpt);
        }
        write_split_digits(out, digits, length, decpt);
        return (size_t)length + 1;
    }
    /* an integer: the digits, zeros up to the point (at most 15), ".0" */
    decimal_write_digits(out, digits, length);
    memcpy(out + length, "0000000000000000", 16);
    memcpy(out + decpt, ".0", 2);
    return (size_t)decpt + 2;
}

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
    counted_decimal decimal = shortest_decimal(bits);
    int length = decimal.length;
    /* value = 0.ddd * 10^decpt */
    int decpt = decimal.exponent + length;
    if (decpt > -4 && decpt <= 16) {
        return sign + layout_fixed(out + sign, decimal.digits, length, decpt);
    }
    return sign + layout_exponential(out + sign, decimal.digits, length, decpt);
}
