/* writer.c: the writer's lifetime — making it (writer_new), its stats,
 * freeing it — and the small helpers its other files share.  The thread
 * loop is in writer_thread.c, the caller API in writer_callers.c, close in
 * writer_close.c, fork handling in writer_fork.c, the replay command's
 * glue in writer_replay.c; see writer_internal.h for the locks. */
#include "writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_queue.h"
#include "qbel_alloc.h"
#include "spool.h"
#include "writer_internal.h"

pthread_mutex_t writer_live_lock = PTHREAD_MUTEX_INITIALIZER;
writer *writer_live_list = NULL;

void
writer_set_error_locked(writer *w, const char *context, const char *detail)
{
    writer_set_error_code_locked(w, QBEL_ERROR_OTHER, context, detail);
}

void
writer_set_error_code_locked(writer *w, int code, const char *context, const char *detail)
{
    qbel_error_set(&w->stats.last_error, code, "%s%s%s", context, detail && *detail ? ": " : "",
                   detail ? detail : "");
    w->stats.last_error_at = event_time_now_us() / 1e6;
}

void
writer_clear_error_locked(writer *w)
{
    if (w->stats.last_error.code != QBEL_ERROR_NOTICE) {
        qbel_error_clear(&w->stats.last_error);
        w->stats.last_error_at = 0;
    }
}

void
writer_count_dropped_locked(writer *w, uint64_t count)
{
    w->stats.dropped += count;
    __atomic_store_n(&w->dropped_mirror, w->stats.dropped, __ATOMIC_RELEASE);
}

uint64_t
writer_dropped_count(const writer *w)
{
    return __atomic_load_n(&w->dropped_mirror, __ATOMIC_ACQUIRE);
}

void
writer_set_stop_locked(writer *w)
{
    w->stop = true;
    __atomic_store_n(&w->stop_flag, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&w->queue.wake_writer);
}

bool
writer_stop_requested(void *argument)
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

void
writer_make_process_hex(writer *w)
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
    if (failed || w->batch == NULL || dead_letter_init(&w->letters, w->config.spool_dir,
                                         sink_factory_identity(&w->config.sink)) < 0) {
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
    if (w->config.durability == WRITER_DURABILITY_PROCESS && w->config.spool_dir != NULL) {
        w->journal = durable_journal_new(w->config.spool_dir,
                                         sink_factory_identity(&w->config.sink),
                                         config->max_queue_bytes);
        if (w->journal == NULL) {
            event_queue_destroy(&w->queue);
            pthread_mutex_destroy(&w->spool_lock);
            errno = ENOMEM;
            goto error;
        }
        /* no overflow in memory: what the queue cannot take goes to the
         * spool file in its caller, where a kill cannot lose it */
        w->queue.max_bytes += w->queue.overflow_max_bytes;
        w->queue.overflow_max_bytes = 0;
    }
    spool_file_init(&w->own_spool);
    spool_file_init(&w->replaying_spool);
    w->backoff_s = w->config.backoff_initial_s;
    w->stats.delivery = SINK_DELIVERY_UNKNOWN;
    writer_make_process_hex(w);

    pthread_mutex_lock(&writer_live_lock);
    w->next_live = writer_live_list;
    writer_live_list = w;
    pthread_mutex_unlock(&writer_live_lock);
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
    out->queue_bytes = w->queue.bytes + w->queue.overflow.bytes;
    pthread_mutex_unlock(&w->queue.lock);
}

void
writer_provide_journal_chunk_locked(writer *w)
{
    qbel_error why;
    if (durable_journal_provide_spare_locked(w->journal, &w->queue.lock, &why) < 0) {
        writer_set_error_locked(w, "making a journal chunk", why.message);
    }
}

void
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
    (void)writer_sync_and_close_spool(&w->own_spool, false); /* no one left to tell */
    dead_letter_close(&w->letters);
    rejection_list_free(&w->rejections);
    durable_journal_free(w->journal); /* unsettled chunks stay for a replay */
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
    pthread_mutex_lock(&writer_live_lock);
    for (writer **link = &writer_live_list; *link != NULL; link = &(*link)->next_live) {
        if (*link == w) {
            *link = w->next_live;
            break;
        }
    }
    pthread_mutex_unlock(&writer_live_lock);

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
