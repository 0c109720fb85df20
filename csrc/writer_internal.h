/* writer_internal: the writer's private state and the functions its files
 * share (writer.c, writer_thread.c, writer_callers.c, writer_close.c,
 * writer_fork.c, writer_replay.c).  Nothing outside the writer includes it.
 *
 * Threads and locks.  queue.lock guards the queue and every field marked
 * (L) below.  It is only ever held briefly and never across disk or
 * network I/O, because writer_try_enqueue takes it with the GIL held: a
 * wait there would stall every thread and greenlet of the process.  The
 * writer thread takes batches out under it and talks to the sink with it
 * released.  spool_lock guards our own overflow spool file (S); it is held
 * across file appends, so only threads without the GIL take it
 * (writer_submit's slow path, writer_close, the writer thread), and never
 * across more than one append (one event's, or the overflow's: at most
 * 256 KiB, see event_queue.h): writer_fork_prepare waits for it
 * with the GIL held, so a long hold would stall fork() (subprocess.Popen
 * included).  Lock order: spool_lock before queue.lock.  Fields marked (T)
 * belong to the writer thread while it is alive, and to whoever holds the
 * writer once it has exited (the closer, or a forked child).
 *
 * Settlement.  Every accepted event gets a sequence number: the value of
 * `submitted` when it was accepted (0, 1, 2, ...).  `settled` counts the
 * events that are done and were not dropped (committed, dead-lettered, or
 * replayed from our own spool).  These settle in sequence order: the queue
 * drains FIFO, one batch at a time; once the queue overflows, every later
 * event goes to the spool file until the thread has emptied the queue and
 * replayed the spool, and while an overflow event is between reserving its
 * number and its append (or drop) its submitter holds spool_lock, so the
 * thread can neither take that file over nor settle anything after it.
 * A drop (the spool append failed) settles at once, out of order, so it is
 * not counted in `settled`: each waiting flush counts the drops numbered
 * below its target instead (flush_waiter).  flush(target T) is done when
 * settled + drops_below(T) >= T.  Proof: if some event p < T is not done,
 * nothing numbered above p has settled, so `settled` counts only events
 * below T that are neither p nor dropped: settled <= T - drops_below - 1.
 * Conversely, once every event below T is done, settled >= T - drops_below.
 */
#ifndef QBEL_WRITER_INTERNAL_H
#define QBEL_WRITER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "durable_journal.h"
#include "event_queue.h"
#include "sink.h"
#include "spool.h"
#include "writer.h"

/* How often an idle writer looks for spool files orphaned by dead
 * processes sharing its spool_dir (it also looks right after starting). */
#define WRITER_ORPHAN_SCAN_INTERVAL_S 60.0
/* How long writer_close waits for a thread that was told to stop, even
 * with timeout 0: an idle thread exits within microseconds. */
#define WRITER_STOP_GRACE_S 0.25
/* How often the sink's housekeeping runs (MySQL: prune old marker rows). */
#define WRITER_HOUSEKEEPING_INTERVAL_S 3600.0
/* The writer gives memory back to the system (malloc_trim) at most this
 * often, once the queue is empty after holding EVENT_QUEUE_TRIM_BYTES. */
#define WRITER_TRIM_INTERVAL_S 1.0
/* ".tmp-" spool files this old are leftovers of a process that died. */
#define WRITER_STALE_TEMPORARY_S 3600.0

struct writer {
    writer_config config; /* deep copy */
    event_queue queue;

    /* (L) lifecycle */
    bool thread_started, thread_alive, thread_detached;
    bool stop, closing, closed, free_when_thread_exits;
    int stop_flag; /* mirror of stop read without the lock (atomic) */
    pthread_t thread;

    /* (L) the in-flight batch: records owned by the thread while it writes */
    event_record **batch;
    size_t batch_count;
    char batch_id[SINK_BATCH_ID_MAX + 1];
    size_t batch_rejected;        /* rows the last attempt saw rejected */
    bool batch_ambiguous;         /* a connection error hid whether it committed */
    bool batch_spooled_by_closer; /* the closer wrote it to the spool; only free it */
    bool batch_pinned_by_closer;  /* the closer reads its records without the lock */
    uint64_t batch_sequence;
    char process_hex[17];

    /* (S) overflow: callers append to it while spool_mode */
    pthread_mutex_t spool_lock;
    spool_file own_spool;

    /* (L) overflow */
    bool spool_mode;
    uint64_t own_spool_pending; /* events sent to own_spool (or the queue's overflow),
                                   not yet handed to replay */
    uint64_t overflow_first_sequence; /* number of the oldest record in queue.overflow */
    bool own_spool_dirty;       /* own_spool appended since the thread last synced it */

    /* (L) durability="process": every queued record is in the journal too
     * (NULL otherwise, and after close once the thread is gone) */
    durable_journal *journal;
    journal_chunk *batch_chunk; /* (T) the chunk the in-flight batch came from */

    /* (T) */
    sink *sink;
    dead_letter letters;
    rejection_list rejections;
    spool_file replaying_spool; /* an own spool file taken over for replay */
    bool ever_connected;
    double next_orphan_scan;
    double next_housekeeping;
    double backoff_s;
    double next_trim; /* memory goes back to the system at most this often */

    /* (L) settlement and stats (see "Settlement" above) */
    uint64_t submitted, settled;
    uint64_t dropped_settled;          /* drops since the start (or the fork) */
    struct flush_waiter *flush_list;   /* every flush waiting now */
    uint64_t flush_requests;
    unsigned flush_waiters;
    double queue_since; /* monotonic time the oldest queued event arrived */
    writer_stats stats;
    int at_least_once_seen; /* atomic; see writer_at_least_once_seen */
    uint64_t dropped_mirror; /* atomic copy of stats.dropped; see writer_dropped_count */

    struct writer *next_live; /* guarded by writer_live_lock */
};

/* A writer_flush call in progress, on its caller's stack, linked into
 * writer.flush_list under queue.lock. */
typedef struct flush_waiter {
    uint64_t target;      /* events accepted before the call (numbers < target) */
    uint64_t drops_below; /* how many of those were dropped so far */
    struct flush_waiter *next;
} flush_waiter;

/* Every live writer, for the fork handlers (pthread_atfork handlers take no
 * argument); touched only at new/free/fork, under writer_live_lock. */
extern pthread_mutex_t writer_live_lock;
extern writer *writer_live_list;

/* ---- writer.c ---- */

/* Lock held.  last_error = "<context>: <detail>", stamped now (Unix
 * time in last_error_at).  The _code form sets its qbel_error code
 * (QBEL_ERROR_NOTICE: a report that recovery does not clear). */
void writer_set_error_locked(writer *w, const char *context, const char *detail);
void writer_set_error_code_locked(writer *w, int code, const char *context, const char *detail);
/* Lock held.  The writer recovered (a batch committed): clear last_error
 * and last_error_at, unless it is a notice. */
void writer_clear_error_locked(writer *w);
/* Lock held.  `count` events are lost for good: stats.dropped, and the
 * mirror the caller side reads without the lock to warn. */
void writer_count_dropped_locked(writer *w, uint64_t count);
/* Lock held.  Tell the thread to stop. */
void writer_set_stop_locked(writer *w);
/* Any thread, no lock: the spool replay's should_stop. */
bool writer_stop_requested(void *argument);
/* A fresh process-unique prefix for batch ids (at creation and in a fork). */
void writer_make_process_hex(writer *w);
/* Free everything; the thread is gone (or never was). */
void writer_destroy(writer *w);

/* Lock held, journal set: make its spare (or first) chunk, the file I/O
 * with the lock released; a failure goes to last_error. */
void writer_provide_journal_chunk_locked(writer *w);

/* ---- writer_thread.c ---- */

/* Caller thread, lock held.  Start the writer thread with every signal
 * blocked.  On failure last_error says why and the next submit retries. */
void writer_start_thread_locked(writer *w);

/* ---- writer_callers.c ---- */

/* Any thread that alone owns `file` now: fdatasync what was appended, then
 * release the file (closed either way).  0, or the errno of the sync. */
int writer_sync_and_close_spool(spool_file *file, bool remove_if_empty);
/* queue.lock NOT held; spool_lock held when `file` is w->own_spool.
 * Append `length` bytes holding `count` lines to `file`, creating it on
 * first use.  0, or -1 (errno set). */
int writer_append_spool(writer *w, spool_file *file, const char *data, size_t length,
                        size_t count);
/* queue.lock NOT held; spool_lock held when `file` is w->own_spool.
 * Append records (a chain via ->next) to `file` with `batch_id`; *lines_out
 * says how many made it.  0, or -1 (errno set). */
int writer_spool_chain(writer *w, spool_file *file, event_record *chain, const char *batch_id,
                       size_t *lines_out);
/* spool_lock and queue.lock held (queue.lock released across the append).
 * Append the overflow's oldest records holding at least `min_bytes`
 * (SIZE_MAX: all of it) to own_spool, or with `own` (a caller's record
 * just numbered `own_number`, with nothing numbered since the overflow's
 * last) all of the overflow and then `own`; free them; count what made it
 * (spooled) and what was dropped.  True when everything taken made it. */
bool writer_spool_overflow_locked(writer *w, size_t min_bytes, event_record *own,
                                  uint64_t own_number);

#endif
