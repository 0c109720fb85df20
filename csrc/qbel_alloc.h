/* qbel_alloc: the one door through which the C core takes and returns heap
 * memory of its own (byte buffers, event records, the writer, the sink's
 * arrays, spool paths).
 *
 * In a normal build these are exactly malloc/calloc/realloc/free/strdup.
 * In a test build (-DQBEL_TEST_HOOKS, setup.py's QBEL_TEST_BUILD=1) they
 * count live blocks and bytes with atomics (the writer thread allocates too)
 * and can be told to fail the Nth allocation: the chaos allocator that
 * tests/c/ and tests/test_c_leaks.py use.
 *
 * Rule: a block from qbel_* goes back through qbel_free, and only such a
 * block.  Memory a library allocates and releases itself (jansson's
 * json_decref, Connector/C's mysql_close, stdio's fclose) is not ours to
 * count; memory libc allocates for us and we release with free() (getline's
 * line) stays on plain free() and is not counted either.
 */
#ifndef QBEL_ALLOC_H
#define QBEL_ALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifdef QBEL_TEST_HOOKS

void *qbel_malloc(size_t size);
void *qbel_calloc(size_t count, size_t size);
void *qbel_realloc(void *block, size_t size);
void qbel_free(void *block);
char *qbel_strdup(const char *text);

/* Live blocks and bytes (usable sizes) taken through qbel_* and not yet
 * freed, process-wide. */
void qbel_alloc_live(long long *blocks, long long *bytes);
/* 0: never fail; N > 0: the Nth allocation from now fails (once).  Counts
 * every thread's allocations. */
void qbel_alloc_fail_at(long n);

#else

static inline void *
qbel_malloc(size_t size)
{
    return malloc(size);
}

static inline void *
qbel_calloc(size_t count, size_t size)
{
    return calloc(count, size);
}

static inline void *
qbel_realloc(void *block, size_t size)
{
    return realloc(block, size);
}

static inline void
qbel_free(void *block)
{
    free(block);
}

static inline char *
qbel_strdup(const char *text)
{
    return strdup(text);
}

#endif /* QBEL_TEST_HOOKS */
#endif
