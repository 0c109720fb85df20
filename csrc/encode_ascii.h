/* encode_ascii: copying long runs of ASCII text that need no JSON escape
 * with the widest vectors the CPU has (AVX-512BW, AVX2, else SSE2 or
 * 8-byte words), chosen per call from the CPU's features.
 *
 * Pure C (no Python.h, no allocation, no state of its own): any thread may
 * call it.  The encoder's long-string path; short strings stay inline in
 * json_encoder.c.
 */
#ifndef QBEL_ENCODE_ASCII_H
#define QBEL_ENCODE_ASCII_H

#include <stddef.h>

/* Copy from[0..k) to to[0..k) and return k: the longest prefix made of
 * whole 64-byte blocks, none holding a byte that JSON must escape (< 0x20,
 * '"', '\\').  k is a multiple of 64, k <= n, and either n - k < 64 or the
 * block at k holds such a byte.  `from` must be ASCII (every byte < 0x80).
 * Writes only to[0..n) (the block at k may be copied as well); the buffers
 * must not overlap. */
size_t ascii_copy_clean_blocks(char *to, const unsigned char *from, size_t n);

#endif
