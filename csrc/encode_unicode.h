/* encode_unicode: the body of a JSON string, in UTF-8, from text that is not
 * all ASCII, read as CPython stores it: 1 byte a character (Latin-1), 2
 * (UCS-2: the BMP; lone surrogates possible, pairs never) or 4 (UCS-4).
 * Escapes what the encoder escapes: below U+0020, '"' and '\\' as RFC 8259
 * asks, and beyond it the C1 controls U+0080..U+009F and U+2028/U+2029
 * (line breaks to str.splitlines() and JavaScript).
 *
 * Blocks of 16 (AVX2) or 8 (SSSE3 + SSE4.1) characters are classified and
 * transcoded at once, in the manner of simdutf: all ASCII is narrowed; any
 * mix of 1-, 2- and 3-byte characters is spread to one 32-bit lane each and
 * squeezed with a byte shuffle from encode_unicode_table.h.  Where a block
 * holds a character to escape, a surrogate or (UCS-4) one beyond the BMP,
 * the characters up to that one go one at a time and the blocks resume
 * after it; text shorter than a block goes one at a time too.  The
 * instruction set is chosen from the CPU's features on first use; the
 * environment variable QBEL_SIMD caps it ("avx2", "sse4.1" or "none"), and
 * unicode_simd_path() (_core._unicode_simd_path()) names the choice.
 *
 * Pure C (no Python.h, no allocation; its one state is the cached choice):
 * any thread may call it.
 */
#ifndef QBEL_ENCODE_UNICODE_H
#define QBEL_ENCODE_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* The room `out` must have for n characters: 6 bytes each (\uXXXX), and
 * slack for the last vector store. */
#define UNICODE_JSON_ROOM(n) (6 * (size_t)(n) + 32)

/* Write s[0..n) as UTF-8 with JSON escapes at `out`, which has room for
 * UNICODE_JSON_ROOM(n) bytes (beyond the returned end, bytes may be
 * overwritten).  Returns the end of what was written.  The UCS-2 and UCS-4
 * forms return NULL at a lone surrogate (U+D800..U+DFFF), with its index in
 * *surrogate_index; the output before it is then incomplete. */
unsigned char *unicode_latin1_to_json(unsigned char *out, const uint8_t *s, size_t n);
unsigned char *unicode_ucs2_to_json(unsigned char *out, const uint16_t *s, size_t n,
                                    size_t *surrogate_index);
unsigned char *unicode_ucs4_to_json(unsigned char *out, const uint32_t *s, size_t n,
                                    size_t *surrogate_index);

/* "avx2", "sse4.1" or "none": the instruction set the functions above use
 * in this process. */
const char *unicode_simd_path(void);

#endif
