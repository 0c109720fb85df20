/* spool_files.c: the spool directory (checked: ours, private) and the
 * spool files one process appends to — create (locked, then renamed into
 * place), append, sync, close — and the removal of stale temporaries.
 * Any thread; no lock of its own (each file has one owner). */
#include <dirent.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>

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
void
spool_make_file_id(char out[SPOOL_FILE_ID_MAX])
{
    event_civil_time t;
    char random_hex[17];
    event_time_to_civil(event_time_now_us(), &t);
    spool_random_hex(random_hex, 8);
    snprintf(out, SPOOL_FILE_ID_MAX, "%04d%02d%02d%02d%02d%02d-%ld-%s", t.year, t.month, t.day,
             t.hour, t.minute, t.second, (long)getpid(), random_hex);
}

char *
spool_join_path(const char *dir, const char *prefix, const char *name, const char *suffix)
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
    qbel_error_set(error, code,
                   "refusing spool directory %s: it %s (found: owner uid %ld, mode %04o; "
                   "expected: a directory, not a symbolic link, owned by uid %ld and not "
                   "writable by group or others, e.g. mode 0700)",
                   dir, why, (long)info.st_uid, (unsigned int)(info.st_mode & 07777),
                   (long)geteuid());
    errno = code;
    return -1;
}

void
spool_explain_error(const char *dir, int error_number, qbel_error *error)
{
    if (dir == NULL) {
        qbel_error_set(error, ENOENT, "no spool directory (spool_dir=None)");
    }
    else if (spool_check_directory(dir, error) == 0 || error_number == ENOENT) {
        qbel_error_set(error, error_number, "spool directory %s: %s", dir,
                       strerror(error_number));
    }
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
    spool_make_file_id(file->file_id);
    file->path = spool_join_path(dir, SPOOL_PREFIX, file->file_id, SPOOL_SUFFIX);
    /* replay ignores names starting with '.'; the file only gets its real
     * name once it is locked, so nobody can claim it before we do */
    temporary = spool_join_path(dir, TEMPORARY_PREFIX, file->file_id, SPOOL_SUFFIX);
    if (file->path == NULL || temporary == NULL) {
        goto error;
    }
    file->fd = spool_fd_open_tracked(temporary, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW,
                                     0600);
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

/* write() all of it, retrying on EINTR and short writes. */
int
spool_write_fully(int fd, const char *data, size_t length)
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
    if (spool_write_fully(file->fd, data, length) < 0) {
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
        char *path = spool_join_path(dir, "", entry->d_name, "");
        if (path == NULL) {
            break;
        }
        struct stat info;
        /* a fresh one may be between open and flock in its creator */
        if (lstat(path, &info) == 0 && S_ISREG(info.st_mode) &&
            difftime(now, info.st_mtime) > max_age_s) {
            int fd = spool_fd_open_tracked(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
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
