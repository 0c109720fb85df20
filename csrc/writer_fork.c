/* writer_fork.c: the pthread_atfork handlers of every live writer (and of
 * the spool's tracked descriptors).  Runs in the forking thread (prepare,
 * parent) and in the child's only thread (child). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_queue.h"
#include "qbel_alloc.h"
#include "spool.h"
#include "writer_internal.h"

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
    pthread_mutex_lock(&writer_live_lock);
    for (writer *w = writer_live_list; w != NULL; w = w->next_live) {
        pthread_mutex_lock(&w->spool_lock);
        pthread_mutex_lock(&w->queue.lock);
    }
    spool_fork_prepare();
}

void
writer_fork_parent(void)
{
    spool_fork_parent();
    for (writer *w = writer_live_list; w != NULL; w = w->next_live) {
        pthread_mutex_unlock(&w->queue.lock);
        pthread_mutex_unlock(&w->spool_lock);
    }
    pthread_mutex_unlock(&writer_live_lock);
}

void
writer_fork_child(void)
{
    spool_fork_child();
    pthread_mutex_init(&writer_live_lock, NULL);
    for (writer *w = writer_live_list; w != NULL; w = w->next_live) {
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
        if (w->journal != NULL) {
            durable_journal_forget_in_child(w->journal); /* starts again, chunkless */
        }
        w->batch_chunk = NULL;
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
        w->dropped_mirror = 0;
        w->stats.delivery = SINK_DELIVERY_UNKNOWN;
        /* at_least_once_seen stays: the child's logger warned already */
        writer_make_process_hex(w);
    }
}
