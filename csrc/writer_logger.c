/* writer_logger.c: what every logger type built on the writer shares on
 * the Python side (writer_logger.h): the interruptible flush, the stats
 * dict, the default and checked spool directory, timeouts, the operator
 * warnings the writer thread cannot give itself (it has no GIL), and the
 * writer_logger part of such a type with its methods (log's encode-and-
 * queue step, whose encoding a fan-out's members share; flush, close,
 * __enter__/__exit__, stats, repr, dealloc).
 * db_logger.c and kafka_logger.c hold only what differs, in a
 * writer_logger_kind.
 *
 * Owns the writer_logger part's objects and its writer's lifetime (freed
 * by dealloc only); every function runs on a caller thread with the GIL
 * held (and releases it while waiting). */
#include "writer_logger.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defaults.h"
#include "event_queue.h"
#include "spool.h"


/* Caller thread, GIL held: writer_flush in slices of at most 0.1 s with the
 * GIL released, checking for signals between them, so that Ctrl-C works
 * while the server is down (the events stay queued).  timeout_s < 0 waits
 * without limit.  1 done, 0 timed out, -1 with an exception set. */
int
writer_logger_flush(writer *w, double timeout_s)
{
    writer_flush_mark mark = writer_flush_mark_now(w);
    double deadline = timeout_s < 0 ? -1 : event_queue_monotonic_now() + timeout_s;
    for (;;) {
        double slice = 0.1;
        if (deadline >= 0) {
            double left = deadline - event_queue_monotonic_now();
            slice = left < 0 ? 0 : (left < slice ? left : slice);
        }
        int outcome;
        Py_BEGIN_ALLOW_THREADS
        outcome = writer_flush_to(w, mark, slice);
        Py_END_ALLOW_THREADS
        if (outcome != WRITER_FLUSH_TIMED_OUT) {
            return outcome == WRITER_FLUSH_DONE;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
        if (deadline >= 0 && event_queue_monotonic_now() >= deadline) {
            return 0;
        }
    }
}

/* The default spool directory: env QBEL_SPOOL_DIR, else a per-user one:
 * $XDG_RUNTIME_DIR/querybook_eventlog-<euid> when XDG_RUNTIME_DIR is set,
 * else <$TMPDIR, $TEMP, $TMP or /tmp>/querybook_eventlog-<euid>.  Created
 * 0700 on first use and verified (ours, a directory, not a symlink, not
 * writable by group or others) every time it is used: a name another user
 * pre-created is refused, never trusted.  Environment only:
 * tempfile.gettempdir() would create and delete probe files. */
PyObject *
writer_logger_default_spool_dir(void)
{
    const char *from_environment = getenv("QBEL_SPOOL_DIR");
    if (from_environment != NULL && *from_environment) {
        return PyUnicode_DecodeFSDefault(from_environment);
    }
    static const char *const temporary_variables[] = {"XDG_RUNTIME_DIR", "TMPDIR", "TEMP", "TMP"};
    const char *temporary = "/tmp";
    for (size_t i = 0; i < sizeof(temporary_variables) / sizeof(*temporary_variables); i++) {
        const char *value = getenv(temporary_variables[i]);
        if (value != NULL && *value) {
            temporary = value;
            break;
        }
    }
    size_t length = strlen(temporary);
    while (length > 1 && temporary[length - 1] == '/') {
        length--;
    }
    PyObject *base = PyUnicode_DecodeFSDefaultAndSize(temporary, (Py_ssize_t)length);
    if (base == NULL) {
        return NULL;
    }
    PyObject *path = PyUnicode_FromFormat("%U/%s-%lu", base, QBEL_DEFAULT_SPOOL_DIR_NAME,
                                          (unsigned long)geteuid());
    Py_DECREF(base);
    return path;
}

/* An explicit spool_dir that exists must be trusted now: ValueError naming
 * it and the reason otherwise.  A missing one is created (and verified)
 * on first use.  0, or -1 with an exception set. */
int
writer_logger_check_spool_dir(PyObject *spool_path)
{
    PyObject *bytes = NULL;
    if (!PyUnicode_FSConverter(spool_path, &bytes)) {
        return -1;
    }
    const char *dir = PyBytes_AS_STRING(bytes);
    struct stat info;
    int status = 0;
    if (lstat(dir, &info) == 0) {
        qbel_error reason;
        if (spool_check_directory(dir, &reason) < 0) {
            PyErr_Format(PyExc_ValueError, "spool_dir: %s", reason.message);
            status = -1;
        }
    }
    Py_DECREF(bytes);
    return status;
}

/* An attribute of querybook_eventlog._settings (imported on first use:
 * importing this package must not import it early). */
PyObject *
writer_logger_settings_attribute(const char *name)
{
    PyObject *module = PyImport_ImportModule("querybook_eventlog._settings");
    if (module == NULL) {
        return NULL;
    }
    PyObject *attribute = PyObject_GetAttrString(module, name);
    Py_DECREF(module);
    return attribute;
}

/* ---- methods ---------------------------------------------------------- */

int
writer_logger_timeout_argument(PyObject *value, double default_s, double *out)
{
    if (value == NULL || value == Py_None) {
        *out = default_s;
        return 0;
    }
    double seconds = PyFloat_AsDouble(value);
    if (seconds == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(seconds >= 0)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be None or a number >= 0");
        return -1;
    }
    *out = seconds;
    return 0;
}
void
writer_logger_warn(PyObject *owner, PyObject **warn_cache, PyObject *message)
{
    PyObject *result = NULL;
    if (message == NULL) {
        goto done;
    }
    if (*warn_cache == NULL) {
        PyObject *warn = writer_logger_settings_attribute("warn");
        if (warn == NULL) {
            goto done;
        }
        Py_XSETREF(*warn_cache, warn);
    }
    PyObject *warn = Py_NewRef(*warn_cache);
    result = PyObject_CallOneArg(warn, message);
    Py_DECREF(warn);

done:
    if (result == NULL && PyErr_Occurred()) {
        PyErr_WriteUnraisable(owner);
    }
    Py_XDECREF(result);
    Py_XDECREF(message);
}
void
writer_logger_warn_losses(PyObject *owner, writer *w, PyObject *description,
                          writer_loss_warnings *warned, PyObject **warn_cache)
{
    if (w == NULL || writer_dropped_count(w) <= warned->dropped) {
        return;
    }
    double now = event_queue_monotonic_now();
    if (warned->dropped > 0 && now - warned->at < WRITER_LOSS_WARNING_INTERVAL_S) {
        return;
    }
    writer_stats stats;
    writer_get_stats(w, &stats);
    uint64_t new_losses = stats.dropped - warned->dropped;
    warned->dropped = stats.dropped; /* first: the warning may log events again */
    warned->at = now;
    PyObject *type_name = PyType_GetName(Py_TYPE(owner));
    if (type_name == NULL) {
        PyErr_WriteUnraisable(owner);
        return;
    }
    PyObject *message = PyUnicode_FromFormat(
        "%U <%S>: %llu event(s) could not be kept and are lost (dropped: %llu in total; the "
        "spool or dead-letter file could not be written): %s",
        type_name, description ? description : Py_None, (unsigned long long)new_losses,
        (unsigned long long)stats.dropped,
        stats.last_error.code != 0 ? stats.last_error.message : "no error recorded");
    Py_DECREF(type_name);
    writer_logger_warn(owner, warn_cache, message);
}

static int
set_stat(PyObject *dict, const char *key, uint64_t value)
{
    PyObject *number = PyLong_FromUnsignedLongLong(value);
    if (number == NULL) {
        return -1;
    }
    int status = PyDict_SetItemString(dict, key, number);
    Py_DECREF(number);
    return status;
}
PyObject *
writer_logger_stats_dict(const writer_stats *stats)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    if (set_stat(dict, "enqueued", stats->enqueued) < 0 ||
        set_stat(dict, "written", stats->written) < 0 ||
        set_stat(dict, "batches", stats->batches) < 0 ||
        set_stat(dict, "retries", stats->retries) < 0 ||
        set_stat(dict, "reconnects", stats->reconnects) < 0 ||
        set_stat(dict, "spooled", stats->spooled) < 0 ||
        set_stat(dict, "replayed", stats->replayed) < 0 ||
        set_stat(dict, "dead_lettered", stats->dead_lettered) < 0 ||
        set_stat(dict, "dropped", stats->dropped) < 0 ||
        set_stat(dict, "queue_bytes", stats->queue_bytes) < 0) {
        goto error;
    }
    const char *message = stats->last_error.message;
    PyObject *last_error = stats->last_error.code != 0 && message[0] != '\0'
                               ? PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message),
                                                      "replace")
                               : Py_NewRef(Py_None);
    if (last_error == NULL) {
        goto error;
    }
    int status = PyDict_SetItemString(dict, "last_error", last_error);
    Py_DECREF(last_error);
    if (status < 0) {
        goto error;
    }
    PyObject *last_error_at = stats->last_error.code != 0 && stats->last_error_at > 0
                                  ? PyFloat_FromDouble(stats->last_error_at)
                                  : Py_NewRef(Py_None);
    if (last_error_at == NULL) {
        goto error;
    }
    status = PyDict_SetItemString(dict, "last_error_at", last_error_at);
    Py_DECREF(last_error_at);
    if (status < 0) {
        goto error;
    }
    return dict;

error:
    Py_DECREF(dict);
    return NULL;
}

/* ---- the shared part of a writer-backed Python type ------------------- */

void
writer_logger_warn_operator(PyObject *self)
{
    writer_logger *logger = WRITER_LOGGER(self);
    if (logger->kind->warn_operator != NULL) {
        logger->kind->warn_operator(self);
    }
    writer_logger_warn_losses(self, logger->writer, logger->description, &logger->loss_warnings,
                              &logger->warn);
}

/* Encoding may run user code (isoformat of a date subclass, a dict
 * subclass's items()), which may call close(); close() never frees the
 * writer (only dealloc does), so the writer read afterwards is the one
 * the caller ensured and stays valid for as long as `self` does. */
/* The writer to queue `json_length` bytes of JSON on: NULL with
 * ValueError when that is more than `max_json_bytes` or when the logger
 * was closed (user code ran while encoding). */
static writer *
writer_for_encoded(PyObject *self, size_t json_length, size_t max_json_bytes)
{
    writer_logger *logger = WRITER_LOGGER(self);
    if (json_length > max_json_bytes) {
        logger->kind->raise_too_large(self, json_length);
        return NULL;
    }
    if (logger->closed || logger->writer == NULL) {
        PyErr_SetString(PyExc_ValueError, "logger is closed");
        return NULL;
    }
    return logger->writer;
}

/* Queue `record`, which the writer owns from here. */
static void
enqueue_record_take(writer *w, event_record *record)
{
    if (writer_try_enqueue(w, record) != 0) {
        /* overflow: a local file append, without the GIL */
        Py_BEGIN_ALLOW_THREADS
        writer_submit(w, record);
        Py_END_ALLOW_THREADS
    }
}

/* The fan-out's event this thread is handing to its members, or NULL. */
static _Thread_local writer_logger_shared_event *current_shared_event;

void
writer_logger_share_begin(writer_logger_shared_event *shared, PyObject *event_data)
{
    shared->event_data = event_data;
    shared->encoded = false;
    shared->encoding = false;
    byte_buffer_init(&shared->buffer, shared->inline_block, sizeof(shared->inline_block));
    shared->previous = current_shared_event;
    current_shared_event = shared;
}

void
writer_logger_share_end(writer_logger_shared_event *shared)
{
    current_shared_event = shared->previous;
    byte_buffer_release(&shared->buffer);
}

/* writer_logger_queue_event for the fan-out's shared event: encoded by
 * the first member (a failure leaves it to the next to try again), copied
 * into each member's record. */
static int
queue_shared_event(PyObject *self, qbel_state *state, const event_fields *fields,
                   size_t max_json_bytes, writer_logger_shared_event *shared)
{
    if (!shared->encoded) {
        shared->buffer.length = 0;
        shared->encoding = true;
        int status = event_fields_encode_data(state, fields, &shared->buffer);
        shared->encoding = false;
        if (status < 0) {
            return -1;
        }
        shared->encoded = true;
    }
    writer *w = writer_for_encoded(self, shared->buffer.length, max_json_bytes);
    if (w == NULL) {
        return -1;
    }
    event_record *record = event_record_new(fields->created_at_us, fields->uid,
                                            fields->uid_is_null, fields->event_type,
                                            shared->buffer.data, shared->buffer.length);
    if (record == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    enqueue_record_take(w, record);
    return 0;
}

int
writer_logger_queue_event(PyObject *self, qbel_state *state, const event_fields *fields,
                          size_t max_json_bytes)
{
    writer_logger_shared_event *shared = current_shared_event;
    /* not while it is being encoded: user code run by the encoder may log
     * the same object to another logger */
    if (shared != NULL && shared->event_data == fields->event_data && !shared->encoding) {
        return queue_shared_event(self, state, fields, max_json_bytes, shared);
    }
    /* encoded after room for the record's header, so that a heap block
     * becomes the record as it is (no second copy of a large event) */
    char inline_block[2048];
    byte_buffer buffer;
    byte_buffer_init(&buffer, inline_block, sizeof(inline_block));
    buffer.length = EVENT_RECORD_HEADER_SIZE;
    if (event_fields_encode_data(state, fields, &buffer) < 0) {
        byte_buffer_release(&buffer);
        return -1;
    }
    /* user code ran during encoding: the logger may be closed now */
    writer *w = writer_for_encoded(self, buffer.length - EVENT_RECORD_HEADER_SIZE, max_json_bytes);
    if (w == NULL) {
        byte_buffer_release(&buffer);
        return -1;
    }
    event_record *record = event_record_from_buffer_take(
        fields->created_at_us, fields->uid, fields->uid_is_null, fields->event_type, &buffer);
    if (record == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    enqueue_record_take(w, record);
    return 0;
}

void
writer_logger_close(writer_logger *logger, double timeout_s)
{
    if (logger->closed) {
        return;
    }
    logger->closed = true;
    writer *w = logger->writer;
    if (w != NULL) {
        Py_BEGIN_ALLOW_THREADS
        writer_close(w, timeout_s);
        Py_END_ALLOW_THREADS
    }
}

PyObject *
writer_logger_stats(PyObject *self, writer_stats *stats)
{
    writer_logger *logger = WRITER_LOGGER(self);
    memset(stats, 0, sizeof(*stats));
    stats->delivery = SINK_DELIVERY_UNKNOWN;
    writer_logger_warn_operator(self);
    if (logger->writer != NULL) {
        writer_get_stats(logger->writer, stats);
    }
    return writer_logger_stats_dict(stats);
}

int
writer_logger_traverse(writer_logger *logger, visitproc visit, void *arg)
{
    Py_VISIT(logger->description);
    Py_VISIT(logger->spool_dir);
    Py_VISIT(logger->warn);
    return 0;
}

void
writer_logger_clear(writer_logger *logger)
{
    Py_CLEAR(logger->description);
    Py_CLEAR(logger->spool_dir);
    Py_CLEAR(logger->warn);
}

/* The `timeout=None` argument of flush/close ("|O:flush"): None ->
 * default_s.  0 or -1. */
static int
timeout_parameter(PyObject *args, PyObject *kwargs, const char *format, double default_s,
                  double *out)
{
    static char *keywords[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, keywords, &timeout)) {
        return -1;
    }
    return writer_logger_timeout_argument(timeout, default_s, out);
}

PyObject *
writer_logger_flush_method(PyObject *self, PyObject *args, PyObject *kwargs)
{
    writer_logger *logger = WRITER_LOGGER(self);
    double seconds;
    if (timeout_parameter(args, kwargs, "|O:flush", -1, &seconds) < 0) {
        return NULL;
    }
    if (logger->writer == NULL) {
        Py_RETURN_TRUE; /* nothing was ever logged */
    }
    int done = writer_logger_flush(logger->writer, seconds);
    if (done < 0) {
        return NULL;
    }
    writer_logger_warn_operator(self);
    return PyBool_FromLong(done);
}

PyObject *
writer_logger_close_method(PyObject *self, PyObject *args, PyObject *kwargs)
{
    writer_logger *logger = WRITER_LOGGER(self);
    double seconds;
    if (timeout_parameter(args, kwargs, "|O:close", logger->exit_timeout_s, &seconds) < 0) {
        return NULL;
    }
    writer_logger_close(logger, seconds);
    writer_logger_warn_operator(self);
    Py_RETURN_NONE;
}

PyObject *
writer_logger_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

PyObject *
writer_logger_exit(PyObject *self, PyObject *args)
{
    (void)args;
    writer_logger *logger = WRITER_LOGGER(self);
    writer_logger_close(logger, logger->exit_timeout_s);
    Py_RETURN_NONE;
}

PyObject *
writer_logger_get_logger_name(PyObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(WRITER_LOGGER(self)->kind->logger_name);
}

PyObject *
writer_logger_get_closed(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(WRITER_LOGGER(self)->closed);
}

PyObject *
writer_logger_repr(PyObject *self)
{
    writer_logger *logger = WRITER_LOGGER(self);
    PyObject *name = PyType_GetName(Py_TYPE(self));
    if (name == NULL) {
        return NULL;
    }
    PyObject *repr = logger->description
                         ? PyUnicode_FromFormat("<%U %U%s>", name, logger->description,
                                                logger->closed ? " closed" : "")
                         : PyUnicode_FromFormat("<%U>", name);
    Py_DECREF(name);
    return repr;
}

/* Nothing else can be using the writer once `self` is gone (a thread
 * inside log/flush/close holds a reference to `self`). */
void
writer_logger_dealloc(PyObject *self)
{
    writer_logger *logger = WRITER_LOGGER(self);
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (((base_logger_object *)self)->weakreflist != NULL) {
        PyObject_ClearWeakRefs(self);
    }
    writer *w = logger->writer;
    logger->writer = NULL;
    if (w != NULL) {
        Py_BEGIN_ALLOW_THREADS
        writer_close(w, 0);
        writer_free(w);
        Py_END_ALLOW_THREADS
    }
    if (logger->kind->after_writer_freed != NULL) {
        logger->kind->after_writer_freed(self);
    }
    logger->kind->clear(self);
    type->tp_free(self);
    Py_DECREF(type);
}
