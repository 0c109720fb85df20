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

/* ---- the shared part of a writer-backed Python type ------------------- */

/* What differs between writer-backed types, in static storage. */
typedef struct writer_logger_kind {
    const char *logger_name; /* the logger_name property ("db") */
    /* Warnings of the type's own given before the loss warnings (no
     * exception set on entry or exit), or NULL. */
    void (*warn_operator)(PyObject *self);
    /* Raise ValueError: `json_length` bytes of JSON are more than the
     * type's limit. */
    void (*raise_too_large)(PyObject *self, size_t json_length);
    /* The type's tp_clear (dealloc runs it). */
    int (*clear)(PyObject *self);
    /* Frees what the sink used, after the writer is gone, or NULL. */
    void (*after_writer_freed)(PyObject *self);
} writer_logger_kind;

/* The fields every writer-backed type holds, right after its base. */
typedef struct writer_logger {
    const writer_logger_kind *kind;
    writer *writer;        /* NULL until first needed; freed by dealloc only */
    PyObject *description; /* str for repr(), or NULL */
    PyObject *spool_dir;   /* NULL: the default, None: no spool, else a path */
    PyObject *warn;        /* querybook_eventlog._settings.warn, once needed */
    writer_loss_warnings loss_warnings;
    double exit_timeout_s;
    bool configured; /* __init__ succeeded */
    bool closed;
} writer_logger;

/* The layout every writer-backed type's object starts with. */
typedef struct writer_logger_object {
    base_logger_object base;
    writer_logger logger;
} writer_logger_object;

#define WRITER_LOGGER(op) (&((writer_logger_object *)(op))->logger)

/* The operator warnings (the kind's, then losses).  No exception set. */
void writer_logger_warn_operator(PyObject *self);

/* Encode `fields` (after room for the record header), refuse more than
 * `max_json_bytes` of JSON (kind->raise_too_large), and queue the record
 * on the logger's writer (spooled without the GIL when the queue is full).
 * The caller made sure the writer exists; user code may run while
 * encoding, so a close() meanwhile raises ValueError "logger is closed".
 * 0, or -1 with an exception set and nothing queued. */
int writer_logger_queue_event(PyObject *self, qbel_state *state, const event_fields *fields,
                              size_t max_json_bytes);

/* ---- one encoding for several loggers (fan-out) ---------------------- */

/* While a fan-out hands one event to its members on this thread, the
 * members' writer_logger_queue_event encode its event_data once, into
 * here, and each queues a copy (copying is far cheaper than encoding).
 * Matched by the identity of event_data, so a nested log() of another
 * event on the same thread (a plugin member, a logging handler) encodes
 * its own. */
typedef struct writer_logger_shared_event {
    PyObject *event_data; /* borrowed; NULL for None */
    bool encoded;         /* buffer holds its JSON */
    bool encoding;        /* being encoded into buffer right now */
    byte_buffer buffer;
    char inline_block[2048];
    struct writer_logger_shared_event *previous;
} writer_logger_shared_event;

/* Make `shared` this thread's shared event until writer_logger_share_end
 * (calls nest, ending in reverse order). */
void writer_logger_share_begin(writer_logger_shared_event *shared, PyObject *event_data);
void writer_logger_share_end(writer_logger_shared_event *shared);

/* Stop the writer (flush for at most timeout_s, spool the rest) once;
 * later calls do nothing.  No exception set. */
void writer_logger_close(writer_logger *logger, double timeout_s);

/* writer_logger_stats_dict of the logger's writer (zeros before it
 * exists), after the operator warnings; *stats gets the numbers.  New
 * reference, or NULL. */
PyObject *writer_logger_stats(PyObject *self, writer_stats *stats);

/* Visit / clear the logger's objects (not the base's). */
int writer_logger_traverse(writer_logger *logger, visitproc visit, void *arg);
void writer_logger_clear(writer_logger *logger);

/* Methods and slots shared as they are (METH_VARARGS | METH_KEYWORDS for
 * flush/close, METH_NOARGS / METH_VARARGS for __enter__ / __exit__). */
PyObject *writer_logger_flush_method(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *writer_logger_close_method(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *writer_logger_enter(PyObject *self, PyObject *unused);
PyObject *writer_logger_exit(PyObject *self, PyObject *args);
PyObject *writer_logger_get_logger_name(PyObject *self, void *closure);
PyObject *writer_logger_get_closed(PyObject *self, void *closure);
PyObject *writer_logger_repr(PyObject *self);
/* tp_dealloc: the writer is closed with timeout 0 (what is pending goes to
 * the spool rather than wait for the server) and freed. */
void writer_logger_dealloc(PyObject *self);

#endif
