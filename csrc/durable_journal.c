/* durable_journal.c: the live side of the crash-safe queue (see
 * durable_journal.h) — making, pre-faulting, reusing and releasing chunks,
 * appending entries, marking batches.  Callers append under the writer's
 * queue.lock (a copy into memory that is already faulted in, nothing
 * else); the writer thread does every file operation with no lock held. */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "durable_journal.h"
#include "event_queue.h"
#include "qbel_alloc.h"
#include "spool_internal.h"

_Static_assert(sizeof(journal_entry) == JOURNAL_ENTRY_HEADER_SIZE, "entry header layout");
_Static_assert(sizeof(journal_header) <= JOURNAL_HEADER_SIZE, "header fits its page");

#define JOURNAL_RETRY_S 1.0

static size_t
entry_size(size_t json_length)
{
    return (JOURNAL_ENTRY_HEADER_SIZE + json_length + 7) & ~(size_t)7;
}

static size_t
page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* The smallest chunk: the header page and one page of entries. */
static size_t
smallest_chunk_size(void)
{
    return JOURNAL_HEADER_SIZE + page_size();
}

size_t
durable_journal_smallest_bound(void)
{
    size_t share = JOURNAL_MIN_CHUNKS * smallest_chunk_size();
    return (share * 4 + 2) / 3;
}

/* The size of each chunk for `max_queue_bytes`: a multiple of the page
 * size, JOURNAL_MIN_CHUNKS of which fit in `share` (3/4 of the bound)
 * whenever the bound is at least durable_journal_smallest_bound(). */
static size_t
chunk_size_for(size_t max_queue_bytes, size_t share)
{
    size_t page = page_size();
    size_t size = max_queue_bytes / JOURNAL_CHUNKS_PER_BOUND;
    size = size < JOURNAL_MIN_CHUNK_BYTES ? JOURNAL_MIN_CHUNK_BYTES
           : size > JOURNAL_MAX_CHUNK_BYTES ? JOURNAL_MAX_CHUNK_BYTES
                                             : size;
    size = (size + page - 1) / page * page;
    if (size * JOURNAL_MIN_CHUNKS > share) {
        /* a small bound: smaller chunks, rather than mapped memory past it */
        size = share / JOURNAL_MIN_CHUNKS / page * page;
    }
    return size < smallest_chunk_size() ? smallest_chunk_size() : size;
}

durable_journal *
durable_journal_new(const char *dir, const char *target, size_t max_queue_bytes)
{
    durable_journal *journal = qbel_calloc(1, sizeof(*journal));
    if (journal == NULL) {
        return NULL;
    }
    journal->dir = qbel_strdup(dir);
    journal->target = qbel_strdup(target);
    if (journal->dir == NULL || journal->target == NULL) {
        qbel_free(journal->dir);
        qbel_free(journal->target);
        qbel_free(journal);
        return NULL;
    }
    /* The bound is shared: the chunks take at most 3/4 of it (at least
     * JOURNAL_MIN_CHUNKS chunks), the queue's stubs (about a quarter of an
     * entry's size for Querybook's events) the rest. */
    size_t share = max_queue_bytes / 4 * 3;
    journal->chunk_size = chunk_size_for(max_queue_bytes, share);
    journal->max_chunks = share / journal->chunk_size;
    if (journal->max_chunks < JOURNAL_MIN_CHUNKS) {
        journal->max_chunks = JOURNAL_MIN_CHUNKS;
    }
    size_t mapped = journal->max_chunks * journal->chunk_size;
    journal->heap_budget = mapped <= share ? max_queue_bytes - mapped : max_queue_bytes / 4;
    return journal;
}

/* No lock: unmap and close `chunk`, unlinking it first when `remove`. */
static void
chunk_free(journal_chunk *chunk, bool remove)
{
    if (remove && chunk->path != NULL) {
        unlink(chunk->path);
    }
    if (chunk->base != NULL) {
        munmap(chunk->base, chunk->size);
    }
    spool_fd_close_tracked(chunk->fd);
    qbel_free(chunk->path);
    qbel_free(chunk);
}

static void
free_list(journal_chunk *chunk, bool remove_unsettled)
{
    while (chunk != NULL) {
        journal_chunk *next = chunk->next;
        chunk_free(chunk, remove_unsettled || chunk->settled == chunk->appended);
        chunk = next;
    }
}

void
durable_journal_free(durable_journal *journal)
{
    if (journal == NULL) {
        return;
    }
    free_list(journal->active, false);
    free_list(journal->spare, true);
    free_list(journal->retired, true);
    qbel_free(journal->dir);
    qbel_free(journal->target);
    qbel_free(journal);
}

void
durable_journal_forget_in_child(durable_journal *journal)
{
    journal_chunk *lists[3] = {journal->active, journal->spare, journal->retired};
    for (size_t i = 0; i < 3; i++) {
        for (journal_chunk *chunk = lists[i]; chunk != NULL;) {
            journal_chunk *next = chunk->next;
            munmap(chunk->base, chunk->size); /* the parent's mapping stays */
            qbel_free(chunk->path);
            qbel_free(chunk);
            chunk = next;
        }
    }
    journal->active = journal->spare = journal->retired = NULL;
    journal->chunks = 0;
    journal->next_attempt = 0;
}

static void retire_settled_locked(durable_journal *journal);

int
durable_journal_append_locked(durable_journal *journal, const event_record *record,
                              bool *wake_out)
{
    size_t size = entry_size(record->json_length);
    journal_chunk *chunk = journal->active;
    while (chunk != NULL && chunk->next != NULL) {
        chunk = chunk->next; /* a handful of chunks at most */
    }
    if (chunk == NULL || chunk->size - chunk->used < size) {
        journal_chunk *spare = journal->spare;
        if (spare == NULL || spare->size - spare->used < size) {
            return 1;
        }
        journal->spare = NULL;
        spare->next = NULL;
        if (chunk != NULL) {
            chunk->next = spare;
        }
        else {
            journal->active = spare;
        }
        chunk = spare;
        *wake_out = true;
        retire_settled_locked(journal);
    }
    const journal_header *header = (const journal_header *)chunk->base;
    journal_entry *entry = (journal_entry *)(chunk->base + chunk->used);
    entry->length = (uint32_t)size;
    entry->batch_count = 0;
    entry->json_length = (uint32_t)record->json_length;
    entry->created_at_us = record->created_at_us;
    entry->uid = record->uid;
    entry->uid_is_null = record->uid_is_null;
    entry->event_type = record->event_type;
    memcpy((unsigned char *)entry + JOURNAL_ENTRY_HEADER_SIZE, record->json, record->json_length);
    /* last: a kill before this store leaves a stale commit word */
    __atomic_store_n(&entry->commit, header->generation, __ATOMIC_RELEASE);
    chunk->used += size;
    chunk->appended++;
    return 0;
}

journal_chunk *
durable_journal_pop_chunk_locked(durable_journal *journal, size_t max_count, size_t *count_out)
{
    for (journal_chunk *chunk = journal->active; chunk != NULL; chunk = chunk->next) {
        if (chunk->popped < chunk->appended) {
            size_t left = chunk->appended - chunk->popped;
            *count_out = left < max_count ? left : max_count;
            return chunk;
        }
    }
    *count_out = 0;
    return NULL;
}

void
durable_journal_note_pop_locked(journal_chunk *chunk, size_t count,
                                char batch_id[SINK_BATCH_ID_MAX + 1])
{
    const journal_header *header = (const journal_header *)chunk->base;
    snprintf(batch_id, SINK_BATCH_ID_MAX + 1, "j:%s:%lu", header->chunk_id,
             (unsigned long)chunk->popped);
    chunk->popped += (uint32_t)count;
}

event_record *
durable_journal_stub_new(const event_record *record)
{
    return event_record_new(record->created_at_us, record->uid, record->uid_is_null,
                            record->event_type, "", 0);
}

/* No lock.  A full record for `entry`, taking the header fields from
 * `stub` (they agree); on OOM it waits and tries again: the event is safe
 * in the chunk meanwhile, and the batch cannot be sent without it. */
static event_record *
record_from_entry(const journal_entry *entry, const event_record *stub)
{
    const char *json = (const char *)entry + JOURNAL_ENTRY_HEADER_SIZE;
    event_record *record;
    while ((record = event_record_new(stub->created_at_us, stub->uid, stub->uid_is_null,
                                      stub->event_type, json, entry->json_length)) == NULL) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return record;
}

void
durable_journal_mark_batch(journal_chunk *chunk, size_t count, event_record **records)
{
    if (chunk->pop_offset == 0) {
        chunk->pop_offset = JOURNAL_HEADER_SIZE;
    }
    journal_entry *first = (journal_entry *)(chunk->base + chunk->pop_offset);
    /* before the batch is sent: a replay then writes it under its id */
    __atomic_store_n(&first->batch_count, (uint32_t)count, __ATOMIC_RELEASE);
    for (size_t i = 0; i < count; i++) {
        const journal_entry *entry = (const journal_entry *)(chunk->base + chunk->pop_offset);
        event_record *stub = records[i];
        if (stub->json_length == 0 && entry->json_length != 0) {
            /* stored before the stub is freed: a fork() at any moment
             * leaves the child (which frees the batch) a live pointer */
            __atomic_store_n(&records[i], record_from_entry(entry, stub), __ATOMIC_RELEASE);
            event_record_free(stub);
        }
        chunk->pop_offset += entry->length;
    }
    chunk->marked += (uint32_t)count;
}

/* queue.lock held.  Move the leading chunks whose events are all settled
 * and that no longer take appends (one follows them) to `retired`. */
static void
retire_settled_locked(durable_journal *journal)
{
    journal_chunk *chunk;
    while ((chunk = journal->active) != NULL && chunk->next != NULL &&
           chunk->settled == chunk->appended) {
        journal->active = chunk->next;
        chunk->next = journal->retired;
        journal->retired = chunk;
    }
}

void
durable_journal_settle_locked(durable_journal *journal, size_t count)
{
    journal_chunk *chunk = journal->active;
    while (chunk != NULL && chunk->settled == chunk->appended) {
        chunk = chunk->next;
    }
    if (chunk != NULL) {
        chunk->settled += (uint32_t)count;
    }
    retire_settled_locked(journal);
}

bool
durable_journal_wants_spare_locked(const durable_journal *journal, double now)
{
    return journal->spare == NULL && now >= journal->next_attempt &&
           (journal->retired != NULL || journal->chunks < journal->max_chunks);
}

/* No lock.  Touch every page for writing, so that appends (under the
 * queue lock) take no page fault. */
static void
prefault(journal_chunk *chunk)
{
    size_t page = page_size();
    for (size_t offset = JOURNAL_HEADER_SIZE; offset < chunk->size; offset += page) {
        volatile unsigned char *byte = chunk->base + offset;
        *byte = *byte;
    }
}

/* No lock.  A new generation and id for `chunk` (new or reused); every
 * entry of its last use becomes stale at once. */
static void
reset_chunk(journal_chunk *chunk, const char *target)
{
    journal_header *header = (journal_header *)chunk->base;
    uint32_t generation = header->generation + 1;
    if (generation == 0) {
        generation = 1;
    }
    __atomic_store_n(&header->generation, generation, __ATOMIC_RELEASE);
    char hex[17];
    spool_random_hex(hex, 8);
    memset(header->chunk_id, 0, sizeof(header->chunk_id));
    memcpy(header->chunk_id, hex, 16);
    if (header->target[0] == '\0') {
        snprintf(header->target, sizeof(header->target), "%s", target);
        header->version = JOURNAL_VERSION;
        memcpy(header->magic, JOURNAL_MAGIC, sizeof(header->magic));
    }
    chunk->next = NULL;
    chunk->used = JOURNAL_HEADER_SIZE;
    chunk->appended = chunk->popped = chunk->settled = chunk->marked = 0;
    chunk->pop_offset = JOURNAL_HEADER_SIZE;
    prefault(chunk);
}

/* No lock.  Give the file `size` bytes of real zeros: the filesystem
 * reserves (or allocates) its blocks now, so a full disk shows here and
 * never as a SIGBUS in log() later.  No fdatasync: the blocks need not be
 * on disk (nothing in the journal is synced, see the header), and waiting
 * for the disk here held up the caller that makes a chunk when the thread
 * is busy.  0, or -1 (errno). */
static int
write_zeros(int fd, size_t size)
{
    static const char zeros[65536];
    for (size_t offset = 0; offset < size;) {
        size_t length = size - offset < sizeof(zeros) ? size - offset : sizeof(zeros);
        ssize_t written = pwrite(fd, zeros, length, (off_t)offset);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            if (written == 0) {
                errno = ENOSPC;
            }
            return -1;
        }
        offset += (size_t)written;
    }
    return 0;
}

/* No lock.  Create, lock, size and map a new chunk file in `journal->dir`.
 * NULL with errno set. */
static journal_chunk *
create_chunk(const durable_journal *journal)
{
    journal_chunk *chunk = qbel_calloc(1, sizeof(*chunk));
    char *temporary = NULL;
    if (chunk == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    chunk->fd = -1;
    chunk->size = journal->chunk_size;
    char file_id[SPOOL_FILE_ID_MAX];
    if (spool_make_directory(journal->dir) < 0) {
        goto error;
    }
    spool_make_file_id(file_id);
    chunk->path = spool_join_path(journal->dir, SPOOL_PREFIX, file_id, JOURNAL_SUFFIX);
    temporary = spool_join_path(journal->dir, TEMPORARY_PREFIX, file_id, JOURNAL_SUFFIX);
    if (chunk->path == NULL || temporary == NULL) {
        errno = ENOMEM;
        goto error;
    }
    chunk->fd = spool_fd_open_tracked(temporary, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (chunk->fd < 0) {
        goto error_unnamed;
    }
    if (write_zeros(chunk->fd, chunk->size) < 0) {
        goto error_temporary; /* ENOSPC: no chunk, rather than SIGBUS in log() later */
    }
    void *base = mmap(NULL, chunk->size, PROT_READ | PROT_WRITE, MAP_SHARED, chunk->fd, 0);
    if (base == MAP_FAILED) {
        goto error_temporary;
    }
    chunk->base = base;
    reset_chunk(chunk, journal->target);
    if (flock(chunk->fd, LOCK_EX) < 0 || rename(temporary, chunk->path) < 0) {
        goto error_temporary;
    }
    qbel_free(temporary);
    return chunk;

error_temporary:
    unlink(temporary);
error_unnamed:
error:;
    int saved = errno;
    if (chunk->base != NULL) {
        munmap(chunk->base, chunk->size);
    }
    spool_fd_close_tracked(chunk->fd);
    qbel_free(chunk->path);
    qbel_free(temporary);
    qbel_free(chunk);
    errno = saved;
    return NULL;
}

int
durable_journal_provide_spare_locked(durable_journal *journal, pthread_mutex_t *queue_lock,
                                     qbel_error *error)
{
    journal_chunk *chunk = journal->retired;
    if (chunk != NULL) {
        journal->retired = chunk->next;
    }
    else {
        journal->chunks++; /* counted now: no second maker passes the bound */
    }
    pthread_mutex_unlock(queue_lock);
    int saved = 0;
    if (chunk != NULL) {
        reset_chunk(chunk, journal->target);
    }
    else if ((chunk = create_chunk(journal)) == NULL) {
        saved = errno;
    }
    pthread_mutex_lock(queue_lock);
    journal->making_failed = chunk == NULL;
    if (chunk == NULL) {
        journal->chunks--;
        journal->next_attempt = event_queue_monotonic_now() + JOURNAL_RETRY_S;
        spool_explain_error(journal->dir, saved, error);
        return -1;
    }
    chunk->next = NULL;
    if (journal->active == NULL) {
        journal->active = chunk; /* the first: appends go straight to it */
    }
    else if (journal->spare == NULL) {
        journal->spare = chunk;
    }
    else {
        /* two makers raced (the first log() and the thread): keep it */
        chunk->next = journal->retired;
        journal->retired = chunk;
    }
    return 0;
}
