/* encode_unicode: see encode_unicode.h.  Three layers: one character at a
 * time (every target; also the blocks the vectors hand back), 8 characters
 * a step with SSSE3 + SSE4.1, 16 with AVX2; and the dispatcher that picks
 * the widest the CPU has (capped by QBEL_SIMD), once per process.
 *
 * A vector step sees its characters as 16-bit lanes (Latin-1 widened, UCS-4
 * narrowed when it is all BMP) and writes at most 16 bytes past its output
 * end before it moves that end: hence UNICODE_JSON_ROOM's slack. */
#include "encode_unicode.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "encode_ascii.h"
#include "encode_unicode_table.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ENCODE_UNICODE_X86 1
#include <immintrin.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif

/* ---- one character at a time ------------------------------------------- */

static const char hex_digits[16] = "0123456789abcdef";

/* \uXXXX for a BMP code point; 6 bytes. */
static inline unsigned char *
write_u_escape(unsigned char *out, uint32_t c)
{
    out[0] = '\\';
    out[1] = 'u';
    out[2] = (unsigned char)hex_digits[(c >> 12) & 0xF];
    out[3] = (unsigned char)hex_digits[(c >> 8) & 0xF];
    out[4] = (unsigned char)hex_digits[(c >> 4) & 0xF];
    out[5] = (unsigned char)hex_digits[c & 0xF];
    return out + 6;
}

/* An ASCII character JSON must escape: the two-character form where JSON
 * has one (as json.dumps writes them), else \u00XX. */
static unsigned char *
write_ascii_escape(unsigned char *out, uint32_t c)
{
    char short_form;
    switch (c) {
    case '"': short_form = '"'; break;
    case '\\': short_form = '\\'; break;
    case '\b': short_form = 'b'; break;
    case '\f': short_form = 'f'; break;
    case '\n': short_form = 'n'; break;
    case '\r': short_form = 'r'; break;
    case '\t': short_form = 't'; break;
    default: return write_u_escape(out, c);
    }
    out[0] = '\\';
    out[1] = (unsigned char)short_form;
    return out + 2;
}

/* One character as UTF-8 or its escape; NULL for a lone surrogate. */
static inline unsigned char *
write_character(unsigned char *out, uint32_t c)
{
    if (c < 0x80) {
        if (LIKELY(c >= 0x20 && c != '"' && c != '\\')) {
            *out = (unsigned char)c;
            return out + 1;
        }
        return write_ascii_escape(out, c);
    }
    if (c < 0x800) {
        if (UNLIKELY(c < 0xA0)) {
            return write_u_escape(out, c); /* C1 control */
        }
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return out + 2;
    }
    if (c < 0x10000) {
        if (UNLIKELY((c & 0xF800) == 0xD800)) {
            return NULL;
        }
        if (UNLIKELY((c | 1) == 0x2029)) {
            return write_u_escape(out, c);
        }
        out[0] = (unsigned char)(0xE0 | (c >> 12));
        out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        return out + 3;
    }
    out[0] = (unsigned char)(0xF0 | (c >> 18));
    out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (c & 0x3F));
    return out + 4;
}

/* The path without vectors of its own (and the blocks the vector paths hand
 * back): ASCII stretches 8 characters a step (encode_ascii.h, SSE2 or
 * bytewise), the others one at a time.  Same contract as the public
 * functions. */
#define DEFINE_SCALAR(NAME, CHAR_TYPE, CLEAN8)                                            \
    static unsigned char *NAME(unsigned char *out, const CHAR_TYPE *s, size_t n,          \
                               size_t *surrogate_index)                                   \
    {                                                                                     \
        size_t i = 0;                                                                     \
        while (i < n) {                                                                   \
            if (n - i >= 8) {                                                             \
                int clean = CLEAN8(out, s + i);                                           \
                out += clean;                                                             \
                i += (size_t)clean;                                                       \
                if (clean == 8) {                                                         \
                    continue;                                                             \
                }                                                                         \
            }                                                                             \
            do {                                                                          \
                uint32_t c = s[i];                                                        \
                if (c >= 0x800 && c < 0xD800 && (c | 1) != 0x2029) {                     \
                    /* CJK and most scripts beyond Latin: 3 bytes */                      \
                    out[0] = (unsigned char)(0xE0 | (c >> 12));                           \
                    out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));                   \
                    out[2] = (unsigned char)(0x80 | (c & 0x3F));                          \
                    out += 3;                                                             \
                }                                                                         \
                else {                                                                    \
                    out = write_character(out, c);                                        \
                    if (UNLIKELY(out == NULL)) {                                          \
                        *surrogate_index = i;                                             \
                        return NULL;                                                      \
                    }                                                                     \
                }                                                                         \
                i++;                                                                      \
            } while (i < n && s[i] >= 0x80);                                              \
        }                                                                                 \
        return out;                                                                       \
    }

DEFINE_SCALAR(scalar_latin1, uint8_t, ascii_clean8_ucs1)
DEFINE_SCALAR(scalar_ucs2, uint16_t, ascii_clean8_ucs2)
DEFINE_SCALAR(scalar_ucs4, uint32_t, ascii_clean8_ucs4)
#undef DEFINE_SCALAR

#if defined(ENCODE_UNICODE_X86)

/* ---- 8 characters a step: SSSE3 (pshufb) and SSE4.1 (blendv, packus) ---- */

#define SSE_TARGET __attribute__((target("ssse3,sse4.1")))
#define AVX2_TARGET __attribute__((target("avx2")))
/* The vector steps are inlined into their loops: no call in the hot loop,
 * and no 256-bit value passed in a call. */
#define STEP_INLINE inline __attribute__((always_inline))

/* Transcode 8 characters held as 16-bit lanes to out[0..24) (writing up to
 * out[32)); the byte count, or -1 when one of them must go the scalar way:
 * an escape, a C1 control, U+2028/U+2029 or a surrogate. */
SSE_TARGET static STEP_INLINE int
transcode8_sse(unsigned char *out, __m128i c)
{
    const __m128i zero = _mm_setzero_si128();
    __m128i top5 = _mm_and_si128(c, _mm_set1_epi16((short)0xF800));
    /* bits 5, 6 and 8..15 clear: exactly U+0000..001F and U+0080..009F */
    __m128i controls = _mm_cmpeq_epi16(_mm_and_si128(c, _mm_set1_epi16((short)0xFF60)), zero);
    __m128i quote = _mm_cmpeq_epi16(c, _mm_set1_epi16('"'));
    __m128i backslash = _mm_cmpeq_epi16(c, _mm_set1_epi16('\\'));
    __m128i surrogate = _mm_cmpeq_epi16(top5, _mm_set1_epi16((short)0xD800));
    __m128i line_break = _mm_cmpeq_epi16(_mm_or_si128(c, _mm_set1_epi16(1)),
                                         _mm_set1_epi16(0x2029));
    __m128i special = _mm_or_si128(_mm_or_si128(controls, quote),
                                   _mm_or_si128(backslash, _mm_or_si128(surrogate, line_break)));
    if (UNLIKELY(_mm_movemask_epi8(special) != 0)) {
        return -1;
    }
    __m128i ascii = _mm_cmpeq_epi16(_mm_and_si128(c, _mm_set1_epi16((short)0xFF80)), zero);
    unsigned ascii_mask = (unsigned)_mm_movemask_epi8(ascii);
    if (ascii_mask == 0xFFFF) {
        _mm_storel_epi64((__m128i *)(void *)out, _mm_packus_epi16(c, c));
        return 8;
    }
    __m128i below_800 = _mm_cmpeq_epi16(top5, zero);
    /* Each lane's UTF-8 as [b0, b1, b2]: a 3-byte character uses all three,
     * a 2-byte one b1 b2, an ASCII one b2.  b1 is 10xxxxxx, or 110xxxxx for
     * a 2-byte character (bits 6.. fit in 5 bits there). */
    __m128i two_byte = _mm_andnot_si128(ascii, below_800);
    __m128i b0 = _mm_or_si128(_mm_srli_epi16(c, 12), _mm_set1_epi16(0xE0));
    __m128i b1 = _mm_or_si128(
        _mm_or_si128(_mm_and_si128(_mm_srli_epi16(c, 6), _mm_set1_epi16(0x3F)),
                     _mm_set1_epi16(0x80)),
        _mm_and_si128(two_byte, _mm_set1_epi16(0x40)));
    __m128i continuation = _mm_or_si128(_mm_and_si128(c, _mm_set1_epi16(0x3F)),
                                        _mm_set1_epi16(0x80));
    __m128i b2 = _mm_blendv_epi8(continuation, c, ascii);
    __m128i b0_b1 = _mm_or_si128(b0, _mm_slli_epi16(b1, 8));
    __m128i lanes_low = _mm_unpacklo_epi16(b0_b1, b2);  /* characters 0..3 */
    __m128i lanes_high = _mm_unpackhi_epi16(b0_b1, b2); /* characters 4..7 */
    /* two bits a character: bit 0 "not ASCII", bit 1 "3 bytes" */
    unsigned codes = (~ascii_mask & 0x5555u) |
                     (~(unsigned)_mm_movemask_epi8(below_800) & 0xAAAAu);
    unsigned row_low = codes & 0xFF, row_high = codes >> 8;
    __m128i packed_low = _mm_shuffle_epi8(
        lanes_low, _mm_load_si128((const __m128i *)(const void *)unicode_pack_rows[row_low]));
    __m128i packed_high = _mm_shuffle_epi8(
        lanes_high, _mm_load_si128((const __m128i *)(const void *)unicode_pack_rows[row_high]));
    int length_low = unicode_pack_lengths[row_low];
    _mm_storeu_si128((__m128i *)(void *)out, packed_low);
    _mm_storeu_si128((__m128i *)(void *)(out + length_low), packed_high);
    return length_low + unicode_pack_lengths[row_high];
}

/* Loaders: 8 characters at `s` as 16-bit lanes in *c; false when they do
 * not fit (UCS-4 beyond the BMP). */
SSE_TARGET static STEP_INLINE bool
load8_latin1(__m128i *c, const uint8_t *s)
{
    *c = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)s));
    return true;
}

SSE_TARGET static STEP_INLINE bool
load8_ucs2(__m128i *c, const uint16_t *s)
{
    *c = _mm_loadu_si128((const __m128i *)(const void *)s);
    return true;
}

SSE_TARGET static STEP_INLINE bool
load8_ucs4(__m128i *c, const uint32_t *s)
{
    __m128i low = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i high = _mm_loadu_si128((const __m128i *)(const void *)(s + 4));
    const __m128i bmp_max = _mm_set1_epi32(0xFFFF); /* code points < 2^21: signed is exact */
    __m128i astral = _mm_or_si128(_mm_cmpgt_epi32(low, bmp_max), _mm_cmpgt_epi32(high, bmp_max));
    *c = _mm_packus_epi32(low, high);
    return _mm_movemask_epi8(astral) == 0;
}

/* Whole blocks of 8 from s[0..n) until one that the vectors cannot take
 * (or fewer than 8 left); returns how many characters it took, and moves
 * *out past their bytes. */
#define DEFINE_SSE_BLOCKS(NAME, CHAR_TYPE, LOAD8)                                         \
    SSE_TARGET static size_t NAME(unsigned char **out, const CHAR_TYPE *s, size_t n)      \
    {                                                                                     \
        unsigned char *end = *out;                                                        \
        size_t i = 0;                                                                     \
        for (; i + 8 <= n; i += 8) {                                                      \
            __m128i c;                                                                    \
            if (UNLIKELY(!LOAD8(&c, s + i))) {                                            \
                break;                                                                    \
            }                                                                             \
            int written = transcode8_sse(end, c);                                         \
            if (UNLIKELY(written < 0)) {                                                  \
                break;                                                                    \
            }                                                                             \
            end += written;                                                               \
        }                                                                                 \
        *out = end;                                                                       \
        return i;                                                                         \
    }

DEFINE_SSE_BLOCKS(sse_blocks_latin1, uint8_t, load8_latin1)
DEFINE_SSE_BLOCKS(sse_blocks_ucs2, uint16_t, load8_ucs2)
DEFINE_SSE_BLOCKS(sse_blocks_ucs4, uint32_t, load8_ucs4)
#undef DEFINE_SSE_BLOCKS

/* True for a character the vector steps leave to the scalar path: one to
 * escape, a C1 control, U+2028/U+2029, a surrogate, or beyond the BMP. */
static inline bool
needs_scalar_path(uint32_t c)
{
    return (c & ~(uint32_t)0x9F) == 0 || c == '"' || c == '\\' ||
           (c & ~(uint32_t)0x7FF) == 0xD800 || (c | 1) == 0x2029 || c > 0xFFFF;
}

/* Blocks of WIDTH characters with BLOCKS while it takes them; where it
 * stops, the characters up to and including the first that needs the
 * scalar path go that way (the block holds one), and the blocks resume
 * right after it, wherever that is.  Text where they keep stopping at
 * once (emoji every few characters) goes 4 blocks' worth the scalar way
 * before the vectors try again.  The last WIDTH - 1 or fewer characters go
 * to TAIL.  Same contract as the public functions. */
#define DEFINE_DRIVER(NAME, CHAR_TYPE, WIDTH, BLOCKS, SCALAR, TAIL)                      \
    static unsigned char *NAME(unsigned char *out, const CHAR_TYPE *s, size_t n,          \
                               size_t *surrogate_index)                                   \
    {                                                                                     \
        size_t i = 0;                                                                     \
        int stops_in_a_row = 0;                                                           \
        while (n - i >= WIDTH) {                                                          \
            size_t taken = BLOCKS(&out, s + i, n - i);                                    \
            i += taken;                                                                   \
            if (n - i < WIDTH) {                                                          \
                break;                                                                    \
            }                                                                             \
            stops_in_a_row = taken == 0 ? stops_in_a_row + 1 : 0;                         \
            size_t stop = i;                                                              \
            if (stops_in_a_row >= 2) {                                                    \
                stop = n - i > 4 * WIDTH ? i + 4 * WIDTH - 1 : n - 1;                     \
            }                                                                             \
            else {                                                                        \
                while (stop < i + WIDTH - 1 && !needs_scalar_path(s[stop])) {             \
                    stop++;                                                               \
                }                                                                         \
            }                                                                             \
            out = SCALAR(out, s + i, stop + 1 - i, surrogate_index);                      \
            if (UNLIKELY(out == NULL)) {                                                  \
                *surrogate_index += i;                                                    \
                return NULL;                                                              \
            }                                                                             \
            i = stop + 1;                                                                 \
        }                                                                                 \
        out = TAIL(out, s + i, n - i, surrogate_index);                                   \
        if (UNLIKELY(out == NULL)) {                                                      \
            *surrogate_index += i;                                                        \
        }                                                                                 \
        return out;                                                                       \
    }

DEFINE_DRIVER(sse_latin1, uint8_t, 8, sse_blocks_latin1, scalar_latin1, scalar_latin1)
DEFINE_DRIVER(sse_ucs2, uint16_t, 8, sse_blocks_ucs2, scalar_ucs2, scalar_ucs2)
DEFINE_DRIVER(sse_ucs4, uint32_t, 8, sse_blocks_ucs4, scalar_ucs4, scalar_ucs4)

/* ---- 16 characters a step: AVX2 ----------------------------------------- */

/* transcode8_sse for 16 characters: out[0..48), writing up to out[64). */
AVX2_TARGET static STEP_INLINE int
transcode16_avx2(unsigned char *out, __m256i c)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i top5 = _mm256_and_si256(c, _mm256_set1_epi16((short)0xF800));
    __m256i controls =
        _mm256_cmpeq_epi16(_mm256_and_si256(c, _mm256_set1_epi16((short)0xFF60)), zero);
    __m256i quote = _mm256_cmpeq_epi16(c, _mm256_set1_epi16('"'));
    __m256i backslash = _mm256_cmpeq_epi16(c, _mm256_set1_epi16('\\'));
    __m256i surrogate = _mm256_cmpeq_epi16(top5, _mm256_set1_epi16((short)0xD800));
    __m256i line_break = _mm256_cmpeq_epi16(_mm256_or_si256(c, _mm256_set1_epi16(1)),
                                            _mm256_set1_epi16(0x2029));
    __m256i special =
        _mm256_or_si256(_mm256_or_si256(controls, quote),
                        _mm256_or_si256(backslash, _mm256_or_si256(surrogate, line_break)));
    if (UNLIKELY(!_mm256_testz_si256(special, special))) {
        return -1;
    }
    __m256i ascii =
        _mm256_cmpeq_epi16(_mm256_and_si256(c, _mm256_set1_epi16((short)0xFF80)), zero);
    uint32_t ascii_mask = (uint32_t)_mm256_movemask_epi8(ascii);
    if (ascii_mask == 0xFFFFFFFFu) {
        __m128i packed = _mm_packus_epi16(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
        _mm_storeu_si128((__m128i *)(void *)out, packed);
        return 16;
    }
    __m256i below_800 = _mm256_cmpeq_epi16(top5, zero);
    __m256i two_byte = _mm256_andnot_si256(ascii, below_800);
    __m256i b0 = _mm256_or_si256(_mm256_srli_epi16(c, 12), _mm256_set1_epi16(0xE0));
    __m256i b1 = _mm256_or_si256(
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 6), _mm256_set1_epi16(0x3F)),
                        _mm256_set1_epi16(0x80)),
        _mm256_and_si256(two_byte, _mm256_set1_epi16(0x40)));
    __m256i continuation = _mm256_or_si256(_mm256_and_si256(c, _mm256_set1_epi16(0x3F)),
                                           _mm256_set1_epi16(0x80));
    __m256i b2 = _mm256_blendv_epi8(continuation, c, ascii);
    __m256i b0_b1 = _mm256_or_si256(b0, _mm256_slli_epi16(b1, 8));
    /* unpack works within each 128-bit half: characters 0..3 | 8..11 and
     * 4..7 | 12..15 */
    __m256i lanes_a = _mm256_unpacklo_epi16(b0_b1, b2);
    __m256i lanes_b = _mm256_unpackhi_epi16(b0_b1, b2);
    uint32_t codes = (~ascii_mask & 0x55555555u) |
                     (~(uint32_t)_mm256_movemask_epi8(below_800) & 0xAAAAAAAAu);
    unsigned row0 = codes & 0xFF, row1 = (codes >> 8) & 0xFF, row2 = (codes >> 16) & 0xFF,
             row3 = codes >> 24;
    __m256i shuffle_a = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_load_si128((const __m128i *)(const void *)unicode_pack_rows[row0])),
        _mm_load_si128((const __m128i *)(const void *)unicode_pack_rows[row2]), 1);
    __m256i shuffle_b = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_load_si128((const __m128i *)(const void *)unicode_pack_rows[row1])),
        _mm_load_si128((const __m128i *)(const void *)unicode_pack_rows[row3]), 1);
    __m256i packed_a = _mm256_shuffle_epi8(lanes_a, shuffle_a);
    __m256i packed_b = _mm256_shuffle_epi8(lanes_b, shuffle_b);
    unsigned char *end = out;
    _mm_storeu_si128((__m128i *)(void *)end, _mm256_castsi256_si128(packed_a));
    end += unicode_pack_lengths[row0];
    _mm_storeu_si128((__m128i *)(void *)end, _mm256_castsi256_si128(packed_b));
    end += unicode_pack_lengths[row1];
    _mm_storeu_si128((__m128i *)(void *)end, _mm256_extracti128_si256(packed_a, 1));
    end += unicode_pack_lengths[row2];
    _mm_storeu_si128((__m128i *)(void *)end, _mm256_extracti128_si256(packed_b, 1));
    end += unicode_pack_lengths[row3];
    return (int)(end - out);
}

AVX2_TARGET static STEP_INLINE bool
load16_latin1(__m256i *c, const uint8_t *s)
{
    *c = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)s));
    return true;
}

AVX2_TARGET static STEP_INLINE bool
load16_ucs2(__m256i *c, const uint16_t *s)
{
    *c = _mm256_loadu_si256((const __m256i *)(const void *)s);
    return true;
}

AVX2_TARGET static STEP_INLINE bool
load16_ucs4(__m256i *c, const uint32_t *s)
{
    __m256i low = _mm256_loadu_si256((const __m256i *)(const void *)s);
    __m256i high = _mm256_loadu_si256((const __m256i *)(const void *)(s + 8));
    const __m256i bmp_max = _mm256_set1_epi32(0xFFFF);
    __m256i astral =
        _mm256_or_si256(_mm256_cmpgt_epi32(low, bmp_max), _mm256_cmpgt_epi32(high, bmp_max));
    /* packus interleaves the 128-bit halves (low 0..3, high 0..3, low 4..7,
     * high 4..7); the permute puts them back in order */
    *c = _mm256_permute4x64_epi64(_mm256_packus_epi32(low, high), 0xD8);
    return _mm256_testz_si256(astral, astral);
}

/* The AVX2 steps live in leaf functions of their own that end in
 * vzeroupper: with any other code in the same function GCC may load a
 * 256-bit constant again after an explicit vzeroupper, or put none at all,
 * and the SSE code that runs next (the scalar path, the encoder) then pays
 * on every instruction: 2.5 to 5 times as long for short strings.
 *
 * Whole blocks of 16 from s[0..n) until one that AVX2 cannot take (or
 * fewer than 16 left); returns how many characters it took, and moves
 * *out past their bytes. */
#define DEFINE_AVX2_BLOCKS(NAME, CHAR_TYPE, LOAD16)                                       \
    AVX2_TARGET __attribute__((noinline)) static size_t NAME(                             \
        unsigned char **out, const CHAR_TYPE *s, size_t n)                                \
    {                                                                                     \
        unsigned char *end = *out;                                                        \
        size_t i = 0;                                                                     \
        for (; i + 16 <= n; i += 16) {                                                    \
            __m256i c;                                                                    \
            if (UNLIKELY(!LOAD16(&c, s + i))) {                                           \
                break;                                                                    \
            }                                                                             \
            int written = transcode16_avx2(end, c);                                       \
            if (UNLIKELY(written < 0)) {                                                  \
                break;                                                                    \
            }                                                                             \
            end += written;                                                               \
        }                                                                                 \
        *out = end;                                                                       \
        _mm256_zeroupper();                                                               \
        return i;                                                                         \
    }

DEFINE_AVX2_BLOCKS(avx2_blocks_latin1, uint8_t, load16_latin1)
DEFINE_AVX2_BLOCKS(avx2_blocks_ucs2, uint16_t, load16_ucs2)
DEFINE_AVX2_BLOCKS(avx2_blocks_ucs4, uint32_t, load16_ucs4)
#undef DEFINE_AVX2_BLOCKS

/* the last 15 or fewer characters: blocks of 8, then the scalar path */
DEFINE_DRIVER(avx2_latin1, uint8_t, 16, avx2_blocks_latin1, scalar_latin1, sse_latin1)
DEFINE_DRIVER(avx2_ucs2, uint16_t, 16, avx2_blocks_ucs2, scalar_ucs2, sse_ucs2)
DEFINE_DRIVER(avx2_ucs4, uint32_t, 16, avx2_blocks_ucs4, scalar_ucs4, sse_ucs4)
#undef DEFINE_DRIVER

#endif /* ENCODE_UNICODE_X86 */

/* ---- choosing the instruction set --------------------------------------- */

enum simd_level { SIMD_UNKNOWN = 0, SIMD_NONE, SIMD_SSE41, SIMD_AVX2 };

/* The one piece of state: the level, found on first use (not at import)
 * and the same for every caller after; two threads that race to find it
 * find the same value. */
static int chosen_simd_level = SIMD_UNKNOWN;

static int
detect_simd_level(void)
{
    int level = SIMD_NONE;
#if defined(ENCODE_UNICODE_X86)
    if (__builtin_cpu_supports("avx2")) {
        level = SIMD_AVX2;
    }
    else if (__builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1")) {
        level = SIMD_SSE41;
    }
#endif
    /* QBEL_SIMD caps the level: to compare paths, or to test each one on
     * a machine that has them all */
    const char *cap = getenv("QBEL_SIMD");
    if (cap != NULL && *cap != '\0') {
        int most = strcmp(cap, "avx2") == 0 ? SIMD_AVX2
                   : strcmp(cap, "sse4.1") == 0 ? SIMD_SSE41
                                                : SIMD_NONE;
        level = level < most ? level : most;
    }
    __atomic_store_n(&chosen_simd_level, level, __ATOMIC_RELAXED);
    return level;
}

static inline int
simd_level(void)
{
    int level = __atomic_load_n(&chosen_simd_level, __ATOMIC_RELAXED);
    return LIKELY(level != SIMD_UNKNOWN) ? level : detect_simd_level();
}

/* The level for n characters: text under 8 has no vector step to take, and
 * under 32 the AVX2 call costs more than its blocks save. */
static inline int
simd_level_for(size_t n)
{
    if (n < 8) {
        return SIMD_NONE;
    }
    int level = simd_level();
    return n < 32 && level == SIMD_AVX2 ? SIMD_SSE41 : level;
}

const char *
unicode_simd_path(void)
{
    switch (simd_level()) {
    case SIMD_AVX2: return "avx2";
    case SIMD_SSE41: return "sse4.1";
    default: return "none";
    }
}

unsigned char *
unicode_latin1_to_json(unsigned char *out, const uint8_t *s, size_t n)
{
    size_t never_set = 0; /* Latin-1 holds no surrogate */
#if defined(ENCODE_UNICODE_X86)
    switch (simd_level_for(n)) {
    case SIMD_AVX2: return avx2_latin1(out, s, n, &never_set);
    case SIMD_SSE41: return sse_latin1(out, s, n, &never_set);
    default: break;
    }
#endif
    return scalar_latin1(out, s, n, &never_set);
}

unsigned char *
unicode_ucs2_to_json(unsigned char *out, const uint16_t *s, size_t n, size_t *surrogate_index)
{
#if defined(ENCODE_UNICODE_X86)
    switch (simd_level_for(n)) {
    case SIMD_AVX2: return avx2_ucs2(out, s, n, surrogate_index);
    case SIMD_SSE41: return sse_ucs2(out, s, n, surrogate_index);
    default: break;
    }
#endif
    return scalar_ucs2(out, s, n, surrogate_index);
}

unsigned char *
unicode_ucs4_to_json(unsigned char *out, const uint32_t *s, size_t n, size_t *surrogate_index)
{
#if defined(ENCODE_UNICODE_X86)
    switch (simd_level_for(n)) {
    case SIMD_AVX2: return avx2_ucs4(out, s, n, surrogate_index);
    case SIMD_SSE41: return sse_ucs4(out, s, n, surrogate_index);
    default: break;
    }
#endif
    return scalar_ucs4(out, s, n, surrogate_index);
}
