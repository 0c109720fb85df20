/* spool: spool files, dead letters and exactly-once replay; see spool.h. */
#include "spool.h"
#include "qbel_alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPOOL_PREFIX "qbel-"
#define SPOOL_SUFFIX ".spool"
#define DEAD_PREFIX "qbel-dead-"
#define TEMPORARY_PREFIX ".tmp-" SPOOL_PREFIX

/* ---- tracked descriptors (see spool.h) ----------------------------------
 * Open/dup + listing, and unlisting + close, each happen under
 * tracked_lock, so at fork time every copy of a spool descriptor is on the
 * list. */
static pthread_mutex_t tracked_lock = PTHREAD_MUTEX_INITIALIZER;
static int *tracked_fds = NULL; /* malloc'd */
static size_t tracked_count = 0, tracked_capacity = 0;

/* tracked_lock held.  0, or -1 (ENOMEM). */
static int
track_locked(int fd)
{
    if (tracked_count == tracked_capacity) {
        size_t capacity = tracked_capacity ? tracked_capacity * 2 : 16;
        int *grown = qbel_realloc(tracked_fds, capacity * sizeof(*grown));
        if (grown == NULL) {
            errno = ENOMEM;
            return -1;
        }
        tracked_fds = grown;
        tracked_capacity = capacity;
    }
    tracked_fds[tracked_count++] = fd;
    return 0;
}

/* tracked_lock held. */
static void
untrack_locked(int fd)
{
    for (size_t i = 0; i < tracked_count; i++) {
        if (tracked_fds[i] == fd) {
            tracked_fds[i] = tracked_fds[--tracked_count];
            return;
        }
    }
}

/* tracked_lock held: list a new descriptor, or close it when the list
 * cannot grow (an unlisted copy must never exist). */
static int
track_or_close_locked(int fd)
{
    if (fd >= 0 && track_locked(fd) < 0) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    return fd;
}

/* Bumped (under tracked_lock) by every fork: a descriptor opened while a
 * fork happened may have an unlisted copy in the child. */
static uint64_t fork_generation = 0;

int
spool_fd_open_tracked(const char *path, int flags, mode_t mode)
{
    /* open() can block (a FIFO, a hung NFS mount): never under the lock.
     * When a fork happened between open and listing, the child holds an
     * unlisted copy of this open file description; drop it and open the
     * path again (a new description, which that child does not share). */
    for (;;) {
        pthread_mutex_lock(&tracked_lock);
        uint64_t generation = fork_generation;
        pthread_mutex_unlock(&tracked_lock);
        int fd = open(path, flags | O_CLOEXEC, mode);
        if (fd < 0) {
            return -1;
        }
        pthread_mutex_lock(&tracked_lock);
        if (generation == fork_generation) {
            fd = track_or_close_locked(fd);
            pthread_mutex_unlock(&tracked_lock);
            return fd;
        }
        pthread_mutex_unlock(&tracked_lock);
        close(fd);
        /* it exists now, and it is ours */
        flags &= ~(O_CREAT | O_EXCL);
    }
}

int
spool_fd_dup_tracked(int fd)
{
    pthread_mutex_lock(&tracked_lock);
    int copy = track_or_close_locked(fcntl(fd, F_DUPFD_CLOEXEC, 0));
    pthread_mutex_unlock(&tracked_lock);
    return copy;
}

void
spool_fd_close_tracked(int fd)
{
    if (fd < 0) {
        return;
    }
    pthread_mutex_lock(&tracked_lock);
    untrack_locked(fd);
    close(fd);
    pthread_mutex_unlock(&tracked_lock);
}

/* fclose a stream made by fdopen on a tracked descriptor. */
static void
close_tracked_stream(FILE *stream)
{
    pthread_mutex_lock(&tracked_lock);
    untrack_locked(fileno(stream));
    fclose(stream);
    pthread_mutex_unlock(&tracked_lock);
}

void
spool_fork_prepare(void)
{
    pthread_mutex_lock(&tracked_lock);
    fork_generation++;
}

void
spool_fork_parent(void)
{
    pthread_mutex_unlock(&tracked_lock);
}

void
spool_fork_child(void)
{
    /* the only thread here; a FILE made on one of these leaks its buffer,
     * never its descriptor */
    pthread_mutex_init(&tracked_lock, NULL);
    for (size_t i = 0; i < tracked_count; i++) {
        close(tracked_fds[i]);
    }
    tracked_count = 0;
}

void
spool_random_hex(char *out, size_t bytes)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char raw[32];
    if (bytes > sizeof(raw)) {
        bytes = sizeof(raw);
    }
    if (getrandom(raw, bytes, GRND_NONBLOCK) != (ssize_t)bytes) {
        /* no entropy yet (early boot): uniqueness, not secrecy, is needed */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t mix = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)now.tv_sec ^
                       ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < bytes; i++) {
            mix = mix * 6364136223846793005ULL + 1442695040888963407ULL;
            raw[i] = (unsigned char)(mix >> 56);
        }
    }
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = digits[raw[i] >> 4];
        out[2 * i + 1] = digits[raw[i] & 15];
    }
    out[2 * bytes] = '\0';
}

/* "<yyyymmddHHMMSS>-<pid>-<random>" */
static void
make_file_id(char out[SPOOL_FILE_ID_MAX])
{
    event_civil_time t;
    char random_hex[17];
    event_time_to_civil(event_time_now_us(), &t);
    spool_random_hex(random_hex, 8);
    snprintf(out, SPOOL_FILE_ID_MAX, "%04d%02d%02d%02d%02d%02d-%ld-%s", t.year, t.month, t.day,
             t.hour, t.minute, t.second, (long)getpid(), random_hex);
}

static char *
join_path(const char *dir, const char *prefix, const char *name, const char *suffix)
{
    size_t length = strlen(dir) + strlen(prefix) + strlen(name) + strlen(suffix) + 2;
    char *path = qbel_malloc(length);
    if (path != NULL) {
        snprintf(path, length, "%s/%s%s%s", dir, prefix, name, suffix);
    }
    return path;
}

int
spool_check_directory(const char *dir, qbel_error *error)
{
    struct stat info;
    if (lstat(dir, &info) < 0) {
        int saved = errno;
        qbel_error_set(error, saved, "spool directory %s: %s", dir, strerror(saved));
        errno = saved;
        return -1;
    }
    const char *why = NULL;
    int code = EPERM;
    if (S_ISLNK(info.st_mode)) {
        why = "is a symbolic link (give the real path)";
        code = ELOOP;
    }
    else if (!S_ISDIR(info.st_mode)) {
        why = "is not a directory";
        code = ENOTDIR;
    }
    else if (info.st_uid != geteuid()) {
        why = "is owned by another user";
    }
    else if (info.st_mode & (S_IWGRP | S_IWOTH)) {
        why = "is writable by group or others";
    }
    if (why == NULL) {
        return 0;
    }
    if (info.st_uid != geteuid() && S_ISDIR(info.st_mode)) {
        qbel_error_set(error, code, "refusing spool directory %s: it %s (uid %ld, ours is %ld)",
                       dir, why, (long)info.st_uid, (long)geteuid());
    }
    else {
        qbel_error_set(error, code, "refusing spool directory %s: it %s (mode %04o)", dir, why,
                       (unsigned int)(info.st_mode & 07777));
    }
    errno = code;
    return -1;
}

int
spool_make_directory(const char *dir)
{
    qbel_error reason;
    struct stat info;
    if (lstat(dir, &info) == 0) {
        return spool_check_directory(dir, &reason);
    }
    if (errno != ENOENT) {
        return -1;
    }
    char *copy = qbel_strdup(dir);
    if (copy == NULL) {
        return -1;
    }
    for (char *slash = copy + 1; *slash; slash++) {
        if (*slash == '/') {
            *slash = '\0';
            if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
                qbel_free(copy);
                return -1;
            }
            *slash = '/';
        }
    }
    bool created = mkdir(copy, 0700) == 0;
    int saved = errno;
    qbel_free(copy);
    if (!created && saved != EEXIST) {
        errno = saved;
        return -1;
    }
    /* made by us or by someone racing us: verify what is there now */
    if (spool_check_directory(dir, &reason) < 0) {
        return -1;
    }
    if (created && (lstat(dir, &info) < 0 || (info.st_mode & 0777) != 0700)) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

void
spool_file_init(spool_file *file)
{
    file->fd = -1;
    file->path = NULL;
    file->file_id[0] = '\0';
    file->lines = 0;
    file->size = 0;
    file->dirty = false;
}

int
spool_file_create(spool_file *file, const char *dir)
{
    char *temporary = NULL;
    spool_file_init(file);
    /* created on first use, never at import or construction */
    if (spool_make_directory(dir) < 0) {
        return -1;
    }
    make_file_id(file->file_id);
    file->path = join_path(dir, SPOOL_PREFIX, file->file_id, SPOOL_SUFFIX);
    /* replay ignores names starting with '.'; the file only gets its real
     * name once it is locked, so nobody can claim it before we do */
    temporary = join_path(dir, TEMPORARY_PREFIX, file->file_id, SPOOL_SUFFIX);
    if (file->path == NULL || temporary == NULL) {
        goto error;
    }
    file->fd = spool_fd_open_tracked(temporary, O_RDWR | O_APPEND | O_CREAT | O_EXCL, 0600);
    if (file->fd < 0) {
        goto error;
    }
    if (flock(file->fd, LOCK_EX) < 0 || rename(temporary, file->path) < 0) {
        int saved = errno;
        unlink(temporary);
        errno = saved;
        goto error;
    }
    qbel_free(temporary);
    return 0;

error:;
    int saved = errno;
    spool_fd_close_tracked(file->fd);
    qbel_free(temporary);
    qbel_free(file->path);
    spool_file_init(file);
    errno = saved;
    return -1;
}

/* Append `text` as the body of a JSON string (no quotes).  Valid UTF-8 is
 * copied; a byte that is not part of valid UTF-8 becomes \u00XX, so the
 * output is always valid JSON and nothing is lost silently. */
static int
append_json_string_body(byte_buffer *out, const char *text, size_t length)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *bytes = (const unsigned char *)text;
    size_t i = 0;
    while (i < length) {
        unsigned char c = bytes[i];
        size_t sequence = 0;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            sequence = 1;
        }
        else if (c >= 0xC2 && c <= 0xF4) {
            size_t needed = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (i + needed <= length) {
                sequence = needed;
                for (size_t k = 1; k < needed; k++) {
                    if ((bytes[i + k] & 0xC0) != 0x80) {
                        sequence = 0;
                    }
                }
            }
        }
        if (sequence > 0) {
            if (byte_buffer_append(out, bytes + i, sequence) < 0) {
                return -1;
            }
            i += sequence;
            continue;
        }
        char escaped[6] = {'\\', c == '"' ? '"' : '\\', 0, 0, 0, 0};
        size_t escaped_length = 2;
        if (c != '"' && c != '\\') {
            memcpy(escaped, "\\u00", 4);
            escaped[4] = digits[c >> 4];
            escaped[5] = digits[c & 15];
            escaped_length = 6;
        }
        if (byte_buffer_append(out, escaped, escaped_length) < 0) {
            return -1;
        }
        i++;
    }
    return 0;
}

/* "created_at":...,"uid":...,"event_type":...,"batch":... (no braces) */
static int
append_record_fields(byte_buffer *out, const event_record *record, const char *batch_id)
{
    char created_at[33];
    char uid[24];
    event_time_format_iso(record->created_at_us, created_at);
    if (record->uid_is_null) {
        memcpy(uid, "null", 5);
    }
    else {
        snprintf(uid, sizeof(uid), "%" PRId32, record->uid);
    }
    const char *type = event_type_name(record->event_type);
    if (byte_buffer_append_literal(out, "\"created_at\":\"") < 0 ||
        byte_buffer_append(out, created_at, 32) < 0 ||
        byte_buffer_append_literal(out, "\",\"uid\":") < 0 ||
        byte_buffer_append(out, uid, strlen(uid)) < 0 ||
        byte_buffer_append_literal(out, ",\"event_type\":\"") < 0 ||
        byte_buffer_append(out, type ? type : "", type ? strlen(type) : 0) < 0 ||
        byte_buffer_append_literal(out, "\",\"batch\":\"") < 0 ||
        append_json_string_body(out, batch_id, strlen(batch_id)) < 0 ||
        byte_buffer_append_char(out, '"') < 0) {
        return -1;
    }
    return 0;
}

int
spool_format_line(byte_buffer *out, const event_record *record, const char *batch_id)
{
    if (byte_buffer_append_char(out, '{') < 0 ||
        append_record_fields(out, record, batch_id) < 0 ||
        byte_buffer_append_literal(out, ",\"event_data\":") < 0 ||
        byte_buffer_append(out, record->json, record->json_length) < 0 ||
        byte_buffer_append_literal(out, "}\n") < 0) {
        return -1;
    }
    return 0;
}

/* write() all of it, retrying on EINTR and short writes. */
static int
write_fully(int fd, const char *data, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, data, length);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        data += written;
        length -= (size_t)written;
    }
    return 0;
}

int
spool_file_append(spool_file *file, const char *data, size_t length, uint64_t lines)
{
    if (write_fully(file->fd, data, length) < 0) {
        int saved = errno;
        /* a torn line would corrupt the next append: cut it off (if even
         * that fails, replay dead-letters the torn line with its reason) */
        int ignored = ftruncate(file->fd, (off_t)file->size);
        (void)ignored;
        errno = saved;
        return -1;
    }
    file->size += length;
    file->lines += lines;
    file->dirty = true;
    return 0;
}

int
spool_file_sync(spool_file *file)
{
    if (file->fd < 0 || !file->dirty) {
        return 0;
    }
    file->dirty = false;
    return fdatasync(file->fd);
}

void
spool_file_close(spool_file *file, bool unlink_it)
{
    if (file->fd >= 0) {
        if (unlink_it && file->path != NULL) {
            unlink(file->path); /* while still locked: no one can claim it half-read */
        }
        spool_fd_close_tracked(file->fd);
    }
    qbel_free(file->path);
    spool_file_init(file);
}

void
spool_file_forget_in_child(spool_file *file)
{
    qbel_free(file->path); /* the descriptor was closed by spool_fork_child */
    spool_file_init(file);
}

/* ---- dead letters ------------------------------------------------------ */

int
dead_letter_init(dead_letter *letters, const char *dir)
{
    letters->fd = -1;
    letters->dir = NULL;
    if (dir != NULL && (letters->dir = qbel_strdup(dir)) == NULL) {
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
    letters->dir = NULL;
}

void
dead_letter_forget_in_child(dead_letter *letters)
{
    if (letters->fd >= 0) {
        close(letters->fd);
    }
    letters->fd = -1; /* the child writes a file of its own */
}

/* Write one line to the dead-letter file (created on first use) or to
 * stderr without a directory. */
static int
dead_letter_emit(dead_letter *letters, byte_buffer *line)
{
    if (letters->dir == NULL) {
        fputs("querybook_eventlog: dead letter: ", stderr);
        fwrite(line->data, 1, line->length, stderr);
        fflush(stderr);
        return 0;
    }
    if (letters->fd < 0) {
        if (spool_make_directory(letters->dir) < 0) {
            return -1;
        }
        char file_id[SPOOL_FILE_ID_MAX];
        make_file_id(file_id);
        char *path = join_path(letters->dir, DEAD_PREFIX, file_id, ".jsonl");
        if (path == NULL) {
            return -1;
        }
        letters->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        qbel_free(path);
        if (letters->fd < 0) {
            return -1;
        }
    }
    if (write_fully(letters->fd, line->data, line->length) < 0) {
        return -1;
    }
    return fdatasync(letters->fd);
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
        append_json_string_body(&line, reason, strlen(reason)) < 0 ||
        byte_buffer_append_literal(&line, "\",") < 0 ||
        append_record_fields(&line, record, batch_id) < 0 ||
        byte_buffer_append_literal(&line, ",\"event_data\":") < 0 ||
        byte_buffer_append(&line, record->json, record->json_length) < 0 ||
        byte_buffer_append_literal(&line, "}\n") < 0) {
        errno = ENOMEM;
        goto done;
    }
    result = dead_letter_emit(letters, &line);
done:
    byte_buffer_release(&line);
    return result;
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
        append_json_string_body(&line, reason, strlen(reason)) < 0 ||
        byte_buffer_append_literal(&line, "\",\"source\":\"") < 0 ||
        append_json_string_body(&line, source, strlen(source)) < 0 ||
        byte_buffer_append_literal(&line, "\",\"line\":") < 0 ||
        byte_buffer_append(&line, number, strlen(number)) < 0 ||
        byte_buffer_append_literal(&line, ",\"raw\":\"") < 0 ||
        append_json_string_body(&line, raw, length) < 0 ||
        byte_buffer_append_literal(&line, "\"}\n") < 0) {
        errno = ENOMEM;
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
            /* cannot remember it: the row is reported on stderr instead */
            fprintf(stderr, "querybook_eventlog: out of memory recording a rejected row: %s\n",
                    rejection->error);
            return;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = *rejection;
}

/* ---- replay ------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (inverse of
 * event_record.c's civil_from_days). */
static int64_t
days_from_civil(int64_t year, int64_t month, int64_t day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* Parse exactly "YYYY-MM-DDTHH:MM:SS.ffffff+00:00".  0 or -1. */
static int
parse_iso_time(const char *text, size_t length, int64_t *out)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddddd+00:00";
    if (length != sizeof(shape) - 1) {
        return -1;
    }
    for (size_t i = 0; i < length; i++) {
        if (shape[i] == 'd' ? (text[i] < '0' || text[i] > '9') : text[i] != shape[i]) {
            return -1;
        }
    }
    int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micro = 0;
    for (int i = 0; i < 4; i++) year = year * 10 + (text[i] - '0');
    month = (text[5] - '0') * 10 + (text[6] - '0');
    day = (text[8] - '0') * 10 + (text[9] - '0');
    hour = (text[11] - '0') * 10 + (text[12] - '0');
    minute = (text[14] - '0') * 10 + (text[15] - '0');
    second = (text[17] - '0') * 10 + (text[18] - '0');
    for (int i = 20; i < 26; i++) micro = micro * 10 + (text[i] - '0');
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
        second > 59) {
        return -1;
    }
    int64_t days = days_from_civil(year, month, day);
    *out = ((days * 86400 + hour * 3600 + minute * 60 + second) * 1000000) + micro;
    return 0;
}

/* Turn one complete line (without its newline) into a record and its batch
 * id.  NULL with `why` filled when the line is not one of ours. */
static event_record *
parse_line(const char *line, size_t length, char batch_id[SINK_BATCH_ID_MAX + 1],
           char *why, size_t why_size)
{
    static const char marker[] = ",\"event_data\":";
    event_record *record = NULL;
    json_t *fields = NULL;
    const char *found = memmem(line, length, marker, sizeof(marker) - 1);
    if (found == NULL || length < 2 || line[length - 1] != '}') {
        snprintf(why, why_size, "not a spool line (no trailing event_data)");
        return NULL;
    }
    size_t prefix_length = (size_t)(found - line);
    const char *data = found + sizeof(marker) - 1;
    size_t data_length = (size_t)(line + length - 1 - data);
    while (data_length > 0 && (*data == ' ')) {
        data++;
        data_length--;
    }
    while (data_length > 0 && data[data_length - 1] == ' ') {
        data_length--;
    }
    /* any JSON value, passed on verbatim (the server checks it: a JSON
     * column rejects invalid text, and the row is dead-lettered); `null`
     * becomes SQL NULL when inserted */
    if (data_length == 0) {
        snprintf(why, why_size, "event_data is empty");
        return NULL;
    }
    /* the fields before event_data, closed into an object of their own */
    char inline_block[256];
    byte_buffer head;
    byte_buffer_init(&head, inline_block, sizeof(inline_block));
    if (byte_buffer_append(&head, line, prefix_length) < 0 ||
        byte_buffer_append_char(&head, '}') < 0) {
        snprintf(why, why_size, "out of memory");
        goto done;
    }
    json_error_t error;
    fields = json_loadb(head.data, head.length, JSON_REJECT_DUPLICATES, &error);
    if (fields == NULL || !json_is_object(fields)) {
        snprintf(why, why_size, "unparsable fields: %s", fields ? "not an object" : error.text);
        goto done;
    }
    json_t *created_at = json_object_get(fields, "created_at");
    json_t *uid = json_object_get(fields, "uid");
    json_t *event_type = json_object_get(fields, "event_type");
    json_t *batch = json_object_get(fields, "batch");
    int64_t created_at_us;
    if (!json_is_string(created_at) ||
        parse_iso_time(json_string_value(created_at), json_string_length(created_at),
                       &created_at_us) < 0) {
        snprintf(why, why_size, "bad created_at");
        goto done;
    }
    if (!(json_is_null(uid) ||
          (json_is_integer(uid) && json_integer_value(uid) >= INT32_MIN &&
           json_integer_value(uid) <= INT32_MAX))) {
        snprintf(why, why_size, "bad uid");
        goto done;
    }
    int type = json_is_string(event_type) ? event_type_from_name(json_string_value(event_type),
                                                                  json_string_length(event_type))
                                          : -1;
    if (type < 0) {
        snprintf(why, why_size, "bad event_type");
        goto done;
    }
    if (batch != NULL && (!json_is_string(batch) ||
                          json_string_length(batch) > SINK_BATCH_ID_MAX)) {
        snprintf(why, why_size, "bad batch id");
        goto done;
    }
    const char *batch_text = batch ? json_string_value(batch) : "";
    memcpy(batch_id, batch_text, strlen(batch_text) + 1);
    record = event_record_new(created_at_us, json_is_null(uid) ? 0 : (int32_t)json_integer_value(uid),
                              json_is_null(uid), type, data, data_length);
    if (record == NULL) {
        snprintf(why, why_size, "out of memory");
    }
done:
    json_decref(fields);
    byte_buffer_release(&head);
    return record;
}

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
            record = parse_line(line, content, batch_id, why, sizeof(why));
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
    close_tracked_stream(stream);
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
 * make_file_id writes them (so the file id fits SPOOL_FILE_ID_MAX and its
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
            char *skipped = join_path(dir, "", shown, "");
            if (skipped != NULL) {
                note_skip(skip_message, sizeof(skip_message), &new_skips, skipped,
                          length > SPOOL_FILE_ID_MAX ? "name too long" : "name does not parse");
                qbel_free(skipped);
            }
            continue;
        }
        if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN) {
            char *skipped = join_path(dir, "", entry->d_name, "");
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
            char *path = join_path(dir, "", names[i], "");
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

size_t
spool_remove_stale_temporaries(const char *dir, double max_age_s)
{
    qbel_error reason;
    if (spool_check_directory(dir, &reason) < 0) {
        return 0;
    }
    DIR *directory = opendir(dir);
    if (directory == NULL) {
        return 0;
    }
    size_t removed = 0;
    time_t now = time(NULL);
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (strncmp(entry->d_name, TEMPORARY_PREFIX, strlen(TEMPORARY_PREFIX)) != 0) {
            continue;
        }
        char *path = join_path(dir, "", entry->d_name, "");
        if (path == NULL) {
            break;
        }
        struct stat info;
        /* a fresh one may be between open and flock in its creator */
        if (lstat(path, &info) == 0 && S_ISREG(info.st_mode) &&
            difftime(now, info.st_mtime) > max_age_s) {
            int fd = spool_fd_open_tracked(path, O_RDONLY | O_NOFOLLOW, 0);
            if (fd >= 0) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &info) == 0 &&
                    info.st_nlink > 0 && unlink(path) == 0) {
                    removed++;
                }
                spool_fd_close_tracked(fd);
            }
        }
        qbel_free(path);
    }
    closedir(directory);
    return removed;
}
