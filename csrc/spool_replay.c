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

/* Write `group` exactly once: skip it when its marker exists; after an
 * ambiguous connection error, reconnect once and look again.  0 or -1. */
static int
replay_group_write(spool_replay_context *context, replay_group *group,
                   spool_replay_result *result)
{
    if (group->count == 0) {
        return 0;
    }
    sink_status status;
    int committed = sink_batch_committed(context->sink, group->batch_id, &status);
    if (committed < 0) {
        describe_failure(context, "checking a replayed batch");
        return -1;
    }
    if (committed == 1) {
        result->skipped += group->count;
        replay_group_reset(group);
        return 0;
    }
    rejection_list rejections = {NULL, 0, 0};
    size_t rejected = 0;
    status = sink_write_batch(context->sink, group->batch_id, group->records, group->count,
                                    rejection_list_collect, &rejections, &rejected);
    if (status == SINK_CONNECTION_ERROR) {
        describe_failure(context, "replaying a batch");
        sink_disconnect(context->sink);
        if (sink_connect(context->sink) == SINK_OK &&
            sink_batch_committed(context->sink, group->batch_id, &status) == 1) {
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
    for (size_t i = 0; i < rejections.count; i++) {
        dead_letter_write_record(context->letters, rejections.items[i].error,
                                 rejections.items[i].record, group->batch_id);
    }
    result->dead_lettered += rejections.count;
    result->replayed += group->count - rejections.count;
    rejection_list_free(&rejections);
    replay_group_reset(group);
    return 0;
}

/* Lines of a file being replayed that could not be read back, kept until
 * the file's groups are all committed. */
typedef struct bad_line {
    off_t offset;
    uint64_t number; /* 1-based */
    char why[256];
} bad_line;

typedef struct bad_line_list {
    bad_line *items; /* malloc'd */
    size_t count, capacity;
} bad_line_list;

static int
bad_line_add(bad_line_list *list, off_t offset, uint64_t number, const char *why)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 8;
        bad_line *grown = qbel_realloc(list->items, capacity * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    bad_line *item = &list->items[list->count++];
    item->offset = offset;
    item->number = number;
    snprintf(item->why, sizeof(item->why), "%s", why);
    return 0;
}

/* Read the bad lines again and dead-letter them.  0, or -1 (error set). */
static int
dead_letter_bad_lines(spool_replay_context *context, FILE *stream, const char *base,
                      const bad_line_list *list, char **line, size_t *line_capacity)
{
    for (size_t i = 0; i < list->count; i++) {
        const bad_line *item = &list->items[i];
        ssize_t length;
        if (fseeko(stream, item->offset, SEEK_SET) < 0 ||
            (length = getline(line, line_capacity, stream)) <= 0) {
            qbel_error_set(&context->error, QBEL_ERROR_OTHER, "reading %s again: %s", base,
                     strerror(errno));
            return -1;
        }
        size_t content = (size_t)length - ((*line)[length - 1] == '\n' ? 1 : 0);
        if (dead_letter_write_raw(context->letters, item->why, base, item->number, *line,
                                  content) < 0) {
            qbel_error_set(&context->error, QBEL_ERROR_OTHER, "writing the dead-letter file: %s",
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

int
spool_replay_fd(spool_replay_context *context, int fd, const char *name,
                spool_replay_result *result)
{
    /* "qbel-<file id>.spool" -> file id */
    char file_id[SPOOL_FILE_ID_MAX] = "";
    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    size_t base_length = strlen(base);
    if (base_length > strlen(SPOOL_PREFIX) + strlen(SPOOL_SUFFIX) &&
        base_length - strlen(SPOOL_PREFIX) - strlen(SPOOL_SUFFIX) < SPOOL_FILE_ID_MAX) {
        size_t id_length = base_length - strlen(SPOOL_PREFIX) - strlen(SPOOL_SUFFIX);
        memcpy(file_id, base + strlen(SPOOL_PREFIX), id_length);
        file_id[id_length] = '\0';
    }
    else {
        qbel_error_set(&context->error, QBEL_ERROR_OTHER, "not a spool file name: %s", base);
        return -1;
    }

    int status = -1;
    char *line = NULL;
    size_t line_capacity = 0;
    replay_group positional = {NULL, 0, 0, "", -1};
    replay_group carried = {NULL, 0, 0, "", -1};
    bad_line_list bad_lines = {NULL, 0, 0};
    spool_replay_result local = {0, 0, 0, 0, 0};
    int copy = spool_fd_dup_tracked(fd);
    FILE *stream = copy >= 0 ? fdopen(copy, "r") : NULL;
    if (stream == NULL) {
        spool_fd_close_tracked(copy);
        qbel_error_set(&context->error, QBEL_ERROR_OTHER, "reading %s: %s", base, strerror(errno));
        return -1;
    }
    rewind(stream);

    uint64_t line_index = 0;
    off_t offset = 0;
    ssize_t length;
    while ((length = getline(&line, &line_capacity, stream)) >= 0) {
        uint64_t number = line_index++;
        off_t line_offset = offset;
        offset += length;
        if (length == 0) {
            continue;
        }
        bool torn = line[length - 1] != '\n';
        size_t content = (size_t)length - (torn ? 0 : 1);
        if (content == 0) {
            local.lines++;
            continue;
        }
        char batch_id[SINK_BATCH_ID_MAX + 1];
        char why[256];
        event_record *record = NULL;
        if (torn) {
            snprintf(why, sizeof(why), "torn last line (no newline) in %s", base);
        }
        else {
            record = spool_parse_line(line, content, batch_id, why, sizeof(why));
        }
        if (record == NULL) {
            /* dead-lettered once the file is done: a failed and retried
             * replay must not write it twice */
            if (bad_line_add(&bad_lines, line_offset, number + 1, why) < 0) {
                qbel_error_set(&context->error, QBEL_ERROR_OTHER, "out of memory");
                goto done;
            }
            local.lines++;
            continue;
        }
        local.lines++;
        if (batch_id[0] != '\0') {
            if (carried.count > 0 && strcmp(carried.batch_id, batch_id) != 0 &&
                replay_group_write(context, &carried, &local) < 0) {
                event_record_free(record);
                goto done;
            }
            memcpy(carried.batch_id, batch_id, sizeof(batch_id));
            if (replay_group_add(&carried, record) < 0) {
                event_record_free(record);
                qbel_error_set(&context->error, QBEL_ERROR_OTHER, "out of memory");
                goto done;
            }
            continue;
        }
        int64_t group_number = (int64_t)(number / SPOOL_REPLAY_GROUP_LINES);
        if (positional.count > 0 && positional.number != group_number) {
            if (replay_group_write(context, &positional, &local) < 0) {
                event_record_free(record);
                goto done;
            }
            if (context->should_stop && context->should_stop(context->argument)) {
                event_record_free(record);
                qbel_error_set(&context->error, QBEL_ERROR_OTHER, "stopped");
                goto done;
            }
        }
        positional.number = group_number;
        char group_id[96];
        snprintf(group_id, sizeof(group_id), "s:%s:%" PRId64, file_id, group_number);
        if (strlen(group_id) > SINK_BATCH_ID_MAX) {
            event_record_free(record);
            qbel_error_set(&context->error, QBEL_ERROR_OTHER, "spool file name too long: %s", base);
            goto done;
        }
        memcpy(positional.batch_id, group_id, strlen(group_id) + 1);
        if (replay_group_add(&positional, record) < 0) {
            event_record_free(record);
            qbel_error_set(&context->error, QBEL_ERROR_OTHER, "out of memory");
            goto done;
        }
    }
    if (ferror(stream)) {
        qbel_error_set(&context->error, QBEL_ERROR_OTHER, "reading %s: %s", base, strerror(errno));
        goto done;
    }
    if (replay_group_write(context, &carried, &local) < 0 ||
        replay_group_write(context, &positional, &local) < 0) {
        goto done;
    }
    if (dead_letter_bad_lines(context, stream, base, &bad_lines, &line, &line_capacity) < 0) {
        goto done;
    }
    local.dead_lettered += bad_lines.count;
    status = 0;
    result->lines += local.lines;
    result->files++;

done:
    /* rows committed or dead-lettered before a failure stay counted: they
     * are done, and a later replay skips them by their markers */
    result->replayed += local.replayed;
    result->dead_lettered += local.dead_lettered;
    result->skipped += local.skipped;
    replay_group_reset(&positional);
    replay_group_reset(&carried);
    qbel_free(positional.records);
    qbel_free(carried.records);
    free(line); /* getline's block: libc's, so plain free and not counted */
    qbel_free(bad_lines.items);
    spool_close_tracked_stream(stream);
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
static int
claim_file(const char *path, const char **why)
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
        qbel_error_set(&context->error, QBEL_ERROR_OTHER, "opening %s: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t count = 0, capacity = 0;
    int status = 0;
    size_t new_skips = 0;
    char skip_message[QBEL_ERROR_MAX] = "";
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (!is_spool_name(entry->d_name)) {
            continue;
        }
        if (!spool_name_parses(entry->d_name)) {
            size_t length = strlen(entry->d_name);
            char shown[80];
            snprintf(shown, sizeof(shown), "%.60s%s", entry->d_name, length > 60 ? "..." : "");
            char *skipped = spool_join_path(dir, "", shown, "");
            if (skipped != NULL) {
                note_skip(skip_message, sizeof(skip_message), &new_skips, skipped,
                          length > SPOOL_FILE_ID_MAX ? "name too long" : "name does not parse");
                qbel_free(skipped);
            }
            continue;
        }
        if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN) {
            char *skipped = spool_join_path(dir, "", entry->d_name, "");
            if (skipped != NULL) {
                note_skip(skip_message, sizeof(skip_message), &new_skips, skipped,
                          entry->d_type == DT_LNK ? "a symbolic link" : "not a regular file");
                qbel_free(skipped);
            }
            continue;
        }
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 16;
            char **grown = qbel_realloc(names, capacity * sizeof(*grown));
            if (grown == NULL) {
                status = -1;
                break;
            }
            names = grown;
        }
        if ((names[count] = qbel_strdup(entry->d_name)) == NULL) {
            status = -1;
            break;
        }
        count++;
    }
    closedir(directory);
    if (status < 0) {
        qbel_error_set(&context->error, QBEL_ERROR_OTHER, "out of memory listing %s", dir);
    }
    else {
        /* names start with the UTC creation time: oldest first */
        if (count > 1) { /* qsort's pointer must not be NULL, even for 0 items */
            qsort(names, count, sizeof(*names), compare_names);
        }
        for (size_t i = 0; i < count; i++) {
            if (context->should_stop && context->should_stop(context->argument)) {
                break;
            }
            char *path = spool_join_path(dir, "", names[i], "");
            const char *why = NULL;
            int fd = path ? claim_file(path, &why) : -1;
            if (fd < 0) {
                if (why != NULL) {
                    note_skip(skip_message, sizeof(skip_message), &new_skips, path, why);
                }
                qbel_free(path);
                continue;
            }
            if (spool_replay_fd(context, fd, names[i], result) == 0) {
                unlink(path); /* while still locked */
            }
            else {
                status = -1;
            }
            spool_fd_close_tracked(fd);
            qbel_free(path);
            if (status < 0) {
                break;
            }
        }
    }
    for (size_t i = 0; i < count; i++) {
        qbel_free(names[i]);
    }
    qbel_free(names);
    if (status == 0 && new_skips > 0) {
        /* reported once (through the caller's error), after every file
         * that could be replayed was */
        if (new_skips > 1) {
            size_t used = strlen(skip_message);
            snprintf(skip_message + used, sizeof(skip_message) - used, " (and %zu more)",
                     new_skips - 1);
        }
        qbel_error_set(&context->error, QBEL_ERROR_OTHER, "%s", skip_message);
        status = -1;
    }
    return status;
}
