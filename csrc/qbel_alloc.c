/* qbel_alloc: the counting, failing allocator of test builds; see
 * qbel_alloc.h.  Compiled only into test builds (setup.py's QBEL_TEST_BUILD=1,
 * tests/c/): a shipped build has the inline libc calls of the header. */
#ifndef QBEL_TEST_HOOKS
#error "qbel_alloc.c belongs to test builds only (-DQBEL_TEST_HOOKS)"
#endif

#include "qbel_alloc.h"

#include <malloc.h>
#include <stdbool.h>

/* Any thread, no lock: plain atomics.  Bytes are malloc_usable_size's, the
 * same figure at allocation and at free, so they balance exactly. */
static long long live_blocks = 0;
static long long live_bytes = 0;
static long fail_countdown = 0;

/* true when this allocation is the one qbel_alloc_fail_at asked to fail */
static bool
should_fail(void)
{
    long current = __atomic_load_n(&fail_countdown, __ATOMIC_RELAXED);
    while (current > 0) {
        if (__atomic_compare_exchange_n(&fail_countdown, &current, current - 1, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            return current == 1;
        }
    }
    return false;
}

static void
count(void *block, long long blocks)
{
    long long bytes = (long long)malloc_usable_size(block);
    __atomic_add_fetch(&live_blocks, blocks, __ATOMIC_RELAXED);
    __atomic_add_fetch(&live_bytes, blocks * bytes, __ATOMIC_RELAXED);
}

void *
qbel_malloc(size_t size)
{
    void *block = should_fail() ? NULL : malloc(size);
    if (block != NULL) {
        count(block, 1);
    }
    return block;
}

void *
qbel_calloc(size_t count_of, size_t size)
{
    void *block = should_fail() ? NULL : calloc(count_of, size);
    if (block != NULL) {
        count(block, 1);
    }
    return block;
}

void *
qbel_realloc(void *block, size_t size)
{
    if (block == NULL) {
        return qbel_malloc(size);
    }
    if (size == 0) { /* glibc frees here; make it a free everywhere */
        qbel_free(block);
        return NULL;
    }
    if (should_fail()) {
        return NULL;
    }
    long long old_bytes = (long long)malloc_usable_size(block);
    void *grown = realloc(block, size);
    if (grown != NULL) {
        __atomic_add_fetch(&live_bytes, (long long)malloc_usable_size(grown) - old_bytes,
                           __ATOMIC_RELAXED);
    }
    return grown;
}

void
qbel_free(void *block)
{
    if (block != NULL) {
        count(block, -1);
        free(block);
    }
}

char *
qbel_strdup(const char *text)
{
    size_t size = strlen(text) + 1;
    char *copy = qbel_malloc(size);
    if (copy != NULL) {
        memcpy(copy, text, size);
    }
    return copy;
}

void
qbel_alloc_live(long long *blocks, long long *bytes)
{
    *blocks = __atomic_load_n(&live_blocks, __ATOMIC_RELAXED);
    *bytes = __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}

void
qbel_alloc_fail_at(long n)
{
    __atomic_store_n(&fail_countdown, n > 0 ? n : 0, __ATOMIC_RELAXED);
}
