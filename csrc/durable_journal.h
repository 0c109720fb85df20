/* durable_journal: the crash-safe copy of the writer's queue
 * (durability="process") — memory-mapped chunk files in the spool
 * directory holding every queued event, so that a process killed with
 * SIGKILL loses nothing log() accepted, and their exactly-once replay.
 *
 * Owns: its chunks (file descriptor, path, mapping).  Pure C; it knows the
 * sink interface and the spool's replay of batches, never a sink.
 * durable_journal.c is the live side (appending, batch marks, release and
 * reuse of chunks); durable_replay.c replays the chunks of dead processes.
 *
 * One copy of each event: once its entry is in a chunk, the queue holds a
 * stub for it (the record's header, no event_data; see
 * durable_journal_stub_new), and the writer thread puts event_data back
 * into a batch's records from the chunk (durable_journal_mark_batch).
 *
 * Why it survives SIGKILL: a MAP_SHARED mapping of a file is the page
 * cache itself; a store into it is in the file the moment it is made, and
 * the kernel writes it back whatever happens to the process.  A machine
 * crash is another matter: nothing is msync'ed, so the last ~30 s of
 * entries (the kernel's writeback delay) may be lost or torn on disk.
 *
 * Chunk file "qbel-<yyyymmddHHMMSS>-<pid>-<random>.journal" (created as
 * ".tmp-..." and renamed once locked, like spool files), flock'ed by its
 * writer for as long as it is open, filled with zeros when made (its blocks
 * reserved: no SIGBUS on a full disk later; not synced),
 * and pre-faulted for writing, by the writer thread (or by a caller with
 * the GIL released, when the thread is busy sending), never under the
 * queue lock.  Layout, little-endian, host-aligned:
 *   page 0: header — magic "QBELJRN1", uint32 version, uint32 generation,
 *           char chunk_id[24] (hex, NUL-terminated), char target[512]
 *           (the sink's identity; never a password).
 *   then entries, 8-aligned, back to back:
 *     uint32 commit       generation of the chunk; stored LAST (release),
 *                         so an entry torn by a kill mid-copy has a stale
 *                         value and ends the chunk for the reader
 *     uint32 length       bytes of the whole entry, header included
 *     uint32 batch_count  0, or: the writer sent the batch of this entry
 *                         and the next batch_count-1 as batch id
 *                         "j:<chunk_id>:<index of this entry>"
 *     uint32 json_length
 *     int64  created_at_us
 *     int32  uid, uint8 uid_is_null, uint8 event_type, uint8 pad[2]
 *     char   json[json_length]
 * A chunk is reused once every event in it is settled: the generation is
 * bumped first (every old entry becomes stale at once) and a new chunk_id
 * drawn, so batch ids of two uses never collide.
 *
 * Exactly-once: the writer marks batch_count in a batch's first entry
 * before it sends the batch (batches never span chunks), and the sink
 * commits the batch with its marker row.  Replay writes each marked batch
 * under the same id (skipped when its marker exists: a kill between COMMIT
 * and the chunk's release doubles nothing), and the unmarked tail (never
 * sent) in groups of SPOOL_REPLAY_GROUP_LINES under "j:<chunk_id>:<index>"
 * (deterministic: a replay killed midway and run again doubles nothing).
 *
 * Threads: durable_journal_*_locked need the writer's queue.lock; the
 * others say who calls them.
 */
#ifndef QBEL_DURABLE_JOURNAL_H
#define QBEL_DURABLE_JOURNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_record.h"
#include "qbel_error.h"
#include "spool.h"

#define JOURNAL_SUFFIX ".journal"
#define JOURNAL_MAGIC "QBELJRN1"
#define JOURNAL_VERSION 1u
#define JOURNAL_HEADER_SIZE ((size_t)4096)
#define JOURNAL_ENTRY_HEADER_SIZE ((size_t)32)
#define JOURNAL_CHUNK_ID_SIZE 24
/* Chunk size: 1/JOURNAL_CHUNKS_PER_BOUND of max_queue_bytes, within
 * [JOURNAL_MIN_CHUNK_BYTES, JOURNAL_MAX_CHUNK_BYTES] — except that a small
 * bound gets smaller chunks (down to the header page and one page of
 * entries), so that JOURNAL_MIN_CHUNKS of them still fit in its 3/4. */
#define JOURNAL_MIN_CHUNK_BYTES ((size_t)64 << 10)
#define JOURNAL_MAX_CHUNK_BYTES ((size_t)4 << 20)
#define JOURNAL_CHUNKS_PER_BOUND 16
/* A journal can always make this many chunks: one taking appends, one
 * ready to take over, one whose batch is still in flight. */
#define JOURNAL_MIN_CHUNKS ((size_t)3)

/* The on-disk header of a chunk (page 0). */
typedef struct journal_header {
    char magic[8];
    uint32_t version;
    uint32_t generation;
    char chunk_id[JOURNAL_CHUNK_ID_SIZE];
    char target[SINK_IDENTITY_MAX];
} journal_header;

/* One entry's fixed part. */
typedef struct journal_entry {
    uint32_t commit;
    uint32_t length;
    uint32_t batch_count;
    uint32_t json_length;
    int64_t created_at_us;
    int32_t uid;
    uint8_t uid_is_null;
    uint8_t event_type;
    uint8_t pad[2];
} journal_entry;

typedef struct journal_chunk {
    struct journal_chunk *next;
    int fd;
    char *path;             /* qbel_malloc'd */
    unsigned char *base;    /* the mapping, `size` bytes */
    size_t size;
    size_t used;            /* (L) end of the last entry */
    uint32_t appended;      /* (L) entries in this use */
    uint32_t popped;        /* (L) entries taken into batches */
    uint32_t settled;       /* (L) entries whose batch is done */
    size_t pop_offset;      /* (T) offset of the first entry not yet marked */
    uint32_t marked;        /* (T) entries marked into batches */
} journal_chunk;

typedef struct durable_journal {
    char *dir;              /* qbel_malloc'd */
    char *target;           /* qbel_malloc'd */
    size_t chunk_size;
    size_t max_chunks;      /* chunks * chunk_size: at most 3/4 of the bound */
    size_t heap_budget;     /* what the bound leaves the queue's stubs */
    size_t chunks;          /* (L) every chunk made, in any list */
    journal_chunk *active;  /* (L) oldest first; the last one takes appends */
    journal_chunk *spare;   /* (L) ready to take appends (one at most) */
    journal_chunk *retired; /* (L) every event settled: to be reused */
    double next_attempt;    /* (T) when making a chunk may be tried again */
    bool making_failed;     /* (L) the last try to make a chunk failed */
    bool bypassed;          /* (L) no chunk could be made: events are queued
                             * whole, in memory only, until the queue empties
                             * (stubs and whole records never mix) */
} durable_journal;

/* The smallest max_queue_bytes a journal fits in: JOURNAL_MIN_CHUNKS of
 * the smallest chunks (the header page and one page of entries) in 3/4 of
 * it — 32 KiB with 4 KiB pages.  Below it durability "process" cannot keep
 * the bound: db_logger.c refuses an explicit "process" and falls back to
 * "memory" for the default. */
size_t durable_journal_smallest_bound(void);

/* New journal for chunks of `dir` (created when missing) tagged with
 * `target`, sharing the bound `max_queue_bytes` (at least
 * durable_journal_smallest_bound()) with the queue: its chunks (page
 * cache, mapped: they count in RSS) take at most 3/4 of it, and
 * heap_budget says what is left for the queue's stubs.  An event whose
 * entry is larger than a chunk goes to a spool file instead.  NULL on OOM. */
durable_journal *durable_journal_new(const char *dir, const char *target,
                                     size_t max_queue_bytes);

/* Release every chunk: unmap and close (unlocking) each; a chunk with
 * events not settled stays on disk for a replay, the others are removed.
 * Then free the journal.  No lock; nobody else may use it any more. */
void durable_journal_free(durable_journal *journal);

/* In a forked child: the descriptors are closed already (tracked); unmap
 * the parent's chunks (the files are the parent's) and free the journal. */
void durable_journal_forget_in_child(durable_journal *journal);

/* queue.lock held.  Copy `record` into the appending chunk, switching to
 * the spare when it is full.  0 done; 1 no room (no spare ready, or the
 * record is larger than a chunk): the caller does not queue it.
 * *wake_out is set when the spare was taken (the thread makes another). */
int durable_journal_append_locked(durable_journal *journal, const event_record *record,
                                  bool *wake_out);

/* queue.lock held, writer thread.  The chunk the next popped records come
 * from and how many of the next `max_count` it holds (batches never span
 * chunks), or NULL when it holds none. */
journal_chunk *durable_journal_pop_chunk_locked(durable_journal *journal, size_t max_count,
                                                size_t *count_out);

/* queue.lock held, writer thread: `count` records of `chunk` were popped
 * into a batch; its id ("j:<chunk_id>:<index>") into `batch_id`. */
void durable_journal_note_pop_locked(journal_chunk *chunk, size_t count,
                                     char batch_id[SINK_BATCH_ID_MAX + 1]);

/* Writer thread, no lock: mark the next `count` entries of `chunk` as one
 * batch (batch_count in the first), before the batch is sent, and give
 * the batch's records (`records`, popped from the queue: stubs holding the
 * header alone, see durable_journal_stub_new) their event_data from the
 * entries: each stub is replaced by a full record and freed.  On OOM it
 * waits and tries again (the events are safe in the chunk). */
void durable_journal_mark_batch(journal_chunk *chunk, size_t count, event_record **records);

/* Any thread, no lock: what the queue holds for `record` once its entry
 * is in a chunk — a record with its header and no event_data (the chunk
 * holds that: one copy of each event, not two).  NULL on OOM. */
event_record *durable_journal_stub_new(const event_record *record);

/* queue.lock held, writer thread: the oldest batch in flight (`count`
 * records) is done (committed, dead-lettered or dropped); a chunk whose
 * events are all settled and that no longer takes appends is retired. */
void durable_journal_settle_locked(durable_journal *journal, size_t count);

/* queue.lock held: should the writer thread make (or reuse) a spare now? */
bool durable_journal_wants_spare_locked(const durable_journal *journal, double now);

/* Writer thread (or construction), queue.lock held on entry and exit and
 * released across the file I/O: make the spare chunk — a retired one
 * reset, or a new file.  0, or -1 with `error` set (next try in 1 s). */
int durable_journal_provide_spare_locked(durable_journal *journal, pthread_mutex_t *queue_lock,
                                         qbel_error *error);

/* Replay every journal chunk in `dir` not locked by anyone (see
 * "Exactly-once" above), removing each once all of it is committed (or
 * dead-lettered).  A chunk for another target is left alone (unless
 * context->adopt_all).  0, or -1 (error set; the rest are left). */
int durable_replay_directory(spool_replay_context *context, const char *dir,
                             spool_replay_result *result);

#endif
