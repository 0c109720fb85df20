/* encode_ascii: copying runs of ASCII text that need no JSON escape: long
 * runs of 1-byte text with the widest vectors the CPU has (AVX-512BW, AVX2,
 * else SSE2 or 8-byte words), chosen per call from the CPU's features; and,
 * inline, the ASCII stretches of text stored 1, 2 or 4 bytes a character
 * (Latin-1, UCS-2, UCS-4), 8 characters at a time.
 *
 * Pure C (no Python.h, no allocation, no state of its own): any thread may
 * call it.  The encoder's long-string path; short strings stay inline in
 * json_encoder.c.
 */
#ifndef QBEL_ENCODE_ASCII_H
#define QBEL_ENCODE_ASCII_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Copy from[0..k) to to[0..k) and return k: the longest prefix made of
 * whole 64-byte blocks, none holding a byte that JSON must escape (< 0x20,
 * '"', '\\').  k is a multiple of 64, k <= n, and either n - k < 64 or the
 * block at k holds such a byte.  `from` must be ASCII (every byte < 0x80).
 * Writes only to[0..n) (the block at k may be copied as well); the buffers
 * must not overlap. */
size_t ascii_copy_clean_blocks(char *to, const unsigned char *from, size_t n);

/* True when one of the 8 ASCII bytes in `word` needs escaping.  Every byte
 * is < 0x80, so the classic "has a byte less than N" and "has a zero byte"
 * word tests are exact. */
static inline bool
word_needs_escape(uint64_t word)
{
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t highs = 0x8080808080808080ULL;
    uint64_t control = (word - ones * 0x20) & ~word;
    uint64_t quote = word ^ (ones * '"');
    quote = (quote - ones) & ~quote;
    uint64_t backslash = word ^ (ones * '\\');
    backslash = (backslash - ones) & ~backslash;
    return ((control | quote | backslash) & highs) != 0;
}

/* ascii_clean8_ucs1/2/4: narrow the 8 characters at `s` to bytes at
 * out[0..8) and return how many of them, from
 * the first, are ASCII that needs no JSON escape: 8 when all are.  May
 * write all of out[0..8), whatever it returns. */
#if defined(__SSE2__)
/* the 0x20 compare is signed: it also catches every character >= 0x80 of
 * 1-byte text, and >= 0x8000 of 2-byte text */
static inline int
ascii_clean_prefix_of_mask(int bad_bytes_mask, int bytes_per_char)
{
    return bad_bytes_mask == 0 ? 8 : __builtin_ctz((unsigned)bad_bytes_mask) / bytes_per_char;
}

static inline int
ascii_clean8_ucs1(unsigned char *out, const uint8_t *s)
{
    __m128i c = _mm_loadl_epi64((const __m128i *)(const void *)s);
    _mm_storel_epi64((__m128i *)(void *)out, c);
    __m128i bad = _mm_or_si128(_mm_cmplt_epi8(c, _mm_set1_epi8(0x20)),
                               _mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('"')),
                                            _mm_cmpeq_epi8(c, _mm_set1_epi8('\\'))));
    return ascii_clean_prefix_of_mask(_mm_movemask_epi8(bad) & 0xFF, 1);
}

/* All ones in each W-bit lane of `c` that is not clean ASCII: < 0x20 or
 * > 0x7F (signed compares, so 16-bit lanes >= 0x8000 count as < 0x20), '"'
 * or '\\'. */
#define ASCII_BAD_LANES(W)                                                                 \
    static inline __m128i ascii_bad_lanes##W(__m128i c)                                    \
    {                                                                                      \
        return _mm_or_si128(_mm_or_si128(_mm_cmplt_epi##W(c, _mm_set1_epi##W(0x20)),      \
                                         _mm_cmpgt_epi##W(c, _mm_set1_epi##W(0x7F))),      \
                            _mm_or_si128(_mm_cmpeq_epi##W(c, _mm_set1_epi##W('"')),        \
                                         _mm_cmpeq_epi##W(c, _mm_set1_epi##W('\\'))));     \
    }
ASCII_BAD_LANES(16)
ASCII_BAD_LANES(32)
#undef ASCII_BAD_LANES

static inline int
ascii_clean8_ucs2(unsigned char *out, const uint16_t *s)
{
    __m128i c = _mm_loadu_si128((const __m128i *)(const void *)s);
    _mm_storel_epi64((__m128i *)(void *)out, _mm_packus_epi16(c, c));
    return ascii_clean_prefix_of_mask(_mm_movemask_epi8(ascii_bad_lanes16(c)), 2);
}

static inline int
ascii_clean8_ucs4(unsigned char *out, const uint32_t *s)
{
    __m128i low = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i high = _mm_loadu_si128((const __m128i *)(const void *)(s + 4));
    /* code points fit in 21 bits: the signed 32 -> 16 packing keeps every
     * ASCII lane as it is (the others saturate, and are not kept) */
    __m128i narrow = _mm_packs_epi32(low, high);
    _mm_storel_epi64((__m128i *)(void *)out, _mm_packus_epi16(narrow, narrow));
    __m128i bad = _mm_packs_epi32(ascii_bad_lanes32(low), ascii_bad_lanes32(high));
    return ascii_clean_prefix_of_mask(_mm_movemask_epi8(bad), 2);
}
#else
#define ASCII_CLEAN8(NAME, CHAR_TYPE)                                                     \
    static inline int NAME(unsigned char *out, const CHAR_TYPE *s)                       \
    {                                                                                    \
        int clean = 0;                                                                   \
        while (clean < 8 && s[clean] >= 0x20 && s[clean] < 0x80 && s[clean] != '"' &&    \
               s[clean] != '\\') {                                                        \
            out[clean] = (unsigned char)s[clean];                                        \
            clean++;                                                                     \
        }                                                                                \
        return clean;                                                                    \
    }
ASCII_CLEAN8(ascii_clean8_ucs1, uint8_t)
ASCII_CLEAN8(ascii_clean8_ucs2, uint16_t)
ASCII_CLEAN8(ascii_clean8_ucs4, uint32_t)
#undef ASCII_CLEAN8
#endif

#endif
