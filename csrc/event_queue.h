/* event_queue: the DB logger's bounded FIFO of event_records, plus the lock
 * and condition variables the writer uses to coordinate around it.
 *
 * Owns: every record linked into it (via ->next) until it is popped; the
 * mutex and the two condition variables.  The byte bound counts
 * event_record_footprint() of each record, so memory stays under
 * max_bytes, or one record when a single one is larger.
 *
 * Threads: the mutex guards the queue AND the writer's own state (writer.c
 * keeps one lock so that "queued", "in flight" and "settled" change
 * together).  Every *_locked function needs the mutex held.  Callers
 * (Python threads) push; the writer thread pops; the closer (a Python
 * thread in writer_close) takes everything that is left.  Condition
 * variables use CLOCK_MONOTONIC so timed waits ignore wall-clock jumps.
 */
#ifndef QBEL_EVENT_QUEUE_H
#define QBEL_EVENT_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "event_record.h"

typedef struct event_queue {
    pthread_mutex_t lock;
    pthread_cond_t wake_writer; /* new work, flush request or stop */
    pthread_cond_t progress;    /* events settled, or the writer thread exited */
    event_record *head, *tail;
    size_t count;
    size_t bytes;
    size_t max_bytes;
} event_queue;

/* Initialise an empty queue bounded to `max_bytes`.  0, or -1 (errno set). */
int event_queue_init(event_queue *queue, size_t max_bytes);

/* Free every queued record and destroy the lock and condition variables. */
void event_queue_destroy(event_queue *queue);

/* Mutex held.  Append `record` when it fits: returns 0 and takes ownership.
 * Returns 1 (full) when bytes + footprint would exceed max_bytes; the
 * caller keeps the record.  An empty queue takes any one record, so the
 * bound is max(max_bytes, the largest single record). */
int event_queue_push_locked(event_queue *queue, event_record *record);

/* Mutex held.  Move up to `max_count` records, oldest first, into
 * `out[]`; the caller owns them.  O(1) per record.  Returns the count. */
size_t event_queue_pop_batch_locked(event_queue *queue, event_record **out, size_t max_count);

/* Mutex held.  Take every record as a chain linked by ->next (oldest
 * first; NULL when empty); the caller owns the chain. */
event_record *event_queue_take_all_locked(event_queue *queue);

/* Free a chain returned by event_queue_take_all_locked. */
void event_queue_free_chain(event_record *chain);

/* In a forked child only: the parent's lock state and waiters are
 * meaningless here, so make fresh primitives and free the records (they
 * are the parent's to write).  0, or -1 (errno set). */
int event_queue_reinit_in_child(event_queue *queue);

/* Wait on `condition` until `deadline` (CLOCK_MONOTONIC seconds); a
 * negative deadline waits without limit.  Mutex held.  Returns false when
 * the deadline passed. */
bool event_queue_wait_until(event_queue *queue, pthread_cond_t *condition, double deadline);

/* CLOCK_MONOTONIC now, in seconds. */
double event_queue_monotonic_now(void);

#endif
