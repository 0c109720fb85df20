/* kafka_logger.c: KafkaEventLogger ("kafka"), events to a Kafka topic
 * through the writer (writer.h) and the librdkafka sink (kafka_sink.h):
 * log() validates and encodes event_data in the caller, hands a pure-C
 * event_record to the writer's queue and returns; the writer thread
 * builds each message's envelope and does every network call.
 *
 * Owns: the writer (and through it the queue, thread, producer, spool),
 * the arguments a writer made on first use needs, the cached warning
 * function.  The shared Python-side pieces (encode-and-queue, flush,
 * close, stats, repr, dealloc) are writer_logger.c's, given this type's
 * own parts through kafka_logger_kind.
 *
 * Lazy like the DB logger: constructing checks the arguments and connects
 * to nothing; the settings given as None (bootstrap servers, topic,
 * config) are resolved on the first log() by
 * querybook_eventlog._kafka.resolve_settings (Querybook's config, then the
 * environment: EVENT_LOGGER_KAFKA_*).
 *
 * Built without librdkafka (setup.py did not find `pkg-config rdkafka`),
 * the type exists but construction raises RuntimeError naming the Debian
 * package librdkafka-dev.
 */
#include "qbel.h"

#include <string.h>

#include "defaults.h"
#include "kafka_sink.h"
#include "qbel_alloc.h"
#include "writer.h"
#include "writer_logger.h"

/* A message larger than librdkafka's message.max.bytes is a dead letter
 * (the sink's rejection); this bounds what the caller may queue at all. */
#define KAFKA_MAX_EVENT_BYTES ((size_t)QBEL_DEFAULT_MAX_EVENT_BYTES_CAP)

typedef struct kafka_logger_object {
    base_logger_object base;
    writer_logger logger;  /* writer, description "kafka://servers#topic", spool_dir ... */
    writer_config options; /* numbers only: no sink factory, no spool_dir */
    PyObject *bootstrap_servers; /* str or None (from the settings) */
    PyObject *topic;             /* str or None */
    PyObject *config;            /* dict or None */
    PyObject *transactional_id;  /* str or None: librdkafka's transactional.id over config's */
    bool key_by_uid;
    unsigned int connect_timeout_ms;
#ifdef QBEL_HAVE_RDKAFKA
    kafka_sink_counters *counters; /* the sinks' reports: one reference (see kafka_sink.h) */
#endif
} kafka_logger_object;

static const writer_logger_kind kafka_logger_kind;

#ifdef QBEL_HAVE_RDKAFKA

/* The librdkafka properties of a {name: value} dict as two arrays of
 * borrowed UTF-8 strings (alive while `strings` holds the str objects).
 * Values may be str, int or bool (as "true"/"false").  0, or -1 with
 * TypeError/ValueError (a property librdkafka refuses, with its reason). */
static int
settings_from_dict(PyObject *config, PyObject *strings, kafka_sink_config *out)
{
    Py_ssize_t count = PyDict_GET_SIZE(config);
    out->setting_count = 0;
    out->setting_names = qbel_calloc((size_t)count + 1, sizeof(char *));
    out->setting_values = qbel_calloc((size_t)count + 1, sizeof(char *));
    if (out->setting_names == NULL || out->setting_values == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *name, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(config, &position, &name, &value)) {
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "Kafka config keys must be str, not %.100s",
                         Py_TYPE(name)->tp_name);
            return -1;
        }
        PyObject *text;
        if (PyBool_Check(value)) {
            text = PyUnicode_FromString(value == Py_True ? "true" : "false");
        }
        else if (PyUnicode_Check(value) || PyLong_Check(value) || PyFloat_Check(value)) {
            text = PyObject_Str(value);
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "Kafka config %R must be a str, int, float or bool, not %.100s", name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        if (text == NULL || PyList_Append(strings, text) < 0 || PyList_Append(strings, name) < 0) {
            Py_XDECREF(text);
            return -1;
        }
        Py_DECREF(text);
        const char *name_text = PyUnicode_AsUTF8(name);
        const char *value_text = PyUnicode_AsUTF8(text);
        if (name_text == NULL || value_text == NULL) {
            return -1;
        }
        char reason[256];
        if (kafka_sink_check_setting(name_text, value_text, reason, sizeof(reason)) < 0) {
            PyErr_Format(PyExc_ValueError, "Kafka config %R=%R: %s", name, text, reason);
            return -1;
        }
        out->setting_names[out->setting_count] = (char *)name_text;
        out->setting_values[out->setting_count] = (char *)value_text;
        out->setting_count++;
    }
    return 0;
}

/* Caller thread, GIL held.  A writer for the resolved settings. */
static writer *
make_writer(kafka_logger_object *self, PyObject *servers, PyObject *topic, PyObject *config,
            PyObject **description_out)
{
    PyObject *strings = PyList_New(0);
    PyObject *spool_path = NULL, *spool_bytes = NULL;
    writer *made = NULL;
    kafka_sink_config sink;
    memset(&sink, 0, sizeof(sink));
    if (strings == NULL || settings_from_dict(config, strings, &sink) < 0) {
        goto done;
    }
    sink.bootstrap_servers = (char *)PyUnicode_AsUTF8(servers);
    sink.topic = (char *)PyUnicode_AsUTF8(topic);
    if (sink.bootstrap_servers == NULL || sink.topic == NULL) {
        goto done;
    }
    sink.key_by_uid = self->key_by_uid;
    sink.connect_timeout_ms = self->connect_timeout_ms;
    sink.counters = self->counters;
    if (self->logger.spool_dir == NULL) {
        spool_path = writer_logger_default_spool_dir();
        if (spool_path == NULL) {
            goto done;
        }
    }
    else if (self->logger.spool_dir != Py_None) {
        spool_path = Py_NewRef(self->logger.spool_dir);
    }
    if (spool_path != NULL && !PyUnicode_FSConverter(spool_path, &spool_bytes)) {
        goto done;
    }
    writer_config options = self->options;
    if (kafka_sink_factory(&options.sink, &sink) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    options.spool_dir = spool_bytes ? PyBytes_AS_STRING(spool_bytes) : NULL;
    made = writer_new(&options);
    *description_out = PyUnicode_FromString(sink_factory_identity(&options.sink));
    sink_factory_free(&options.sink);
    if (made == NULL || *description_out == NULL) {
        if (made == NULL) {
            PyErr_NoMemory();
        }
        Py_BEGIN_ALLOW_THREADS
        writer_free(made);
        Py_END_ALLOW_THREADS
        made = NULL;
    }

done:
    /* the arrays only: their strings are borrowed from `strings` */
    qbel_free(sink.setting_names);
    qbel_free(sink.setting_values);
    Py_XDECREF(strings);
    Py_XDECREF(spool_path);
    Py_XDECREF(spool_bytes);
    return made;
}

/* Caller thread, GIL held.  The writer, made on first use; the settings
 * left None are resolved now.  Borrowed, or NULL with an exception set. */
static writer *
ensure_writer(kafka_logger_object *self)
{
    if (self->logger.writer != NULL) {
        return self->logger.writer;
    }
    if (!self->logger.configured) {
        PyErr_SetString(PyExc_RuntimeError, "KafkaEventLogger.__init__ was not called");
        return NULL;
    }
    PyObject *module = PyImport_ImportModule("querybook_eventlog._kafka");
    if (module == NULL) {
        return NULL;
    }
    PyObject *resolved = PyObject_CallMethod(module, "resolve_settings", "OOO",
                                             self->bootstrap_servers, self->topic, self->config);
    Py_DECREF(module);
    if (resolved == NULL) {
        return NULL;
    }
    PyObject *servers, *topic, *config, *description = NULL;
    if (!PyArg_ParseTuple(resolved, "UUO!", &servers, &topic, &PyDict_Type, &config)) {
        Py_DECREF(resolved);
        return NULL;
    }
    PyObject *merged = PyDict_Copy(config);
    if (merged == NULL || (self->transactional_id != Py_None &&
                           PyDict_SetItemString(merged, "transactional.id",
                                                self->transactional_id) < 0)) {
        Py_XDECREF(merged);
        Py_DECREF(resolved);
        return NULL;
    }
    writer *made = make_writer(self, servers, topic, merged, &description);
    Py_DECREF(merged);
    Py_DECREF(resolved);
    if (made == NULL) {
        return NULL;
    }
    if (self->logger.writer == NULL) { /* another thread may have won while Python code ran */
        self->logger.writer = made;
        Py_XSETREF(self->logger.description, description);
    }
    else {
        Py_DECREF(description);
        Py_BEGIN_ALLOW_THREADS
        writer_free(made);
        Py_END_ALLOW_THREADS
    }
    return self->logger.writer;
}

#endif /* QBEL_HAVE_RDKAFKA */

static int
kafka_log_fields(base_logger_object *base, qbel_state *state, const event_fields *fields)
{
    kafka_logger_object *self = (kafka_logger_object *)base;
    if (self->logger.closed) {
        PyErr_SetString(PyExc_ValueError, "logger is closed");
        return -1;
    }
#ifdef QBEL_HAVE_RDKAFKA
    if (ensure_writer(self) == NULL) {
        return -1;
    }
#else
    PyErr_SetString(PyExc_RuntimeError, "KafkaEventLogger.__init__ was not called");
    return -1;
#endif
    if (writer_logger_queue_event((PyObject *)self, state, fields, KAFKA_MAX_EVENT_BYTES) < 0) {
        return -1;
    }
    writer_logger_warn_operator((PyObject *)self);
    return 0;
}

static PyObject *
kafka_logger_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    qbel_state *state = qbel_state_of_type(type);
    if (state == NULL) {
        return NULL;
    }
    PyObject *self = base_logger_alloc(type, state->kafka_logger_type, kafka_log_fields);
    if (self != NULL) {
        WRITER_LOGGER(self)->kind = &kafka_logger_kind;
    }
    return self;
}

#ifndef QBEL_HAVE_RDKAFKA

static int
kafka_logger_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    (void)op;
    (void)args;
    (void)kwargs;
    PyErr_SetString(PyExc_RuntimeError,
                    "KafkaEventLogger needs librdkafka, which this build of querybook_eventlog "
                    "was made without: install the Debian package librdkafka-dev "
                    "(apt-get install librdkafka-dev) and rebuild");
    return -1;
}

#else

/* key="uid" -> true, None -> false. */
static int
key_argument(PyObject *key, bool *key_by_uid)
{
    if (key == Py_None) {
        *key_by_uid = false;
        return 0;
    }
    if (PyUnicode_Check(key) && PyUnicode_CompareWithASCIIString(key, "uid") == 0) {
        *key_by_uid = true;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "key must be 'uid' or None (round-robin), not %R", key);
    return -1;
}

static int
kafka_logger_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    kafka_logger_object *self = (kafka_logger_object *)op;
    static char *keywords[] = {"bootstrap_servers", "topic",          "key",
                               "config",            "batch_size",     "flush_interval",
                               "max_queue_bytes",   "spool_dir",      "connect_timeout",
                               "exit_timeout",      "backoff_initial", "backoff_max",
                               "transactional_id",  NULL};
    PyObject *servers = Py_None, *topic = Py_None, *key = NULL, *config = Py_None;
    PyObject *spool_dir = NULL, *transactional_id = Py_None;
    Py_ssize_t batch_size = QBEL_DEFAULT_BATCH_SIZE;
    double flush_interval = QBEL_DEFAULT_FLUSH_INTERVAL_S;
    Py_ssize_t max_queue_bytes = (Py_ssize_t)QBEL_DEFAULT_MAX_QUEUE_BYTES;
    double connect_timeout = QBEL_DEFAULT_CONNECT_TIMEOUT_S;
    double exit_timeout = QBEL_DEFAULT_EXIT_TIMEOUT_S;
    double backoff_initial = QBEL_DEFAULT_BACKOFF_INITIAL_S;
    double backoff_max = QBEL_DEFAULT_BACKOFF_MAX_S;
    bool key_by_uid = true;
    if (self->logger.writer != NULL || self->logger.configured) {
        PyErr_SetString(PyExc_TypeError, "KafkaEventLogger is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO$OOndnOddddO:KafkaEventLogger", keywords,
                                     &servers, &topic, &key, &config, &batch_size,
                                     &flush_interval, &max_queue_bytes, &spool_dir,
                                     &connect_timeout, &exit_timeout, &backoff_initial,
                                     &backoff_max, &transactional_id)) {
        return -1;
    }
    if (transactional_id != Py_None &&
        (!PyUnicode_Check(transactional_id) || PyUnicode_GET_LENGTH(transactional_id) == 0)) {
        PyErr_SetString(PyExc_TypeError, "transactional_id must be a non-empty str or None");
        return -1;
    }
    if ((servers != Py_None && !PyUnicode_Check(servers)) ||
        (topic != Py_None && !PyUnicode_Check(topic))) {
        PyErr_SetString(PyExc_TypeError, "bootstrap_servers and topic must be str or None");
        return -1;
    }
    if (topic != Py_None && PyUnicode_GET_LENGTH(topic) == 0) {
        PyErr_SetString(PyExc_ValueError, "topic must not be empty");
        return -1;
    }
    if (config != Py_None && !PyDict_Check(config)) {
        PyErr_Format(PyExc_TypeError, "config must be a dict of librdkafka properties, not %.100s",
                     Py_TYPE(config)->tp_name);
        return -1;
    }
    if (key != NULL && key_argument(key, &key_by_uid) < 0) {
        return -1;
    }
    if (batch_size < 1 || batch_size > 1000000) {
        PyErr_SetString(PyExc_ValueError, "batch_size must be between 1 and 1000000");
        return -1;
    }
    if (!(flush_interval > 0 && flush_interval < 86400) || !(exit_timeout >= 0) ||
        !(backoff_initial > 0) || !(backoff_max >= backoff_initial) ||
        !(connect_timeout >= 0.1 && connect_timeout <= 3600)) {
        PyErr_SetString(PyExc_ValueError,
                        "flush_interval and backoff_initial must be positive, exit_timeout "
                        "not negative, backoff_max >= backoff_initial, connect_timeout "
                        "between 0.1 and 3600");
        return -1;
    }
    if (max_queue_bytes < 4096) {
        PyErr_SetString(PyExc_ValueError, "max_queue_bytes must be at least 4096");
        return -1;
    }
    if (config != Py_None) {
        /* a property librdkafka refuses is a ValueError now, not on first use */
        PyObject *strings = PyList_New(0);
        kafka_sink_config check;
        memset(&check, 0, sizeof(check));
        int status = strings == NULL ? -1 : settings_from_dict(config, strings, &check);
        qbel_free(check.setting_names);
        qbel_free(check.setting_values);
        Py_XDECREF(strings);
        if (status < 0) {
            return -1;
        }
    }
    PyObject *spool_path = NULL;
    if (spool_dir != NULL && spool_dir != Py_None) {
        spool_path = PyOS_FSPath(spool_dir);
        if (spool_path == NULL || writer_logger_check_spool_dir(spool_path) < 0) {
            Py_XDECREF(spool_path);
            return -1;
        }
    }
    else {
        spool_path = Py_XNewRef(spool_dir);
    }
    PyObject *description = PyUnicode_FromFormat(
        "kafka://%s#%s", servers != Py_None ? PyUnicode_AsUTF8(servers) : "(settings)",
        topic != Py_None ? PyUnicode_AsUTF8(topic) : "(settings)");
    if (description == NULL) {
        Py_XDECREF(spool_path);
        return -1;
    }
    memset(&self->options, 0, sizeof(self->options));
    self->options.batch_size = (size_t)batch_size;
    self->options.flush_interval_s = flush_interval;
    self->options.max_queue_bytes = (size_t)max_queue_bytes;
    self->options.backoff_initial_s = backoff_initial;
    self->options.backoff_max_s = backoff_max;
    Py_XSETREF(self->bootstrap_servers, Py_NewRef(servers));
    Py_XSETREF(self->topic, Py_NewRef(topic));
    Py_XSETREF(self->config, config == Py_None ? Py_NewRef(Py_None) : PyDict_Copy(config));
    Py_XSETREF(self->transactional_id, Py_NewRef(transactional_id));
    Py_XSETREF(self->logger.spool_dir, spool_path);
    Py_XSETREF(self->logger.description, description);
    if (self->config == NULL) {
        return -1;
    }
    if (self->counters == NULL) {
        self->counters = kafka_sink_counters_new();
        if (self->counters == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    self->key_by_uid = key_by_uid;
    self->connect_timeout_ms = (unsigned int)(connect_timeout * 1000);
    self->logger.exit_timeout_s = exit_timeout;
    self->logger.closed = false;
    self->logger.configured = true;
    /* flushed and closed at interpreter exit, as the DB logger is */
    PyObject *module = PyImport_ImportModule("querybook_eventlog._kafka");
    PyObject *tracked = module ? PyObject_CallMethod(module, "track", "O", op) : NULL;
    Py_XDECREF(module);
    if (tracked == NULL) {
        return -1;
    }
    Py_DECREF(tracked);
    return 0;
}

#endif /* QBEL_HAVE_RDKAFKA */

PyDoc_STRVAR(kafka_flush_doc,
             "flush($self, /, timeout=None)\n--\n\n"
             "Wait until every event logged before the call is acknowledged by the broker\n"
             "(acks=all) or kept in the dead-letter file.  timeout: seconds, None waits\n"
             "without limit.  Returns True when done, False on timeout.");

PyDoc_STRVAR(kafka_close_doc,
             "close($self, /, timeout=None)\n--\n\n"
             "Flush for at most `timeout` seconds (None: exit_timeout), stop the writer\n"
             "thread and move what the broker has not acknowledged to the spool directory.\n"
             "Idempotent; log() raises ValueError afterwards.");

PyDoc_STRVAR(kafka_stats_doc,
             "stats($self, /)\n--\n\n"
             "The DB logger's counters (enqueued, written, batches, retries, reconnects,\n"
             "spooled, replayed, dead_lettered, dropped, queue_bytes, last_error,\n"
             "last_error_at; `written` counts acknowledged messages), and: producers\n"
             "(producer handles made), producer_replacements (handles destroyed after an\n"
             "error -- fatal such as UNKNOWN_PRODUCER_ID after a broker restart, timed\n"
             "out, fenced, or a broker rejection -- and replaced by a new one),\n"
             "last_producer_error and last_producer_error_at (why and when the last was;\n"
             "None when none; kept after last_error clears).");

static PyObject *
kafka_logger_stats(PyObject *op, PyObject *unused)
{
    (void)unused;
    writer_stats stats;
    PyObject *dict = writer_logger_stats(op, &stats);
#ifdef QBEL_HAVE_RDKAFKA
    kafka_logger_object *self = (kafka_logger_object *)op;
    kafka_sink_report report;
    kafka_sink_counters_read(self->counters, &report);
    PyObject *last = NULL, *last_at = NULL, *made = NULL, *replaced = NULL;
    if (dict == NULL) {
        return NULL;
    }
    last = report.last_replacement.code != 0
               ? PyUnicode_DecodeUTF8(report.last_replacement.message,
                                      (Py_ssize_t)strlen(report.last_replacement.message),
                                      "replace")
               : Py_NewRef(Py_None);
    last_at = report.last_replacement_at > 0 ? PyFloat_FromDouble(report.last_replacement_at)
                                             : Py_NewRef(Py_None);
    made = PyLong_FromUnsignedLongLong(report.producers);
    replaced = PyLong_FromUnsignedLongLong(report.replacements);
    if (last == NULL || last_at == NULL || made == NULL || replaced == NULL ||
        PyDict_SetItemString(dict, "producers", made) < 0 ||
        PyDict_SetItemString(dict, "producer_replacements", replaced) < 0 ||
        PyDict_SetItemString(dict, "last_producer_error", last) < 0 ||
        PyDict_SetItemString(dict, "last_producer_error_at", last_at) < 0) {
        Py_CLEAR(dict);
    }
    Py_XDECREF(last);
    Py_XDECREF(last_at);
    Py_XDECREF(made);
    Py_XDECREF(replaced);
#endif
    return dict;
}

#define KAFKA_LOGGER_OBJECTS(APPLY)                                                        \
    APPLY(bootstrap_servers) APPLY(topic) APPLY(config) APPLY(transactional_id)

static int
kafka_logger_traverse(PyObject *op, visitproc visit, void *arg)
{
    kafka_logger_object *self = (kafka_logger_object *)op;
#define VISIT(field) Py_VISIT(self->field);
    KAFKA_LOGGER_OBJECTS(VISIT)
#undef VISIT
    int status = writer_logger_traverse(&self->logger, visit, arg);
    if (status != 0) {
        return status;
    }
    return base_logger_traverse((base_logger_object *)op, visit, arg);
}

static int
kafka_logger_clear(PyObject *op)
{
    kafka_logger_object *self = (kafka_logger_object *)op;
#define CLEAR(field) Py_CLEAR(self->field);
    KAFKA_LOGGER_OBJECTS(CLEAR)
#undef CLEAR
    writer_logger_clear(&self->logger);
    return base_logger_clear(op);
}

/* After the writer: a thread it left behind holds its own reference. */
static void
kafka_logger_free_counters(PyObject *op)
{
#ifdef QBEL_HAVE_RDKAFKA
    kafka_logger_object *self = (kafka_logger_object *)op;
    kafka_sink_counters_release(self->counters);
    self->counters = NULL;
#else
    (void)op;
#endif
}

static void
kafka_raise_too_large(PyObject *self, size_t json_length)
{
    (void)self;
    PyErr_Format(PyExc_ValueError, "event_data is %zu bytes of JSON, more than 1 GiB",
                 json_length);
}

static const writer_logger_kind kafka_logger_kind = {
    .logger_name = "kafka",
    .warn_operator = NULL,
    .raise_too_large = kafka_raise_too_large,
    .clear = kafka_logger_clear,
    .after_writer_freed = kafka_logger_free_counters,
};

PyDoc_STRVAR(kafka_log_doc,
             "log($self, /, uid, event_type, event_data, timestamp=None)\n--\n\n"
             "Validate and encode the event in the caller, queue it for the writer thread\n"
             "and return at once (no network I/O).  ValueError when the logger is closed.");

static PyMethodDef kafka_logger_methods[] = {
    {"log", (PyCFunction)(void (*)(void))base_logger_builtin_log, METH_FASTCALL | METH_KEYWORDS,
     kafka_log_doc},
    {"flush", (PyCFunction)(void (*)(void))writer_logger_flush_method, METH_VARARGS | METH_KEYWORDS,
     kafka_flush_doc},
    {"close", (PyCFunction)(void (*)(void))writer_logger_close_method, METH_VARARGS | METH_KEYWORDS,
     kafka_close_doc},
    {"stats", kafka_logger_stats, METH_NOARGS, kafka_stats_doc},
    {"__enter__", writer_logger_enter, METH_NOARGS, NULL},
    {"__exit__", writer_logger_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef kafka_logger_getset[] = {
    {"logger_name", writer_logger_get_logger_name, NULL, "'kafka'", NULL},
    {"closed", writer_logger_get_closed, NULL, "True once close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(kafka_logger_doc,
             "KafkaEventLogger(bootstrap_servers=None, topic=None, *, key='uid',\n"
             "                 config=None, batch_size=2000, flush_interval=1.0,\n"
             "                 max_queue_bytes=64 MiB, spool_dir=<default>,\n"
             "                 connect_timeout=5, exit_timeout=5.0, backoff_initial=0.1,\n"
             "                 backoff_max=30.0, transactional_id=None)\n--\n\n"
             "The logger named 'kafka': events to a Kafka topic from a writer thread, through\n"
             "librdkafka's idempotent producer with acks=all, at least once (a consumer\n"
             "drops duplicates by the event_id header).  None settings come from\n"
             "Querybook's config or the environment on the first log():\n"
             "EVENT_LOGGER_KAFKA_BOOTSTRAP_SERVERS, EVENT_LOGGER_KAFKA_TOPIC (default\n"
             "'querybook_event_log'), EVENT_LOGGER_KAFKA_CONFIG (a JSON object).  key='uid'\n"
             "keeps one user's events in order; None spreads them.  config: librdkafka\n"
             "properties over our defaults (acks=all, enable.idempotence=true,\n"
             "message.timeout.ms=30000, linger.ms=5).  Constructing never connects.\n"
             "When the broker is unreachable events go to the spool and are replayed;\n"
             "messages the broker rejects for good go to the dead-letter file.\n"
             "transactional_id (or config's transactional.id): each batch is one Kafka\n"
             "transaction, so read_committed consumers never see part of a batch or an\n"
             "aborted attempt; a batch whose commit outcome is lost (a fatal producer\n"
             "error during the commit) is sent again: consumers still drop duplicates by\n"
             "event_id.");

static PyType_Slot kafka_logger_slots[] = {
    {Py_tp_doc, (void *)kafka_logger_doc},
    {Py_tp_new, kafka_logger_new},
    {Py_tp_init, kafka_logger_init},
    {Py_tp_dealloc, writer_logger_dealloc},
    {Py_tp_traverse, kafka_logger_traverse},
    {Py_tp_clear, kafka_logger_clear},
    {Py_tp_repr, writer_logger_repr},
    {Py_tp_methods, kafka_logger_methods},
    {Py_tp_getset, kafka_logger_getset},
    {0, NULL},
};

static PyType_Spec kafka_logger_type_spec = {
    .name = "querybook_eventlog._core.KafkaEventLogger",
    .basicsize = sizeof(kafka_logger_object),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = kafka_logger_slots,
};

PyType_Spec *
kafka_logger_spec(void)
{
    return &kafka_logger_type_spec;
}
