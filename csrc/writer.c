/* writer: the DB logger's engine — queue, writer thread, spool, fork
 * handling; see writer.h.
 *
 * Threads and locks.  queue.lock guards the queue and every field marked
 * (L) below.  It is only ever held briefly and never across disk or
 * network I/O, because writer_try_enqueue takes it with the GIL held: a
 * wait there would stall every thread and greenlet of the process.  The
 * writer thread takes batches out under it and talks to MySQL with it
 * released.  spool_lock guards our own overflow spool file (S); it is held
 * across file appends, so only threads without the GIL take it
 * (writer_submit's slow path, writer_close, the writer thread), and never
 * across more than one event's append: writer_fork_prepare waits for it
 * with the GIL held, so a long hold would stall fork() (subprocess.Popen
 * included).  Lock order: spool_lock before queue.lock.  Fields marked (T) belong to the
 * writer thread while it is alive, and to whoever holds the writer once it
 * has exited (the closer, or a forked child).
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
#include "writer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_queue.h"
#include "spool.h"
#include "qbel_alloc.h"

/* How often an idle writer looks for spool files orphaned by dead
 * processes sharing its spool_dir (it also looks right after starting). */
#define WRITER_ORPHAN_SCAN_INTERVAL_S 60.0
/* How long writer_close waits for a thread that was told to stop, even
 * with timeout 0: an idle thread exits within microseconds. */
#define WRITER_STOP_GRACE_S 0.25
/* How often the sink's housekeeping runs (MySQL: prune old marker rows). */
#define WRITER_HOUSEKEEPING_INTERVAL_S 3600.0
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
    uint64_t own_spool_pending; /* events sent to own_spool, not yet handed to replay */
    bool own_spool_dirty;       /* own_spool appended since the thread last synced it */

    /* (T) */
    sink *sink;
    dead_letter letters;
    rejection_list rejections;
    spool_file replaying_spool; /* an own spool file taken over for replay */
    bool ever_connected;
    double next_orphan_scan;
    double next_housekeeping;
    double backoff_s;

    /* (L) settlement and stats (see "Settlement" above) */
    uint64_t submitted, settled;
    uint64_t dropped_settled;          /* drops since the start (or the fork) */
    struct flush_waiter *flush_list;   /* every flush waiting now */
    uint64_t flush_requests;
    unsigned flush_waiters;
    double queue_since; /* monotonic time the oldest queued event arrived */
    writer_stats stats;
    int at_least_once_seen; /* atomic; see writer_at_least_once_seen */

    struct writer *next_live; /* guarded by live_writers_lock */
};

/* pthread_atfork handlers take no argument, so the fork handlers can only
 * reach the writers through a process-wide list; it holds nothing but
 * pointers to live writers and is touched only at new/free/fork. */
static pthread_mutex_t live_writers_lock = PTHREAD_MUTEX_INITIALIZER;
static writer *live_writers = NULL;

/* A writer_flush call in progress, on its caller's stack, linked into
 * writer.flush_list under queue.lock. */
typedef struct flush_waiter {
    uint64_t target;      /* events accepted before the call (numbers < target) */
    uint64_t drops_below; /* how many of those were dropped so far */
    struct flush_waiter *next;
} flush_waiter;

/* Lock held.  last_error = "<context>: <detail>", stamped now. */
static void
set_error_locked(writer *w, const char *context, const char *detail)
{
    qbel_error_set(&w->stats.last_error, QBEL_ERROR_OTHER, "%s%s%s", context,
                   detail && *detail ? ": " : "", detail ? detail : "");
    w->stats.last_error_at = event_time_now_us() / 1e6;
}

static void
set_stop_locked(writer *w)
{
    w->stop = true;
    __atomic_store_n(&w->stop_flag, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&w->queue.wake_writer);
}

static bool
stop_requested(void *argument)
{
    writer *w = argument;
    return __atomic_load_n(&w->stop_flag, __ATOMIC_ACQUIRE) != 0;
}

static char *
copy_string(const char *text, bool *failed)
{
    if (text == NULL) {
        return NULL;
    }
    char *copy = qbel_strdup(text);
    if (copy == NULL) {
        *failed = true;
    }
    return copy;
}

static void
make_process_hex(writer *w)
{
    spool_random_hex(w->process_hex, 8);
    w->batch_sequence = 0;
}

writer *
writer_new(const writer_config *config)
{
    writer *w = qbel_calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    bool failed = false;
    w->config = *config;
    w->config.spool_dir = copy_string(config->spool_dir, &failed);
    if (w->config.batch_size == 0) {
        w->config.batch_size = 2000;
    }
    if (w->config.backoff_initial_s <= 0) {
        w->config.backoff_initial_s = 0.1;
    }
    if (w->config.backoff_max_s < w->config.backoff_initial_s) {
        w->config.backoff_max_s = w->config.backoff_initial_s;
    }
    if (sink_factory_copy(&w->config.sink, &config->sink) < 0) {
        memset(&w->config.sink, 0, sizeof(w->config.sink));
        failed = true;
    }
    w->batch = failed ? NULL : qbel_malloc(w->config.batch_size * sizeof(*w->batch));
    if (failed || w->batch == NULL || dead_letter_init(&w->letters, w->config.spool_dir) < 0) {
        goto error;
    }
    if (event_queue_init(&w->queue, config->max_queue_bytes) < 0) {
        goto error;
    }
    int error = pthread_mutex_init(&w->spool_lock, NULL);
    if (error != 0) {
        event_queue_destroy(&w->queue);
        errno = error;
        goto error;
    }
    spool_file_init(&w->own_spool);
    spool_file_init(&w->replaying_spool);
    w->backoff_s = w->config.backoff_initial_s;
    w->stats.delivery = SINK_DELIVERY_UNKNOWN;
    make_process_hex(w);

    pthread_mutex_lock(&live_writers_lock);
    w->next_live = live_writers;
    live_writers = w;
    pthread_mutex_unlock(&live_writers_lock);
    return w;

error:;
    int saved = errno ? errno : ENOMEM;
    dead_letter_close(&w->letters);
    sink_factory_free(&w->config.sink);
    qbel_free(w->config.spool_dir);
    qbel_free(w->batch);
    qbel_free(w);
    errno = saved;
    return NULL;
}

/* ---- the writer thread ------------------------------------------------ */

/* Free everything; the thread is gone (or never was). */
static void writer_destroy(writer *w);

/* Writer thread, lock held.  Sleep for the current backoff (cut short by
 * stop or a new flush request), then double it up to the cap. */
static void
wait_backoff_locked(writer *w)
{
    double deadline = event_queue_monotonic_now() + w->backoff_s;
    uint64_t flushes_seen = w->flush_requests;
    while (!w->stop && w->flush_requests == flushes_seen &&
           event_queue_wait_until(&w->queue, &w->queue.wake_writer, deadline)) {
    }
    w->backoff_s *= 2;
    if (w->backoff_s > w->config.backoff_max_s) {
        w->backoff_s = w->config.backoff_max_s;
    }
}

/* Writer thread, lock held (released while waiting).  writer_close reads
 * the in-flight batch's records without the lock while it formats them
 * for the spool: wait until it is done before freeing them. */
static void
wait_closer_unpinned_locked(writer *w)
{
    while (w->batch_pinned_by_closer) {
        event_queue_wait_until(&w->queue, &w->queue.progress, -1);
    }
}

static void note_delivery_locked(writer *w);

/* Writer thread, lock held: the in-flight batch is done (committed, with
 * `rejected` of its rows dead-lettered). */
static void
settle_batch_locked(writer *w, size_t rejected)
{
    wait_closer_unpinned_locked(w);
    size_t count = w->batch_count;
    w->stats.written += count - rejected;
    w->stats.dead_lettered += rejected;
    w->stats.batches++;
    w->settled += count;
    for (size_t i = 0; i < count; i++) {
        event_record_free(w->batch[i]);
    }
    w->batch_count = 0;
    w->batch_ambiguous = false;
    w->backoff_s = w->config.backoff_initial_s;
    note_delivery_locked(w); /* before any flush() can return */
    pthread_cond_broadcast(&w->queue.progress);
}

/* Writer thread, lock NOT held: dead-letter the rows the server rejected
 * in the attempt that committed.  0, or the errno of the first failure
 * (each row that could not be kept goes to stderr instead). */
static int
write_rejections(writer *w, const char *batch_id)
{
    int first_errno = 0;
    for (size_t i = 0; i < w->rejections.count; i++) {
        const sink_rejection *rejection = &w->rejections.items[i];
        if (dead_letter_write_record(&w->letters, rejection->error, rejection->record,
                                     batch_id) < 0) {
            int saved = errno ? errno : EIO;
            if (first_errno == 0) {
                first_errno = saved;
            }
            fprintf(stderr, "querybook_eventlog: cannot write the dead-letter file (%s): %s\n",
                    strerror(saved), rejection->error);
        }
    }
    return first_errno;
}

/* Writer thread, lock held on entry and exit.  Write the in-flight batch
 * once, with the lock released during the network round trips. */
static void
write_in_flight_locked(writer *w)
{
    char batch_id[SINK_BATCH_ID_MAX + 1];
    memcpy(batch_id, w->batch_id, sizeof(batch_id));
    event_record **records = w->batch;
    size_t count = w->batch_count;
    pthread_mutex_unlock(&w->queue.lock);

    size_t rejected = 0;
    int dead_letter_errno = 0;
    rejection_list_clear(&w->rejections);
    sink_status status = sink_write_batch(
        w->sink, batch_id, records, count, rejection_list_collect, &w->rejections, &rejected);
    if (status == SINK_OK) {
        dead_letter_errno = write_rejections(w, batch_id);
    }
    else if (status == SINK_CONNECTION_ERROR) {
        sink_disconnect(w->sink);
    }

    pthread_mutex_lock(&w->queue.lock);
    if (status == SINK_OK) {
        if (dead_letter_errno != 0) {
            set_error_locked(w, "writing the dead-letter file", strerror(dead_letter_errno));
        }
        settle_batch_locked(w, w->rejections.count);
        return;
    }
    w->stats.retries++;
    set_error_locked(w, "writing a batch", sink_last_error(w->sink));
    if (status == SINK_CONNECTION_ERROR) {
        /* it may have committed: look at the marker after reconnecting */
        w->batch_ambiguous = true;
    }
    else if (!w->stop) {
        wait_backoff_locked(w);
    }
}

/* Writer thread, lock held on entry and exit, connected.  After a
 * connection error: did the in-flight batch commit?  Never write twice. */
static void
resolve_ambiguous_locked(writer *w)
{
    char batch_id[SINK_BATCH_ID_MAX + 1];
    memcpy(batch_id, w->batch_id, sizeof(batch_id));
    pthread_mutex_unlock(&w->queue.lock);
    sink_status status = SINK_OK;
    int committed = sink_batch_committed(w->sink, batch_id, &status);
    int dead_letter_errno = 0;
    if (committed == 1) {
        dead_letter_errno = write_rejections(w, batch_id);
    }
    else if (committed < 0 && status == SINK_CONNECTION_ERROR) {
        sink_disconnect(w->sink);
    }
    pthread_mutex_lock(&w->queue.lock);
    if (committed == 1) {
        if (dead_letter_errno != 0) {
            set_error_locked(w, "writing the dead-letter file", strerror(dead_letter_errno));
        }
        settle_batch_locked(w, w->rejections.count);
    }
    else if (committed == 0) {
        w->batch_ambiguous = false; /* not committed: write it again */
    }
    else {
        set_error_locked(w, "checking a batch marker", sink_last_error(w->sink));
        if (!w->stop) {
            wait_backoff_locked(w);
        }
    }
}

/* Writer thread, queue.lock held on entry and exit.  Replay our own
 * overflow spool: first hand the file callers append to over to the
 * thread (they start a new one), then replay it. */
static void
replay_own_spool_locked(writer *w)
{
    if (w->replaying_spool.fd < 0) {
        /* lock order: spool_lock first; once we hold it no caller is
         * between reserving a line and appending it */
        pthread_mutex_unlock(&w->queue.lock);
        pthread_mutex_lock(&w->spool_lock);
        pthread_mutex_lock(&w->queue.lock);
        bool take = !w->stop && w->own_spool.fd >= 0;
        if (!take && !w->stop) {
            w->own_spool_pending = 0; /* nothing made it to a file */
        }
        if (take) {
            w->replaying_spool = w->own_spool;
            spool_file_init(&w->own_spool);
            uint64_t lines = w->replaying_spool.lines;
            w->own_spool_pending -= lines < w->own_spool_pending ? lines : w->own_spool_pending;
            w->own_spool_dirty = false;
        }
        pthread_mutex_unlock(&w->queue.lock);
        pthread_mutex_unlock(&w->spool_lock);
        int status = take ? spool_file_sync(&w->replaying_spool) : 0;
        int saved = errno;
        pthread_mutex_lock(&w->queue.lock);
        if (status < 0) {
            set_error_locked(w, "syncing the spool file", strerror(saved));
        }
        if (!take || w->stop) {
            return;
        }
    }
    uint64_t lines = w->replaying_spool.lines;
    pthread_mutex_unlock(&w->queue.lock);

    spool_replay_context context = {w->sink, &w->letters, stop_requested, w, {0, ""}};
    spool_replay_result result = {0, 0, 0, 0, 0};
    int status = spool_replay_fd(&context, w->replaying_spool.fd, w->replaying_spool.path,
                                 &result);
    if (status == 0) {
        spool_file_close(&w->replaying_spool, true);
    }

    pthread_mutex_lock(&w->queue.lock);
    w->stats.replayed += result.replayed;
    w->stats.dead_lettered += result.dead_lettered;
    if (status == 0) {
        w->settled += lines;
        w->backoff_s = w->config.backoff_initial_s;
        pthread_cond_broadcast(&w->queue.progress);
    }
    else if (!w->stop) {
        set_error_locked(w, context.error.message, NULL);
        if (sink_is_connected(w->sink)) {
            wait_backoff_locked(w);
        }
    }
}

/* Writer thread, lock held on entry and exit.  Replay spool files left in
 * spool_dir by processes that died (locked files are skipped), and remove
 * their stale half-created ones. */
static void
replay_orphans_locked(writer *w)
{
    w->next_orphan_scan = event_queue_monotonic_now() + WRITER_ORPHAN_SCAN_INTERVAL_S;
    pthread_mutex_unlock(&w->queue.lock);
    spool_remove_stale_temporaries(w->config.spool_dir, WRITER_STALE_TEMPORARY_S);
    spool_replay_context context = {w->sink, &w->letters, stop_requested, w, {0, ""}};
    spool_replay_result result = {0, 0, 0, 0, 0};
    int status = spool_replay_directory(&context, w->config.spool_dir, &result);
    pthread_mutex_lock(&w->queue.lock);
    w->stats.replayed += result.replayed;
    w->stats.dead_lettered += result.dead_lettered;
    if (status < 0 && !w->stop) {
        set_error_locked(w, context.error.message, NULL);
        /* try again after a backoff, not a whole scan interval */
        w->next_orphan_scan = event_queue_monotonic_now() + w->backoff_s;
    }
}

/* Writer thread, queue.lock held on entry and exit.  fdatasync what
 * callers appended to the overflow file, outside both locks (on a dup of
 * the descriptor, so a concurrent rotation cannot pull it away). */
static void
sync_own_spool_locked(writer *w)
{
    if (!w->own_spool_dirty) {
        return;
    }
    w->own_spool_dirty = false;
    pthread_mutex_unlock(&w->queue.lock);
    pthread_mutex_lock(&w->spool_lock);
    int fd = -1;
    if (w->own_spool.fd >= 0 && w->own_spool.dirty) {
        w->own_spool.dirty = false;
        fd = spool_fd_dup_tracked(w->own_spool.fd);
    }
    pthread_mutex_unlock(&w->spool_lock);
    int status = fd >= 0 ? fdatasync(fd) : 0;
    int saved = errno;
    spool_fd_close_tracked(fd);
    pthread_mutex_lock(&w->queue.lock);
    if (status < 0) {
        set_error_locked(w, "syncing the spool file", strerror(saved));
    }
}

/* Writer thread, queue.lock held on entry and exit, connected.  The sink's
 * upkeep (best effort: a failure only postpones it). */
static void
housekeeping_locked(writer *w)
{
    w->next_housekeeping = event_queue_monotonic_now() + WRITER_HOUSEKEEPING_INTERVAL_S;
    pthread_mutex_unlock(&w->queue.lock);
    sink_status status = sink_housekeeping(w->sink);
    if (status == SINK_CONNECTION_ERROR) {
        sink_disconnect(w->sink);
    }
    pthread_mutex_lock(&w->queue.lock);
    if (status != SINK_OK) {
        set_error_locked(w, "sink housekeeping", sink_last_error(w->sink));
    }
}

/* Writer thread, lock held.  Anything to send to the server? */
static bool
has_work_locked(writer *w)
{
    return w->queue.count > 0 || w->batch_count > 0 || w->replaying_spool.fd >= 0 ||
           w->own_spool_pending > 0 ||
           (w->config.spool_dir != NULL && !w->ever_connected);
}

/* Writer thread, lock held on entry and exit.  Connect, or back off. */
static void
connect_locked(writer *w)
{
    pthread_mutex_unlock(&w->queue.lock);
    if (w->sink == NULL) {
        w->sink = sink_factory_make(&w->config.sink);
    }
    sink_status status = w->sink ? sink_connect(w->sink) : SINK_SERVER_ERROR;
    pthread_mutex_lock(&w->queue.lock);
    if (status == SINK_OK) {
        if (w->ever_connected) {
            w->stats.reconnects++;
        }
        w->ever_connected = true;
        w->backoff_s = w->config.backoff_initial_s;
        return;
    }
    set_error_locked(w, "connecting", w->sink ? sink_last_error(w->sink) : "out of memory");
    wait_backoff_locked(w);
}

/* Writer thread, lock held.  Publish what the connection found about the
 * marker table (the sink is ours; the stats are under the lock). */
static void
note_delivery_locked(writer *w)
{
    if (w->sink == NULL) {
        return;
    }
    sink_delivery state = sink_get_delivery(w->sink);
    if (state == SINK_DELIVERY_UNKNOWN) {
        return; /* never connected, or connecting failed: keep the last answer */
    }
    w->stats.delivery = state;
    if (state == SINK_AT_LEAST_ONCE) {
        __atomic_store_n(&w->at_least_once_seen, 1, __ATOMIC_RELEASE);
    }
}

/* Writer thread: the whole loop.  Runs with every signal blocked and never
 * touches Python. */
static void *
writer_thread_main(void *argument)
{
    writer *w = argument;
    pthread_mutex_lock(&w->queue.lock);
    while (!w->stop) {
        note_delivery_locked(w);
        sync_own_spool_locked(w);
        if (w->stop) {
            break;
        }
        if (w->sink == NULL || !sink_is_connected(w->sink)) {
            if (!has_work_locked(w)) {
                event_queue_wait_until(&w->queue, &w->queue.wake_writer, -1);
                continue;
            }
            connect_locked(w);
            continue;
        }
        if (w->batch_count > 0) {
            if (w->batch_ambiguous) {
                resolve_ambiguous_locked(w);
            }
            else {
                write_in_flight_locked(w);
            }
            continue;
        }
        double now = event_queue_monotonic_now();
        if (w->config.spool_dir != NULL && now >= w->next_orphan_scan) {
            replay_orphans_locked(w);
            continue;
        }
        if (now >= w->next_housekeeping) {
            housekeeping_locked(w);
            continue;
        }
        if (w->queue.count == 0) {
            if (w->replaying_spool.fd >= 0 || w->own_spool_pending > 0) {
                replay_own_spool_locked(w);
                continue;
            }
            /* queue drained and spool caught up: new events may queue again */
            w->spool_mode = false;
            double deadline = w->config.spool_dir != NULL ? w->next_orphan_scan : -1;
            if (deadline < 0 || deadline > w->next_housekeeping) {
                deadline = w->next_housekeeping;
            }
            if (w->own_spool_dirty) {
                continue;
            }
            event_queue_wait_until(&w->queue, &w->queue.wake_writer, deadline);
            continue;
        }
        double due = w->queue_since + w->config.flush_interval_s;
        if (w->queue.count < w->config.batch_size && w->flush_waiters == 0 && now < due) {
            event_queue_wait_until(&w->queue, &w->queue.wake_writer, due);
            continue;
        }
        w->batch_count = event_queue_pop_batch_locked(&w->queue, w->batch, w->config.batch_size);
        snprintf(w->batch_id, sizeof(w->batch_id), "%s-%ld-%llu", w->process_hex,
                 (long)getpid(), (unsigned long long)++w->batch_sequence);
        w->batch_ambiguous = false;
        w->batch_spooled_by_closer = false;
        write_in_flight_locked(w);
        if (w->batch_spooled_by_closer) {
            /* the closer gave up on us and spooled the batch with its id; a
             * late commit is detected at replay by its marker */
            wait_closer_unpinned_locked(w);
            for (size_t i = 0; i < w->batch_count; i++) {
                event_record_free(w->batch[i]);
            }
            w->batch_count = 0;
        }
    }
    note_delivery_locked(w);
    if (w->replaying_spool.fd >= 0) {
        /* stopped mid-replay: unlock the file for a later replay now, not
         * when the writer is freed (a closer that gave up on us won't) */
        pthread_mutex_unlock(&w->queue.lock);
        spool_file_close(&w->replaying_spool, false);
        pthread_mutex_lock(&w->queue.lock);
    }
    w->thread_alive = false;
    pthread_cond_broadcast(&w->queue.progress);
    bool free_it = w->free_when_thread_exits;
    pthread_mutex_unlock(&w->queue.lock);
    if (free_it) {
        writer_destroy(w);
    }
    return NULL;
}

/* Caller thread, lock held.  Start the writer thread with every signal
 * blocked, so that it never runs a signal handler (Python's included). */
static void
start_thread_locked(writer *w)
{
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int error = pthread_create(&w->thread, NULL, writer_thread_main, w);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (error != 0) {
        set_error_locked(w, "starting the writer thread", strerror(error));
        return; /* events stay queued; the next submit tries again */
    }
    w->thread_started = true;
    w->thread_alive = true;
}

/* ---- callers ------------------------------------------------------------ */

/* Any thread that alone owns `file` now (or holds spool_lock for
 * own_spool): make what was appended durable, then release the file.  A
 * failed fdatasync can only be reported; the lines are written either way. */
static void
sync_and_close_spool(spool_file *file, bool remove_if_empty)
{
    if (spool_file_sync(file) < 0) {
        fprintf(stderr, "querybook_eventlog: cannot sync the spool file: %s\n", strerror(errno));
    }
    spool_file_close(file, remove_if_empty);
}

/* Caller thread, queue.lock held: account for a record just pushed and
 * make sure a writer thread will take it within flush_interval. */
static void
accept_locked(writer *w)
{
    w->submitted++;
    w->stats.enqueued++;
    if (w->queue.count == 1) {
        w->queue_since = event_queue_monotonic_now();
    }
    if (!w->thread_started) {
        start_thread_locked(w);
    }
    else if (w->queue.count == 1 || w->queue.count == w->config.batch_size) {
        /* 1: an idle writer sleeps without a deadline (or until the next
         * orphan scan); it must start the flush_interval clock */
        pthread_cond_signal(&w->queue.wake_writer);
    }
}

int
writer_try_enqueue(writer *w, event_record *record)
{
    pthread_mutex_lock(&w->queue.lock);
    if (w->spool_mode || w->closing || event_queue_push_locked(&w->queue, record) != 0) {
        pthread_mutex_unlock(&w->queue.lock);
        return 1;
    }
    accept_locked(w);
    pthread_mutex_unlock(&w->queue.lock);
    return 0;
}

/* queue.lock NOT held (this is disk I/O); spool_lock held when `file` is
 * w->own_spool.  Append `length` bytes holding `count` lines to `file`,
 * creating it on first use.  0, or -1 (errno set). */
static int
append_spool(writer *w, spool_file *file, const char *data, size_t length, size_t count)
{
    if (w->config.spool_dir == NULL) {
        errno = ENOENT;
        return -1;
    }
    if (file->fd < 0 && spool_file_create(file, w->config.spool_dir) < 0) {
        return -1;
    }
    return spool_file_append(file, data, length, count);
}

/* queue.lock NOT held; spool_lock held when `file` is w->own_spool.
 * Append records (a chain via ->next, or one record; owned by the caller)
 * to `file`, `batch_id` on each line.  0, or -1 (errno set); either way
 * *lines_out says how many made it (the rest the caller counts as
 * dropped). */
static int
spool_chain(writer *w, spool_file *file, event_record *chain, const char *batch_id,
            size_t *lines_out)
{
    *lines_out = 0;
    char inline_block[4096];
    byte_buffer lines;
    byte_buffer_init(&lines, inline_block, sizeof(inline_block));
    int status = 0;
    size_t pending = 0;
    for (event_record *record = chain; record != NULL; record = record->next) {
        if (spool_format_line(&lines, record, batch_id) < 0) {
            errno = ENOMEM;
            status = -1;
            break;
        }
        pending++;
        if (lines.length >= (1 << 20) || record->next == NULL) {
            if (append_spool(w, file, lines.data, lines.length, pending) < 0) {
                status = -1;
                break;
            }
            *lines_out += pending;
            pending = 0;
            lines.length = 0;
        }
    }
    byte_buffer_release(&lines);
    return status;
}

/* Caller thread, GIL released (it waits for spool_lock, held across file
 * appends). */
int
writer_submit(writer *w, event_record *record)
{
    if (writer_try_enqueue(w, record) == 0) {
        return 0;
    }
    pthread_mutex_lock(&w->spool_lock);
    pthread_mutex_lock(&w->queue.lock);
    /* the thread may have caught up meanwhile */
    if (!w->spool_mode && !w->closing && event_queue_push_locked(&w->queue, record) == 0) {
        accept_locked(w);
        pthread_mutex_unlock(&w->queue.lock);
        pthread_mutex_unlock(&w->spool_lock);
        return 0;
    }
    /* Reserve the event's place in submission order before appending:
     * until it is in the file (or dropped) the thread neither leaves
     * spool_mode nor takes the file over (it needs spool_lock for that). */
    uint64_t sequence = w->submitted++;
    w->own_spool_pending++;
    if (!w->closing) {
        w->spool_mode = true;
        if (!w->thread_started) {
            start_thread_locked(w);
        }
    }
    pthread_mutex_unlock(&w->queue.lock);

    record->next = NULL;
    size_t lines;
    int status = spool_chain(w, &w->own_spool, record, "", &lines);
    int saved = errno;

    pthread_mutex_lock(&w->queue.lock);
    int result = 1;
    if (status < 0) {
        w->own_spool_pending--;
        w->stats.dropped++;
        /* out of order: not in `settled` (see "Settlement") */
        w->dropped_settled++;
        for (flush_waiter *waiter = w->flush_list; waiter != NULL; waiter = waiter->next) {
            if (sequence < waiter->target) {
                waiter->drops_below++;
            }
        }
        set_error_locked(w, "spooling an event", strerror(saved));
        pthread_cond_broadcast(&w->queue.progress);
        result = -1;
    }
    else {
        w->stats.enqueued++;
        w->stats.spooled++;
        if (!w->own_spool_dirty) {
            w->own_spool_dirty = true;
            pthread_cond_signal(&w->queue.wake_writer); /* to fdatasync it */
        }
    }
    bool closed = w->closed; /* stable: close sets it under spool_lock */
    pthread_mutex_unlock(&w->queue.lock);
    if (closed && w->own_spool.fd >= 0) {
        /* nobody syncs or hands over this file any more: release it now,
         * or it stays locked (unreplayable) until the writer is freed */
        sync_and_close_spool(&w->own_spool, false);
    }
    pthread_mutex_unlock(&w->spool_lock);
    event_record_free(record);
    return result;
}

/* Lock held.  Is every event numbered below waiter->target done? */
static bool
flush_done_locked(const writer *w, const flush_waiter *waiter)
{
    return w->settled + waiter->drops_below >= waiter->target;
}

writer_flush_mark
writer_flush_mark_now(writer *w)
{
    pthread_mutex_lock(&w->queue.lock);
    /* every drop so far was of an event accepted before this call */
    writer_flush_mark mark = {w->submitted, w->dropped_settled};
    pthread_mutex_unlock(&w->queue.lock);
    return mark;
}

bool
writer_flush(writer *w, double timeout_s)
{
    return writer_flush_to(w, writer_flush_mark_now(w), timeout_s) == WRITER_FLUSH_DONE;
}

int
writer_flush_to(writer *w, writer_flush_mark mark, double timeout_s)
{
    double deadline = timeout_s < 0 ? -1 : event_queue_monotonic_now() + timeout_s;
    pthread_mutex_lock(&w->queue.lock);
    flush_waiter self = {mark.target, mark.drops_below, NULL};
    if (!flush_done_locked(w, &self) && w->thread_alive && !w->stop) {
        self.next = w->flush_list;
        w->flush_list = &self;
        w->flush_requests++;
        w->flush_waiters++;
        pthread_cond_signal(&w->queue.wake_writer);
        while (!flush_done_locked(w, &self) && w->thread_alive &&
               event_queue_wait_until(&w->queue, &w->queue.progress, deadline)) {
        }
        w->flush_waiters--;
        for (flush_waiter **link = &w->flush_list; *link != NULL; link = &(*link)->next) {
            if (*link == &self) {
                *link = self.next;
                break;
            }
        }
    }
    int outcome = flush_done_locked(w, &self)            ? WRITER_FLUSH_DONE
                  : (w->thread_alive && !w->stop) ? WRITER_FLUSH_TIMED_OUT
                                                  : WRITER_FLUSH_GONE;
    pthread_mutex_unlock(&w->queue.lock);
    return outcome;
}

void
writer_close(writer *w, double timeout_s)
{
    pthread_mutex_lock(&w->queue.lock);
    if (w->closed || w->closing) {
        pthread_mutex_unlock(&w->queue.lock);
        return;
    }
    w->closing = true; /* from now on submit goes straight to the spool */
    pthread_mutex_unlock(&w->queue.lock);

    double now = event_queue_monotonic_now();
    double deadline = timeout_s < 0 ? -1 : now + timeout_s;
    writer_flush(w, timeout_s);

    pthread_mutex_lock(&w->queue.lock);
    set_stop_locked(w);
    double stop_deadline = deadline;
    now = event_queue_monotonic_now();
    if (stop_deadline >= 0 && stop_deadline < now + WRITER_STOP_GRACE_S) {
        stop_deadline = now + WRITER_STOP_GRACE_S;
    }
    while (w->thread_alive &&
           event_queue_wait_until(&w->queue, &w->queue.progress, stop_deadline)) {
    }
    bool joined = false;
    if (w->thread_started && w->thread_alive) {
        /* stuck in a DB call past the timeout: leave it behind */
        pthread_detach(w->thread);
        w->thread_detached = true;
    }
    else if (w->thread_started && !w->thread_detached) {
        joined = true;
    }

    pthread_mutex_unlock(&w->queue.lock);

    /* Spool the in-flight batch with its id, then the queue, oldest first.
     * They go after any overflow lines already in our spool file, although
     * they were submitted earlier; replay order is then not strictly
     * oldest-first, but each row keeps its created_at, so the table is
     * the same.  The records and the spool file are taken out under both
     * locks (spool_lock: no submitter is mid-append to the file), then
     * formatted, written and synced with neither held: that can be up to
     * max_queue_bytes and an fdatasync, and log() (GIL held) waits for
     * queue.lock, fork() (writer_fork_prepare, GIL held) for both.  Nobody
     * else touches what we took: the thread is stopped (a stuck one only
     * reads its batch, pinned until we are done, see below), and
     * submitters open a new own_spool.  A fork meanwhile is safe: the
     * descriptor is tracked (closed in the child), and the child's writer
     * starts empty as ever. */
    pthread_mutex_lock(&w->spool_lock);
    pthread_mutex_lock(&w->queue.lock);
    char batch_id[SINK_BATCH_ID_MAX + 1];
    memcpy(batch_id, w->batch_id, sizeof(batch_id));
    event_record *batch_chain = NULL; /* ours: the thread is gone */
    event_record **pinned = NULL;     /* a stuck thread's: it frees them, once unpinned */
    size_t batch_count = 0;
    bool batch_format_failed = false;
    if (w->batch_count > 0 && !w->batch_spooled_by_closer) {
        batch_count = w->batch_count;
        if (w->thread_alive) {
            pinned = qbel_malloc(batch_count * sizeof(*pinned));
            if (pinned != NULL) {
                memcpy(pinned, w->batch, batch_count * sizeof(*pinned));
                w->batch_pinned_by_closer = true;
            }
            batch_format_failed = pinned == NULL;
            w->batch_spooled_by_closer = true; /* the thread frees them */
        }
        else {
            for (size_t i = w->batch_count; i-- > 0;) {
                w->batch[i]->next = batch_chain;
                batch_chain = w->batch[i];
            }
            w->batch_count = 0;
        }
    }
    event_record *queued = event_queue_take_all_locked(&w->queue);
    spool_file file = w->own_spool;
    spool_file_init(&w->own_spool);
    w->own_spool_dirty = false;
    pthread_mutex_unlock(&w->queue.lock);
    pthread_mutex_unlock(&w->spool_lock);

    byte_buffer batch_lines; /* copies of the pinned records */
    byte_buffer_init(&batch_lines, NULL, 0);
    if (pinned != NULL) {
        for (size_t i = 0; i < batch_count && !batch_format_failed; i++) {
            batch_format_failed = spool_format_line(&batch_lines, pinned[i], batch_id) < 0;
        }
        qbel_free(pinned);
        pthread_mutex_lock(&w->queue.lock);
        w->batch_pinned_by_closer = false;
        pthread_cond_broadcast(&w->queue.progress); /* wait_closer_unpinned_locked */
        pthread_mutex_unlock(&w->queue.lock);
    }

    size_t batch_spooled = 0, queue_count = 0, queue_spooled = 0;
    int batch_errno = 0, queue_errno = 0, sync_errno = 0;
    if (batch_chain != NULL) {
        if (spool_chain(w, &file, batch_chain, batch_id, &batch_spooled) < 0) {
            batch_errno = errno;
        }
        event_queue_free_chain(batch_chain);
    }
    else if (batch_count > 0) {
        if (batch_format_failed) {
            batch_errno = ENOMEM;
        }
        else if (append_spool(w, &file, batch_lines.data, batch_lines.length, batch_count) < 0) {
            batch_errno = errno;
        }
        else {
            batch_spooled = batch_count;
        }
    }
    byte_buffer_release(&batch_lines);
    if (queued != NULL) {
        for (event_record *record = queued; record != NULL; record = record->next) {
            queue_count++;
        }
        if (spool_chain(w, &file, queued, "", &queue_spooled) < 0) {
            queue_errno = errno;
        }
        event_queue_free_chain(queued);
    }
    if (spool_file_sync(&file) < 0) {
        sync_errno = errno;
    }
    spool_file_close(&file, file.lines == 0);

    /* Submitters that came while we wrote appended to a new own_spool and
     * left it open (closed was false): take it too.  From closed = true
     * on, each submitter syncs and closes the file itself. */
    pthread_mutex_lock(&w->spool_lock);
    pthread_mutex_lock(&w->queue.lock);
    w->stats.spooled += batch_spooled + queue_spooled;
    w->stats.dropped += (batch_count - batch_spooled) + (queue_count - queue_spooled);
    if (batch_errno != 0 || queue_errno != 0) {
        set_error_locked(w, "spooling at close", strerror(batch_errno ? batch_errno : queue_errno));
    }
    else if (sync_errno != 0) {
        set_error_locked(w, "syncing the spool file", strerror(sync_errno));
    }
    spool_file late = w->own_spool;
    spool_file_init(&w->own_spool);
    w->own_spool_dirty = false;
    w->closed = true;
    bool thread_gone = !w->thread_alive;
    pthread_mutex_unlock(&w->queue.lock);
    pthread_mutex_unlock(&w->spool_lock);
    if (late.fd >= 0) {
        sync_and_close_spool(&late, late.lines == 0);
    }

    if (joined) {
        pthread_join(w->thread, NULL);
    }
    if (thread_gone) {
        /* (T) fields are ours now */
        spool_file_close(&w->replaying_spool, false); /* left for a later replay */
        if (w->sink != NULL) {
            sink_free(w->sink);
            w->sink = NULL;
        }
    }
}

bool
writer_at_least_once_seen(const writer *w)
{
    return __atomic_load_n(&w->at_least_once_seen, __ATOMIC_ACQUIRE) != 0;
}

void
writer_get_stats(writer *w, writer_stats *out)
{
    pthread_mutex_lock(&w->queue.lock);
    *out = w->stats;
    out->queue_bytes = w->queue.bytes;
    pthread_mutex_unlock(&w->queue.lock);
}

static void
writer_destroy(writer *w)
{
    for (size_t i = 0; i < w->batch_count; i++) {
        event_record_free(w->batch[i]);
    }
    qbel_free(w->batch);
    if (w->sink != NULL) {
        sink_free(w->sink);
    }
    spool_file_close(&w->replaying_spool, false);
    /* events that raced close() were appended after its fdatasync */
    sync_and_close_spool(&w->own_spool, false);
    dead_letter_close(&w->letters);
    rejection_list_free(&w->rejections);
    event_queue_destroy(&w->queue);
    pthread_mutex_destroy(&w->spool_lock);
    sink_factory_free(&w->config.sink);
    qbel_free(w->config.spool_dir);
    qbel_free(w);
}

void
writer_free(writer *w)
{
    if (w == NULL) {
        return;
    }
    writer_close(w, 0);
    pthread_mutex_lock(&live_writers_lock);
    for (writer **link = &live_writers; *link != NULL; link = &(*link)->next_live) {
        if (*link == w) {
            *link = w->next_live;
            break;
        }
    }
    pthread_mutex_unlock(&live_writers_lock);

    pthread_mutex_lock(&w->queue.lock);
    if (w->thread_alive) {
        /* a detached thread still stuck in a DB call frees it on exit */
        w->free_when_thread_exits = true;
        pthread_mutex_unlock(&w->queue.lock);
        return;
    }
    pthread_mutex_unlock(&w->queue.lock);
    writer_destroy(w);
}

int64_t
writer_replay_directory(const writer_config *config, char *error, size_t error_size)
{
    if (config->spool_dir == NULL) {
        snprintf(error, error_size, "no spool directory");
        return -1;
    }
    dead_letter letters;
    if (dead_letter_init(&letters, config->spool_dir) < 0) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    int64_t replayed = -1;
    sink *sink = sink_factory_make(&config->sink);
    if (sink == NULL) {
        snprintf(error, error_size, "out of memory");
        goto done;
    }
    if (sink_connect(sink) != SINK_OK) {
        snprintf(error, error_size, "connecting: %s", sink_last_error(sink));
        goto done;
    }
    spool_replay_context context = {sink, &letters, NULL, NULL, {0, ""}};
    spool_replay_result result = {0, 0, 0, 0, 0};
    if (spool_replay_directory(&context, config->spool_dir, &result) < 0) {
        snprintf(error, error_size, "%s", context.error.message);
        goto done;
    }
    replayed = (int64_t)result.replayed;
done:
    if (sink != NULL) {
        sink_free(sink);
    }
    dead_letter_close(&letters);
    return replayed;
}

/* ---- fork ----------------------------------------------------------------
 * prepare: take the list lock, every writer's spool_lock and queue.lock
 * (in lock order), then the tracked-descriptor lock, so the child gets
 * them in a known state (nobody mid-update).  parent: release.  child: no
 * writer thread exists here; queued and in-flight events are the parent's
 * to write, so the child starts each writer empty, with its own (lazy)
 * thread, connection and spool file, and closes its copies of every spool
 * descriptor (own, replaying, or claimed by a replay of orphans), whose
 * flock locks would otherwise stay held for as long as the child lives. */

void
writer_fork_prepare(void)
{
    pthread_mutex_lock(&live_writers_lock);
    for (writer *w = live_writers; w != NULL; w = w->next_live) {
        pthread_mutex_lock(&w->spool_lock);
        pthread_mutex_lock(&w->queue.lock);
    }
    spool_fork_prepare();
}

void
writer_fork_parent(void)
{
    spool_fork_parent();
    for (writer *w = live_writers; w != NULL; w = w->next_live) {
        pthread_mutex_unlock(&w->queue.lock);
        pthread_mutex_unlock(&w->spool_lock);
    }
    pthread_mutex_unlock(&live_writers_lock);
}

void
writer_fork_child(void)
{
    spool_fork_child();
    pthread_mutex_init(&live_writers_lock, NULL);
    for (writer *w = live_writers; w != NULL; w = w->next_live) {
        if (event_queue_reinit_in_child(&w->queue) < 0 ||
            pthread_mutex_init(&w->spool_lock, NULL) != 0) {
            /* cannot happen with default attributes; nothing else to do */
            abort();
        }
        for (size_t i = 0; i < w->batch_count; i++) {
            event_record_free(w->batch[i]); /* the parent writes them */
        }
        w->batch_count = 0;
        w->batch_ambiguous = w->batch_spooled_by_closer = w->batch_pinned_by_closer = false;
        /* the parent's thread may have been mid-append: leak, never free */
        w->rejections.items = NULL;
        w->rejections.count = w->rejections.capacity = 0;
        if (w->sink != NULL) {
            sink_abandon(w->sink);
            w->sink = NULL;
        }
        spool_file_forget_in_child(&w->own_spool);
        spool_file_forget_in_child(&w->replaying_spool);
        dead_letter_forget_in_child(&w->letters);
        w->thread_started = w->thread_alive = w->thread_detached = false;
        if (!w->closed) {
            w->stop = w->closing = false;
            w->stop_flag = 0;
        }
        w->spool_mode = false;
        w->own_spool_pending = 0;
        w->own_spool_dirty = false;
        w->ever_connected = false;
        w->next_orphan_scan = 0;
        w->next_housekeeping = 0;
        w->backoff_s = w->config.backoff_initial_s;
        w->submitted = w->settled = w->dropped_settled = 0;
        w->flush_list = NULL; /* their threads are not in the child */
        w->flush_requests = 0;
        w->flush_waiters = 0;
        memset(&w->stats, 0, sizeof(w->stats));
        w->stats.delivery = SINK_DELIVERY_UNKNOWN;
        /* at_least_once_seen stays: the child's logger warned already */
        make_process_hex(w);
    }
}
