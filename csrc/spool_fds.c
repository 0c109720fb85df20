/* spool_fds.c: the process-wide list of spool file descriptors (see
 * "Descriptors of locked spool files" in spool.h) and its fork handlers.
 * Any thread; the list lock is a leaf and never held across a call that
 * can block (open() happens outside it). */
#include <pthread.h>

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
void
spool_close_tracked_stream(FILE *stream)
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
