/* chaos_alloc.h: a malloc that fails on demand, for the C internals tests.
 * Compile the code under test with -include chaos_alloc.h so its
 * malloc/realloc calls come here (jansson's test suite does the same). */
#ifndef QBEL_CHAOS_ALLOC_H
#define QBEL_CHAOS_ALLOC_H
#include <stddef.h>
#include <stdlib.h> /* declared before the macros below rename malloc/realloc */

/* 0: never fail; N > 0: the Nth allocation from now fails (once). */
extern long chaos_fail_at;
void *chaos_malloc(size_t size);
void *chaos_realloc(void *block, size_t size);

#define malloc(size) chaos_malloc(size)
#define realloc(block, size) chaos_realloc(block, size)
#endif
