/* Checks of csrc/float_format.c against glibc, which formats and parses
 * decimals with correct rounding: for every value tried, the formatter's
 * decimal must read back as the value (strtod), no decimal with one digit
 * fewer may (so none shorter can), and among decimals with as many digits
 * that read back it must be the closest (snprintf "%.*e" rounds correctly,
 * ties to even, as repr does).  Run by tests/test_float_format.py.
 *
 * Environment:
 *   FLOAT_FORMAT_TEST_COUNT  random bit patterns to check (default 2000000)
 *   FLOAT_FORMAT_TEST_QUICK_COUNT  more random bit patterns (default 0) to
 *                            check by quick_check: round trip and no
 *                            shorter decimal, for tens of millions
 *   FLOAT_FORMAT_TEST_SEED   seed of those (default fixed)
 *   FLOAT_FORMAT_BENCH=1     instead, time the formatter against snprintf
 *
 * The formatter is included, not linked, to reach its static helpers.
 */
#include "../../csrc/float_format.c"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long failures = 0;
#define CHECK(condition)                                                                   \
    do {                                                                                   \
        if (!(condition)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

static uint64_t
bits_of(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static double
double_of(uint64_t bits)
{
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* splitmix64: a fast generator of well-spread 64-bit patterns */
static uint64_t
next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---- the reference ------------------------------------------------------ */

/* Does digits * 10^exponent read back as `value` (positive)? */
static int
reads_back(uint64_t digits, int exponent, double value)
{
    char text[48];
    snprintf(text, sizeof text, "%" PRIu64 "e%d", digits, exponent);
    return bits_of(strtod(text, NULL)) == bits_of(value);
}

/* The correctly rounded `count`-digit decimal of `value` (positive), as
 * digits * 10^exponent with exactly `count` digits. */
static void
nearest_decimal(double value, int count, uint64_t *digits, int *exponent)
{
    char text[64];
    snprintf(text, sizeof text, "%.*e", count - 1, value);
    uint64_t n = 0;
    const char *p = text;
    for (; *p != 'e'; p++) {
        if (*p != '.') {
            n = n * 10 + (uint64_t)(*p - '0');
        }
    }
    *digits = n;
    *exponent = atoi(p + 1) - (count - 1);
}

static float_decimal
normalized(uint64_t digits, int exponent)
{
    if (digits == 0) {
        return (float_decimal){0, 0};
    }
    while (digits % 10 == 0) {
        digits /= 10;
        exponent++;
    }
    return (float_decimal){digits, exponent};
}

static int
same_decimal(float_decimal a, float_decimal b)
{
    return a.digits == b.digits && a.exponent == b.exponent;
}

static int
digit_count(uint64_t n)
{
    int count = 1;
    while (n >= 10) {
        n /= 10;
        count++;
    }
    return count;
}

static uint64_t
power_of_ten(int n)
{
    uint64_t power = 1;
    while (n-- > 0) {
        power *= 10;
    }
    return power;
}

/* repr's layout of digits * 10^exponent, written the slow, obvious way. */
static void
reference_layout(int negative, float_decimal decimal, char *out, size_t size)
{
    char digits[32];
    if (decimal.digits == 0) {
        snprintf(out, size, "%s0.0", negative ? "-" : "");
        return;
    }
    snprintf(digits, sizeof digits, "%" PRIu64, decimal.digits);
    int length = (int)strlen(digits);
    int decpt = decimal.exponent + length;
    const char *sign = negative ? "-" : "";
    if (decpt <= -4 || decpt > 16) {
        snprintf(out, size, "%s%c%s%s%c%+03d", sign, digits[0], length > 1 ? "." : "", digits + 1,
                 'e', decpt - 1);
    }
    else if (decpt <= 0) {
        snprintf(out, size, "%s0.%.*s%s", sign, -decpt, "000", digits);
    }
    else if (decpt < length) {
        snprintf(out, size, "%s%.*s.%s", sign, decpt, digits, digits + decpt);
    }
    else {
        snprintf(out, size, "%s%s%.*s.0", sign, digits, decpt - length, "0000000000000000");
    }
}

/* The whole contract for one finite value; returns 0 when it holds. */
static int
check_value(double value)
{
    long failures_before = failures;
    double magnitude = fabs(value);
    float_decimal ours = float_format_decimal(value);
    char text[FLOAT_FORMAT_BUFFER_SIZE + 1];
    size_t length = float_format_shortest(value, text);
    text[length] = '\0';
    char expected_text[64];
    reference_layout(signbit(value) != 0, ours, expected_text, sizeof expected_text);
    CHECK(strcmp(text, expected_text) == 0);
    CHECK(bits_of(strtod(text, NULL)) == bits_of(value));

    if (magnitude == 0) {
        CHECK(ours.digits == 0 && ours.exponent == 0);
    }
    else {
        CHECK(ours.digits % 10 != 0);
        CHECK(reads_back(ours.digits, ours.exponent, magnitude));
        int count = digit_count(ours.digits);
        CHECK(count <= 17);
        /* with `count` digits: the nearest such decimal if it reads back,
         * else its neighbour that does (R is lopsided at a power of two) */
        uint64_t nearest;
        int exponent;
        nearest_decimal(magnitude, count, &nearest, &exponent);
        if (reads_back(nearest, exponent, magnitude)) {
            CHECK(same_decimal(ours, normalized(nearest, exponent)));
        }
        else {
            CHECK(same_decimal(ours, normalized(nearest - 1, exponent)) ||
                  same_decimal(ours, normalized(nearest + 1, exponent)));
        }
        /* with one digit fewer: nothing reads back.  R is an interval
         * around the value, so if any decimal of that length were in it,
         * the nearest or one of its neighbours would be. */
        if (count > 1) {
            nearest_decimal(magnitude, count - 1, &nearest, &exponent);
            CHECK(!reads_back(nearest, exponent, magnitude));
            CHECK(!reads_back(nearest - 1, exponent, magnitude));
            CHECK(!reads_back(nearest + 1, exponent, magnitude));
            if (nearest == power_of_ten(count - 2)) {
                /* below a power of ten the steps are ten times finer */
                CHECK(!reads_back(power_of_ten(count - 1) - 1, exponent - 1, magnitude));
            }
        }
    }
    if (failures != failures_before) {
        fprintf(stderr, "  value %.17g (bits 0x%016" PRIx64 "): wrote \"%s\", digits %" PRIu64
                        " exponent %d\n",
                value, bits_of(value), text, ours.digits, ours.exponent);
        return -1;
    }
    return 0;
}

/* The value and both its neighbours. */
static void
check_with_neighbours(double value)
{
    check_value(value);
    double below = nextafter(value, -INFINITY);
    double above = nextafter(value, INFINITY);
    if (isfinite(below)) {
        check_value(below);
    }
    if (isfinite(above)) {
        check_value(above);
    }
}

/* ---- the checks ----------------------------------------------------------- */

static void
test_log_formulas(void)
{
    char text[64];
    for (int q = -1074; q <= 971; q++) {
        snprintf(text, sizeof text, "%.25e", ldexp(1.0, q));
        CHECK(floor_log10_pow2(q) == atoi(strchr(text, 'e') + 1));
        if (q > -1072) {
            snprintf(text, sizeof text, "%.25e", ldexp(3.0, q - 2));
            CHECK(floor_log10_three_quarters_pow2(q) == atoi(strchr(text, 'e') + 1));
        }
    }
    /* 10^e in long double (x86: 64-bit significand, range to 1e4932) */
    for (int e = -FLOAT_FORMAT_K_MAX; e <= -FLOAT_FORMAT_K_MIN; e++) {
        snprintf(text, sizeof text, "1e%d", e);
        int binary_exponent;
        frexpl(strtold(text, NULL), &binary_exponent);
        CHECK(floor_log2_pow10(e) == binary_exponent - 1);
    }
}

static void
test_known_texts(void)
{
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {1.0, "1.0"},
        {-1.5, "-1.5"},
        {0.1, "0.1"},
        {0.30000000000000004, "0.30000000000000004"},
        {123.0, "123.0"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {9007199254740992.0, "9007199254740992.0"},
        {1.5e-7, "1.5e-07"},
        {0.0001, "0.0001"},
        {0.00012345, "0.00012345"},
        {1e-5, "1e-05"},
        {5e-324, "5e-324"},
        {1e-323, "1e-323"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {-1.7976931348623157e308, "-1.7976931348623157e+308"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {1e23, "1e+23"},
        {1.2345678901234567e-300, "1.2345678901234568e-300"},
        {123456789012345680.0, "1.2345678901234568e+17"},
        {1234567890123456.8, "1234567890123456.8"},
        {2.5e100, "2.5e+100"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[FLOAT_FORMAT_BUFFER_SIZE + 1];
        size_t length = float_format_shortest(cases[i].value, text);
        text[length] = '\0';
        if (strcmp(text, cases[i].text) != 0) {
            fprintf(stderr, "expected %s, wrote %s\n", cases[i].text, text);
            failures++;
        }
        check_value(cases[i].value);
    }
}

static void
test_powers_of_two_and_ten(void)
{
    for (int e = -1074; e <= 1023; e++) {
        check_with_neighbours(ldexp(1.0, e));
        check_with_neighbours(-ldexp(1.0, e));
    }
    char text[16];
    for (int e = -324; e <= 308; e++) {
        snprintf(text, sizeof text, "1e%d", e);
        check_with_neighbours(strtod(text, NULL));
    }
}

static void
test_edges(void)
{
    /* the smallest subnormals, where the digits are few */
    for (uint64_t bits = 1; bits <= 100000; bits++) {
        check_value(double_of(bits));
    }
    /* the largest subnormals and the smallest normals */
    for (uint64_t bits = HIDDEN_BIT - 50000; bits <= HIDDEN_BIT + 50000; bits++) {
        check_value(double_of(bits));
    }
    /* the largest finite values */
    for (uint64_t bits = 0x7fefffffffffffffu - 50000; bits <= 0x7fefffffffffffffu; bits++) {
        check_value(double_of(bits));
    }
    /* integers around 2^53, where the integer shortcut ends */
    for (int i = -3000; i <= 3000; i++) {
        check_value(9007199254740992.0 + 2.0 * i);
        check_value(9007199254740992.0 + 0.5 * i);
    }
    /* every value in the 1e15..1e17 region where repr changes layout, sampled */
    for (double x = 1e15; x < 1e17; x = x * 1.00001 + 1) {
        check_value(x);
    }
}

/* The digit writers of float_format.h (shared with the encoder's int
 * writer) and the layout's division by 10^f. */
static void
test_digit_writers(uint64_t *state, long step)
{
#ifdef DECIMAL_SWAR_DIGITS
    /* every x < 10^8 (or every step-th, under the sanitizers) */
    for (uint32_t x = 0; x < 100000000; x += (uint32_t)step) {
        uint64_t expected = 0;
        uint32_t rest = x;
        for (int i = 7; i >= 0; i--) {
            expected |= (uint64_t)('0' + rest % 10) << (8 * i);
            rest /= 10;
        }
        if (decimal_eight_digits(x) != expected) {
            fprintf(stderr, "decimal_eight_digits(%u) wrong\n", x);
            failures++;
            return;
        }
    }
#ifdef DECIMAL_SSE2_DIGITS
    /* every 4-digit value in every lane of the SSE2 version */
    for (uint32_t x = 0; x < 100000000; x += (uint32_t)step) {
        uint64_t first, last, expected = decimal_eight_digits(x);
        decimal_sixteen_digits((uint64_t)x * 100000000 + x, &first, &last);
        if (first != expected || last != expected) {
            fprintf(stderr, "decimal_sixteen_digits wrong for %u\n", x);
            failures++;
            return;
        }
    }
#endif
#else
    (void)step;
#endif
    for (int width = 1; width <= 20; width++) {
        uint64_t limit = width == 20 ? UINT64_MAX : 1;
        for (int i = 0; i < width && width < 20; i++) {
            limit *= 10;
        }
        for (int i = 0; i < 20000; i++) {
            uint64_t n = next_random(state);
            if (i < 3) {
                n = i == 0 ? 0 : i == 1 ? limit - 1 : limit / 10;
            }
            else if (width < 20) {
                n %= limit;
            }
            char ours[40], theirs[40];
            memset(ours, 'x', sizeof ours);
            decimal_write_digits(ours, n, width);
            snprintf(theirs, sizeof theirs, "%0*" PRIu64, width, n);
            CHECK(memcmp(ours, theirs, (size_t)width) == 0);
            if (n > 0) {
                char plain[40];
                snprintf(plain, sizeof plain, "%" PRIu64, n);
                CHECK(decimal_digit_count(n) == (int)strlen(plain));
            }
        }
    }
    CHECK(decimal_digit_count(0) == 1);
    for (int f = 1; f <= 16; f++) {
        for (int i = 0; i < 100000; i++) {
            uint64_t n = next_random(state) >> 7; /* < 2^57 */
            if (i < 64) {
                /* next to multiples of 10^f, and the top of the range */
                n = i < 32 ? (uint64_t)(i + 1) * powers_of_ten[f] - (uint64_t)(i & 1)
                           : ((uint64_t)1 << 57) - 1 - (uint64_t)i;
            }
            CHECK(divide_by_power_of_ten(n, f) == n / powers_of_ten[f]);
        }
    }
}

/* strip_trailing_zeros's constants, and the function on n * 10^z for
 * every z it can meet (up to 16 zeros, n up to 17 digits). */
static void
test_trailing_zeros(uint64_t *state)
{
    for (int step = 0; step < 4; step++) {
        int j = 8 >> step;
        uint64_t power_of_five = power_of_ten(j) >> j;
        CHECK(power_of_five * trailing_zero_steps[step].inverse_of_power_of_5 == 1);
        CHECK(trailing_zero_steps[step].largest_quotient == UINT64_MAX / power_of_ten(j));
    }
    for (int i = 0; i < 200000; i++) {
        int zeros = i % 17;
        uint64_t n = next_random(state) % power_of_ten(17 - zeros);
        if (n == 0) {
            n = 1;
        }
        n -= (n % 10 == 0); /* no zero of its own: n * 10^zeros has exactly `zeros` */
        uint64_t value = n * power_of_ten(zeros);
        counted_decimal stripped = strip_trailing_zeros(value, 3, digit_count(value));
        CHECK(stripped.digits == n && stripped.exponent == 3 + zeros &&
              stripped.length == digit_count(n));
    }
}

/* Random decimals of 1 to 17 digits: values whose shortest form is short, so
 * that the "one digit fewer" branch and the zero stripping work hard. */
static void
test_random_short_decimals(uint64_t *state, long count)
{
    char text[48];
    for (long i = 0; i < count; i++) {
        uint64_t r = next_random(state);
        int length = 1 + (int)(r % 17);
        uint64_t digits = next_random(state) % power_of_ten(length);
        int exponent = (int)((r >> 8) % 650) - 340;
        snprintf(text, sizeof text, "%" PRIu64 "e%d", digits, exponent);
        double value = strtod(text, NULL);
        if (isfinite(value)) {
            check_value((r >> 20) & 1 ? -value : value);
        }
    }
}

/* Values spread evenly over the decades of repr's fixed notation and
 * either side of it (1e-6 to 1e18): every place of the point, 15- and
 * 16-digit heads, the point after 8 to 16 digits, integers past 2^53. */
static void
test_fixed_notation_decades(uint64_t *state, long count)
{
    for (long i = 0; i < count; i++) {
        uint64_t r = next_random(state);
        double decade = pow(10.0, (double)(r % 25) - 6);
        double value = decade * (1.0 + 9.0 * ((double)(next_random(state) >> 11) * 0x1.0p-53));
        check_value((r >> 8) & 1 ? -value : value);
        check_value(nearbyint(value)); /* integer-valued too, below and above 2^53 */
    }
}

static long
test_random_bit_patterns(uint64_t *state, long count)
{
    long checked = 0;
    while (checked < count) {
        double value = double_of(next_random(state));
        if (isfinite(value)) {
            check_value(value);
            checked++;
        }
    }
    return checked;
}

/* schubfach_regular (the one-product path) against schubfach wherever it
 * decides, on random regular doubles; and the ties it must leave to
 * schubfach: v = c / 4 with c odd near 2^52, where V = 2.5c is a
 * half-integer.  Those are then checked in full through the formatter. */
static void
test_one_product_path(uint64_t *state, long count)
{
    long undecided = 0;
    for (long i = 0; i < 20000; i++) {
        uint64_t c = HIDDEN_BIT + 2 * (uint64_t)i + 1;
        double value = ldexp((double)c, -2);
        fast_decimal fast = schubfach_regular(c, -2);
        undecided += !fast.decided;
        check_value(value);
    }
    CHECK(undecided == 20000);
    /* the product's shift and the table entry of 10^-(k+1), for every
     * normal exponent */
    for (int q = 1 - EXPONENT_BIAS; q <= EXPONENT_MASK - 1 - EXPONENT_BIAS; q++) {
        int k = floor_log10_pow2(q);
        int s = q + floor_log2_pow10(-(k + 1)) + 4;
        CHECK(0 <= s && s <= 3);
        CHECK(k + 1 <= FLOAT_FORMAT_K_MAX);
    }
    for (long i = 0; i < count; i++) {
        uint64_t bits = next_random(state);
        int biased_exponent = (int)((bits >> SIGNIFICAND_BITS) & EXPONENT_MASK);
        uint64_t fraction = bits & (HIDDEN_BIT - 1);
        if (biased_exponent == 0 || biased_exponent == EXPONENT_MASK || fraction == 0) {
            continue; /* subnormals, non-finite values and powers of two go elsewhere */
        }
        uint64_t c = fraction | HIDDEN_BIT;
        int q = biased_exponent - EXPONENT_BIAS;
        fast_decimal fast = schubfach_regular(c, q);
        if (fast.decided) {
            counted_decimal exact = schubfach(c, q, false);
            CHECK(fast.decimal.digits == exact.digits && fast.decimal.exponent == exact.exponent);
        }
    }
}

/* The bulk check, cheap enough for tens of millions of values: the text
 * reads back as the value (so its digits are in the rounding interval R),
 * and neither multiple of 10^(e+1) next to ours, digits * 10^e, does.
 * That proves no shorter decimal reads back: one in R would put a
 * multiple of 10^(e+1) in R (itself, or the power of ten between it and
 * ours when it lies in a lower decade), and R, an interval holding ours,
 * would then hold the nearer of those two.  That ours is the closest of
 * its length is left to check_value's smaller sample. */
static void
quick_check(double value)
{
    char text[FLOAT_FORMAT_BUFFER_SIZE + 1];
    size_t length = float_format_shortest(value, text);
    text[length] = '\0';
    int wrong = bits_of(strtod(text, NULL)) != bits_of(value);
    float_decimal ours = float_format_decimal(value);
    if (ours.digits >= 10) {
        double magnitude = fabs(value);
        uint64_t below = ours.digits / 10;
        wrong |= reads_back(below, ours.exponent + 1, magnitude) ||
                 reads_back(below + 1, ours.exponent + 1, magnitude);
    }
    if (wrong) {
        fprintf(stderr, "quick check failed: %.17g (bits 0x%016" PRIx64 "): wrote \"%s\"\n",
                value, bits_of(value), text);
        failures++;
    }
}

static long
test_random_bit_patterns_quickly(uint64_t *state, long count)
{
    long checked = 0;
    while (checked < count && failures < 100) {
        double value = double_of(next_random(state));
        if (isfinite(value)) {
            quick_check(value);
            checked++;
        }
    }
    return checked;
}

static double
seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* ns per call of float_format_shortest and of snprintf("%.17g"). */
static void
benchmark(uint64_t *state)
{
    enum { VALUES = 1 << 16, ROUNDS = 200 };
    static double values[VALUES];
    static double prices[VALUES];
    for (int i = 0; i < VALUES; i++) {
        double value;
        do {
            value = double_of(next_random(state));
        } while (!isfinite(value));
        values[i] = value;
        prices[i] = (double)(next_random(state) % 100000) / 100;
    }
    const struct {
        const char *name;
        const double *data;
    } sets[] = {{"random bit patterns", values}, {"prices (2 decimals)", prices}};
    for (size_t set = 0; set < 2; set++) {
        char text[FLOAT_FORMAT_BUFFER_SIZE];
        size_t total = 0;
        double start = seconds_now();
        for (int round = 0; round < ROUNDS; round++) {
            for (int i = 0; i < VALUES; i++) {
                total += float_format_shortest(sets[set].data[i], text);
                total += (unsigned char)text[0];
            }
        }
        double ours = (seconds_now() - start) / ((double)VALUES * ROUNDS) * 1e9;
        start = seconds_now();
        for (int round = 0; round < ROUNDS / 20; round++) {
            for (int i = 0; i < VALUES; i++) {
                total += (size_t)snprintf(text, sizeof text, "%.17g", sets[set].data[i]);
            }
        }
        double glibc = (seconds_now() - start) / ((double)VALUES * (ROUNDS / 20)) * 1e9;
        printf("%-22s float_format_shortest %6.1f ns, snprintf %%.17g %6.1f ns (%zu)\n",
               sets[set].name, ours, glibc, total % 10);
    }
}

int
main(void)
{
    const char *count_text = getenv("FLOAT_FORMAT_TEST_COUNT");
    const char *seed_text = getenv("FLOAT_FORMAT_TEST_SEED");
    long count = count_text != NULL ? atol(count_text) : 2000000;
    const char *quick_text = getenv("FLOAT_FORMAT_TEST_QUICK_COUNT");
    long quick_count = quick_text != NULL ? atol(quick_text) : 0;
    uint64_t state = seed_text != NULL ? strtoull(seed_text, NULL, 0) : 0x5eed5eed5eedu;
    if (getenv("FLOAT_FORMAT_BENCH") != NULL) {
        benchmark(&state);
        return 0;
    }
    double start = seconds_now();
    test_log_formulas();
    test_known_texts();
    test_powers_of_two_and_ten();
    test_edges();
    test_digit_writers(&state, count >= 1000000 ? 1 : 101);
    test_random_short_decimals(&state, count / 4 + 1000);
    test_trailing_zeros(&state);
    test_one_product_path(&state, count);
    test_fixed_notation_decades(&state, count / 4 + 1000);
    long checked = test_random_bit_patterns(&state, count);
    long quickly = test_random_bit_patterns_quickly(&state, quick_count);
    if (failures != 0) {
        fprintf(stderr, "%ld checks failed\n", failures);
        return 1;
    }
    printf("%ld random bit patterns fully and %ld quickly, %ld short decimals, edges: all "
           "checks passed in %.1f s\n",
           checked, quickly, count / 4 + 1000, seconds_now() - start);
    return 0;
}
