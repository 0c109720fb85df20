/* spool_replay.c: exactly-once replay of spool files (see spool.h) —
 * claiming files in a directory (skipping and reporting untrusted
 * entries), grouping their lines into batches, writing them through the
 * sink, dead-lettering what cannot be read back.  Runs on the writer
 * thread, or a replaying caller with the GIL released. */
#include <dirent.h>
#include <pthread.h>
#include <sys/file.h>

#include "spool.h"
#include "spool_internal.h"
#include "qbel_alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* Records of one pending group and the batch id they are written as. */
typedef struct replay_group {
    event_record **records;
    size_t count, capacity;
    char batch_id[SINK_BATCH_ID_MAX + 1];
    int64_t number; /* positional group number, -1 for a carried batch id */
} replay_group;

static void
replay_group_reset(replay_group *group)
{
    for (size_t i = 0; i < group->count; i++) {
        event_record_free(group->records[i]);
    }
    group->count = 0;
    group->batch_id[0] = '\0';
    group->number = -1;
}

static int
replay_group_add(replay_group *group, event_record *record)
{
    if (group->count == group->capacity) {
        size_t capacity = group->capacity ? group->capacity * 2 : 64;
        event_record **grown = qbel_realloc(group->records, capacity * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        group->records = grown;
        group->capacity = capacity;
    }
    group->records[group->count++] = record;
    return 0;
}

static void
describe_failure(spool_replay_context *context, const char *what)
{
    const char *sink_error = sink_last_error(context->sink);
    qbel_error_set(&context->error, QBEL_ERROR_OTHER, "%s: %s", what,
             sink_error && *sink_error ? sink_error : "unknown error");
}

int
spool_replay_write_batch(spool_replay_context *context, const char *batch_id,
                         event_record *const *records, size_t count,
                         spool_replay_result *result)
{
    if (count == 0) {
        return 0;
    }
    sink_status status;
    int committed = sink_batch_committed(context->sink, batch_id, &status);
    if (committed < 0) {
        describe_failure(context, "checking a replayed batch");
        return -1;
    }
    if (committed == 1) {
        result->skipped += count;
        return 0;
    }
    rejection_list rejections = {NULL, 0, 0};
    size_t rejected = 0;
    status = sink_write_batch(context->sink, batch_id, records, count, rejection_list_collect,
                              &rejections, &rejected);
    if (status == SINK_CONNECTION_ERROR) {
        describe_failure(context, "replaying a batch");
        sink_disconnect(context->sink);
        if (sink_connect(context->sink) == SINK_OK &&
            sink_batch_committed(context->sink, batch_id, &status) == 1) {
            status = SINK_OK;
        }
        else {
            status = SINK_CONNECTION_ERROR;
        }
    }
    else if (status != SINK_OK) {
        describe_failure(context, "replaying a batch");
    }
    if (status != SINK_OK) {
        rejection_list_free(&rejections);
        return -1;
    }
    size_t kept = dead_letter_write_rejections(context->letters, &rejections, batch_id);
    result->dead_lettered += kept;
    result->dropped += rejected - kept; /* rejected and not kept: counted, never silent */
    result->replayed += count - rejected;
    rejection_list_free(&rejections);
    return 0;
}

/* Write `group` exactly once (spool_replay_write_batch), then empty it. */
static int
replay_group_write(spool_replay_context *context, replay_group *group,
                   spool_replay_result *result)
{
    if (spool_replay_write_batch(context, group->batch_id, group->records, group->count,
                                 result) < 0) {
        return -1;
    }
    replay_group_reset(group);
    return 0;
}

/* A line of a file being replayed, found again later by its offset: one
 * that could not be read back (dead-lettered once the file's groups are
 * all committed) or one for another target (moved to a file of its own). */
typedef struct line_ref {
    off_t offset;
    uint64_t number; /* 1-based */
} line_ref;

typedef struct line_list {
    line_ref *items; /* qbel_malloc'd */
    char (*why)[256]; /* per item, for bad lines only (NULL otherwise) */
    size_t count, capacity;
} line_list;

/* 0, or -1 on OOM.  `why` NULL for a list without reasons. */
static int
line_list_add(line_list *list, off_t offset, uint64_t number, const char *why)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 8;
        line_ref *grown = qbel_realloc(list->items, capacity * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        list->items = grown;
        if (why != NULL) {
            char(*reasons)[256] = qbel_realloc(list->why, capacity * sizeof(*reasons));
            if (reasons == NULL) {
                return -1;
            }
            list->why = reasons;
        }
        list->capacity = capacity;
    }
    list->items[list->count] = (line_ref){offset, number};
    if (why != NULL) {
        snprintf(list->why[list->count], sizeof(list->why[0]), "%s", why);
    }
    list->count++;
    return 0;
}

static void
line_list_free(line_list *list)
{
    qbel_free(list->items);
    qbel_free(list->why);
}

/* One spool file being replayed (spool_replay_fd's state). */
typedef struct replay_file {
    spool_replay_context *context;
    const char *base;                /* the file's name, for messages */
    char file_id[SPOOL_FILE_ID_MAX]; /* of positional group ids */
    FILE *stream;                    /* on a tracked dup of the claimed fd */
    char *line;                      /* getline's buffer (libc's) */
    size_t line_capacity;
    replay_group positional, carried;
    line_list bad_lines, foreign;
    uint64_t own_lines;              /* lines for this target (or none named) */
    spool_replay_result local;
} replay_file;

/* The batch id positional line `number` (0-based) is written under. */
static int
positional_group_id(const replay_file *file, uint64_t number, char out[SINK_BATCH_ID_MAX + 1])
{
    char group_id[96];
    snprintf(group_id, sizeof(group_id), "s:%s:%" PRIu64, file->file_id,
             number / SPOOL_REPLAY_GROUP_LINES);
    if (strlen(group_id) > SINK_BATCH_ID_MAX) {
        qbel_error_set(&file->context->error, QBEL_ERROR_OTHER, "spool file name too long: %s",
                       file->base);
        return -1;
    }
    memcpy(out, group_id, strlen(group_id) + 1);
    return 0;
}

/* Read line `ref` again into file->line; its length without the newline,
 * or -1 (error set). */
static ssize_t
read_again(replay_file *file, const line_ref *ref)
{
    ssize_t length;
    if (fseeko(file->stream, ref->offset, SEEK_SET) < 0 ||
        (length = getline(&file->line, &file->line_capacity, file->stream)) <= 0) {
        qbel_error_set(&file->context->error, errno, "reading %s again: %s", file->base,
                       strerror(errno));
        return -1;
    }
    return length - (file->line[length - 1] == '\n' ? 1 : 0);
}

/* Add an own record (ownership taken, freed on failure) to its group,
 * writing the group before when the record starts another.  0 or -1. */
static int
replay_own_record(replay_file *file, event_record *record, const char *batch_id,
                  uint64_t number)
{
    spool_replay_context *context = file->context;
    replay_group *group = &file->carried;
    int64_t group_number = -1;
    if (batch_id[0] == '\0') {
        group = &file->positional;
        group_number = (int64_t)(number / SPOOL_REPLAY_GROUP_LINES);
    }
    bool starts_another = group->count > 0 &&
                          (batch_id[0] != '\0' ? strcmp(group->batch_id, batch_id) != 0
                                               : group->number != group_number);
    if (starts_another) {
        if (replay_group_write(context, group, &file->local) < 0) {
            goto error;
        }
        if (batch_id[0] == '\0' && context->should_stop &&
            context->should_stop(context->argument)) {
            qbel_error_set(&context->error, QBEL_ERROR_OTHER, "stopped");
            goto error;
        }
    }
    if (batch_id[0] != '\0') {
        memcpy(group->batch_id, batch_id, strlen(batch_id) + 1);
    }
    else if (positional_group_id(file, number, group->batch_id) < 0) {
        goto error;
    }
    group->number = group_number;
    if (replay_group_add(group, record) < 0) {
        qbel_error_set(&context->error, ENOMEM, "out of memory");
        goto error;
    }
    return 0;
error:
    event_record_free(record);
    return -1;
}

/* Read every line: own records into their groups (written as they fill),
 * bad and foreign lines remembered by offset.  0 or -1 (error set). */
static int
replay_read_lines(replay_file *file)
{
    spool_replay_context *context = file->context;
    uint64_t line_index = 0;
    off_t offset = 0;
    ssize_t length;
    while ((length = getline(&file->line, &file->line_capacity, file->stream)) >= 0) {
        uint64_t number = line_index++;
        off_t line_offset = offset;
        offset += length;
        if (length == 0) {
            continue;
        }
        file->local.lines++;
        bool torn = file->line[length - 1] != '\n';
        size_t content = (size_t)length - (torn ? 0 : 1);
        if (content == 0) {
            continue;
        }
        char batch_id[SINK_BATCH_ID_MAX + 1];
        char target[SINK_IDENTITY_MAX];
        char why[256];
        event_record *record = NULL;
        if (torn) {
            snprintf(why, sizeof(why), "torn last line (no newline) in %s", file->base);
        }
        else {
            record = spool_parse_line(file->line, content, batch_id, target, why, sizeof(why));
        }
        int status;
        if (record == NULL) {
            /* dead-lettered once the file is done: a failed and retried
             * replay must not write it twice */
            status = line_list_add(&file->bad_lines, line_offset, number + 1, why);
        }
        else if (!context->adopt_all && target[0] != '\0' &&
                 strcmp(target, context->target) != 0) {
            event_record_free(record);
            status = line_list_add(&file->foreign, line_offset, number + 1, NULL);
        }
        else {
            file->own_lines++;
            if (replay_own_record(file, record, batch_id, number) < 0) {
                return -1;
            }
            continue;
        }
        if (status < 0) {
            qbel_error_set(&context->error, ENOMEM, "out of memory");
            return -1;
        }
    }
    if (ferror(file->stream)) {
        qbel_error_set(&context->error, errno, "reading %s: %s", file->base, strerror(errno));
        return -1;
    }
    return 0;
}

/* Append the line `ref` (for another target) to `lines`, its positional
 * group made explicit: whoever replays it later writes it under the batch
 * id it has here, so a group half-replayed before is never written twice.
 * 0 or -1 (error set). */
static int
format_foreign_line(replay_file *file, const line_ref *ref, byte_buffer *lines)
{
    ssize_t content = read_again(file, ref);
    if (content < 0) {
        return -1;
    }
    char batch_id[SINK_BATCH_ID_MAX + 1];
    char target[SINK_IDENTITY_MAX];
    char why[256];
    event_record *record = spool_parse_line(file->line, (size_t)content, batch_id, target, why,
                                            sizeof(why));
    if (record == NULL) {
        qbel_error_set(&file->context->error, QBEL_ERROR_OTHER, "reading %s again: %s",
                       file->base, why);
        return -1;
    }
    int status = 0;
    if (batch_id[0] == '\0') {
        status = positional_group_id(file, ref->number - 1, batch_id);
    }
    if (status == 0 && spool_format_line(lines, record, batch_id, target) < 0) {
        qbel_error_set(&file->context->error, ENOMEM, "out of memory");
        status = -1;
    }
    event_record_free(record);
    return status;
}

/* Move the lines for other targets into a new spool file of their own in
 * context->dir (synced before this file may go).  0 or -1 (error set; the
 * new file is removed, this one stays). */
static int
move_foreign_lines(replay_file *file)
{
    spool_replay_context *context = file->context;
    if (file->foreign.count == 0) {
        return 0;
    }
    if (context->dir == NULL) {
        qbel_error_set(&context->error, QBEL_ERROR_OTHER,
                       "%s holds lines for another target and there is no spool directory",
                       file->base);
        return -1;
    }
    spool_file moved;
    if (spool_file_create(&moved, context->dir) < 0) {
        qbel_error_set(&context->error, errno, "moving lines for other targets out of %s: %s",
                       file->base, strerror(errno));
        return -1;
    }
    byte_buffer lines;
    byte_buffer_init(&lines, NULL, 0);
    int status = 0;
    size_t pending = 0;
    for (size_t i = 0; i < file->foreign.count && status == 0; i++) {
        status = format_foreign_line(file, &file->foreign.items[i], &lines);
        pending++;
        bool last = i + 1 == file->foreign.count;
        if (status == 0 && (lines.length >= (1 << 20) || last)) {
            if (spool_file_append(&moved, lines.data, lines.length, pending) < 0 ||
                (last && spool_file_sync(&moved) < 0)) {
                qbel_error_set(&context->error, errno, "writing %s: %s", moved.path,
                               strerror(errno));
                status = -1;
            }
            lines.length = 0;
            pending = 0;
        }
    }
    byte_buffer_release(&lines);
    spool_file_close(&moved, status < 0);
    if (status == 0) {
        file->local.moved += file->foreign.count;
    }
    return status;
}

/* Dead-letter the lines that could not be read back.  0 or -1 (error set). */
static int
dead_letter_bad_lines(replay_file *file)
{
    for (size_t i = 0; i < file->bad_lines.count; i++) {
        const line_ref *ref = &file->bad_lines.items[i];
        ssize_t content = read_again(file, ref);
        if (content < 0) {
            return -1;
        }
        if (dead_letter_write_raw(file->context->letters, file->bad_lines.why[i], file->base,
                                  ref->number, file->line, (size_t)content) < 0) {
            qbel_error_set(&file->context->error, errno, "writing the dead-letter file: %s",
                           strerror(errno));
            return -1;
        }
        file->local.dead_lettered++;
    }
    return 0;
}

/* After every line was read: 1 when the file holds only lines for other
 * targets (left as it is), else write the last groups, move the foreign
 * lines out, dead-letter the bad ones: 0, or -1 (error set). */
static int
replay_finish(replay_file *file)
{
    if (file->own_lines == 0 && file->bad_lines.count == 0 && file->foreign.count > 0) {
        return 1;
    }
    if (replay_group_write(file->context, &file->carried, &file->local) < 0 ||
        replay_group_write(file->context, &file->positional, &file->local) < 0) {
        return -1;
    }
    if (file->local.dropped > 0) {
        /* rows the server rejected and the dead-letter file could not
         * take: counted as dropped; the file stays for its other lines */
        qbel_error_set(&file->context->error, file->context->letters->error,
                       "writing the dead-letter file: %s (%" PRIu64 " rejected rows dropped)",
                       strerror(file->context->letters->error), file->local.dropped);
        return -1;
    }
    if (move_foreign_lines(file) < 0 || dead_letter_bad_lines(file) < 0) {
        return -1;
    }
    return 0;
}

int
spool_replay_fd(spool_replay_context *context, int fd, const char *name,
                spool_replay_result *result)
{
    replay_file file;
    memset(&file, 0, sizeof(file));
    file.context = context;
    file.positional.number = file.carried.number = -1;
    /* "qbel-<file id>.spool" -> file id */
    file.base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    size_t base_length = strlen(file.base);
    size_t affixes = strlen(SPOOL_PREFIX) + strlen(SPOOL_SUFFIX);
    if (base_length <= affixes || base_length - affixes >= SPOOL_FILE_ID_MAX) {
        qbel_error_set(&context->error, QBEL_ERROR_OTHER, "not a spool file name: %s", file.base);
        return -1;
    }
    memcpy(file.file_id, file.base + strlen(SPOOL_PREFIX), base_length - affixes);
    file.file_id[base_length - affixes] = '\0';

    int copy = spool_fd_dup_tracked(fd);
    file.stream = copy >= 0 ? fdopen(copy, "r") : NULL;
    if (file.stream == NULL) {
        qbel_error_set(&context->error, errno, "reading %s: %s", file.base, strerror(errno));
        spool_fd_close_tracked(copy);
        return -1;
    }
    rewind(file.stream);
    int status = replay_read_lines(&file) < 0 ? -1 : replay_finish(&file);
    if (status == 0) {
        result->lines += file.local.lines;
        result->files++;
    }
    else if (status == 1) {
        result->left++;
    }
    /* rows committed or dead-lettered before a failure stay counted: they
     * are done, and a later replay skips them by their markers */
    result->replayed += file.local.replayed;
    result->dead_lettered += file.local.dead_lettered;
    result->skipped += file.local.skipped;
    result->dropped += file.local.dropped;
    result->moved += file.local.moved;
    replay_group_reset(&file.positional);
    replay_group_reset(&file.carried);
    qbel_free(file.positional.records);
    qbel_free(file.carried.records);
    free(file.line); /* getline's block: libc's, so plain free and not counted */
    line_list_free(&file.bad_lines);
    line_list_free(&file.foreign);
    spool_close_tracked_stream(file.stream);
    return status;
}

static int
compare_names(const void *left, const void *right)
{
    return strcmp(*(char *const *)left, *(char *const *)right);
}

/* A name replay looks at: "qbel-...spool" (dead letters and temporaries
 * aside).  Whether it parses is spool_name_parses's business. */
static bool
is_spool_name(const char *name)
{
    size_t length = strlen(name);
    return strncmp(name, SPOOL_PREFIX, strlen(SPOOL_PREFIX)) == 0 &&
           strncmp(name, DEAD_PREFIX, strlen(DEAD_PREFIX)) != 0 &&
           length >= strlen(SPOOL_PREFIX) + strlen(SPOOL_SUFFIX) &&
           strcmp(name + length - strlen(SPOOL_SUFFIX), SPOOL_SUFFIX) == 0;
}

static size_t
span_of(const char *text, const char *set, size_t max)
{
    size_t n = 0;
    while (n < max && text[n] != '\0' && strchr(set, text[n]) != NULL) {
        n++;
    }
    return n;
}

/* "qbel-<14 digits>-<1..10 digits>-<1..32 lowercase hex>.spool", as
 * spool_make_file_id writes them (so the file id fits SPOOL_FILE_ID_MAX and its
 * batch ids fit SINK_BATCH_ID_MAX). */
static bool
spool_name_parses(const char *name)
{
    if (!is_spool_name(name)) {
        return false;
    }
    const char *p = name + strlen(SPOOL_PREFIX);
    size_t n = span_of(p, "0123456789", 15);
    if (n != 14 || p[n] != '-') {
        return false;
    }
    p += n + 1;
    n = span_of(p, "0123456789", 11);
    if (n < 1 || n > 10 || p[n] != '-') {
        return false;
    }
    p += n + 1;
    n = span_of(p, "0123456789abcdef", 33);
    return n >= 1 && n <= 32 && strcmp(p + n, SPOOL_SUFFIX) == 0;
}

/* Entries replay skipped and already reported (by "<dir>/<name>"), so each
 * is reported once per process.  A leaf lock; no I/O under it. */
#define REPORTED_SKIPS_MAX 256
static pthread_mutex_t reported_lock = PTHREAD_MUTEX_INITIALIZER;
static char *reported_skips[REPORTED_SKIPS_MAX];
static size_t reported_count = 0;

/* true when `path` was not reported before (and is now remembered). */
static bool
first_report(const char *path)
{
    bool first = true;
    pthread_mutex_lock(&reported_lock);
    for (size_t i = 0; i < reported_count; i++) {
        if (strcmp(reported_skips[i], path) == 0) {
            first = false;
            break;
        }
    }
    if (first) {
        if (reported_count < REPORTED_SKIPS_MAX) {
            char *copy = qbel_strdup(path); /* kept for the process's life */
            if (copy != NULL) {
                reported_skips[reported_count++] = copy;
            }
        }
        else {
            first = false; /* enough said */
        }
    }
    pthread_mutex_unlock(&reported_lock);
    return first;
}

/* Note a skipped entry: the first new one in a scan becomes the message. */
static void
note_skip(char *message, size_t message_size, size_t *new_skips, const char *path,
          const char *why)
{
    if (!first_report(path)) {
        return;
    }
    if ((*new_skips)++ == 0) {
        snprintf(message, message_size, "skipped %s in the spool directory: %s", path, why);
    }
}

/* Open and lock `path` without waiting.  The fd, or -1 when someone holds
 * it, it vanished, or it was already replayed and unlinked by the previous
 * holder of the lock. */
/* *why is set (and -1 returned) when the entry is not one to trust: not a
 * regular file (a symlink, a FIFO, a directory...) or not ours.  O_NONBLOCK
 * so that a FIFO never blocks open; fstat before any read. */
int
spool_claim_file(const char *path, const char **why)
{
    *why = NULL;
    int fd = spool_fd_open_tracked(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
    if (fd < 0) {
        if (errno == ELOOP) {
            *why = "a symbolic link";
        }
        else if (errno == EISDIR) {
            *why = "not a regular file";
        }
        else if (errno != ENOENT) {
            *why = strerror(errno);
        }
        return -1;
    }
    struct stat info;
    if (fstat(fd, &info) < 0) {
        *why = strerror(errno);
        spool_fd_close_tracked(fd);
        return -1;
    }
    if (!S_ISREG(info.st_mode)) {
        *why = "not a regular file";
    }
    else if (info.st_uid != geteuid()) {
        *why = "owned by another user";
    }
    if (*why != NULL || flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &info) < 0 ||
        info.st_nlink == 0) {
        spool_fd_close_tracked(fd);
        return -1;
    }
    return fd;
}

/* A directory scan's state: the spool names to replay, and the entries
 * skipped (reported once per process; the first new one is the message). */
typedef struct directory_scan {
    const char *dir;
    char **names; /* qbel_malloc'd, each qbel_strdup'd */
    size_t count, capacity;
    size_t new_skips;
    char skip_message[QBEL_ERROR_MAX];
} directory_scan;

static void
scan_skip(directory_scan *scan, const char *name, const char *why)
{
    char *skipped = spool_join_path(scan->dir, "", name, "");
    if (skipped != NULL) {
        note_skip(scan->skip_message, sizeof(scan->skip_message), &scan->new_skips, skipped,
                  why);
        qbel_free(skipped);
    }
}

/* Remember `name` for replay.  0, or -1 on OOM. */
static int
scan_add(directory_scan *scan, const char *name)
{
    if (scan->count == scan->capacity) {
        size_t capacity = scan->capacity ? scan->capacity * 2 : 16;
        char **grown = qbel_realloc(scan->names, capacity * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        scan->names = grown;
        scan->capacity = capacity;
    }
    if ((scan->names[scan->count] = qbel_strdup(name)) == NULL) {
        return -1;
    }
    scan->count++;
    return 0;
}

/* List the spool names of `directory` (skipping, and noting, names that do
 * not parse and entries that are not regular files), oldest first.  0, or
 * -1 on OOM. */
static int
scan_directory(directory_scan *scan, DIR *directory)
{
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        const char *name = entry->d_name;
        if (!is_spool_name(name)) {
            continue;
        }
        if (!spool_name_parses(name)) {
            size_t length = strlen(name);
            char shown[80];
            snprintf(shown, sizeof(shown), "%.60s%s", name, length > 60 ? "..." : "");
            scan_skip(scan, shown,
                      length > SPOOL_FILE_ID_MAX ? "name too long" : "name does not parse");
        }
        else if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN) {
            scan_skip(scan, name,
                      entry->d_type == DT_LNK ? "a symbolic link" : "not a regular file");
        }
        else if (scan_add(scan, name) < 0) {
            return -1;
        }
    }
    /* names start with the UTC creation time: oldest first */
    if (scan->count > 1) { /* qsort's pointer must not be NULL, even for 0 items */
        qsort(scan->names, scan->count, sizeof(*scan->names), compare_names);
    }
    return 0;
}

/* Claim and replay the file `name` of the scan; unlink it once complete.
 * 0 (done, skipped, or left for other targets) or -1 (error set). */
static int
replay_scanned_file(spool_replay_context *context, directory_scan *scan, const char *name,
                    spool_replay_result *result)
{
    char *path = spool_join_path(scan->dir, "", name, "");
    const char *why = NULL;
    int fd = path ? spool_claim_file(path, &why) : -1;
    if (fd < 0) {
        if (why != NULL) {
            note_skip(scan->skip_message, sizeof(scan->skip_message), &scan->new_skips, path,
                      why);
        }
        qbel_free(path);
        return 0;
    }
    int replayed = spool_replay_fd(context, fd, name, result);
    if (replayed == 0) {
        unlink(path); /* while still locked */
    } /* 1: only lines for other targets, left for their loggers */
    spool_fd_close_tracked(fd);
    qbel_free(path);
    return replayed < 0 ? -1 : 0;
}

int
spool_replay_directory(spool_replay_context *context, const char *dir,
                       spool_replay_result *result)
{
    struct stat dir_info;
    if (lstat(dir, &dir_info) < 0 && errno == ENOENT) {
        return 0;
    }
    if (spool_check_directory(dir, &context->error) < 0) {
        return -1;
    }
    DIR *directory = opendir(dir);
    if (directory == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        qbel_error_set(&context->error, errno, "opening %s: %s", dir, strerror(errno));
        return -1;
    }
    directory_scan scan;
    memset(&scan, 0, sizeof(scan));
    scan.dir = dir;
    int status = scan_directory(&scan, directory);
    closedir(directory);
    if (status < 0) {
        qbel_error_set(&context->error, ENOMEM, "out of memory listing %s", dir);
    }
    for (size_t i = 0; status == 0 && i < scan.count; i++) {
        if (context->should_stop && context->should_stop(context->argument)) {
            break;
        }
        status = replay_scanned_file(context, &scan, scan.names[i], result);
    }
    for (size_t i = 0; i < scan.count; i++) {
        qbel_free(scan.names[i]);
    }
    qbel_free(scan.names);
    if (status == 0 && scan.new_skips > 0) {
        /* reported once (through the caller's error), after every file
         * that could be replayed was */
        if (scan.new_skips > 1) {
            size_t used = strlen(scan.skip_message);
            snprintf(scan.skip_message + used, sizeof(scan.skip_message) - used,
                     " (and %zu more)", scan.new_skips - 1);
        }
        qbel_error_set(&context->error, QBEL_ERROR_NOTICE, "%s", scan.skip_message);
        status = -1;
    }
    return status;
}
