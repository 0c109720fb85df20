/* spool: the writer's files on disk — spool files (events not yet
 * committed, one JSON line each), the dead-letter file (events the server
 * rejected or that could not be read back), and their exactly-once replay.
 *
 * Owns: the file descriptors and paths of the files it opens.  Pure C; it
 * knows the sink interface (sink.h), never a particular sink.  One header,
 * one file per concern: spool_fds.c (descriptors tracked for fork),
 * spool_files.c (the directory and the files one process appends to),
 * spool_lines.c (the line format), dead_letters.c (dead letters and
 * rejection lists), spool_replay.c (exactly-once replay).
 *
 * Line format (event_data last, so replay passes its raw bytes on verbatim;
 * our JSON never contains a raw newline):
 *   {"created_at":"2023-11-14T22:13:20.123456+00:00","uid":5,
 *    "event_type":"CLICK","batch":"<batch id or empty>",
 *    "target":"mysql://user@host:3306/db#event_log","event_data":{...}}
 * event_data is any JSON value; `null` (event_data=None) is kept as `null`
 * in spool and dead-letter lines and becomes SQL NULL when inserted.
 * `target` is the identity of the sink the line is for (sink.h: server,
 * database and table, never a password).  Dead-letter lines carry it too
 * (for a line that could not be read back: the target of the replay that
 * found it).
 *
 * Targets at replay: a replay writes the lines for its own target, and
 * the lines with no target (written by versions before targets were
 * recorded), into its sink.  A file holding only lines for other targets
 * is left as it is, for their loggers.  A file holding both has its
 * foreign lines moved into a new spool file of their own (each keeping its
 * batch id; a positional line gets its group's id "s:<file id>:<group>"
 * written out, so a group another logger replayed before is still
 * recognised), synced before the old file is removed.
 * File names: qbel-<UTC yyyymmddHHMMSS>-<pid>-<random>.spool, so that a
 * plain sort puts the oldest first; dead letters go to
 * qbel-dead-<UTC yyyymmddHHMMSS>-<pid>-<random>.jsonl.
 *
 * Locking: the process appending to a spool file holds flock(LOCK_EX) on it
 * for as long as the file is open; a replayer claims a file with
 * flock(LOCK_EX|LOCK_NB) and skips it when locked, so no file is replayed
 * by two processes or while it is still being written.  A file is created
 * under a name replay ignores, locked, then renamed into place.
 *
 * Exactly-once replay: lines that carry a batch id are written as that
 * batch (skipped when its marker row exists); the other lines are grouped
 * by position (SPOOL_REPLAY_GROUP_LINES per group, counted from the start of
 * the file) under the batch id "s:<file id>:<group>", skipped likewise.
 * Replaying a file again, or after a crash mid-replay, writes nothing twice.
 *
 * No silent loss: a row the server rejected that the dead-letter file
 * cannot take (disk full, read-only directory) is counted as dropped, and
 * a replay that dropped one, or could not dead-letter an unreadable line,
 * keeps the file (-1, error set).
 */
#ifndef QBEL_SPOOL_H
#define QBEL_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "byte_buffer.h"
#include "event_record.h"
#include "qbel_error.h"
#include "sink.h"

#define SPOOL_REPLAY_GROUP_LINES 1000
#define SPOOL_FILE_ID_MAX 48

/* A spool file its owner appends to (and later replays, still locked). */
typedef struct spool_file {
    int fd;       /* -1: none open */
    char *path;   /* malloc'd */
    char file_id[SPOOL_FILE_ID_MAX]; /* "<yyyymmddHHMMSS>-<pid>-<random>" */
    uint64_t lines;  /* complete lines in the file */
    uint64_t size;   /* bytes in the file */
    bool dirty;      /* appended since the last spool_file_sync */
} spool_file;

void spool_file_init(spool_file *file);

/* Create a new, locked, empty spool file in `dir` (creating `dir` when
 * missing: nothing creates it earlier).  0, or -1 (errno). */
int spool_file_create(spool_file *file, const char *dir);

/* Append the line of `record` (with `batch_id`, "" for none, and `target`,
 * the sink's identity) to `out`.  0, or -1 on OOM. */
int spool_format_line(byte_buffer *out, const event_record *record, const char *batch_id,
                      const char *target);

/* Append `length` bytes holding `lines` complete lines with one write
 * loop.  On failure the file is truncated back so no torn line remains.
 * 0, or -1 (errno). */
int spool_file_append(spool_file *file, const char *data, size_t length, uint64_t lines);

/* fdatasync when dirty.  0, or -1 (errno). */
int spool_file_sync(spool_file *file);

/* Close (releasing the lock); unlink first when `unlink_it`. */
void spool_file_close(spool_file *file, bool unlink_it);

/* In a forked child, after spool_fork_child closed every tracked
 * descriptor (this one included): forget the file; the lock stays the
 * parent's. */
void spool_file_forget_in_child(spool_file *file);

/* Descriptors of locked spool files.  flock locks belong to the open file
 * description, which a forked child shares: a child keeping a copy would
 * hold the parent's lock for as long as it lives.  So every descriptor of
 * a spool file (and every dup of one) is opened and closed through these,
 * which keep a process-wide list under one lock, and the fork handlers
 * close the whole list in the child.  The lock is a leaf: nothing else is
 * taken while it is held.  -1 with errno set on failure. */
int spool_fd_open_tracked(const char *path, int flags, mode_t mode);
int spool_fd_dup_tracked(int fd);
void spool_fd_close_tracked(int fd);

/* pthread_atfork handlers (called from writer.c's): prepare takes the list
 * lock, parent releases it, child closes every listed descriptor. */
void spool_fork_prepare(void);
void spool_fork_parent(void);
void spool_fork_child(void);

/* Unlink ".tmp-" spool files in `dir` (left by processes that died between
 * creating and renaming one) older than `max_age_s` and not locked by
 * anyone.  Best effort; returns how many were removed. */
size_t spool_remove_stale_temporaries(const char *dir, double max_age_s);

/* The dead-letter file of one writer (or replay), created (with its
 * directory, under a fresh name, O_EXCL|O_NOFOLLOW|O_NONBLOCK) on first
 * use.  With no directory, dead letters go to stderr (never silently
 * dropped). */
typedef struct dead_letter {
    char *dir;    /* qbel_malloc'd, or NULL */
    char *target; /* qbel_malloc'd: the sink's identity, on every line */
    int fd;
    int error;    /* errno of the last failed write, 0 when none failed */
} dead_letter;

/* 0, or -1 on OOM. */
int dead_letter_init(dead_letter *letters, const char *dir, const char *target);
void dead_letter_close(dead_letter *letters);
void dead_letter_forget_in_child(dead_letter *letters);

/* Write one rejected record with the reason (the server's message).
 * 0, or -1 (errno, and letters->error). */
int dead_letter_write_record(dead_letter *letters, const char *reason,
                             const event_record *record, const char *batch_id);

/* Write a line that could not be read back, with where it came from.
 * 0, or -1 (errno, and letters->error). */
int dead_letter_write_raw(dead_letter *letters, const char *reason, const char *source,
                          uint64_t line_number, const char *raw, size_t length);

/* Rejections collected during a write attempt; written to the dead-letter
 * file only once the batch is known to be committed. */
typedef struct rejection_list {
    sink_rejection *items;
    size_t count, capacity;
} rejection_list;

/* Dead-letter every rejection of `list` (rows of batch `batch_id`): how
 * many were written.  The caller counts the others as dropped. */
size_t dead_letter_write_rejections(dead_letter *letters, const rejection_list *list,
                                    const char *batch_id);

void rejection_list_clear(rejection_list *list);
void rejection_list_free(rejection_list *list);
/* on_rejected callback for sink_write_batch; `context` is a
 * rejection_list.  A rejection it cannot remember (OOM) is left out: the
 * sink's rejected count minus what was dead-lettered is what was dropped. */
void rejection_list_collect(void *context, const sink_rejection *rejection);

/* What a replay did. */
typedef struct spool_replay_result {
    uint64_t lines;         /* lines handled, files completed only */
    uint64_t replayed;      /* rows committed */
    uint64_t dead_lettered; /* rows rejected or unreadable */
    uint64_t skipped;       /* rows of groups found already committed */
    uint64_t files;         /* files completed (and unlinked) */
    uint64_t dropped;       /* rejected rows the dead-letter file could not take */
    uint64_t moved;         /* lines for other targets moved to a file of their own */
    uint64_t left;          /* files left alone: only lines for other targets */
} spool_replay_result;

typedef struct spool_replay_context {
    sink *sink;             /* connected */
    const char *target;     /* the sink's identity: which lines are ours */
    const char *dir;        /* where foreign lines are moved to */
    bool adopt_all;         /* every line is ours, whatever its target (moving a spool
                             * directory to another server on purpose) */
    dead_letter *letters;
    bool (*should_stop)(void *argument); /* polled between groups; may be NULL */
    void *argument;
    qbel_error error;       /* why a replay stopped */
} spool_replay_context;

/* Replay the claimed (locked) spool file `fd` named `name`: the lines for
 * context->target (or with no target) into the sink, exactly once; lines
 * for other targets moved out (see "Targets at replay").  Lines that
 * cannot be read back are dead-lettered only once every group of the file
 * is committed, so a replay that fails and is retried never dead-letters
 * them twice.  0 complete (the caller unlinks the file), 1 the file holds
 * only lines for other targets (leave it), -1 stopped or failed (error
 * set; the file may be replayed again, exactly once still). */
int spool_replay_fd(spool_replay_context *context, int fd, const char *name,
                    spool_replay_result *result);

/* Write `count` records as batch `batch_id` exactly once: skipped when its
 * marker exists; after an ambiguous connection error, reconnect once and
 * look again; rejected rows dead-lettered (or counted as dropped).  The
 * records stay the caller's.  0, or -1 (context->error set). */
int spool_replay_write_batch(spool_replay_context *context, const char *batch_id,
                             event_record *const *records, size_t count,
                             spool_replay_result *result);

/* Claim and replay every spool file in `dir` not locked by anyone (oldest
 * first), unlinking each once complete.  `dir` must pass
 * spool_check_directory (else -1, error says why; a missing `dir` is 0).
 * Entries that are not trusted spool files -- a name that does not parse
 * or is too long, a directory, FIFO, socket or symlink, a file owned by
 * another uid -- are skipped and left in place; they never stop the files
 * after them.  Files are opened O_NOFOLLOW|O_NONBLOCK and checked with
 * fstat before anything is read.  Each skipped entry is reported once per
 * process: after the scan, when new ones were skipped, -1 with the error
 * naming the first (and how many more).  0, or -1 when one failed (error
 * set; the rest are left for later). */
int spool_replay_directory(spool_replay_context *context, const char *dir,
                           spool_replay_result *result);

/* mkdir -p `dir` (mode 0700 for what it creates), then verify it as
 * spool_check_directory does (and, when this call created it, that its
 * mode is exactly 0700).  An existing `dir` is only verified.  0, or -1
 * (errno: EPERM not ours / group- or other-writable, ENOTDIR, ELOOP a
 * symlink, or mkdir's). */
int spool_make_directory(const char *dir);

/* A spool directory is trusted only when lstat shows a directory (not a
 * symlink) owned by the effective uid and not writable by group or
 * others.  0, or -1 with errno set and `error` saying why (naming the
 * directory, the owner or mode found). */
int spool_check_directory(const char *dir, qbel_error *error);

/* Why writing in spool directory `dir` failed with `error_number`: what
 * spool_check_directory finds wrong with it (owner, mode, type, and what
 * is expected), else the directory and strerror. */
void spool_explain_error(const char *dir, int error_number, qbel_error *error);

/* `bytes` random bytes as lowercase hex into `out` (2*bytes+1). */
void spool_random_hex(char *out, size_t bytes);

#endif
