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
            batch_format_failed = spool_format_line(&batch_lines, pinned[i], batch_id,
                                                    sink_factory_identity(&w->config.sink)) < 0;
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
        if (writer_spool_chain(w, &file, batch_chain, batch_id, &batch_spooled) < 0) {
            batch_errno = errno;
        }
        event_queue_free_chain(batch_chain);
    }
    else if (batch_count > 0) {
        if (batch_format_failed) {
            batch_errno = ENOMEM;
        }
        else if (writer_append_spool(w, &file, batch_lines.data, batch_lines.length, batch_count) < 0) {
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
        if (writer_spool_chain(w, &file, queued, "", &queue_spooled) < 0) {
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
    qbel_error why = {0, ""};
    if (batch_errno != 0 || queue_errno != 0) {
        spool_explain_error(w->config.spool_dir, batch_errno ? batch_errno : queue_errno, &why);
    }
    pthread_mutex_lock(&w->spool_lock);
    pthread_mutex_lock(&w->queue.lock);
    w->stats.spooled += batch_spooled + queue_spooled;
    writer_count_dropped_locked(w, (batch_count - batch_spooled) + (queue_count - queue_spooled));
    if (batch_errno != 0 || queue_errno != 0) {
        writer_set_error_locked(w, "spooling at close", why.message);
    }
    else if (sync_errno != 0) {
        writer_set_error_locked(w, "syncing the spool file", strerror(sync_errno));
    }
    spool_file late = w->own_spool;
    spool_file_init(&w->own_spool);
    w->own_spool_dirty = false;
    w->closed = true;
    bool thread_gone = !w->thread_alive;
    pthread_mutex_unlock(&w->queue.lock);
    pthread_mutex_unlock(&w->spool_lock);
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
        /* (T) fields are ours now */
        spool_file_close(&w->replaying_spool, false); /* left for a later replay */
        if (w->sink != NULL) {
            sink_free(w->sink);
            w->sink = NULL;
        }
    }
}
