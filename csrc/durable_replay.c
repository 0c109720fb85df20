/* durable_replay.c: exactly-once replay of journal chunks left by dead
 * processes (see "Exactly-once" in durable_journal.h).  Runs on the writer
 * thread, or a replaying caller with the GIL released; no lock held. */
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "durable_journal.h"
#include "qbel_alloc.h"
#include "spool_internal.h"

/* A mapped chunk being replayed. */
typedef struct chunk_view {
    const unsigned char *base;
    size_t size;
    const journal_header *header;
    size_t *offsets; /* qbel_malloc'd: offset of each complete entry */
    size_t count, capacity;
} chunk_view;

/* Offsets of the complete entries of the current generation, in order; a
 * stale commit word (torn by a kill mid-copy, or left by the chunk's last
 * use) or an entry that does not fit ends the list.  0, or -1 on OOM. */
static int
collect_entries(chunk_view *view)
{
    size_t offset = JOURNAL_HEADER_SIZE;
    while (offset + JOURNAL_ENTRY_HEADER_SIZE <= view->size) {
        const journal_entry *entry = (const journal_entry *)(view->base + offset);
        if (entry->commit != view->header->generation || entry->length > view->size - offset ||
            entry->length < JOURNAL_ENTRY_HEADER_SIZE + (size_t)entry->json_length ||
            entry->length % 8 != 0 || entry->event_type >= EVENT_TYPE_COUNT) {
            break;
        }
        if (view->count == view->capacity) {
            size_t capacity = view->capacity ? view->capacity * 2 : 256;
            size_t *grown = qbel_realloc(view->offsets, capacity * sizeof(*grown));
            if (grown == NULL) {
                return -1;
            }
            view->offsets = grown;
            view->capacity = capacity;
        }
        view->offsets[view->count++] = offset;
        offset += entry->length;
    }
    return 0;
}

static void
free_records(event_record **records, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        event_record_free(records[i]);
    }
}

/* Write entries [first, first + count) as batch "j:<chunk_id>:<first>".
 * 0, or -1 (context->error set). */
static int
write_entries(spool_replay_context *context, const chunk_view *view, size_t first, size_t count,
              event_record **records, spool_replay_result *result)
{
    size_t made = 0;
    for (; made < count; made++) {
        const journal_entry *entry =
            (const journal_entry *)(view->base + view->offsets[first + made]);
        const char *json = (const char *)entry + JOURNAL_ENTRY_HEADER_SIZE;
        records[made] = event_record_new(entry->created_at_us, entry->uid, entry->uid_is_null != 0,
                                         entry->event_type, json, entry->json_length);
        if (records[made] == NULL) {
            free_records(records, made);
            qbel_error_set(&context->error, ENOMEM, "replaying a journal: out of memory");
            return -1;
        }
    }
    char batch_id[SINK_BATCH_ID_MAX + 1];
    snprintf(batch_id, sizeof(batch_id), "j:%.*s:%zu", JOURNAL_CHUNK_ID_SIZE - 1,
             view->header->chunk_id, first);
    int status = spool_replay_write_batch(context, batch_id, records, count, result);
    free_records(records, count);
    return status;
}

/* Replay the entries of `view`: marked batches as they were sent, the
 * unmarked rest in groups.  0, or -1 (error set). */
static int
replay_entries(spool_replay_context *context, const chunk_view *view,
               spool_replay_result *result)
{
    size_t capacity = SPOOL_REPLAY_GROUP_LINES;
    for (size_t i = 0; i < view->count; i++) {
        const journal_entry *entry = (const journal_entry *)(view->base + view->offsets[i]);
        if (entry->batch_count > capacity) {
            capacity = entry->batch_count;
        }
    }
    event_record **records = qbel_malloc(capacity * sizeof(*records));
    if (records == NULL) {
        qbel_error_set(&context->error, ENOMEM, "replaying a journal: out of memory");
        return -1;
    }
    int status = 0;
    size_t i = 0;
    while (status == 0 && i < view->count) {
        if (context->should_stop != NULL && context->should_stop(context->argument)) {
            qbel_error_set(&context->error, QBEL_ERROR_OTHER, "replay stopped");
            status = -1;
            break;
        }
        const journal_entry *entry = (const journal_entry *)(view->base + view->offsets[i]);
        size_t count = entry->batch_count;
        if (count == 0 || count > view->count - i) {
            /* never sent: a group of the unmarked tail (a marked count
             * running past the end cannot be: batches are marked after
             * their entries are complete) */
            count = view->count - i < SPOOL_REPLAY_GROUP_LINES ? view->count - i
                                                                : SPOOL_REPLAY_GROUP_LINES;
        }
        status = write_entries(context, view, i, count, records, result);
        i += count;
    }
    qbel_free(records);
    if (status == 0) {
        result->lines += view->count;
    }
    return status;
}

/* Replay the claimed chunk `fd` at `path`.  0 done (unlinked), 1 left
 * alone (another target, or not a chunk we can read), -1 failed. */
static int
replay_chunk(spool_replay_context *context, int fd, const char *path,
             spool_replay_result *result)
{
    struct stat info;
    if (fstat(fd, &info) < 0 || (size_t)info.st_size < JOURNAL_HEADER_SIZE) {
        return 1;
    }
    chunk_view view;
    memset(&view, 0, sizeof(view));
    view.size = (size_t)info.st_size;
    void *base = mmap(NULL, view.size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        qbel_error_set(&context->error, errno, "mapping %s: %s", path, strerror(errno));
        return -1;
    }
    view.base = base;
    view.header = base;
    int status = 1;
    if (memcmp(view.header->magic, JOURNAL_MAGIC, sizeof(view.header->magic)) != 0 ||
        view.header->version != JOURNAL_VERSION ||
        memchr(view.header->target, '\0', sizeof(view.header->target)) == NULL ||
        memchr(view.header->chunk_id, '\0', sizeof(view.header->chunk_id)) == NULL) {
        goto done; /* a half-made chunk (killed before the rename) is never named so */
    }
    if (!context->adopt_all && strcmp(view.header->target, context->target) != 0) {
        result->left++;
        goto done;
    }
    if (collect_entries(&view) < 0) {
        qbel_error_set(&context->error, ENOMEM, "replaying a journal: out of memory");
        status = -1;
        goto done;
    }
    status = replay_entries(context, &view, result);
    if (status == 0) {
        unlink(path);
        result->files++;
    }
done:
    qbel_free(view.offsets);
    munmap(base, view.size);
    return status;
}

/* Is `name` a journal chunk's ("qbel-...journal")? */
static bool
is_journal_name(const char *name)
{
    size_t length = strlen(name);
    size_t prefix = strlen(SPOOL_PREFIX), suffix = strlen(JOURNAL_SUFFIX);
    return length > prefix + suffix && strncmp(name, SPOOL_PREFIX, prefix) == 0 &&
           strcmp(name + length - suffix, JOURNAL_SUFFIX) == 0;
}

int
durable_replay_directory(spool_replay_context *context, const char *dir,
                         spool_replay_result *result)
{
    if (spool_check_directory(dir, &context->error) < 0) {
        return errno == ENOENT ? 0 : -1;
    }
    DIR *directory = opendir(dir);
    if (directory == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        qbel_error_set(&context->error, errno, "reading %s: %s", dir, strerror(errno));
        return -1;
    }
    int status = 0;
    struct dirent *entry;
    while (status == 0 && (entry = readdir(directory)) != NULL) {
        if (!is_journal_name(entry->d_name)) {
            continue;
        }
        char *path = spool_join_path(dir, "", entry->d_name, "");
        if (path == NULL) {
            qbel_error_set(&context->error, ENOMEM, "replaying a journal: out of memory");
            status = -1;
            break;
        }
        const char *why = NULL;
        int fd = spool_claim_file(path, &why);
        if (fd >= 0) {
            status = replay_chunk(context, fd, path, result) < 0 ? -1 : 0;
            spool_fd_close_tracked(fd);
        }
        qbel_free(path);
    }
    closedir(directory);
    return status;
}
