/* writer: the engine of the loggers that write to a server — a bounded
 * queue of event_records, a writer thread that drains it into a sink
 * (sink.h; MySQL for the DB logger) in batches, and the spool directory
 * that keeps what cannot be committed yet.
 *
 * Owns: the queue and every record in it, the writer pthread, the sink, the
 * spool files it writes, its stats.  Pure C, no Python, never needs the GIL.
 * Functions marked "caller thread" are called from Python threads with the
 * GIL RELEASED when they may block on a lock held across I/O or wait for
 * the thread (submit, flush, close), or held when they only ever take a
 * lock that is never held across I/O (try_enqueue, get_stats).
 */
#ifndef QBEL_WRITER_H
#define QBEL_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_record.h"
#include "sink.h"

typedef struct writer_config {
    sink_factory sink; /* makes the sinks; its identity tags spool lines */
    size_t batch_size;        /* rows per transaction, default 2000 */
    double flush_interval_s;  /* max time an event waits in the queue, default 1.0 */
    size_t max_queue_bytes;   /* heap bound of queued records, allocator overhead
                                 included (see event_queue.h), default 64 MiB */
    char *spool_dir;          /* NULL: no spool (overflow is dropped and counted) */
    double backoff_initial_s; /* reconnect backoff, default 0.1 */
    double backoff_max_s;     /* cap, default 30 */
    int durability;           /* writer_durability; PROCESS needs a spool_dir */
} writer_config;

/* What a queued event survives (see durable_journal.h). */
typedef enum writer_durability {
    WRITER_DURABILITY_MEMORY = 0,  /* the queue is in memory only */
    WRITER_DURABILITY_PROCESS = 1, /* mirrored in memory-mapped chunks: survives kill -9 */
} writer_durability;

typedef struct writer_stats {
    uint64_t enqueued;      /* events accepted (queued or spooled) */
    uint64_t written;       /* rows committed from the queue */
    uint64_t batches;       /* transactions committed */
    uint64_t retries;       /* batch attempts that failed and were retried */
    uint64_t reconnects;    /* successful connects after the first */
    uint64_t spooled;       /* events written to spool files */
    uint64_t replayed;      /* rows committed from spool files */
    uint64_t dead_lettered; /* rows the server rejected, kept in the dead-letter file */
    uint64_t dropped;       /* events lost because the spool could not be written */
    uint64_t queue_bytes;   /* heap bytes of the records in memory now (queue and
                               overflow, allocator overhead included) */
    int delivery;           /* sink_delivery of the last connection: -1 unknown */
    qbel_error last_error;  /* code 0 and "" when none */
    double last_error_at;   /* when last_error was set (Unix time), 0 when none */
} writer_stats;

typedef struct writer writer;

/* New writer; copies `config`.  Starts no thread, connects to nothing and
 * touches no file: spool_dir is created when first needed (a spool or
 * dead-letter write, a replay), and failing to create it then counts as a
 * spool failure (stats.dropped, last_error).  NULL on OOM. */
writer *writer_new(const writer_config *config);

/* Caller thread, GIL released.  Takes ownership of `record` in every
 * case.  Queues it (starting the writer thread on first use), or when the
 * queue is full appends it to this process's spool file.  Returns 0
 * queued, 1 spooled, -1 dropped (counted in stats.dropped).  Never touches
 * the network. */
int writer_submit(writer *w, event_record *record);

/* Caller thread, GIL held: the non-blocking half of writer_submit.  Queues
 * `record`, or when the queue is full puts it in the queue's overflow for
 * the writer thread to append to the spool file (no file I/O here), taking
 * ownership and returning 0; or returns 1 and leaves the record with the
 * caller when the overflow is full too (the thread is busy with the
 * server) or the writer is closing: then call writer_submit with the GIL
 * released. */
int writer_try_enqueue(writer *w, event_record *record);

/* Caller thread, GIL released.  Wait until every event submitted before the
 * call is committed, dead-lettered or dropped (events submitted later never
 * count for it, dropped ones included).  timeout_s < 0 waits forever.
 * True when done, false on timeout or when the thread is gone first. */
bool writer_flush(writer *w, double timeout_s);

/* What a flush waits for: the events submitted (and dropped) so far. */
typedef struct writer_flush_mark {
    uint64_t target;
    uint64_t drops_below;
} writer_flush_mark;

/* Caller thread: the mark of a flush starting now. */
writer_flush_mark writer_flush_mark_now(writer *w);

/* Caller thread, GIL released: writer_flush for the events of an earlier
 * mark, so that a caller can wait in slices (checking for Ctrl-C between
 * them) without later events joining what it waits for.  WRITER_FLUSH_DONE,
 * WRITER_FLUSH_TIMED_OUT, or WRITER_FLUSH_GONE when the thread is not
 * running (waiting longer would not help). */
enum { WRITER_FLUSH_GONE = -1, WRITER_FLUSH_TIMED_OUT = 0, WRITER_FLUSH_DONE = 1 };
int writer_flush_to(writer *w, writer_flush_mark mark, double timeout_s);

/* Caller thread, GIL released.  Flush for at most timeout_s, stop the
 * thread, and move whatever is not committed (queue and in-flight batch,
 * with its batch id) to the spool.  Idempotent, and safe while other
 * threads are in submit/flush/close: it never frees the writer (only
 * writer_free does).  Later submits go to the spool. */
void writer_close(writer *w, double timeout_s);

void writer_get_stats(writer *w, writer_stats *out);

/* Any thread, no lock, never blocks: true once some connection of this
 * writer could only promise SINK_AT_LEAST_ONCE (MySQL: the marker table is
 * missing; set by the writer thread, never cleared), so the caller side
 * can warn the operator once. */
bool writer_at_least_once_seen(const writer *w);

/* Any thread, no lock, never blocks: stats.dropped as last published, so
 * the caller side can warn (from a thread that may log) when it grows. */
uint64_t writer_dropped_count(const writer *w);

/* Close (if not closed) and free.  No other thread may be using `w`. */
void writer_free(writer *w);

/* Caller thread, GIL released.  Replay every unclaimed spool file in
 * `spool_dir` into a sink made by `config->sink`, exactly once, oldest
 * first: the lines for its target (and those with none), or with
 * `adopt_all` every line.  `give_up`: NULL, or a flag another thread sets
 * (atomically, nonzero) past the caller's deadline: the sink's waits give
 * up within a slice (sink.h) and no further group is started; what is left
 * stays spooled.  Returns rows replayed, or -1 with `error` set. */
int64_t writer_replay_directory(const writer_config *config, bool adopt_all, const int *give_up,
                                qbel_error *error);

/* Used by the fork handlers (see writer.c): every live writer is on one
 * process-wide list because pthread_atfork handlers take no argument. */
void writer_fork_prepare(void);
void writer_fork_parent(void);
void writer_fork_child(void);

#endif
