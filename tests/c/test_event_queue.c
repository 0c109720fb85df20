/* Checks of the event queue that Python cannot reach: the byte bound
 * counts what the allocator takes, the overflow's chunked takes (the one
 * that empties it by the walk included), take-all order, and every block
 * given back.  Built with -DQBEL_TEST_HOOKS and csrc/qbel_alloc.c (live
 * blocks must be zero at the end).  Run by tests/test_queue_internals.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/event_queue.h"
#include "../../csrc/qbel_alloc.h"

static int failures = 0;
#define CHECK(condition)                                                                  \
    do {                                                                                  \
        if (!(condition)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

/* A record whose event_data is `length` bytes, its uid `tag`. */
static event_record *
make(int32_t tag, size_t length)
{
    char json[512];
    memset(json, 'x', sizeof json);
    return event_record_new(0, tag, false, EVENT_TYPE_CLICK, json, length);
}

static size_t
chain_length(const event_record *chain, int32_t *first_tag, int32_t *last_tag)
{
    size_t count = 0;
    for (; chain != NULL; chain = chain->next) {
        if (count == 0 && first_tag != NULL) {
            *first_tag = chain->uid;
        }
        if (last_tag != NULL) {
            *last_tag = chain->uid;
        }
        count++;
    }
    return count;
}

static void
test_footprint_counts_the_allocator(void)
{
    event_record *record = make(1, 100);
    size_t requested = event_record_footprint(record);
    size_t footprint = event_queue_footprint(record);
    CHECK(footprint >= requested + sizeof(size_t));
    CHECK(footprint <= requested + 32);
    event_record_free(record);
}

static void
test_queue_and_overflow_share_the_bound(void)
{
    size_t bound = 64 << 10;
    event_queue queue;
    CHECK(event_queue_init(&queue, bound) == 0);
    CHECK(queue.max_bytes + queue.overflow_max_bytes == bound);
    int32_t tag = 0;
    size_t expected = 0;
    for (;;) {
        event_record *record = make(tag, 50 + (size_t)tag % 200);
        size_t footprint = event_queue_footprint(record);
        if (event_queue_push_locked(&queue, record) != 0) {
            event_record_free(record);
            break;
        }
        expected += footprint;
        tag++;
    }
    CHECK(queue.bytes == expected && queue.bytes <= queue.max_bytes);
    size_t queued = queue.count;
    for (;;) {
        event_record *record = make(tag, 50 + (size_t)tag % 200);
        if (event_queue_push_overflow_locked(&queue, record) != 0) {
            event_record_free(record);
            break;
        }
        tag++;
    }
    CHECK(queue.overflow.count > 0);
    CHECK(queue.bytes + queue.overflow.bytes <= bound);
    int32_t first = -1, last = -1;
    event_record *all = event_queue_take_all_locked(&queue);
    CHECK(chain_length(all, &first, &last) == queued + (size_t)tag - queued);
    CHECK(first == 0 && last == tag - 1);
    CHECK(queue.count == 0 && queue.bytes == 0 && queue.overflow.count == 0 &&
          queue.overflow.bytes == 0 && queue.overflow.head == NULL &&
          queue.overflow.tail == NULL);
    event_queue_free_chain(all);
    event_queue_destroy(&queue);
}

static void
test_overflow_takes_in_chunks(void)
{
    event_queue queue;
    CHECK(event_queue_init(&queue, 1 << 20) == 0);
    size_t each = 0;
    for (int32_t tag = 0; tag < 10; tag++) {
        event_record *record = make(tag, 100);
        each = event_queue_footprint(record);
        CHECK(event_queue_push_overflow_locked(&queue, record) == 0);
    }
    /* at least 2.5 records' worth: three */
    record_chain taken = event_queue_take_overflow_locked(&queue, each * 5 / 2);
    int32_t first = -1, last = -1;
    CHECK(taken.count == 3 && taken.bytes == 3 * each);
    CHECK(chain_length(taken.head, &first, &last) == 3 && first == 0 && last == 2);
    CHECK(taken.tail != NULL && taken.tail->next == NULL && taken.tail->uid == 2);
    CHECK(queue.overflow.count == 7 && queue.overflow.bytes == 7 * each);
    event_queue_free_chain(taken.head);

    /* less than all, but only the last record reaches it: the walk empties
     * the overflow, which must then be a clean empty chain */
    taken = event_queue_take_overflow_locked(&queue, 7 * each - 1);
    CHECK(taken.count == 7 && queue.overflow.count == 0 && queue.overflow.bytes == 0);
    CHECK(queue.overflow.head == NULL && queue.overflow.tail == NULL);
    event_queue_free_chain(taken.head);
    CHECK(event_queue_push_overflow_locked(&queue, make(42, 10)) == 0);
    taken = event_queue_take_overflow_locked(&queue, SIZE_MAX);
    CHECK(taken.count == 1 && taken.head != NULL && taken.head->uid == 42 &&
          taken.head->next == NULL);
    event_queue_free_chain(taken.head);

    /* empty: nothing */
    taken = event_queue_take_overflow_locked(&queue, 1);
    CHECK(taken.count == 0 && taken.head == NULL);
    event_queue_destroy(&queue);
}

static void
test_pop_batch_and_trim_check(void)
{
    event_queue queue;
    CHECK(event_queue_init(&queue, 64 << 20) == 0);
    int32_t tag = 0;
    while (queue.bytes < EVENT_QUEUE_TRIM_BYTES) {
        CHECK(event_queue_push_locked(&queue, make(tag++, 300)) == 0);
    }
    CHECK(!event_queue_should_trim_locked(&queue)); /* not empty yet */
    event_record *batch[1000];
    size_t popped;
    int32_t expect = 0;
    while ((popped = event_queue_pop_batch_locked(&queue, batch, 1000)) > 0) {
        for (size_t i = 0; i < popped; i++) {
            CHECK(batch[i]->uid == expect++);
            event_record_free(batch[i]);
        }
    }
    CHECK(expect == tag && queue.bytes == 0 && queue.head == NULL && queue.tail == NULL);
    CHECK(event_queue_should_trim_locked(&queue));
    CHECK(!event_queue_should_trim_locked(&queue)); /* once */
    event_queue_destroy(&queue);
}

int
main(void)
{
    test_footprint_counts_the_allocator();
    test_queue_and_overflow_share_the_bound();
    test_overflow_takes_in_chunks();
    test_pop_batch_and_trim_check();
    long long blocks = 0, bytes = 0;
    qbel_alloc_live(&blocks, &bytes);
    CHECK(blocks == 0 && bytes == 0);
    if (failures != 0) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
