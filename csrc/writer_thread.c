/* writer_thread.c: the writer thread — its loop, batches written through
 * the sink (with the ambiguous-commit check), its own spool's and
 * orphaned spool files' replay, housekeeping, reconnect backoff.
 *
 * Runs on the writer thread with every signal blocked; never touches
 * Python.  Every function needs queue.lock on entry and exit and releases
 * it around I/O (see writer_internal.h). */
#include <signal.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_queue.h"
#include "qbel_alloc.h"
#include "spool.h"
#include "writer_internal.h"

static void note_delivery_locked(writer *w);

/* Writer thread, queue.lock held on entry and exit.  Append what callers
 * left in the queue's overflow to our spool file, one chunk per hold of
 * spool_lock (a caller whose event found the overflow full waits for that
 * lock: for one short write, not the whole overflow).  Stops after as many
 * records as there were on entry, so that callers cannot keep it here. */
static void
spool_overflow_locked(writer *w)
{
    /* each round takes at least a chunk, or all */
    size_t rounds = w->queue.overflow.bytes / EVENT_QUEUE_SPOOL_CHUNK_BYTES + 1;
    while (rounds-- > 0 && w->queue.overflow.count > 0) {
        /* lock order: spool_lock first */
        pthread_mutex_unlock(&w->queue.lock);
        pthread_mutex_lock(&w->spool_lock);
        pthread_mutex_lock(&w->queue.lock);
        writer_spool_overflow_locked(w, EVENT_QUEUE_SPOOL_CHUNK_BYTES, NULL, 0);
        pthread_mutex_unlock(&w->queue.lock);
        pthread_mutex_unlock(&w->spool_lock);
        pthread_mutex_lock(&w->queue.lock);
    }
}

/* Writer thread, queue.lock held on entry and exit.  Free records taken
 * out of the queue with the lock released (a batch is thousands of
 * free() calls: callers would wait for them), and give memory back to the
 * system once the queue is empty after holding a lot (at most every
 * WRITER_TRIM_INTERVAL_S: malloc_trim walks the heap).  True when the
 * lock was released (the state may have changed). */
static bool
release_records_locked(writer *w, event_record *chain)
{
    bool trim = event_queue_should_trim_locked(&w->queue);
    double now = trim ? event_queue_monotonic_now() : 0;
    if (trim && now < w->next_trim) {
        trim = false;
        w->queue.peak_bytes = EVENT_QUEUE_TRIM_BYTES; /* try again next time */
    }
    if (chain == NULL && !trim) {
        return false;
    }
    pthread_mutex_unlock(&w->queue.lock);
    event_queue_free_chain(chain);
    if (trim) {
        event_queue_release_memory();
        w->next_trim = now + WRITER_TRIM_INTERVAL_S;
    }
    pthread_mutex_lock(&w->queue.lock);
    return true;
}

/* Writer thread, lock held: the in-flight batch as a chain (oldest first),
 * emptied. */
static event_record *
take_batch_locked(writer *w)
{
    event_record *chain = NULL;
    for (size_t i = w->batch_count; i-- > 0;) {
        w->batch[i]->next = chain;
        chain = w->batch[i];
    }
    w->batch_count = 0;
    return chain;
}

/* While the sink is not connected (server down, restarting, failing over,
 * a cluster node not ready) the backoff stops growing here: trying again
 * costs one refused connect, and the server may be back any second.  A
 * connected sink's errors (a missing table) grow to backoff_max_s. */
#define WRITER_OUTAGE_BACKOFF_CAP_S 2.0

/* Writer thread, lock held.  Sleep for the current backoff, give or take a
 * quarter (loggers of many processes do not retry in step), cut short by
 * stop or a new flush request (spooling callers' overflow meanwhile); then
 * double it up to the cap: backoff_max_s, and at most
 * WRITER_OUTAGE_BACKOFF_CAP_S while disconnected.  Reset to backoff_initial_s
 * by every connect and every committed batch. */
static void
wait_backoff_locked(writer *w)
{
    double now = event_queue_monotonic_now();
    double spread = (now * 1e4 - (double)(long long)(now * 1e4)) - 0.5; /* -0.5 .. 0.5 */
    double deadline = now + w->backoff_s * (1.0 + spread / 2);
    uint64_t flushes_seen = w->flush_requests;
    while (!w->stop && w->flush_requests == flushes_seen &&
           event_queue_wait_until(&w->queue, &w->queue.wake_writer, deadline)) {
        spool_overflow_locked(w);
    }
    double cap = w->config.backoff_max_s;
    if ((w->sink == NULL || !sink_is_connected(w->sink)) && cap > WRITER_OUTAGE_BACKOFF_CAP_S) {
        cap = w->config.backoff_initial_s > WRITER_OUTAGE_BACKOFF_CAP_S
                  ? w->config.backoff_initial_s
                  : WRITER_OUTAGE_BACKOFF_CAP_S;
    }
    w->backoff_s *= 2;
    if (w->backoff_s > cap) {
        w->backoff_s = cap;
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

/* Writer thread, lock held: the in-flight batch is done, committed but for
 * `rejected` rows the server refused, `kept` of which are in the
 * dead-letter file; the others are counted as dropped, never silently. */
static void
settle_batch_locked(writer *w, size_t rejected, size_t kept, const qbel_error *why)
{
    wait_closer_unpinned_locked(w);
    size_t count = w->batch_count;
    w->stats.written += count - rejected;
    w->stats.dead_lettered += kept;
    w->stats.batches++;
    w->settled += count;
    if (kept < rejected) {
        writer_count_dropped_locked(w, rejected - kept);
        qbel_error detail;
        qbel_error_set(&detail, QBEL_ERROR_OTHER, "%zu rejected rows dropped: %s",
                       rejected - kept, why->message);
        writer_set_error_locked(w, "writing the dead-letter file", detail.message);
    }
    else {
        writer_clear_error_locked(w); /* recovered: a batch committed */
    }
    if (w->journal != NULL && w->batch_chunk != NULL) {
        durable_journal_settle_locked(w->journal, count);
    }
    w->batch_chunk = NULL;
    event_record *done = take_batch_locked(w);
    w->batch_ambiguous = false;
    w->backoff_s = w->config.backoff_initial_s;
    note_delivery_locked(w); /* before any flush() can return */
    pthread_cond_broadcast(&w->queue.progress);
    release_records_locked(w, done);
}

/* Writer thread, lock NOT held: dead-letter the rows the server rejected
 * in the attempt that committed; how many were kept.  When fewer than
 * `rejected`, `why` says why (the directory's state, else the errno). */
static size_t
write_rejections(writer *w, const char *batch_id, size_t rejected, qbel_error *why)
{
    size_t kept = dead_letter_write_rejections(&w->letters, &w->rejections, batch_id);
    if (kept < rejected) {
        int error_number = w->letters.error ? w->letters.error : ENOMEM;
        spool_explain_error(w->config.spool_dir, error_number, why);
    }
    return kept;
}

/* Writer thread, lock held on entry and exit.  Write the in-flight batch
 * once, with the lock released during the network round trips and the
 * dead-letter writes. */
static void
write_in_flight_locked(writer *w)
{
    char batch_id[SINK_BATCH_ID_MAX + 1];
    memcpy(batch_id, w->batch_id, sizeof(batch_id));
    event_record **records = w->batch;
    size_t count = w->batch_count;
    pthread_mutex_unlock(&w->queue.lock);

    size_t rejected = 0, kept = 0;
    rejection_list_clear(&w->rejections);
    sink_status status = sink_write_batch(
        w->sink, batch_id, records, count, rejection_list_collect, &w->rejections, &rejected);
    qbel_error why = {0, ""};
    if (status == SINK_OK) {
        kept = write_rejections(w, batch_id, rejected, &why);
    }
    else if (status == SINK_CONNECTION_ERROR) {
        sink_disconnect(w->sink);
    }

    pthread_mutex_lock(&w->queue.lock);
    w->batch_rejected = rejected;
    if (status == SINK_OK) {
        settle_batch_locked(w, rejected, kept, &why);
        return;
    }
    w->stats.retries++;
    writer_set_error_locked(w, "writing a batch", sink_last_error(w->sink));
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
    size_t rejected = w->batch_rejected;
    pthread_mutex_unlock(&w->queue.lock);
    sink_status status = SINK_OK;
    int committed = sink_batch_committed(w->sink, batch_id, &status);
    size_t kept = 0;
    qbel_error why = {0, ""};
    if (committed == 1) {
        kept = write_rejections(w, batch_id, rejected, &why);
    }
    else if (committed < 0 && status == SINK_CONNECTION_ERROR) {
        sink_disconnect(w->sink);
    }
    pthread_mutex_lock(&w->queue.lock);
    if (committed == 1) {
        settle_batch_locked(w, rejected, kept, &why);
    }
    else if (committed == 0) {
        w->batch_ambiguous = false; /* not committed: write it again */
    }
    else {
        writer_set_error_locked(w, "checking a batch marker", sink_last_error(w->sink));
        if (!w->stop) {
            wait_backoff_locked(w);
        }
    }
}

/* Writer thread, lock held: count what a replay did.  Rows it committed
 * with nothing dropped mean the writer recovered. */
static void
note_replay_locked(writer *w, const spool_replay_result *result)
{
    w->stats.replayed += result->replayed;
    w->stats.dead_lettered += result->dead_lettered;
    if (result->dropped > 0) {
        writer_count_dropped_locked(w, result->dropped);
    }
    else if (result->replayed > 0) {
        writer_clear_error_locked(w);
    }
}

/* What a replay of this writer's spool needs: its sink, its target, its
 * dead-letter file, and a way to stop early. */
static spool_replay_context
replay_context(writer *w)
{
    spool_replay_context context = {.sink = w->sink,
                                    .target = sink_factory_identity(&w->config.sink),
                                    .dir = w->config.spool_dir,
                                    .letters = &w->letters,
                                    .should_stop = writer_stop_requested,
                                    .argument = w};
    return context;
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
        writer_spool_overflow_locked(w, SIZE_MAX, NULL, 0);
        bool take = !w->stop && w->own_spool.fd >= 0;
        if (!take && !w->stop) {
            /* nothing made it to a file; callers may have overflowed since */
            w->own_spool_pending = w->queue.overflow.count;
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
            writer_set_error_locked(w, "syncing the spool file", strerror(saved));
        }
        if (!take || w->stop) {
            return;
        }
    }
    uint64_t lines = w->replaying_spool.lines;
    pthread_mutex_unlock(&w->queue.lock);

    spool_replay_context context = replay_context(w);
    spool_replay_result result;
    memset(&result, 0, sizeof(result));
    int status = spool_replay_fd(&context, w->replaying_spool.fd, w->replaying_spool.path,
                                 &result);
    if (status >= 0) {
        /* 1 (only lines for other targets) cannot happen for our own
         * file; left in place if it ever did */
        spool_file_close(&w->replaying_spool, status == 0);
    }

    pthread_mutex_lock(&w->queue.lock);
    note_replay_locked(w, &result);
    if (status >= 0) {
        w->settled += lines;
        w->backoff_s = w->config.backoff_initial_s;
        pthread_cond_broadcast(&w->queue.progress);
    }
    else if (!w->stop) {
        writer_set_error_code_locked(w, context.error.code, context.error.message, NULL);
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
    spool_replay_context context = replay_context(w);
    spool_replay_result result;
    memset(&result, 0, sizeof(result));
    int status = spool_replay_directory(&context, w->config.spool_dir, &result);
    if (status == 0 || context.error.code == QBEL_ERROR_NOTICE) {
        /* chunks of dead processes' journals (ours are locked: skipped) */
        spool_replay_context journals = replay_context(w);
        int journal_status = durable_replay_directory(&journals, w->config.spool_dir, &result);
        if (journal_status < 0) {
            status = journal_status;
            context.error = journals.error;
        }
    }
    pthread_mutex_lock(&w->queue.lock);
    note_replay_locked(w, &result);
    if (status < 0 && !w->stop) {
        writer_set_error_code_locked(w, context.error.code, context.error.message, NULL);
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
        writer_set_error_locked(w, "syncing the spool file", strerror(saved));
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
        writer_set_error_locked(w, "sink housekeeping", sink_last_error(w->sink));
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
        if (w->sink != NULL) {
            w->sink->give_up = &w->stop_flag; /* set by writer_close past its deadline */
        }
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
    writer_set_error_locked(w, "connecting", w->sink ? sink_last_error(w->sink) : "out of memory");
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

/* Writer thread, lock held on entry and exit.  Take the next batch out of
 * the queue and give it its id.  With a journal the batch stays within one
 * chunk, takes its id from its place there, and is marked in the chunk
 * (with the lock released) before anything is sent. */
static void
pop_batch_locked(writer *w)
{
    size_t limit = w->config.batch_size;
    journal_chunk *chunk = NULL;
    if (w->journal != NULL) {
        chunk = durable_journal_pop_chunk_locked(w->journal, limit, &limit);
        if (chunk == NULL) {
            limit = w->config.batch_size; /* cannot be: every queued record is journaled */
        }
    }
    w->batch_count = event_queue_pop_batch_locked(&w->queue, w->batch, limit);
    if (chunk == NULL) {
        snprintf(w->batch_id, sizeof(w->batch_id), "%s-%ld-%llu", w->process_hex,
                 (long)getpid(), (unsigned long long)++w->batch_sequence);
        return;
    }
    durable_journal_note_pop_locked(chunk, w->batch_count, w->batch_id);
    w->batch_chunk = chunk;
    size_t count = w->batch_count;
    pthread_mutex_unlock(&w->queue.lock);
    /* ours (T); walks `count` entries, filling the stubs in */
    durable_journal_mark_batch(chunk, count, w->batch);
    pthread_mutex_lock(&w->queue.lock);
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
        spool_overflow_locked(w);
        sync_own_spool_locked(w);
        if (w->journal != NULL &&
            durable_journal_wants_spare_locked(w->journal, event_queue_monotonic_now())) {
            writer_provide_journal_chunk_locked(w);
        }
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
            if (release_records_locked(w, NULL)) {
                continue;
            }
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
        pop_batch_locked(w);
        w->batch_ambiguous = false;
        w->batch_spooled_by_closer = false;
        write_in_flight_locked(w);
        if (w->batch_spooled_by_closer) {
            /* the closer gave up on us and spooled the batch with its id; a
             * late commit is detected at replay by its marker */
            wait_closer_unpinned_locked(w);
            release_records_locked(w, take_batch_locked(w));
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
    /* closed: a closer that gave up on us is done with the journal and
     * left it to us; release its chunks (unlocked for a replay) now, not
     * when the writer is freed */
    durable_journal *journal = w->closed && !free_it ? w->journal : NULL;
    if (journal != NULL) {
        w->journal = NULL;
    }
    pthread_mutex_unlock(&w->queue.lock);
    durable_journal_free(journal);
    if (free_it) {
        writer_destroy(w);
    }
    return NULL;
}

/* Caller thread, lock held.  Start the writer thread with every signal
 * blocked, so that it never runs a signal handler (Python's included). */
void
writer_start_thread_locked(writer *w)
{
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int error = pthread_create(&w->thread, NULL, writer_thread_main, w);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (error != 0) {
        writer_set_error_locked(w, "starting the writer thread", strerror(error));
        return; /* events stay queued; the next submit tries again */
    }
    w->thread_started = true;
    w->thread_alive = true;
}
