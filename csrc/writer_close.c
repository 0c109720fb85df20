/* writer_close.c: writer_close — flush for a while, stop the thread, and
 * move whatever is not committed (the in-flight batch with its id, then
 * the queue) into the spool, with no lock held across the file I/O.
 *
 * Runs on a caller thread with the GIL released. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_queue.h"
#include "qbel_alloc.h"
#include "spool.h"
#include "writer_internal.h"

/* What close() takes out of the writer and writes to the spool. */
typedef struct close_leftovers {
    char batch_id[SINK_BATCH_ID_MAX + 1];
    event_record *batch_chain; /* the in-flight batch, ours: the thread is gone */
    size_t batch_count;        /* its rows (chain, or lines copied from a stuck thread's) */
    byte_buffer batch_lines;   /* the lines of a stuck thread's batch */
    bool batch_format_failed;
    event_record *queued;      /* the queue, oldest first */
    spool_file file;           /* our overflow file, appended to */
    size_t batch_spooled, queue_count, queue_spooled;
    size_t journaled;          /* left in the journal's chunks (not spooled again) */
    event_record *journal_copies; /* their in-memory copies, to free */
    int batch_errno, queue_errno, sync_errno;
} close_leftovers;

/* Mark the writer closing, flush for at most timeout_s, tell the thread to
 * stop and wait for it (at least WRITER_STOP_GRACE_S); a thread stuck in a
 * sink call past that is detached.  True when it is to be joined. */
static bool
stop_thread(writer *w, double timeout_s)
{
    double now = event_queue_monotonic_now();
    double deadline = timeout_s < 0 ? -1 : now + timeout_s;
    writer_flush(w, timeout_s);

    pthread_mutex_lock(&w->queue.lock);
    writer_set_stop_locked(w);
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
        /* stuck in a sink call past the timeout: leave it behind */
        pthread_detach(w->thread);
        w->thread_detached = true;
    }
    else if (w->thread_started && !w->thread_detached) {
        joined = true;
    }
    pthread_mutex_unlock(&w->queue.lock);
    return joined;
}

/* Both locks held, journal set.  The in-flight batch and the queued stubs
 * are in the journal's chunks already (the batch marked with its id): they
 * stay there for a replay, exactly once, and nothing is spooled twice.
 * Take their memory copies to free; a stuck thread keeps its batch.  Whole
 * records (queued while no chunk could be made) are in no chunk: they go
 * to left->queued, and a batch of them is left for take_leftovers, to be
 * spooled as without a journal. */
static void
take_journaled_locked(writer *w, close_leftovers *left)
{
    if (w->batch_count > 0 && w->batch_chunk != NULL) {
        left->journaled += w->batch_count;
        if (!w->thread_alive) {
            for (size_t i = w->batch_count; i-- > 0;) {
                w->batch[i]->next = left->journal_copies;
                left->journal_copies = w->batch[i];
            }
            w->batch_count = 0;
        }
    }
    event_record **whole_tail = &left->queued;
    for (event_record *record = event_queue_take_all_locked(&w->queue); record != NULL;) {
        event_record *next = record->next;
        if (record->json_length == 0) { /* a stub: event_data is never empty */
            record->next = left->journal_copies;
            left->journal_copies = record;
            left->journaled++;
        }
        else {
            record->next = NULL;
            *whole_tail = record;
            whole_tail = &record->next;
        }
        record = next;
    }
}

/* Take the in-flight batch (with its id), the queue and our overflow file
 * out under both locks (spool_lock: no submitter is mid-append to the
 * file).  A stuck thread keeps its batch: its records are pinned and
 * returned (a qbel_malloc'd array the caller frees) for copying. */
static event_record **
take_leftovers(writer *w, close_leftovers *left)
{
    event_record **pinned = NULL;
    pthread_mutex_lock(&w->spool_lock);
    pthread_mutex_lock(&w->queue.lock);
    memcpy(left->batch_id, w->batch_id, sizeof(left->batch_id));
    if (w->journal != NULL) {
        take_journaled_locked(w, left);
    }
    if (w->batch_count > 0 && !w->batch_spooled_by_closer &&
        (w->journal == NULL || w->batch_chunk == NULL)) {
        left->batch_count = w->batch_count;
        if (w->thread_alive) {
            pinned = qbel_malloc(left->batch_count * sizeof(*pinned));
            if (pinned != NULL) {
                memcpy(pinned, w->batch, left->batch_count * sizeof(*pinned));
                w->batch_pinned_by_closer = true;
            }
            left->batch_format_failed = pinned == NULL;
            w->batch_spooled_by_closer = true; /* the thread frees them */
        }
        else {
            for (size_t i = w->batch_count; i-- > 0;) {
                w->batch[i]->next = left->batch_chain;
                left->batch_chain = w->batch[i];
            }
            w->batch_count = 0;
        }
    }
    if (w->journal == NULL) {
        left->queued = event_queue_take_all_locked(&w->queue);
    }
    left->file = w->own_spool;
    spool_file_init(&w->own_spool);
    w->own_spool_dirty = false;
    pthread_mutex_unlock(&w->queue.lock);
    pthread_mutex_unlock(&w->spool_lock);
    return pinned;
}

/* Format a stuck thread's pinned batch into left->batch_lines, then unpin
 * it (the thread waits for that before freeing the records). */
static void
copy_pinned_batch(writer *w, close_leftovers *left, event_record **pinned)
{
    const char *target = sink_factory_identity(&w->config.sink);
    for (size_t i = 0; i < left->batch_count && !left->batch_format_failed; i++) {
        left->batch_format_failed =
            spool_format_line(&left->batch_lines, pinned[i], left->batch_id, target) < 0;
    }
    qbel_free(pinned);
    pthread_mutex_lock(&w->queue.lock);
    w->batch_pinned_by_closer = false;
    pthread_cond_broadcast(&w->queue.progress); /* wait_closer_unpinned_locked */
    pthread_mutex_unlock(&w->queue.lock);
}

/* No lock held.  Append the batch, then the queue, to left->file; sync and
 * release it.  Errors and counts stay in `left`. */
static void
spool_leftovers(writer *w, close_leftovers *left)
{
    if (left->batch_chain != NULL) {
        if (writer_spool_chain(w, &left->file, left->batch_chain, left->batch_id,
                               &left->batch_spooled) < 0) {
            left->batch_errno = errno;
        }
        event_queue_free_chain(left->batch_chain);
    }
    else if (left->batch_count > 0) {
        if (left->batch_format_failed) {
            left->batch_errno = ENOMEM;
        }
        else if (writer_append_spool(w, &left->file, left->batch_lines.data,
                                     left->batch_lines.length, left->batch_count) < 0) {
            left->batch_errno = errno;
        }
        else {
            left->batch_spooled = left->batch_count;
        }
    }
    if (left->queued != NULL) {
        for (event_record *record = left->queued; record != NULL; record = record->next) {
            left->queue_count++;
        }
        if (writer_spool_chain(w, &left->file, left->queued, "", &left->queue_spooled) < 0) {
            left->queue_errno = errno;
        }
        event_queue_free_chain(left->queued);
    }
    if (spool_file_sync(&left->file) < 0) {
        left->sync_errno = errno;
    }
    spool_file_close(&left->file, left->file.lines == 0);
}

/* Count what close() spooled or dropped, mark the writer closed, and take
 * the overflow file submitters opened meanwhile (closed was false: they
 * left it open; from closed = true on, each submitter syncs and closes
 * its file itself).  The late file, returned, is the caller's to sync. */
static spool_file
account_for_leftovers(writer *w, const close_leftovers *left, bool *thread_gone_out)
{
    qbel_error why = {0, ""};
    int spool_errno = left->batch_errno ? left->batch_errno : left->queue_errno;
    if (spool_errno != 0) {
        spool_explain_error(w->config.spool_dir, spool_errno, &why); /* lstat: no lock */
    }
    pthread_mutex_lock(&w->spool_lock);
    pthread_mutex_lock(&w->queue.lock);
    w->stats.spooled += left->batch_spooled + left->queue_spooled + left->journaled;
    writer_count_dropped_locked(w, (left->batch_count - left->batch_spooled) +
                                       (left->queue_count - left->queue_spooled));
    if (spool_errno != 0) {
        writer_set_error_locked(w, "spooling at close", why.message);
    }
    else if (left->sync_errno != 0) {
        writer_set_error_locked(w, "syncing the spool file", strerror(left->sync_errno));
    }
    spool_file late = w->own_spool;
    spool_file_init(&w->own_spool);
    w->own_spool_dirty = false;
    w->closed = true;
    *thread_gone_out = !w->thread_alive;
    pthread_mutex_unlock(&w->queue.lock);
    pthread_mutex_unlock(&w->spool_lock);
    return late;
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
    bool joined = stop_thread(w, timeout_s);

    /* Spool the in-flight batch with its id, then the queue, oldest first.
     * They go after any overflow lines already in our spool file, although
     * they were submitted earlier; replay order is then not strictly
     * oldest-first, but each row keeps its created_at, so the table is
     * the same.  What is taken out under the locks is formatted, written
     * and synced with neither held: that can be up to max_queue_bytes and
     * an fdatasync, and log() (GIL held) waits for queue.lock, fork()
     * (writer_fork_prepare, GIL held) for both.  Nobody else touches what
     * we took: the thread is stopped (a stuck one only reads its batch,
     * pinned until we are done), and submitters open a new own_spool.  A
     * fork meanwhile is safe: the descriptor is tracked (closed in the
     * child), and the child's writer starts empty as ever. */
    close_leftovers left;
    memset(&left, 0, sizeof(left));
    byte_buffer_init(&left.batch_lines, NULL, 0);
    event_record **pinned = take_leftovers(w, &left);
    if (pinned != NULL) {
        copy_pinned_batch(w, &left, pinned);
    }
    spool_leftovers(w, &left);
    byte_buffer_release(&left.batch_lines);
    event_queue_free_chain(left.journal_copies);

    bool thread_gone;
    spool_file late = account_for_leftovers(w, &left, &thread_gone);
    int late_error = late.fd >= 0 ? writer_sync_and_close_spool(&late, late.lines == 0) : 0;
    if (late_error != 0) {
        pthread_mutex_lock(&w->queue.lock);
        writer_set_error_locked(w, "syncing the spool file", strerror(late_error));
        pthread_mutex_unlock(&w->queue.lock);
    }

    if (joined) {
        pthread_join(w->thread, NULL);
    }
    if (thread_gone) {
        /* (T) fields are ours now; the journal's chunks are closed (their
         * locks released) so that a replay can take what is left in them */
        pthread_mutex_lock(&w->queue.lock);
        durable_journal *journal = w->journal;
        w->journal = NULL;
        pthread_mutex_unlock(&w->queue.lock);
        durable_journal_free(journal);
        spool_file_close(&w->replaying_spool, false); /* left for a later replay */
        if (w->sink != NULL) {
            sink_free(w->sink);
            w->sink = NULL;
        }
    }
}
