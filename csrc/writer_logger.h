/* writer_logger: the Python-side pieces every logger type built on the
 * writer shares (writer_logger.c).  A logger type over a new sink is its
 * sink's C file plus a Python type like db_logger.c that uses these.
 * Every function: caller thread, GIL held (released while waiting). */
#ifndef QBEL_WRITER_LOGGER_H
#define QBEL_WRITER_LOGGER_H

#include "qbel.h"
#include "writer.h"

/* Losses are warned about again at most this often (the first at once). */
#define WRITER_LOSS_WARNING_INTERVAL_S 10.0

/* What a logger has already warned about (zero-initialised). */
typedef struct writer_loss_warnings {
    uint64_t dropped; /* stats.dropped when the last loss warning was given */
    double at;        /* monotonic time of that warning */
} writer_loss_warnings;

/* writer_flush in slices of at most 0.1 s with the GIL released, checking
 * for signals between them (Ctrl-C works while the server is down; the
 * events stay queued).  timeout_s < 0 waits without limit.  1 done, 0
 * timed out, -1 with an exception set. */
int writer_logger_flush(writer *w, double timeout_s);

/* The stats dict every writer-backed logger returns (enqueued ...
 * queue_bytes, last_error, last_error_at); the caller adds its own keys.
 * New reference, or NULL. */
PyObject *writer_logger_stats_dict(const writer_stats *stats);

/* The default spool directory (env QBEL_SPOOL_DIR, else a per-user one
 * under $XDG_RUNTIME_DIR or the temporary directory), as a str. */
PyObject *writer_logger_default_spool_dir(void);

/* An explicit spool_dir that exists must be trusted now: ValueError
 * naming it, what was found and what is expected.  0 or -1. */
int writer_logger_check_spool_dir(PyObject *spool_path);

/* An attribute of querybook_eventlog._settings (imported on first use).
 * New reference, or NULL. */
PyObject *writer_logger_settings_attribute(const char *name);

/* timeout=None -> default_s; else a number >= 0 (ValueError otherwise).
 * 0 or -1. */
int writer_logger_timeout_argument(PyObject *value, double default_s, double *out);

/* Hand `message` (a new reference, or NULL with an exception set) to
 * querybook_eventlog._settings.warn (Python logging), caching the function
 * in *warn_cache.  A failing warning is reported as unraisable on `owner`:
 * it never turns a logged event into an error. */
void writer_logger_warn(PyObject *owner, PyObject **warn_cache, PyObject *message);

/* No exception set.  When `w` counted events as dropped since the last
 * warning (the spool or dead-letter file could not take them): warn with
 * how many and last_error, at once for the first loss, then at most every
 * WRITER_LOSS_WARNING_INTERVAL_S.  The writer thread has no GIL; it
 * publishes the count (writer_dropped_count), this reads it. */
void writer_logger_warn_losses(PyObject *owner, writer *w, PyObject *description,
                               writer_loss_warnings *warned, PyObject **warn_cache);

#endif
