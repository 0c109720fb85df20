/* dead_letters.c: the dead-letter file of one writer (rows the server
 * rejected, lines that could not be read back) and the rejection lists
 * collected during a write, dead-lettered once the batch committed.
 * Runs on the writer thread, or a replaying caller with the GIL released. */
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

/* ---- dead letters ------------------------------------------------------ */

int
dead_letter_init(dead_letter *letters, const char *dir, const char *target)
{
    letters->fd = -1;
    letters->error = 0;
    letters->dir = NULL;
    letters->target = qbel_strdup(target != NULL ? target : "");
    if (letters->target == NULL || (dir != NULL && (letters->dir = qbel_strdup(dir)) == NULL)) {
        qbel_free(letters->target);
        letters->target = NULL;
        return -1;
    }
    return 0;
}

void
dead_letter_close(dead_letter *letters)
{
    if (letters->fd >= 0) {
        close(letters->fd);
    }
    letters->fd = -1;
    qbel_free(letters->dir);
    qbel_free(letters->target);
    letters->dir = letters->target = NULL;
}

void
dead_letter_forget_in_child(dead_letter *letters)
{
    if (letters->fd >= 0) {
        close(letters->fd);
    }
    letters->fd = -1; /* the child writes a file of its own */
}

/* Create this writer's dead-letter file under a fresh name: O_EXCL and
 * O_NOFOLLOW, so whatever else is in the directory (a FIFO, a symlink) is
 * never opened, and O_NONBLOCK, so nothing can hang the open.  0 or -1. */
static int
dead_letter_open(dead_letter *letters)
{
    if (spool_make_directory(letters->dir) < 0) {
        return -1;
    }
    char file_id[SPOOL_FILE_ID_MAX];
    spool_make_file_id(file_id);
    char *path = spool_join_path(letters->dir, DEAD_PREFIX, file_id, ".jsonl");
    if (path == NULL) {
        errno = ENOMEM;
        return -1;
    }
    letters->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK |
                                 O_CLOEXEC,
                       0600);
    qbel_free(path);
    return letters->fd < 0 ? -1 : 0;
}

/* Write one line to the dead-letter file (created on first use) or to
 * stderr without a directory.  A failure leaves letters->error set. */
static int
dead_letter_emit(dead_letter *letters, byte_buffer *line)
{
    if (letters->dir == NULL) {
        fputs("querybook_eventlog: dead letter: ", stderr);
        fwrite(line->data, 1, line->length, stderr);
        fflush(stderr);
        return 0;
    }
    if ((letters->fd < 0 && dead_letter_open(letters) < 0) ||
        spool_write_fully(letters->fd, line->data, line->length) < 0 ||
        fdatasync(letters->fd) < 0) {
        letters->error = errno ? errno : EIO;
        errno = letters->error;
        return -1;
    }
    return 0;
}

int
dead_letter_write_record(dead_letter *letters, const char *reason, const event_record *record,
                         const char *batch_id)
{
    char inline_block[1024];
    byte_buffer line;
    byte_buffer_init(&line, inline_block, sizeof(inline_block));
    int result = -1;
    if (byte_buffer_append_literal(&line, "{\"reason\":\"") < 0 ||
        spool_append_json_string(&line, reason, strlen(reason)) < 0 ||
        byte_buffer_append_literal(&line, "\",") < 0 ||
        spool_append_record_fields(&line, record, batch_id, letters->target) < 0 ||
        byte_buffer_append_literal(&line, ",\"event_data\":") < 0 ||
        byte_buffer_append(&line, record->json, record->json_length) < 0 ||
        byte_buffer_append_literal(&line, "}\n") < 0) {
        letters->error = errno = ENOMEM;
        goto done;
    }
    result = dead_letter_emit(letters, &line);
done:
    byte_buffer_release(&line);
    return result;
}

size_t
dead_letter_write_rejections(dead_letter *letters, const rejection_list *list,
                             const char *batch_id)
{
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++) {
        const sink_rejection *rejection = &list->items[i];
        if (dead_letter_write_record(letters, rejection->error, rejection->record, batch_id) ==
            0) {
            kept++;
        }
    }
    return kept;
}

int
dead_letter_write_raw(dead_letter *letters, const char *reason, const char *source,
                      uint64_t line_number, const char *raw, size_t length)
{
    char inline_block[1024];
    char number[24];
    byte_buffer line;
    byte_buffer_init(&line, inline_block, sizeof(inline_block));
    snprintf(number, sizeof(number), "%" PRIu64, line_number);
    int result = -1;
    if (byte_buffer_append_literal(&line, "{\"reason\":\"") < 0 ||
        spool_append_json_string(&line, reason, strlen(reason)) < 0 ||
        byte_buffer_append_literal(&line, "\",\"source\":\"") < 0 ||
        spool_append_json_string(&line, source, strlen(source)) < 0 ||
        byte_buffer_append_literal(&line, "\",\"line\":") < 0 ||
        byte_buffer_append(&line, number, strlen(number)) < 0 ||
        byte_buffer_append_literal(&line, ",\"target\":\"") < 0 ||
        spool_append_json_string(&line, letters->target, strlen(letters->target)) < 0 ||
        byte_buffer_append_literal(&line, "\",\"raw\":\"") < 0 ||
        spool_append_json_string(&line, raw, length) < 0 ||
        byte_buffer_append_literal(&line, "\"}\n") < 0) {
        letters->error = errno = ENOMEM;
        goto done;
    }
    result = dead_letter_emit(letters, &line);
done:
    byte_buffer_release(&line);
    return result;
}

/* ---- rejections -------------------------------------------------------- */

void
rejection_list_clear(rejection_list *list)
{
    list->count = 0;
}

void
rejection_list_free(rejection_list *list)
{
    qbel_free(list->items);
    list->items = NULL;
    list->count = list->capacity = 0;
}

void
rejection_list_collect(void *context, const sink_rejection *rejection)
{
    rejection_list *list = context;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 8;
        sink_rejection *grown = qbel_realloc(list->items, capacity * sizeof(*grown));
        if (grown == NULL) {
            /* cannot remember it: the writer counts it as dropped (the
             * sink's rejected count includes it, the list does not) */
            return;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = *rejection;
}
