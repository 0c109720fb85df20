/* event_queue: the DB logger's bounded FIFO of event_records, plus the lock
 * and condition variables the writer uses to coordinate around it.
 *
 * Owns: every record linked into it (via ->next) until it is popped; the
 * mutex and the two condition variables.  Two chains share one byte bound:
 * the queue proper (records for the sink) and the overflow (records
 * callers could not queue, waiting for the writer thread to append them to
 * the spool file, so that log() never does file I/O itself while the
 * writer keeps up).  The bound counts event_queue_footprint() of each
 * record: its heap block as the allocator sizes it, header included, so
 * that max_bytes bounds the real memory (or one record when a single one
 * is larger).
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

/* A FIFO of records linked by ->next, with their count and footprint. */
typedef struct record_chain {
    event_record *head, *tail;
    size_t count;
    size_t bytes;
} record_chain;

typedef struct event_queue {
    pthread_mutex_t lock;
    pthread_cond_t wake_writer; /* new work, flush request or stop */
    pthread_cond_t progress;    /* events settled, or the writer thread exited */
    event_record *head, *tail;
    size_t count;
    size_t bytes;
    size_t max_bytes;          /* the queue proper's share of the bound */
    size_t peak_bytes;         /* high-water mark since the last trim check */
    record_chain overflow;     /* for the spool, oldest first */
    size_t overflow_max_bytes; /* the overflow's share: max_bytes + this = the bound */
} event_queue;

/* The overflow's share of the bound: an eighth, at most this much. */
#define EVENT_QUEUE_OVERFLOW_MAX_BYTES ((size_t)256 << 10)
/* What one append of the overflow to the spool file takes at most, so that
 * a caller waiting for the spool file waits for one short write. */
#define EVENT_QUEUE_SPOOL_CHUNK_BYTES ((size_t)8 << 10)
/* A queue that held this much is worth giving memory back for once empty. */
#define EVENT_QUEUE_TRIM_BYTES ((size_t)2 << 20)

/* Initialise an empty queue whose records (queue and overflow together)
 * take at most `max_bytes` of heap.  0, or -1 (errno set). */
int event_queue_init(event_queue *queue, size_t max_bytes);

/* Any thread, no lock: the heap bytes `record` takes — the allocator's
 * usable size plus its per-block header (glibc: 8 bytes; elsewhere the
 * requested size rounded to 16 plus 16). */
size_t event_queue_footprint(const event_record *record);

/* Free every queued record and destroy the lock and condition variables. */
void event_queue_destroy(event_queue *queue);

/* Mutex held.  Would event_queue_push_locked take `record` now? */
bool event_queue_fits_locked(const event_queue *queue, const event_record *record);

/* Mutex held.  Append `record` when it fits: returns 0 and takes ownership.
 * Returns 1 (full) when bytes + footprint would exceed max_bytes; the
 * caller keeps the record.  An empty queue takes any one record, so the
 * bound is max(max_bytes, the largest single record). */
int event_queue_push_locked(event_queue *queue, event_record *record);

/* Mutex held.  Append `record` to the overflow when it fits in the
 * overflow's share: returns 0 and takes ownership; 1 (full) leaves it with
 * the caller.  No exception for a single large record: that one goes to
 * the spool from its caller. */
int event_queue_push_overflow_locked(event_queue *queue, event_record *record);

/* Mutex held.  Take the overflow's oldest records, as few as hold at least
 * `min_bytes` (all when it holds less; SIZE_MAX: all), as a chain (head
 * NULL when empty); the caller owns it.  O(records taken). */
record_chain event_queue_take_overflow_locked(event_queue *queue, size_t min_bytes);

/* Mutex held.  True once when the queue and overflow are empty after the
 * queue held EVENT_QUEUE_TRIM_BYTES or more since the last true answer:
 * then call event_queue_release_memory without the lock. */
bool event_queue_should_trim_locked(event_queue *queue);

/* Any thread, no lock (it walks the allocator's heap, taking the
 * allocator's own locks): give free heap pages back to the system
 * (glibc's malloc_trim; nothing elsewhere). */
void event_queue_release_memory(void);

/* Mutex held.  Move up to `max_count` records, oldest first, into
 * `out[]`; the caller owns them.  O(1) per record.  Returns the count. */
size_t event_queue_pop_batch_locked(event_queue *queue, event_record **out, size_t max_count);

/* Mutex held.  Take every record, the queue's then the overflow's, as a
 * chain linked by ->next (oldest first; NULL when empty); the caller owns
 * the chain. */
event_record *event_queue_take_all_locked(event_queue *queue);

/* No lock needed.  Free a chain (from event_queue_take_all_locked or a
 * batch); when it held EVENT_QUEUE_TRIM_BYTES or more, give the memory
 * back to the system (event_queue_release_memory). */
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
