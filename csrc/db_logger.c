/* db_logger.c: DBEventLogger ("db"), events into Querybook's MySQL table
 * through the writer (writer.h): log() validates and encodes in the
 * caller, hands a pure-C event_record to the writer's queue and returns;
 * the writer thread does every network call.
 *
 * Owns: the writer (and through it the queue, thread, connection, spool),
 * a password-free description of the target for repr(), the options a
 * writer made on first use needs, and the cached warning function.  The
 * database URL is parsed in Python (querybook_eventlog._url); the password
 * only ever lives in the writer's sink configuration.
 *
 * It is the MySQL sink's Python type: the sink is mysql_sink.c, and what
 * any writer-backed logger needs on the Python side (the encode-and-queue
 * step, flush, close, stats, repr, dealloc, spool dir, operator warnings)
 * is shared in writer_logger.c; this file gives it the DB's own parts
 * through db_logger_kind.
 *
 * Nothing happens at construction beyond checking the arguments: with
 * url=None the URL is resolved on the first log() through
 * querybook_eventlog._settings.database_conn() (Querybook's DATABASE_CONN
 * inside Querybook), and the spool directory is created by the writer when
 * it first writes there.
 */
#include "qbel.h"

#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "durable_journal.h"
#include "mysql_sink.h"
#include "writer.h"
#include "writer_logger.h"

#define DB_MAX_EVENT_BYTES_CAP ((Py_ssize_t)QBEL_DEFAULT_MAX_EVENT_BYTES_CAP)

typedef struct db_logger_object {
    base_logger_object base;
    /* writer: NULL until there is a database URL; description:
     * "mysql://user@host:port/db table='t'", no password */
    writer_logger logger;
    /* For the writer made on first use (url=None): every option but the
     * URL.  `options` and `sink_options` hold numbers only (no strings, no
     * sink factory), `table_name` a checked str, logger.spool_dir the
     * argument (NULL: the default, None: no spool, else a path-like). */
    writer_config options;
    mysql_sink_config sink_options;
    PyObject *table_name;
    bool marker_warned;    /* the missing-marker-table warning was given */
    size_t max_event_bytes;
    bool max_event_bytes_explicit;
    double sync_timeout_s; /* < 0: sync log() waits without limit */
    bool sync;
} db_logger_object;

static writer *ensure_writer(db_logger_object *self, qbel_state *state);
static const writer_logger_kind db_logger_kind;

/* Caller thread, GIL held.  Encoding may run user code (isoformat of a date
 * subclass, a dict subclass's items()), which may call close() or try
 * __init__ again; __init__ refuses once a writer exists and close() never
 * frees it (only dealloc does), so the writer read afterwards is the same
 * one and stays valid for as long as `self` does. */
static int
db_log_fields(base_logger_object *base, qbel_state *state, const event_fields *fields)
{
    db_logger_object *self = (db_logger_object *)base;
    if (self->logger.closed) {
        PyErr_SetString(PyExc_ValueError, "logger is closed");
        return -1;
    }
    if (ensure_writer(self, state) == NULL) {
        return -1;
    }
    if (writer_logger_queue_event((PyObject *)self, state, fields, self->max_event_bytes) < 0) {
        return -1;
    }
    writer *w = self->logger.writer;
    if (self->sync) {
        double timeout_s = self->sync_timeout_s;
        int done = writer_logger_flush(w, timeout_s);
        if (done < 0) {
            return -1;
        }
        if (!done) {
            writer_stats stats;
            writer_get_stats(w, &stats);
            char seconds[32];
            snprintf(seconds, sizeof(seconds), "%g", timeout_s);
            PyErr_Format(PyExc_TimeoutError,
                         "event queued but not yet committed: not written within "
                         "sync_timeout=%s s; it stays queued and the writer will still write "
                         "it (last error: %s)",
                         seconds, stats.last_error.code != 0 ? stats.last_error.message : "none");
            return -1;
        }
    }
    writer_logger_warn_operator((PyObject *)self);
    return 0;
}

static void
db_raise_too_large(PyObject *op, size_t json_length)
{
    db_logger_object *self = (db_logger_object *)op;
    if (self->max_event_bytes_explicit) {
        PyErr_Format(PyExc_ValueError,
                     "event_data is %zu bytes of JSON, more than max_event_bytes=%zu",
                     json_length, self->max_event_bytes);
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "event_data is %zu bytes of JSON, more than the %zu-byte hard cap "
                     "(1 GiB, MariaDB's largest max_allowed_packet)",
                     json_length, self->max_event_bytes);
    }
}

/* Upstream's DB logger denies these on top of the default list (they
 * would flood the table). */
static const api_rule db_deny_rules[] = {
    {true, "/admin", "*"},
    {false, "/login/", "POST"},
    {false, "/signup/", "POST"},
    {true, "/user", "GET"},
    {false, "/user/setting/<key>/", "POST"},
    {false, "/table/<schema_name>/<table_name>/sync/", "PUT"},
    {false, "/announcement/", "GET"},
    {false, "/query/validate/", "POST"},
    {false, "/query_engine/<int:engine_id>/status/", "GET"},
    {false, "/impression/<item_type>/<item_id>/count/", "GET"},
    {false, "/utils/change_logs/", "GET"},
    {false, "/query_engine/", "GET"},
    {false, "/query_metastore/", "GET"},
    {false, "/dag_exporter/", "GET"},
};

static const api_rule_table db_deny_table = {db_deny_rules,
                                             sizeof(db_deny_rules) / sizeof(db_deny_rules[0])};

static PyObject *
db_logger_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    qbel_state *state = qbel_state_of_type(type);
    if (state == NULL) {
        return NULL;
    }
    PyObject *self = base_logger_alloc(type, state->db_logger_type, db_log_fields);
    if (self != NULL) {
        WRITER_LOGGER(self)->kind = &db_logger_kind;
        base_logger_set_deny_rules((base_logger_object *)self, &db_deny_table);
    }
    return self;
}

/* ---- configuration ---------------------------------------------------- */

/* Strings of a parsed URL, borrowed from the dict (alive while it is). */
static int
dict_string(PyObject *parts, const char *key, char **out)
{
    *out = NULL;
    PyObject *value = PyDict_GetItemString(parts, key); /* borrowed */
    if (value == NULL || value == Py_None) {
        return 0;
    }
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "database URL part %s must be a str", key);
        return -1;
    }
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(value, &size);
    if (text == NULL) {
        return -1;
    }
    if (strlen(text) != (size_t)size) {
        PyErr_Format(PyExc_ValueError, "database URL part %s contains a NUL character", key);
        return -1;
    }
    *out = (char *)text;
    return 0;
}

/* parts["ssl_mode"] (absent or None: DISABLED) as the sink's enum. */
static int
dict_ssl_mode(PyObject *parts, mysql_sink_ssl_mode *out)
{
    char *name;
    if (dict_string(parts, "ssl_mode", &name) < 0) {
        return -1;
    }
    *out = MYSQL_SINK_SSL_DISABLED;
    if (name == NULL) {
        return 0;
    }
    for (int mode = 0; mode < MYSQL_SINK_SSL_MODE_COUNT; mode++) {
        if (strcmp(name, mysql_sink_ssl_mode_name((mysql_sink_ssl_mode)mode)) == 0) {
            *out = (mysql_sink_ssl_mode)mode;
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "database URL part ssl_mode must be one of DISABLED, "
                                   "PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY, not %s", name);
    return -1;
}

/* The connection is always utf8mb4: a parts dict asking for another
 * charset (made by hand, not by parse_database_url) is refused. */
static int
check_charset(PyObject *parts)
{
    char *charset;
    if (dict_string(parts, "charset", &charset) < 0) {
        return -1;
    }
    if (charset != NULL && strcmp(charset, "utf8mb4") != 0) {
        PyErr_Format(PyExc_ValueError, "database URL part charset must be utf8mb4, not %s",
                     charset);
        return -1;
    }
    return 0;
}

/* Fill `sink` (borrowing strings from `parts`, a parse_database_url dict). */
static int
sink_config_from_parts(PyObject *parts, mysql_sink_config *sink)
{
    memset(sink, 0, sizeof(*sink));
    if (!PyDict_Check(parts)) {
        PyErr_SetString(PyExc_TypeError, "database URL parts must be a dict");
        return -1;
    }
    if (dict_string(parts, "host", &sink->host) < 0 ||
        dict_string(parts, "user", &sink->user) < 0 ||
        dict_string(parts, "password", &sink->password) < 0 ||
        dict_string(parts, "database", &sink->database) < 0 ||
        dict_string(parts, "unix_socket", &sink->unix_socket) < 0 || check_charset(parts) < 0 ||
        dict_ssl_mode(parts, &sink->ssl_mode) < 0 ||
        dict_string(parts, "ssl_ca", &sink->ssl_ca) < 0 ||
        dict_string(parts, "ssl_capath", &sink->ssl_capath) < 0 ||
        dict_string(parts, "ssl_cert", &sink->ssl_cert) < 0 ||
        dict_string(parts, "ssl_key", &sink->ssl_key) < 0 ||
        dict_string(parts, "ssl_cipher", &sink->ssl_cipher) < 0) {
        return -1;
    }
    PyObject *port = PyDict_GetItemString(parts, "port");
    if (port != NULL && port != Py_None) {
        long value = PyLong_AsLong(port);
        if (value == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (value < 0 || value > 65535) {
            PyErr_SetString(PyExc_ValueError, "database port out of range");
            return -1;
        }
        sink->port = (unsigned int)value;
    }
    return 0;
}

static int
check_table_name(PyObject *table, const char **out)
{
    Py_ssize_t length;
    const char *text = PyUnicode_AsUTF8AndSize(table, &length);
    if (text == NULL) {
        return -1;
    }
    if ((size_t)length != strlen(text) || !mysql_sink_table_name_is_valid(text)) {
        PyErr_Format(PyExc_ValueError,
                     "table must be an identifier of letters, digits and _ (at most %d "
                     "characters, not starting with a digit), not %R",
                     MYSQL_SINK_TABLE_NAME_MAX, table);
        return -1;
    }
    *out = text;
    return 0;
}

/* The password-free "mysql://user@host:port/database" of `parts`. */
static PyObject *
describe_target(PyObject *parts, PyObject *table)
{
    mysql_sink_config sink;
    if (sink_config_from_parts(parts, &sink) < 0) {
        return NULL;
    }
    PyObject *where;
    if (sink.unix_socket != NULL) {
        where = PyUnicode_FromFormat("mysql://%s%s%s/%s?unix_socket=%s",
                                     sink.user ? sink.user : "", sink.user ? "@" : "",
                                     sink.host ? sink.host : "localhost",
                                     sink.database ? sink.database : "", sink.unix_socket);
    }
    else if (sink.port != 0) {
        where = PyUnicode_FromFormat("mysql://%s%s%s:%u/%s", sink.user ? sink.user : "",
                                     sink.user ? "@" : "", sink.host ? sink.host : "localhost",
                                     sink.port, sink.database ? sink.database : "");
    }
    else {
        where = PyUnicode_FromFormat("mysql://%s%s%s/%s", sink.user ? sink.user : "",
                                     sink.user ? "@" : "", sink.host ? sink.host : "localhost",
                                     sink.database ? sink.database : "");
    }
    if (where == NULL) {
        return NULL;
    }
    PyObject *description = PyUnicode_FromFormat("%U table=%R", where, table);
    Py_DECREF(where);
    return description;
}

static PyObject *
parse_url(qbel_state *state, PyObject *url)
{
    if (state->parse_database_url == NULL) {
        PyObject *module = PyImport_ImportModule("querybook_eventlog._url");
        if (module == NULL) {
            return NULL;
        }
        state->parse_database_url = PyObject_GetAttrString(module, "parse_database_url");
        Py_DECREF(module);
        if (state->parse_database_url == NULL) {
            return NULL;
        }
    }
    return PyObject_CallOneArg(state->parse_database_url, url);
}

#ifdef QBEL_TEST_HOOKS
/* The tests' knobs, in test builds only (see mysql_sink_config): env
 * QBEL_TEST_TEXT_INSERT=1 forces the multi-row text INSERT;
 * QBEL_TEST_DROP_AFTER_COMMIT=N cuts the connection after every Nth COMMIT
 * is sent.  A release build ignores both. */
static bool
test_text_insert(void)
{
    const char *text = getenv("QBEL_TEST_TEXT_INSERT");
    return text != NULL && strcmp(text, "1") == 0;
}

static unsigned int
test_fault_every(void)
{
    const char *text = getenv("QBEL_TEST_DROP_AFTER_COMMIT");
    if (text == NULL || *text == '\0') {
        return 0;
    }
    char *end;
    unsigned long every = strtoul(text, &end, 10);
    return *end == '\0' && every <= 1000000 ? (unsigned int)every : 0;
}
#endif

static void
refuse_reinit(void)
{
    PyErr_SetString(PyExc_TypeError, "DBEventLogger is already initialised");
}

/* Caller thread, GIL held.  A writer for the parsed URL `parts` with the
 * numeric `options`, table `table_name` and spool_dir argument `spool_dir`
 * (see db_logger_object); *description_out gets the password-free target.
 * Runs Python code (path conversion), so callers pass their own references
 * and look at the logger again afterwards.  NULL with an exception set. */
static writer *
make_writer(PyObject *parts, const writer_config *options, const mysql_sink_config *sink_options,
            PyObject *table_name, PyObject *spool_dir, PyObject **description_out)
{
    PyObject *spool_path = NULL, *spool_bytes = NULL, *description = NULL;
    writer *made = NULL;
    const char *table_text;
    *description_out = NULL;
    if (check_table_name(table_name, &table_text) < 0) {
        return NULL;
    }
    if (spool_dir == NULL) {
        spool_path = writer_logger_default_spool_dir();
        if (spool_path == NULL) {
            goto done;
        }
    }
    else if (spool_dir != Py_None) {
        spool_path = PyOS_FSPath(spool_dir);
        if (spool_path == NULL) {
            goto done;
        }
    }
    if (spool_path != NULL && !PyUnicode_FSConverter(spool_path, &spool_bytes)) {
        goto done;
    }
    description = describe_target(parts, table_name);
    if (description == NULL) {
        goto done;
    }
    mysql_sink_config sink;
    if (sink_config_from_parts(parts, &sink) < 0) {
        goto done;
    }
    sink.table = (char *)table_text;
    sink.connect_timeout_s = sink_options->connect_timeout_s;
    sink.read_timeout_s = sink_options->read_timeout_s;
    sink.write_timeout_s = sink_options->write_timeout_s;
    sink.create_table = sink_options->create_table;
#ifdef QBEL_TEST_HOOKS
    sink.test_drop_after_commit_every = test_fault_every();
    sink.test_text_insert = test_text_insert();
#endif
    writer_config config = *options;
    if (mysql_sink_factory(&config.sink, &sink) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    config.spool_dir = spool_bytes ? PyBytes_AS_STRING(spool_bytes) : NULL;
    made = writer_new(&config);
    sink_factory_free(&config.sink);
    if (made == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    *description_out = Py_NewRef(description);

done:
    Py_XDECREF(spool_path);
    Py_XDECREF(spool_bytes);
    Py_XDECREF(description);
    return made;
}

/* Caller thread, GIL held: free a writer nobody else has seen. */
static void
discard_writer(writer *w)
{
    if (w != NULL) {
        Py_BEGIN_ALLOW_THREADS
        writer_free(w);
        Py_END_ALLOW_THREADS
    }
}

/* querybook_eventlog._settings.database_conn(): a str, or NULL with
 * RuntimeError when it gives None. */
static PyObject *
resolve_database_conn(void)
{
    PyObject *database_conn = writer_logger_settings_attribute("database_conn");
    if (database_conn == NULL) {
        return NULL;
    }
    PyObject *url = PyObject_CallNoArgs(database_conn);
    Py_DECREF(database_conn);
    if (url == NULL) {
        return NULL;
    }
    if (url == Py_None) {
        Py_DECREF(url);
        PyErr_SetString(PyExc_RuntimeError,
                        "DBEventLogger has no database URL: set DATABASE_CONN or pass url=");
        return NULL;
    }
    if (!PyUnicode_Check(url)) {
        PyErr_Format(PyExc_TypeError, "DATABASE_CONN must be a str, not %.100s",
                     Py_TYPE(url)->tp_name);
        Py_DECREF(url);
        return NULL;
    }
    return url;
}

/* parse_url for a URL the caller did not pass: a ValueError (an
 * unsupported scheme such as sqlite:// or postgresql://, or a malformed
 * URL; its text never holds the password) says where the URL came from. */
static PyObject *
parse_configured_url(qbel_state *state, PyObject *url)
{
    PyObject *parts = parse_url(state, url);
    if (parts == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        PyErr_Format(PyExc_ValueError,
                     "DBEventLogger needs a MySQL/MariaDB database URL in DATABASE_CONN: %S",
                     value);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
    }
    return parts;
}

/* Caller thread, GIL held.  The writer, made on first use for url=None
 * (DATABASE_CONN resolved now, not at construction).  Borrowed; NULL with
 * an exception set (RuntimeError without a URL, ValueError for a URL that
 * is not MySQL's).  Two threads may race here through the Python code it
 * runs: the first writer installed wins and the other is freed. */
static writer *
ensure_writer(db_logger_object *self, qbel_state *state)
{
    if (self->logger.writer != NULL) {
        return self->logger.writer;
    }
    if (!self->logger.configured) {
        PyErr_SetString(PyExc_RuntimeError, "DBEventLogger.__init__ was not called");
        return NULL;
    }
    /* our own references and copy: Python code below may re-run __init__ */
    writer_config options = self->options;
    mysql_sink_config sink_options = self->sink_options;
    PyObject *table_name = Py_NewRef(self->table_name);
    PyObject *spool_dir = Py_XNewRef(self->logger.spool_dir);
    PyObject *url = NULL, *parts = NULL, *description = NULL;
    writer *made = NULL;
    url = resolve_database_conn();
    if (url == NULL) {
        goto done;
    }
    parts = parse_configured_url(state, url);
    if (parts == NULL) {
        goto done;
    }
    made = make_writer(parts, &options, &sink_options, table_name, spool_dir, &description);
    if (made == NULL) {
        goto done;
    }
    if (self->logger.writer == NULL) {
        self->logger.writer = made;
        made = NULL;
        Py_XSETREF(self->logger.description, Py_NewRef(description));
    }

done:
    discard_writer(made);
    Py_XDECREF(description);
    Py_XDECREF(parts);
    Py_XDECREF(url);
    Py_XDECREF(spool_dir);
    Py_DECREF(table_name);
    return self->logger.writer;
}

/* Caller thread, GIL held, no exception set.  Once per logger, as soon as
 * the writer has seen that the marker table is missing: tell the operator
 * which table and the one statement that creates it.  The writer thread
 * only sets a flag; this is the cheap check on the caller side. */
static void
warn_marker_table_once(PyObject *op)
{
    db_logger_object *self = (db_logger_object *)op;
    writer *w = self->logger.writer;
    if (self->marker_warned || w == NULL || self->table_name == NULL ||
        !writer_at_least_once_seen(w)) {
        return;
    }
    self->marker_warned = true; /* first: the warning may log events again */
    PyObject *table_name = Py_NewRef(self->table_name);
    PyObject *description = Py_XNewRef(self->logger.description);
    PyObject *message = NULL;
    const char *table_text = PyUnicode_AsUTF8(table_name);
    char ddl[512];
    if (table_text != NULL && mysql_sink_marker_table_ddl(table_text, ddl, sizeof(ddl)) < 0) {
        PyErr_SetString(PyExc_ValueError, "invalid table name");
    }
    else if (table_text != NULL) {
        message = PyUnicode_FromFormat(
            "DBEventLogger <%S>: the batch marker table `%s_qbel_batches` does not exist (or "
            "this database user cannot use it). Every event is still written, but "
            "at-least-once: a batch whose COMMIT reply is lost is written again and its rows "
            "may appear twice. The writer never runs DDL; create the table once (it is part of "
            "the schema, like %R) and exactly-once resumes at the next reconnect or within the "
            "hour: %s;",
            description ? description : Py_None, table_text, table_name, ddl);
    }
    writer_logger_warn((PyObject *)self, &self->logger.warn, message);
    Py_XDECREF(description);
    Py_DECREF(table_name);
}

/* max_event_bytes: None (the default) -> the 1 GiB cap; an int 64..1 GiB. */
static int
max_event_bytes_argument(PyObject *value, size_t *out, bool *explicit_out)
{
    if (value == NULL || value == Py_None) {
        *out = (size_t)DB_MAX_EVENT_BYTES_CAP;
        *explicit_out = false;
        return 0;
    }
    if (!PyLong_Check(value) || PyBool_Check(value)) {
        PyErr_Format(PyExc_TypeError, "max_event_bytes must be None or an int, not %.100s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    Py_ssize_t bytes = PyLong_AsSsize_t(value);
    if (bytes == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -1;
        }
        PyErr_Clear();
        bytes = DB_MAX_EVENT_BYTES_CAP + 1;
    }
    if (bytes < 64 || bytes > DB_MAX_EVENT_BYTES_CAP) {
        PyErr_SetString(PyExc_ValueError,
                        "max_event_bytes must be None or between 64 and 1 GiB (1073741824)");
        return -1;
    }
    *out = (size_t)bytes;
    *explicit_out = true;
    return 0;
}

/* durability=: "memory" or "process"; None (or absent) asks
 * querybook_eventlog._settings.durability() (env QBEL_DURABILITY, else
 * QBEL_DEFAULT_DURABILITY).  0, or -1 (ValueError/TypeError). */
static int
durability_argument(PyObject *value, int *code_out)
{
    PyObject *owned = NULL;
    if (value == NULL || value == Py_None) {
        PyObject *resolve = writer_logger_settings_attribute("durability");
        if (resolve == NULL) {
            return -1;
        }
        owned = PyObject_CallOneArg(resolve, Py_None);
        Py_DECREF(resolve);
        if (owned == NULL) {
            return -1;
        }
        value = owned;
    }
    int status = -1;
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "durability must be a str, not %.100s",
                     Py_TYPE(value)->tp_name);
    }
    else if (PyUnicode_CompareWithASCIIString(value, "memory") == 0) {
        *code_out = WRITER_DURABILITY_MEMORY;
        status = 0;
    }
    else if (PyUnicode_CompareWithASCIIString(value, "process") == 0) {
        *code_out = WRITER_DURABILITY_PROCESS;
        status = 0;
    }
    else {
        PyErr_Format(PyExc_ValueError, "durability must be 'memory' or 'process', not %R",
                     value);
    }
    Py_XDECREF(owned);
    return status;
}

/* Durability "process" resolved from `durability` (the argument): can this
 * logger journal?  Not with spool_dir=None (nowhere to put chunks), nor
 * with a max_queue_bytes below durable_journal_smallest_bound() (the
 * chunks would exceed it).  Then an explicit durability="process" is a
 * ValueError (-1), while "process" from QBEL_DURABILITY or the built-in
 * default yields to the in-memory queue (*code_out = MEMORY, 0): a
 * default must not make a working configuration fail. */
static int
journal_possible(PyObject *durability, PyObject *spool_dir, size_t max_queue_bytes,
                 int *code_out)
{
    bool explicit = durability != NULL && durability != Py_None;
    size_t smallest = durable_journal_smallest_bound();
    if (spool_dir != Py_None && max_queue_bytes >= smallest) {
        return 0;
    }
    if (!explicit) {
        *code_out = WRITER_DURABILITY_MEMORY;
        return 0;
    }
    if (spool_dir == Py_None) {
        PyErr_SetString(PyExc_ValueError,
                        "durability='process' keeps the queue in spool_dir: spool_dir=None "
                        "cannot have it");
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "durability='process' needs max_queue_bytes >= %zu (its journal "
                     "chunks must fit in the bound), not %zu",
                     smallest, max_queue_bytes);
    }
    return -1;
}

static int
db_logger_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    db_logger_object *self = (db_logger_object *)op;
    static char *keywords[] = {"url",           "table",           "batch_size",
                               "flush_interval", "max_queue_bytes", "max_event_bytes",
                               "spool_dir",     "sync",            "create_table",
                               "connect_timeout", "read_timeout",  "write_timeout",
                               "exit_timeout",  "backoff_initial", "backoff_max",
                               "sync_timeout",  "durability",      NULL};
    PyObject *url = Py_None, *table = NULL, *spool_dir = NULL, *max_event_bytes = NULL;
    Py_ssize_t batch_size = QBEL_DEFAULT_BATCH_SIZE;
    double flush_interval = QBEL_DEFAULT_FLUSH_INTERVAL_S;
    Py_ssize_t max_queue_bytes = (Py_ssize_t)QBEL_DEFAULT_MAX_QUEUE_BYTES;
    int sync = 0, create_table = 0;
    int connect_timeout = QBEL_DEFAULT_CONNECT_TIMEOUT_S;
    int read_timeout = QBEL_DEFAULT_READ_TIMEOUT_S;
    int write_timeout = QBEL_DEFAULT_WRITE_TIMEOUT_S;
    double exit_timeout = QBEL_DEFAULT_EXIT_TIMEOUT_S;
    double backoff_initial = QBEL_DEFAULT_BACKOFF_INITIAL_S;
    double backoff_max = QBEL_DEFAULT_BACKOFF_MAX_S;
    PyObject *sync_timeout = NULL, *durability = NULL;
    int durability_code;
    double sync_timeout_s = QBEL_DEFAULT_SYNC_TIMEOUT_S;
    size_t max_event_bytes_value;
    bool max_event_bytes_explicit;
    if (self->logger.writer != NULL) {
        /* log/flush/close in other threads may be using it; see db_log_fields */
        refuse_reinit();
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$UndnOOppiiidddOO:DBEventLogger",
                                     keywords, &url, &table, &batch_size, &flush_interval,
                                     &max_queue_bytes, &max_event_bytes, &spool_dir, &sync,
                                     &create_table, &connect_timeout, &read_timeout,
                                     &write_timeout, &exit_timeout, &backoff_initial,
                                     &backoff_max, &sync_timeout, &durability)) {
        return -1;
    }
    if (durability_argument(durability, &durability_code) < 0) {
        return -1;
    }
    if (sync_timeout == Py_None) {
        sync_timeout_s = -1;
    }
    else if (sync_timeout != NULL) {
        sync_timeout_s = PyFloat_AsDouble(sync_timeout);
        if (sync_timeout_s == -1.0 && PyErr_Occurred()) {
            return -1;
        }
        if (!(sync_timeout_s >= 0)) {
            PyErr_SetString(PyExc_ValueError, "sync_timeout must be None or a number >= 0");
            return -1;
        }
    }
    qbel_state *state = qbel_state_of_type(Py_TYPE(op));
    if (state == NULL) {
        return -1;
    }
    if (batch_size < 1 || batch_size > 1000000) {
        PyErr_SetString(PyExc_ValueError, "batch_size must be between 1 and 1000000");
        return -1;
    }
    if (!(flush_interval > 0 && flush_interval < 86400) || !(exit_timeout >= 0) ||
        !(backoff_initial > 0) || !(backoff_max >= backoff_initial)) {
        PyErr_SetString(PyExc_ValueError,
                        "flush_interval and backoff_initial must be positive, exit_timeout "
                        "not negative, backoff_max >= backoff_initial");
        return -1;
    }
    if (max_queue_bytes < 4096) {
        PyErr_SetString(PyExc_ValueError, "max_queue_bytes must be at least 4096");
        return -1;
    }
    if (max_event_bytes_argument(max_event_bytes, &max_event_bytes_value,
                                 &max_event_bytes_explicit) < 0) {
        return -1;
    }
    if (connect_timeout < 1 || read_timeout < 1 || write_timeout < 1) {
        PyErr_SetString(PyExc_ValueError, "timeouts must be at least 1 second");
        return -1;
    }

    writer_config options;
    memset(&options, 0, sizeof(options));
    mysql_sink_config sink_options;
    memset(&sink_options, 0, sizeof(sink_options));
    sink_options.connect_timeout_s = (unsigned int)connect_timeout;
    sink_options.read_timeout_s = (unsigned int)read_timeout;
    sink_options.write_timeout_s = (unsigned int)write_timeout;
    sink_options.create_table = create_table != 0;
    options.batch_size = (size_t)batch_size;
    options.flush_interval_s = flush_interval;
    options.max_queue_bytes = (size_t)max_queue_bytes;
    options.backoff_initial_s = backoff_initial;
    options.backoff_max_s = backoff_max;

    PyObject *table_name = table ? Py_NewRef(table) : PyUnicode_FromString("event_log");
    PyObject *parts = NULL, *description = NULL, *spool_path = NULL;
    writer *new_writer = NULL;
    int status = -1;
    const char *table_text;
    if (table_name == NULL || check_table_name(table_name, &table_text) < 0) {
        goto done;
    }
    if (durability_code == WRITER_DURABILITY_PROCESS &&
        journal_possible(durability, spool_dir, (size_t)max_queue_bytes,
                         &durability_code) < 0) {
        goto done;
    }
    options.durability = durability_code;
    /* a path-like becomes its str/bytes now (a TypeError here, not later);
     * the directory itself is only created when first written to */
    if (spool_dir != NULL && spool_dir != Py_None) {
        spool_path = PyOS_FSPath(spool_dir);
        if (spool_path == NULL || writer_logger_check_spool_dir(spool_path) < 0) {
            goto done;
        }
    }
    else {
        spool_path = Py_XNewRef(spool_dir);
    }
    if (url != Py_None) {
        /* an explicit URL is checked now (malformed: ValueError); the
         * writer connects to nothing and creates no file until used */
        parts = parse_url(state, url);
        if (parts == NULL) {
            goto done;
        }
        new_writer = make_writer(parts, &options, &sink_options, table_name, spool_path,
                                 &description);
        if (new_writer == NULL) {
            goto done;
        }
    }
    else {
        description = PyUnicode_FromFormat("(database URL from DATABASE_CONN on first use) "
                                           "table=%R",
                                           table_name);
        if (description == NULL) {
            goto done;
        }
    }
    PyObject *added = PyObject_CallMethod(state->live_db_loggers, "add", "O", op);
    if (added == NULL) {
        goto done;
    }
    Py_DECREF(added);
    if (self->logger.writer != NULL) {
        /* another __init__ (or a first log()) finished while this one ran
         * Python code */
        refuse_reinit();
        goto done;
    }
    self->logger.writer = new_writer;
    new_writer = NULL;
    Py_XSETREF(self->logger.description, Py_NewRef(description));
    self->options = options;
    self->sink_options = sink_options;
    Py_XSETREF(self->table_name, Py_NewRef(table_name));
    Py_XSETREF(self->logger.spool_dir, Py_XNewRef(spool_path));
    self->max_event_bytes = max_event_bytes_value;
    self->max_event_bytes_explicit = max_event_bytes_explicit;
    self->logger.exit_timeout_s = exit_timeout;
    self->sync = sync != 0;
    self->sync_timeout_s = sync_timeout_s;
    self->logger.closed = false;
    self->logger.configured = true;
    status = 0;

done:
    discard_writer(new_writer);
    Py_XDECREF(table_name);
    Py_XDECREF(spool_path);
    Py_XDECREF(parts);
    Py_XDECREF(description);
    return status;
}

PyDoc_STRVAR(db_flush_doc,
             "flush($self, /, timeout=None)\n--\n\n"
             "Wait until every event logged before the call is committed (or kept in the\n"
             "dead-letter file because the server rejected it).  timeout: seconds, None\n"
             "waits without limit.  Returns True when done, False on timeout.");

PyDoc_STRVAR(db_close_doc,
             "close($self, /, timeout=None)\n--\n\n"
             "Flush for at most `timeout` seconds (None: the logger's exit_timeout), stop\n"
             "the writer thread and move whatever is not committed to the spool directory,\n"
             "where the next process (or `python -m querybook_eventlog replay`) picks it\n"
             "up.  Idempotent; log() raises ValueError afterwards.");

PyDoc_STRVAR(db_stats_doc,
             "stats($self, /)\n--\n\n"
             "Counters as a dict: enqueued, written, batches, retries, reconnects, spooled,\n"
             "replayed, dead_lettered, dropped, queue_bytes, last_error (a str, or\n"
             "None; it never contains the password; cleared once a batch commits after\n"
             "it), last_error_at (when last_error was set, Unix time, or None), and\n"
             "marker_table (True: exactly-once\n"
             "with the marker table; False: it is missing, at-least-once; None: not\n"
             "connected yet).");

static PyObject *
db_logger_stats(PyObject *op, PyObject *unused)
{
    (void)unused;
    writer_stats stats;
    PyObject *dict = writer_logger_stats(op, &stats);
    if (dict == NULL) {
        return NULL;
    }
    /* None until a connection looked; False: writing at-least-once */
    PyObject *marker_table = stats.delivery == SINK_DELIVERY_UNKNOWN ? Py_None
                             : stats.delivery == SINK_EXACTLY_ONCE   ? Py_True
                                                                     : Py_False;
    if (PyDict_SetItemString(dict, "marker_table", marker_table) < 0) {
        goto error;
    }
    return dict;

error:
    Py_DECREF(dict);
    return NULL;
}

PyDoc_STRVAR(db_marker_table_ddl_doc,
             "marker_table_ddl(table='event_log')\n--\n\n"
             "The CREATE TABLE statement of the exactly-once marker table\n"
             "`<table>_qbel_batches`, part of the operator's schema: the writer never runs\n"
             "DDL (except with create_table=True).  Columns: batch_id VARCHAR(64) NOT NULL\n"
             "(primary key), committed_at DATETIME NOT NULL (indexed); InnoDB, ascii.");

/* DBEventLogger.marker_table_ddl(table='event_log') -> str (a static
 * method: module.c is not this file's to extend). */
static PyObject *
db_logger_marker_table_ddl(PyObject *unused, PyObject *args, PyObject *kwargs)
{
    (void)unused;
    static char *keywords[] = {"table", NULL};
    PyObject *table = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|U:marker_table_ddl", keywords, &table)) {
        return NULL;
    }
    PyObject *table_name = table ? Py_NewRef(table) : PyUnicode_FromString("event_log");
    if (table_name == NULL) {
        return NULL;
    }
    const char *table_text;
    char ddl[512];
    PyObject *result = NULL;
    if (check_table_name(table_name, &table_text) == 0) {
        int length = mysql_sink_marker_table_ddl(table_text, ddl, sizeof(ddl));
        if (length < 0 || (size_t)length >= sizeof(ddl)) {
            PyErr_SetString(PyExc_ValueError, "invalid table name");
        }
        else {
            result = PyUnicode_FromStringAndSize(ddl, length);
        }
    }
    Py_DECREF(table_name);
    return result;
}

/* _core._marker_table_ddl(table) -> str: the same as a module function,
 * for module.c to register (METH_O); declared there, not in this file's
 * headers, until it does. */
PyObject *db_logger_marker_table_ddl_function(PyObject *module, PyObject *table);

PyObject *
db_logger_marker_table_ddl_function(PyObject *module, PyObject *table)
{
    (void)module;
    PyObject *args = PyTuple_Pack(1, table);
    if (args == NULL) {
        return NULL;
    }
    PyObject *ddl = db_logger_marker_table_ddl(NULL, args, NULL);
    Py_DECREF(args);
    return ddl;
}

static int
db_logger_traverse(PyObject *op, visitproc visit, void *arg)
{
    db_logger_object *self = (db_logger_object *)op;
    Py_VISIT(self->table_name);
    int status = writer_logger_traverse(&self->logger, visit, arg);
    if (status != 0) {
        return status;
    }
    return base_logger_traverse((base_logger_object *)op, visit, arg);
}

static int
db_logger_clear(PyObject *op)
{
    db_logger_object *self = (db_logger_object *)op;
    Py_CLEAR(self->table_name);
    writer_logger_clear(&self->logger);
    return base_logger_clear(op); /* the instance __dict__ */
}

static const writer_logger_kind db_logger_kind = {
    .logger_name = "db",
    .warn_operator = warn_marker_table_once,
    .raise_too_large = db_raise_too_large,
    .clear = db_logger_clear,
    .after_writer_freed = NULL,
};

PyDoc_STRVAR(db_log_doc,
             "log($self, /, uid, event_type, event_data, timestamp=None)\n--\n\n"
             "Validate and encode the event in the caller, queue it for the writer thread\n"
             "and return at once (no network I/O; with sync=True, wait until committed).\n"
             "Raises ValueError when event_data's JSON exceeds max_event_bytes, when the\n"
             "logger is closed, or when DATABASE_CONN is not a MySQL/MariaDB URL;\n"
             "RuntimeError when no database URL is configured.\n"
             "With sync=True, TimeoutError when the event is not committed within\n"
             "sync_timeout seconds: the event stays queued and the writer still writes it\n"
             "(exactly once), so do not log it again.");

static PyMethodDef db_logger_methods[] = {
    {"log", (PyCFunction)(void (*)(void))base_logger_builtin_log, METH_FASTCALL | METH_KEYWORDS,
     db_log_doc},
    {"flush", (PyCFunction)(void (*)(void))writer_logger_flush_method, METH_VARARGS | METH_KEYWORDS,
     db_flush_doc},
    {"close", (PyCFunction)(void (*)(void))writer_logger_close_method, METH_VARARGS | METH_KEYWORDS,
     db_close_doc},
    {"stats", db_logger_stats, METH_NOARGS, db_stats_doc},
    {"marker_table_ddl", (PyCFunction)(void (*)(void))db_logger_marker_table_ddl,
     METH_VARARGS | METH_KEYWORDS | METH_STATIC, db_marker_table_ddl_doc},
    {"__enter__", writer_logger_enter, METH_NOARGS, NULL},
    {"__exit__", writer_logger_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef db_logger_getset[] = {
    {"logger_name", writer_logger_get_logger_name, NULL, "'db'", NULL},
    {"closed", writer_logger_get_closed, NULL, "True once close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(db_logger_doc,
             "DBEventLogger(url=None, *, table='event_log', batch_size=2000,\n"
             "              flush_interval=1.0, max_queue_bytes=64 MiB,\n"
             "              max_event_bytes=None, spool_dir=<default>, sync=False,\n"
             "              create_table=False, connect_timeout=5, read_timeout=30,\n"
             "              write_timeout=30, exit_timeout=5.0, backoff_initial=0.1,\n"
             "              backoff_max=30.0, sync_timeout=30.0, durability=None)\n--\n\n"
             "The logger named 'db': events into Querybook's MySQL table `table` from a\n"
             "writer thread, in batches, exactly once (with the marker table, see\n"
             "marker_table_ddl).  url: an SQLAlchemy-style MySQL URL; None: DATABASE_CONN,\n"
             "resolved on the first log().  Constructing never connects, resolves or\n"
             "creates anything.  max_event_bytes: None (no limit of our own below 1 GiB;\n"
             "the server's max_allowed_packet decides) or an int.  Events wait at\n"
             "most flush_interval seconds in a queue bounded to max_queue_bytes; beyond\n"
             "that they go to spool files in spool_dir (default: env QBEL_SPOOL_DIR, else\n"
             "<$XDG_RUNTIME_DIR, else $TMPDIR or /tmp>/querybook_eventlog-<euid>,\n"
             "created 0700 on first use; None disables spooling; a spool_dir that\n"
             "exists must be a directory owned by the effective uid and not writable\n"
             "by group or others, else ValueError) and are replayed\n"
             "once the server is back.  Timeouts in seconds; exit_timeout bounds the\n"
             "flush at interpreter exit and close()'s default; sync_timeout (None: no\n"
             "limit) bounds how long a sync=True log() waits before raising TimeoutError\n"
             "(the event stays queued and is still written).  __init__ runs once:\n"
             "calling it again on a logger with a database URL raises TypeError.\n"
             "durability: 'process' (queued events are kept in memory-mapped journal\n"
             "chunks in spool_dir, so a process killed with SIGKILL loses none of them:\n"
             "the next logger for the same target, or `python -m querybook_eventlog\n"
             "replay`, writes them exactly once) or 'memory' (the queue is in memory\n"
             "only); None: env QBEL_DURABILITY, else 'process' -- or 'memory' when\n"
             "spool_dir=None (nowhere to journal), where an explicit 'process' is a\n"
             "ValueError.");

static PyType_Slot db_logger_slots[] = {
    {Py_tp_doc, (void *)db_logger_doc},
    {Py_tp_new, db_logger_new},
    {Py_tp_init, db_logger_init},
    {Py_tp_dealloc, writer_logger_dealloc},
    {Py_tp_traverse, db_logger_traverse},
    {Py_tp_clear, db_logger_clear},
    {Py_tp_repr, writer_logger_repr},
    {Py_tp_methods, db_logger_methods},
    {Py_tp_getset, db_logger_getset},
    {0, NULL},
};

static PyType_Spec db_logger_type_spec = {
    .name = "querybook_eventlog._core.DBEventLogger",
    .basicsize = sizeof(db_logger_object),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = db_logger_slots,
};

PyType_Spec *
db_logger_spec(void)
{
    return &db_logger_type_spec;
}

PyObject *
db_logger_atexit(PyObject *module, PyObject *unused)
{
    (void)unused;
    qbel_state *state = qbel_state_of_module(module);
    if (state->live_db_loggers == NULL || state->db_logger_type == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *loggers = PySequence_List(state->live_db_loggers);
    if (loggers == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(loggers); i++) {
        PyObject *item = PyList_GET_ITEM(loggers, i);
        if (PyObject_TypeCheck(item, state->db_logger_type)) {
            writer_logger *logger = WRITER_LOGGER(item);
            writer_logger_close(logger, logger->exit_timeout_s);
        }
    }
    Py_DECREF(loggers);
    Py_RETURN_NONE;
}

PyObject *
db_logger_defaults(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return Py_BuildValue(
        "{s:s,s:n,s:d,s:n,s:i,s:i,s:i,s:d,s:d,s:d,s:d,s:i,s:s,s:s}", "table", QBEL_DEFAULT_TABLE,
        "batch_size", (Py_ssize_t)QBEL_DEFAULT_BATCH_SIZE, "flush_interval",
        QBEL_DEFAULT_FLUSH_INTERVAL_S, "max_queue_bytes", (Py_ssize_t)QBEL_DEFAULT_MAX_QUEUE_BYTES,
        "connect_timeout", QBEL_DEFAULT_CONNECT_TIMEOUT_S, "read_timeout",
        QBEL_DEFAULT_READ_TIMEOUT_S, "write_timeout", QBEL_DEFAULT_WRITE_TIMEOUT_S,
        "exit_timeout", QBEL_DEFAULT_EXIT_TIMEOUT_S, "sync_timeout", QBEL_DEFAULT_SYNC_TIMEOUT_S,
        "backoff_initial", QBEL_DEFAULT_BACKOFF_INITIAL_S, "backoff_max",
        QBEL_DEFAULT_BACKOFF_MAX_S, "max_table_name", MYSQL_SINK_TABLE_NAME_MAX,
        "spool_dir_name", QBEL_DEFAULT_SPOOL_DIR_NAME, "durability", QBEL_DEFAULT_DURABILITY);
}

/* _replay_spool(url_parts, spool_dir, table, adopt_all=False) -> int: the
 * replay CLI.  Lines for other targets are left for their loggers unless
 * adopt_all. */
PyObject *
db_logger_replay_spool(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 && nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "_replay_spool(url_parts, spool_dir, table, adopt_all=False)");
        return NULL;
    }
    int adopt_all = nargs == 4 ? PyObject_IsTrue(args[3]) : 0;
    if (adopt_all < 0) {
        return NULL;
    }
    const char *table_text;
    PyObject *spool_bytes = NULL;
    if (!PyUnicode_Check(args[2]) || check_table_name(args[2], &table_text) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "table must be a str");
        }
        return NULL;
    }
    if (!PyUnicode_FSConverter(args[1], &spool_bytes)) {
        return NULL;
    }
    mysql_sink_config sink;
    if (sink_config_from_parts(args[0], &sink) < 0) {
        Py_DECREF(spool_bytes);
        return NULL;
    }
    sink.table = (char *)table_text;
    writer_config config;
    memset(&config, 0, sizeof(config));
    if (mysql_sink_factory(&config.sink, &sink) < 0) {
        Py_DECREF(spool_bytes);
        return PyErr_NoMemory();
    }
    config.spool_dir = PyBytes_AS_STRING(spool_bytes);
    qbel_error error = {0, ""};
    int64_t replayed;
    Py_BEGIN_ALLOW_THREADS
    replayed = writer_replay_directory(&config, adopt_all != 0, NULL, &error);
    Py_END_ALLOW_THREADS
    sink_factory_free(&config.sink);
    Py_DECREF(spool_bytes);
    if (replayed < 0) {
        PyErr_Format(PyExc_RuntimeError, "replay failed: %s", error.message);
        return NULL;
    }
    return PyLong_FromLongLong(replayed);
}
