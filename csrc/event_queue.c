/* event_queue: bounded FIFO of event_records; see event_queue.h. */
#include "event_queue.h"

#include <string.h>

#include <errno.h>
#include <math.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static int
init_primitives(event_queue *queue)
{
    pthread_condattr_t attributes;
    int error = pthread_mutex_init(&queue->lock, NULL);
    if (error != 0) {
        errno = error;
        return -1;
    }
    if ((error = pthread_condattr_init(&attributes)) != 0) {
        goto error_mutex;
    }
    if ((error = pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)) != 0 ||
        (error = pthread_cond_init(&queue->wake_writer, &attributes)) != 0) {
        goto error_attributes;
    }
    if ((error = pthread_cond_init(&queue->progress, &attributes)) != 0) {
        pthread_cond_destroy(&queue->wake_writer);
        goto error_attributes;
    }
    pthread_condattr_destroy(&attributes);
    return 0;

error_attributes:
    pthread_condattr_destroy(&attributes);
error_mutex:
    pthread_mutex_destroy(&queue->lock);
    errno = error;
    return -1;
}

static void
reset_chains(event_queue *queue)
{
    queue->head = queue->tail = NULL;
    queue->count = queue->bytes = queue->peak_bytes = 0;
    memset(&queue->overflow, 0, sizeof(queue->overflow));
}

int
event_queue_init(event_queue *queue, size_t max_bytes)
{
    reset_chains(queue);
    size_t overflow = max_bytes / 8;
    queue->overflow_max_bytes =
        overflow < EVENT_QUEUE_OVERFLOW_MAX_BYTES ? overflow : EVENT_QUEUE_OVERFLOW_MAX_BYTES;
    queue->max_bytes = max_bytes - queue->overflow_max_bytes;
    return init_primitives(queue);
}

size_t
event_queue_footprint(const event_record *record)
{
#ifdef __GLIBC__
    return malloc_usable_size((void *)record) + sizeof(size_t);
#else
    return ((event_record_footprint(record) + 15) & ~(size_t)15) + 16;
#endif
}

void
event_queue_release_memory(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

void
event_queue_free_chain(event_record *chain)
{
    size_t bytes = 0;
    while (chain != NULL) {
        event_record *next = chain->next;
        bytes += event_queue_footprint(chain);
        event_record_free(chain);
        chain = next;
    }
    if (bytes >= EVENT_QUEUE_TRIM_BYTES) {
        event_queue_release_memory();
    }
}

/* The queue's chain then the overflow's, as one chain; both emptied. */
static event_record *
take_both_locked(event_queue *queue)
{
    event_record *chain = queue->head;
    if (queue->tail != NULL) {
        queue->tail->next = queue->overflow.head;
    }
    else {
        chain = queue->overflow.head;
    }
    reset_chains(queue);
    return chain;
}

void
event_queue_destroy(event_queue *queue)
{
    event_queue_free_chain(take_both_locked(queue));
    pthread_cond_destroy(&queue->progress);
    pthread_cond_destroy(&queue->wake_writer);
    pthread_mutex_destroy(&queue->lock);
}

bool
event_queue_fits_locked(const event_queue *queue, const event_record *record)
{
    size_t footprint = event_queue_footprint(record);
    /* An empty queue takes one record of any size: events may be as large
     * as the server accepts (up to 1 GiB), and one bigger than the bound
     * should not have to go through the spool (or be dropped without one). */
    return queue->count == 0 ||
           (footprint <= queue->max_bytes && queue->bytes <= queue->max_bytes - footprint);
}

int
event_queue_push_locked(event_queue *queue, event_record *record)
{
    if (!event_queue_fits_locked(queue, record)) {
        return 1;
    }
    size_t footprint = event_queue_footprint(record);
    record->next = NULL;
    if (queue->tail != NULL) {
        queue->tail->next = record;
    }
    else {
        queue->head = record;
    }
    queue->tail = record;
    queue->count++;
    queue->bytes += footprint;
    if (queue->bytes > queue->peak_bytes) {
        queue->peak_bytes = queue->bytes;
    }
    return 0;
}

int
event_queue_push_overflow_locked(event_queue *queue, event_record *record)
{
    size_t footprint = event_queue_footprint(record);
    record_chain *overflow = &queue->overflow;
    if (footprint > queue->overflow_max_bytes ||
        overflow->bytes > queue->overflow_max_bytes - footprint) {
        return 1;
    }
    record->next = NULL;
    if (overflow->tail != NULL) {
        overflow->tail->next = record;
    }
    else {
        overflow->head = record;
    }
    overflow->tail = record;
    overflow->count++;
    overflow->bytes += footprint;
    return 0;
}

record_chain
event_queue_take_overflow_locked(event_queue *queue, size_t min_bytes)
{
    record_chain *overflow = &queue->overflow;
    record_chain taken = *overflow;
    if (min_bytes >= overflow->bytes) {
        memset(overflow, 0, sizeof(*overflow));
        return taken;
    }
    /* the records hold more than min_bytes: the walk stops at the end at
     * the latest */
    event_record *record = overflow->head;
    taken.count = taken.bytes = 0;
    while (taken.bytes < min_bytes) {
        taken.tail = record;
        taken.bytes += event_queue_footprint(record);
        taken.count++;
        record = record->next;
    }
    taken.tail->next = NULL;
    overflow->head = record;
    if (record == NULL) {
        overflow->tail = NULL; /* the last record held what was asked for */
    }
    overflow->count -= taken.count;
    overflow->bytes -= taken.bytes;
    return taken;
}

bool
event_queue_should_trim_locked(event_queue *queue)
{
    if (queue->count > 0 || queue->overflow.count > 0 ||
        queue->peak_bytes < EVENT_QUEUE_TRIM_BYTES) {
        return false;
    }
    queue->peak_bytes = 0;
    return true;
}

size_t
event_queue_pop_batch_locked(event_queue *queue, event_record **out, size_t max_count)
{
    size_t taken = 0;
    size_t bytes = 0;
    event_record *record = queue->head;
    bool all = queue->count <= max_count; /* no footprint to sum: the total is known */
    while (record != NULL && taken < max_count) {
        out[taken++] = record;
        if (!all) {
            bytes += event_queue_footprint(record);
        }
        event_record *next = record->next;
        record->next = NULL;
        record = next;
    }
    if (all) {
        bytes = queue->bytes;
    }
    queue->head = record;
    if (record == NULL) {
        queue->tail = NULL;
    }
    queue->count -= taken;
    queue->bytes -= bytes;
    return taken;
}

event_record *
event_queue_take_all_locked(event_queue *queue)
{
    return take_both_locked(queue);
}

int
event_queue_reinit_in_child(event_queue *queue)
{
    /* The old primitives may be held by threads that do not exist here;
     * destroying them is undefined, so they are simply overwritten. */
    event_queue_free_chain(take_both_locked(queue));
    return init_primitives(queue);
}

double
event_queue_monotonic_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

bool
event_queue_wait_until(event_queue *queue, pthread_cond_t *condition, double deadline)
{
    if (deadline < 0) {
        pthread_cond_wait(condition, &queue->lock);
        return true;
    }
    if (event_queue_monotonic_now() >= deadline) {
        return false;
    }
    struct timespec until;
    double whole = floor(deadline);
    until.tv_sec = (time_t)whole;
    until.tv_nsec = (long)((deadline - whole) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec += 1;
        until.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(condition, &queue->lock, &until) != ETIMEDOUT;
}
