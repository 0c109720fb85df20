/* writer_callers.c: the writer's caller API — submit (queue, or this
 * process's overflow spool file when the queue is full) and flush (wait
 * for settlement; see "Settlement" in writer_internal.h).
 *
 * Runs on caller (Python) threads; which need the GIL released is said in
 * writer.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_queue.h"
#include "qbel_alloc.h"
#include "spool.h"
#include "writer_internal.h"

/* ---- callers ------------------------------------------------------------ */

int
writer_sync_and_close_spool(spool_file *file, bool remove_if_empty)
{
    int error = spool_file_sync(file) < 0 ? errno : 0;
    spool_file_close(file, remove_if_empty);
    return error;
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
        writer_start_thread_locked(w);
    }
    else if (w->queue.count == 1 || w->queue.count == w->config.batch_size) {
        /* 1: an idle writer sleeps without a deadline (or until the next
         * orphan scan); it must start the flush_interval clock */
        pthread_cond_signal(&w->queue.wake_writer);
    }
}

/* Caller thread, queue.lock held: account for a record just put in the
 * overflow (numbered now; counted in `spooled` once it is in the file)
 * and make sure the writer thread will append it to the spool file. */
static void
accept_overflow_locked(writer *w, size_t bytes_before)
{
    size_t half = w->queue.overflow_max_bytes / 2;
    if (w->queue.overflow.count == 1) {
        w->overflow_first_sequence = w->submitted;
    }
    w->submitted++;
    w->stats.enqueued++;
    w->own_spool_pending++;
    w->spool_mode = true;
    if (!w->thread_started) {
        writer_start_thread_locked(w);
    }
    else if (w->queue.overflow.count == 1 ||
             (bytes_before < half && w->queue.overflow.bytes >= half)) {
        /* 1: it may sleep until a deadline; half full: it may have left
         * the rest for later (see spool_overflow_locked) */
        pthread_cond_signal(&w->queue.wake_writer);
    }
}

/* Caller thread, no lock.  What the queue is to hold for `record`: the
 * record itself, or with a journal a stub (its header alone: the event is
 * in the journal's chunk once, not twice), NULL on OOM (nothing is queued
 * then; the event goes to the spool file). */
static event_record *
queued_form_new(const writer *w, event_record *record)
{
    /* the journal exists from construction on exactly then (writer.c) */
    if (w->config.durability != WRITER_DURABILITY_PROCESS || w->config.spool_dir == NULL) {
        return record;
    }
    return durable_journal_stub_new(record);
}

/* Caller thread, no lock.  After a push: free `queued` unless it was
 * `taken`, and `record` when its stub was taken (the journal holds the
 * event).  `taken` NULL: nothing was; the caller keeps `record`. */
static void
free_unqueued(event_record *record, event_record *queued, const event_record *taken)
{
    if (queued != NULL && queued != record && queued != taken) {
        event_record_free(queued);
    }
    if (taken != NULL && taken != record) {
        event_record_free(record);
    }
}

/* Caller thread, queue.lock held.  Would `record` overrun the queue's
 * share of the bound?  With a journal the chunks take theirs (see
 * durable_journal_new). */
static bool
over_budget_locked(const writer *w, const event_record *record)
{
    if (!event_queue_fits_locked(&w->queue, record)) {
        return true;
    }
    const durable_journal *journal = w->journal;
    if (journal == NULL || w->queue.count == 0) {
        return false;
    }
    size_t budget = journal->heap_budget;
    size_t mapped = journal->chunks * journal->chunk_size;
    if (journal->bypassed && mapped < w->queue.max_bytes) {
        budget = w->queue.max_bytes - mapped; /* whole records, no stubs */
    }
    return w->queue.bytes + event_queue_footprint(record) > budget;
}

/* Caller thread, queue.lock held.  Queue `queued` (queued_form_new of
 * `record`) — or `record` itself while no journal chunk can be made (the
 * event is then kept in memory only, as with durability "memory", rather
 * than sent to a spool file in the same failing directory) — and return
 * what the queue took; NULL when full (with a journal, also when the
 * journal is full, or `queued` is NULL).  A stub is queued only once its
 * journal entry is complete. */
static event_record *
push_locked(writer *w, event_record *record, event_record *queued)
{
    durable_journal *journal = w->journal;
    if (journal == NULL) {
        /* a stub without its journal (closed meanwhile) is never queued */
        return queued == record && event_queue_push_locked(&w->queue, record) == 0 ? record
                                                                                  : NULL;
    }
    if (journal->bypassed && w->queue.count == 0) {
        journal->bypassed = false; /* nothing queued: stubs may follow again */
    }
    if (!journal->bypassed) {
        bool wake = false;
        if (queued == NULL || over_budget_locked(w, queued)) {
            return NULL;
        }
        if (durable_journal_append_locked(journal, record, &wake) == 0) {
            if (wake && w->thread_started) {
                pthread_cond_signal(&w->queue.wake_writer); /* to make the next spare */
            }
            event_queue_push_locked(&w->queue, queued); /* fits: checked above */
            return queued;
        }
        if (!journal->making_failed) {
            return NULL; /* the journal is full: the spool file takes it */
        }
        journal->bypassed = true; /* last_error says why (making a journal chunk) */
    }
    if (over_budget_locked(w, record) || event_queue_push_locked(&w->queue, record) != 0) {
        return NULL;
    }
    return record;
}

int
writer_try_enqueue(writer *w, event_record *record)
{
    event_record *queued = queued_form_new(w, record);
    const event_record *taken = NULL;
    pthread_mutex_lock(&w->queue.lock);
    size_t bytes_before = w->queue.overflow.bytes;
    if (w->closing) {
        /* taken stays NULL */
    }
    else if (!w->spool_mode && (taken = push_locked(w, record, queued)) != NULL) {
        accept_locked(w);
    }
    else if (w->thread_alive && event_queue_push_overflow_locked(&w->queue, record) == 0) {
        accept_overflow_locked(w, bytes_before);
        taken = record;
    }
    pthread_mutex_unlock(&w->queue.lock);
    free_unqueued(record, queued, taken);
    return taken == NULL ? 1 : 0;
}

/* queue.lock NOT held (this is disk I/O); spool_lock held when `file` is
 * w->own_spool.  Append `length` bytes holding `count` lines to `file`,
 * creating it on first use.  0, or -1 (errno set). */
int
writer_append_spool(writer *w, spool_file *file, const char *data, size_t length, size_t count)
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
int
writer_spool_chain(writer *w, spool_file *file, event_record *chain, const char *batch_id,
            size_t *lines_out)
{
    *lines_out = 0;
    char inline_block[4096];
    byte_buffer lines;
    byte_buffer_init(&lines, inline_block, sizeof(inline_block));
    int status = 0;
    size_t pending = 0;
    for (event_record *record = chain; record != NULL; record = record->next) {
        if (spool_format_line(&lines, record, batch_id, sink_factory_identity(&w->config.sink)) <
            0) {
            errno = ENOMEM;
            status = -1;
            break;
        }
        pending++;
        if (lines.length >= (1 << 20) || record->next == NULL) {
            if (writer_append_spool(w, file, lines.data, lines.length, pending) < 0) {
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

/* spool_lock held, queue.lock held (released across the append).  Append
 * `chain` (`count` records numbered first, first + 1, ...; the last one a
 * caller's own, not yet counted as enqueued, when `own_last`) to our spool
 * file and free it.  What made it is counted in `spooled`, the rest in
 * `dropped` (see "Settlement" for the flush waiters).  True when all of it
 * made it. */
static bool
spool_numbered_chain_locked(writer *w, event_record *chain, size_t count, uint64_t first,
                            bool own_last)
{
    pthread_mutex_unlock(&w->queue.lock);
    size_t lines = 0;
    qbel_error why = {0, ""};
    if (writer_spool_chain(w, &w->own_spool, chain, "", &lines) < 0) {
        spool_explain_error(w->config.spool_dir, errno, &why);
    }
    event_queue_free_chain(chain);
    pthread_mutex_lock(&w->queue.lock);
    if (own_last && lines == count) {
        w->stats.enqueued++; /* the overflow's were counted when accepted */
    }
    w->stats.spooled += lines;
    if (lines > 0 && !w->own_spool_dirty) {
        w->own_spool_dirty = true;
        pthread_cond_signal(&w->queue.wake_writer); /* to fdatasync it */
    }
    if (lines < count) {
        uint64_t lost = count - lines, lost_first = first + lines;
        w->own_spool_pending -= lost < w->own_spool_pending ? lost : w->own_spool_pending;
        writer_count_dropped_locked(w, lost);
        /* out of order: not in `settled` (see "Settlement") */
        w->dropped_settled += lost;
        for (flush_waiter *waiter = w->flush_list; waiter != NULL; waiter = waiter->next) {
            if (waiter->target > lost_first) {
                uint64_t below = waiter->target - lost_first;
                waiter->drops_below += below < lost ? below : lost;
            }
        }
        writer_set_error_locked(w, "spooling an event", why.message);
        pthread_cond_broadcast(&w->queue.progress);
    }
    return lines == count;
}

/* Mutex held.  Take the overflow's oldest records holding at least
 * `min_bytes` (SIZE_MAX: all), with the number of the first. */
static record_chain
take_overflow_numbered_locked(writer *w, size_t min_bytes, uint64_t *first_out)
{
    record_chain taken = event_queue_take_overflow_locked(&w->queue, min_bytes);
    *first_out = w->overflow_first_sequence;
    w->overflow_first_sequence += taken.count;
    return taken;
}

bool
writer_spool_overflow_locked(writer *w, size_t min_bytes, event_record *own,
                             uint64_t own_number)
{
    uint64_t first;
    record_chain taken = take_overflow_numbered_locked(w, own ? SIZE_MAX : min_bytes, &first);
    if (own != NULL) {
        if (taken.count == 0) {
            first = own_number;
            taken.head = own;
        }
        else {
            taken.tail->next = own;
        }
        own->next = NULL;
        taken.count++;
    }
    if (taken.count == 0) {
        return false;
    }
    return spool_numbered_chain_locked(w, taken.head, taken.count, first, own != NULL);
}

/* Caller thread, spool_lock and queue.lock held, the queue and the
 * overflow full: make room by appending the overflow's oldest records to
 * the spool file, as few as make room for `record`, and put `record` at
 * the overflow's end (numbered now): this caller writes about one event,
 * never the whole overflow.  True when it did (taking ownership). */
static bool
overflow_by_one_chunk_locked(writer *w, event_record *record)
{
    if (w->closing || !w->thread_alive) {
        return false; /* nobody else would spool the overflow */
    }
    size_t bytes_before = w->queue.overflow.bytes;
    if (event_queue_push_overflow_locked(&w->queue, record) == 0) {
        accept_overflow_locked(w, bytes_before); /* the thread drained it meanwhile */
        return true;
    }
    size_t footprint = event_queue_footprint(record);
    if (footprint > w->queue.overflow_max_bytes) {
        return false;
    }
    size_t need = w->queue.overflow.bytes + footprint - w->queue.overflow_max_bytes;
    uint64_t first;
    /* just enough for `record`: each such caller then writes about one
     * event (what every overflowing caller used to write), the thread the
     * rest */
    record_chain taken = take_overflow_numbered_locked(w, need, &first);
    if (event_queue_push_overflow_locked(&w->queue, record) != 0) {
        abort(); /* cannot happen: `need` bytes were just taken out */
    }
    if (w->queue.overflow.count == 1) {
        w->overflow_first_sequence = w->submitted;
    }
    w->submitted++;
    w->stats.enqueued++;
    w->own_spool_pending++;
    if (taken.count > 0) {
        spool_numbered_chain_locked(w, taken.head, taken.count, first, false);
    }
    return true;
}

/* Caller thread, GIL released (it waits for spool_lock, held across file
 * appends). */
int
writer_submit(writer *w, event_record *record)
{
    if (writer_try_enqueue(w, record) == 0) {
        return 0;
    }
    pthread_mutex_lock(&w->queue.lock);
    if (w->journal != NULL && !w->closing && !w->spool_mode &&
        (w->journal->active == NULL ||
         durable_journal_wants_spare_locked(w->journal, event_queue_monotonic_now()))) {
        /* the first chunk, or the thread (busy sending) has not made the
         * next one yet: make it here (GIL released) rather than send this
         * event and every later one to the spool file */
        writer_provide_journal_chunk_locked(w);
    }
    pthread_mutex_unlock(&w->queue.lock);
    event_record *queued = queued_form_new(w, record);
    pthread_mutex_lock(&w->spool_lock);
    pthread_mutex_lock(&w->queue.lock);
    /* the thread may have caught up meanwhile */
    const event_record *taken = NULL;
    if (!w->spool_mode && !w->closing && (taken = push_locked(w, record, queued)) != NULL) {
        accept_locked(w);
        pthread_mutex_unlock(&w->queue.lock);
        pthread_mutex_unlock(&w->spool_lock);
        free_unqueued(record, queued, taken);
        return 0;
    }
    int result = 1;
    if (!overflow_by_one_chunk_locked(w, record)) {
        /* Reserve the event's place in submission order before appending:
         * until it is in the file (or dropped) the thread neither leaves
         * spool_mode nor takes the file over (it needs spool_lock for
         * that).  The whole overflow goes first: numbered before it. */
        uint64_t sequence = w->submitted++;
        w->own_spool_pending++;
        if (!w->closing) {
            w->spool_mode = true;
            if (!w->thread_started) {
                writer_start_thread_locked(w);
            }
        }
        result = writer_spool_overflow_locked(w, SIZE_MAX, record, sequence) ? 1 : -1;
    }
    bool closed = w->closed; /* stable: close sets it under spool_lock */
    pthread_mutex_unlock(&w->queue.lock);
    spool_file finished;
    spool_file_init(&finished);
    if (closed && w->own_spool.fd >= 0) {
        /* nobody syncs or hands over this file any more: release it now,
         * or it stays locked (unreplayable) until the writer is freed;
         * fdatasync outside spool_lock (fork() waits for that lock) */
        finished = w->own_spool;
        spool_file_init(&w->own_spool);
    }
    pthread_mutex_unlock(&w->spool_lock);
    free_unqueued(record, queued, NULL); /* the stub, not `record`: that went on */
    int sync_error = finished.fd >= 0 ? writer_sync_and_close_spool(&finished, false) : 0;
    if (sync_error != 0) {
        pthread_mutex_lock(&w->queue.lock);
        writer_set_error_locked(w, "syncing the spool file", strerror(sync_error));
        pthread_mutex_unlock(&w->queue.lock);
    }
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
