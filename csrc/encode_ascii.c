/* encode_ascii: see encode_ascii.h.  One loop per instruction set, all with
 * the same contract; the dispatcher picks the widest the running CPU has.
 * Every byte is < 0x80, so a signed "less than 0x20" compare is exact. */
#include "encode_ascii.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ENCODE_ASCII_X86 1
#include <immintrin.h>
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define BLOCK 64


#if defined(ENCODE_ASCII_X86)

__attribute__((target("avx512bw"))) static size_t
copy_clean_blocks_avx512(char *to, const unsigned char *from, size_t n)
{
    const __m512i space = _mm512_set1_epi8(0x20), quote = _mm512_set1_epi8('"'),
                  backslash = _mm512_set1_epi8('\\');
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        __m512i bytes = _mm512_loadu_si512((const void *)(from + i));
        _mm512_storeu_si512((void *)(to + i), bytes);
        __mmask64 special = _mm512_cmplt_epi8_mask(bytes, space) |
                            _mm512_cmpeq_epi8_mask(bytes, quote) |
                            _mm512_cmpeq_epi8_mask(bytes, backslash);
        if (special != 0) {
            break;
        }
    }
    return i;
}

__attribute__((target("avx2"))) static size_t
copy_clean_blocks_avx2(char *to, const unsigned char *from, size_t n)
{
    const __m256i space = _mm256_set1_epi8(0x20), quote = _mm256_set1_epi8('"'),
                  backslash = _mm256_set1_epi8('\\');
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        __m256i low = _mm256_loadu_si256((const __m256i *)(const void *)(from + i));
        __m256i high = _mm256_loadu_si256((const __m256i *)(const void *)(from + i + 32));
        _mm256_storeu_si256((__m256i *)(void *)(to + i), low);
        _mm256_storeu_si256((__m256i *)(void *)(to + i + 32), high);
        /* space > byte, i.e. byte < 0x20 */
        __m256i special = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpgt_epi8(space, low), _mm256_cmpgt_epi8(space, high)),
            _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(low, quote), _mm256_cmpeq_epi8(high, quote)),
                _mm256_or_si256(_mm256_cmpeq_epi8(low, backslash),
                                _mm256_cmpeq_epi8(high, backslash))));
        if (!_mm256_testz_si256(special, special)) {
            break;
        }
    }
    return i;
}

#endif

/* SSE2 is part of x86-64; elsewhere 8-byte words. */
static size_t
copy_clean_blocks_portable(char *to, const unsigned char *from, size_t n)
{
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
#if defined(__SSE2__)
        const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'),
                      backslash = _mm_set1_epi8('\\');
        __m128i special = _mm_setzero_si128();
        for (int part = 0; part < 4; part++) {
            __m128i bytes = _mm_loadu_si128((const __m128i *)(const void *)(from + i + 16 * part));
            _mm_storeu_si128((__m128i *)(void *)(to + i + 16 * part), bytes);
            special = _mm_or_si128(special, _mm_cmplt_epi8(bytes, space));
            special = _mm_or_si128(special, _mm_cmpeq_epi8(bytes, quote));
            special = _mm_or_si128(special, _mm_cmpeq_epi8(bytes, backslash));
        }
        if (_mm_movemask_epi8(special) != 0) {
            break;
        }
#else
        bool special = false;
        for (int part = 0; part < BLOCK / 8; part++) {
            uint64_t word;
            memcpy(&word, from + i + 8 * part, 8);
            memcpy(to + i + 8 * part, &word, 8);
            special |= word_needs_escape(word);
        }
        if (special) {
            break;
        }
#endif
    }
    return i;
}

size_t
ascii_copy_clean_blocks(char *to, const unsigned char *from, size_t n)
{
#if defined(ENCODE_ASCII_X86)
    /* a load and a test: cheap beside the 64+ bytes a call copies.  Not
     * 512-bit vectors on the Skylake-SP family, whose clock drops for them
     * (glibc's memcpy avoids them there too). */
    if (__builtin_cpu_supports("avx512bw") && !__builtin_cpu_is("skylake-avx512") &&
        !__builtin_cpu_is("cascadelake") && !__builtin_cpu_is("cooperlake")) {
        return copy_clean_blocks_avx512(to, from, n);
    }
    if (__builtin_cpu_supports("avx2")) {
        return copy_clean_blocks_avx2(to, from, n);
    }
#endif
    return copy_clean_blocks_portable(to, from, n);
}
