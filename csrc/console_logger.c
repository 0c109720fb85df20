/* console_logger.c: ConsoleEventLogger ("console").
 *
 * Two ways out.  format='upstream' (the default without a stream): the
 * message upstream's ConsoleEventLogger builds, byte for byte, handed to
 * logger.info() of its `logger` (NULL: querybook_eventlog._settings.
 * console_logger(), asked at each event because Querybook's context can
 * switch).  format='text'/'jsonl': one line per event, built in a
 * byte_buffer and written with a single stream.write(str); event_data is
 * compact JSON there, so newlines and control characters in the data are
 * escaped and cannot forge lines.
 *
 * Owns its stream and logger references (NULL: the defaults above) and the
 * stream whose isatty() answer it caches.
 */
#include "qbel.h"

#include <stdlib.h>

enum console_format {
    CONSOLE_FORMAT_TEXT = 0,
    CONSOLE_FORMAT_JSONL = 1,
    CONSOLE_FORMAT_UPSTREAM = 2,
};
enum console_color { CONSOLE_COLOR_AUTO = -1, CONSOLE_COLOR_OFF = 0, CONSOLE_COLOR_ON = 1 };

/* upstream's yellow */
#define CONSOLE_COLOR_START "\x1b[33;20m"
#define CONSOLE_COLOR_END "\x1b[0m"

typedef struct console_logger_object {
    base_logger_object base;
    PyObject *stream; /* NULL: sys.stderr at each call */
    PyObject *logger; /* format='upstream' only; NULL: _settings.console_logger() */
    int color;        /* enum console_color */
    int format;       /* enum console_format */
    /* isatty() is a system call on real files: remember the answer for the
     * last stream asked (a strong reference, so the address cannot be
     * reused by another object) */
    PyObject *tty_checked_stream;
    bool tty_checked_result;
} console_logger_object;

/* NO_COLOR (https://no-color.org): present and not empty disables colour. */
static bool
no_color_requested(void)
{
    const char *value = getenv("NO_COLOR");
    return value != NULL && value[0] != '\0';
}

/* 1 colour, 0 plain, -1 error. */
static int
console_use_color(console_logger_object *self, qbel_state *state, PyObject *stream)
{
    if (self->color != CONSOLE_COLOR_AUTO) {
        return self->color;
    }
    /* escape codes would corrupt JSON lines; only an explicit color=True adds them */
    if (self->format == CONSOLE_FORMAT_JSONL || no_color_requested()) {
        return 0;
    }
    if (stream == self->tty_checked_stream) {
        return self->tty_checked_result;
    }
    PyObject *answer = PyObject_CallMethodNoArgs(stream, state->str_isatty);
    int is_tty;
    if (answer == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear(); /* a bare object with write() only */
        is_tty = 0;
    }
    else {
        is_tty = PyObject_IsTrue(answer);
        Py_DECREF(answer);
        if (is_tty < 0) {
            return -1;
        }
    }
    Py_XSETREF(self->tty_checked_stream, Py_NewRef(stream));
    self->tty_checked_result = is_tty;
    return is_tty;
}

/* Write a signed 32-bit integer in decimal at the end of digits[0..12);
 * returns where it starts. */
static const char *
format_int32(char digits[12], int32_t value, size_t *length)
{
    int position = 12;
    int64_t magnitude = value < 0 ? -(int64_t)value : value;
    do {
        digits[--position] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (value < 0) {
        digits[--position] = '-';
    }
    *length = (size_t)(12 - position);
    return digits + position;
}

/* Append a signed 32-bit integer in decimal. */
static int
append_int32(byte_buffer *buffer, int32_t value)
{
    char digits[12];
    size_t length;
    const char *start = format_int32(digits, value, &length);
    return byte_buffer_append(buffer, start, length);
}

/* The line, newline included.  0, or -1 with an exception set. */
static int
console_format_line(qbel_state *state, int format, bool colored, const event_fields *fields,
                    byte_buffer *buffer)
{
    const char *type_name = event_type_name(fields->event_type);
    int status = 0;
    if (colored) {
        status |= byte_buffer_append_literal(buffer, CONSOLE_COLOR_START);
    }
    if (format == CONSOLE_FORMAT_TEXT) {
        char created_at[20];
        event_time_format_sql(fields->created_at_us, created_at);
        status |= byte_buffer_append_literal(buffer, "created_at: ");
        status |= byte_buffer_append(buffer, created_at, 19);
        status |= byte_buffer_append_literal(buffer, ", uid=");
        status |= fields->uid_is_null ? byte_buffer_append_literal(buffer, "None")
                                      : append_int32(buffer, fields->uid);
        status |= byte_buffer_append_literal(buffer, ", event_type=EventType.");
        status |= byte_buffer_append(buffer, type_name, strlen(type_name));
        status |= byte_buffer_append_literal(buffer, ", event_data=");
    }
    else {
        char created_at[33];
        event_time_format_iso(fields->created_at_us, created_at);
        status |= byte_buffer_append_literal(buffer, "{\"created_at\":\"");
        status |= byte_buffer_append(buffer, created_at, 32);
        status |= byte_buffer_append_literal(buffer, "\",\"uid\":");
        status |= fields->uid_is_null ? byte_buffer_append_literal(buffer, "null")
                                      : append_int32(buffer, fields->uid);
        status |= byte_buffer_append_literal(buffer, ",\"event_type\":\"");
        status |= byte_buffer_append(buffer, type_name, strlen(type_name));
        status |= byte_buffer_append_literal(buffer, "\",\"event_data\":");
    }
    if (status != 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (event_fields_encode_data(state, fields, buffer) < 0) {
        return -1;
    }
    if (format == CONSOLE_FORMAT_JSONL) {
        status |= byte_buffer_append_char(buffer, '}');
    }
    if (colored) {
        status |= byte_buffer_append_literal(buffer, CONSOLE_COLOR_END);
    }
    status |= byte_buffer_append_char(buffer, '\n');
    if (status != 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* ---- format='upstream' ------------------------------------------------ */

/* The pieces of upstream's message, joined once with PyUnicode_Join
 * (str to str: no UTF-8 round trip, lone surrogates kept as an f-string
 * keeps them). */
#define UPSTREAM_MAX_PIECES 9

typedef struct message_pieces {
    PyObject *items[UPSTREAM_MAX_PIECES]; /* new references */
    Py_ssize_t count;
} message_pieces;

/* Append `piece` (a new reference, taken; NULL: an error is set).  0/-1. */
static int
pieces_add_take(message_pieces *pieces, PyObject *piece)
{
    if (piece == NULL) {
        return -1;
    }
    assert(pieces->count < UPSTREAM_MAX_PIECES);
    pieces->items[pieces->count++] = piece;
    return 0;
}

static void
pieces_release(message_pieces *pieces)
{
    for (Py_ssize_t i = 0; i < pieces->count; i++) {
        Py_DECREF(pieces->items[i]);
    }
    pieces->count = 0;
}

/* The pieces joined; releases them.  New str, or NULL. */
static PyObject *
pieces_join(qbel_state *state, message_pieces *pieces)
{
    PyObject *tuple = PyTuple_New(pieces->count);
    if (tuple == NULL) {
        pieces_release(pieces);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < pieces->count; i++) {
        PyTuple_SET_ITEM(tuple, i, pieces->items[i]); /* moved */
    }
    pieces->count = 0;
    PyObject *joined = PyUnicode_Join(state->str_empty, tuple);
    Py_DECREF(tuple);
    return joined;
}

/* f"{event_type}" as the caller passed it: our members' and the
 * application's are computed once, a plain str is itself.  New reference. */
static PyObject *
event_type_text(qbel_state *state, const event_fields *fields)
{
    PyObject *arg = fields->event_type_object;
    int code = fields->event_type;
    if (arg == state->event_type_members[code]) {
        return Py_NewRef(state->event_type_strs[code]);
    }
    if (arg == state->app_event_type_members[code]) {
        return Py_NewRef(state->app_event_type_strs[code]);
    }
    return PyObject_Format(arg, state->str_empty); /* itself for an exact str */
}

/* f"{event_data}" (None for None): for an exact dict, list or tuple that
 * is its repr, which repr_writer.c writes faster.  New reference. */
static PyObject *
event_data_text(qbel_state *state, const event_fields *fields)
{
    PyObject *data = fields->event_data ? fields->event_data : Py_None;
    if (PyDict_CheckExact(data) || PyList_CheckExact(data) || PyTuple_CheckExact(data)) {
        PyObject *text = repr_of_json_shaped(data);
        if (text != NULL || !PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            return text;
        }
        PyErr_Clear(); /* a foreign repr with a lone surrogate: CPython's own way */
    }
    return PyObject_Format(data, state->str_empty);
}

/* " - created_at: <UTC>, uid=" plus f"{uid}" when it is None or an exact
 * int (else *uid_done stays false and the caller adds it).  New str. */
static PyObject *
created_at_and_uid_text(const event_fields *fields, bool *uid_done)
{
    static const char head[] = " - created_at: ";
    static const char uid_label[] = ", uid=";
    char text[sizeof(head) - 1 + 19 + sizeof(uid_label) - 1 + 12];
    size_t length = 0;
    memcpy(text, head, sizeof(head) - 1);
    length += sizeof(head) - 1;
    char created_at[20];
    event_time_format_sql(fields->created_at_us, created_at);
    memcpy(text + length, created_at, 19);
    length += 19;
    memcpy(text + length, uid_label, sizeof(uid_label) - 1);
    length += sizeof(uid_label) - 1;
    *uid_done = fields->uid_is_null || PyLong_CheckExact(fields->uid_object);
    if (fields->uid_is_null) {
        memcpy(text + length, "None", 4);
        length += 4;
    }
    else if (*uid_done) {
        char digits[12];
        size_t digit_count;
        const char *start = format_int32(digits, fields->uid, &digit_count);
        memcpy(text + length, start, digit_count);
        length += digit_count;
    }
    return PyUnicode_FromStringAndSize(text, (Py_ssize_t)length);
}

/* Upstream's message:
 *   f"{COLOR_YELLOW}{self.__class__.__name__} - created_at: {now}, uid={uid},
 *     event_type={event_type}, event_data={event_data}{COLOR_RESET}"
 * New str, or NULL with an exception set. */
static PyObject *
upstream_message(console_logger_object *self, qbel_state *state, const event_fields *fields)
{
    message_pieces pieces = {.count = 0};
    bool colored = self->color != CONSOLE_COLOR_OFF;
    bool uid_done = false;
    if ((colored && pieces_add_take(&pieces, Py_NewRef(state->str_color_start)) < 0) ||
        pieces_add_take(&pieces, PyType_GetName(Py_TYPE(self))) < 0 ||
        pieces_add_take(&pieces, created_at_and_uid_text(fields, &uid_done)) < 0 ||
        (!uid_done &&
         pieces_add_take(&pieces, PyObject_Format(fields->uid_object, state->str_empty)) < 0) ||
        pieces_add_take(&pieces, Py_NewRef(state->str_event_type_label)) < 0 ||
        pieces_add_take(&pieces, event_type_text(state, fields)) < 0 ||
        pieces_add_take(&pieces, Py_NewRef(state->str_event_data_label)) < 0 ||
        pieces_add_take(&pieces, event_data_text(state, fields)) < 0 ||
        (colored && pieces_add_take(&pieces, Py_NewRef(state->str_color_end)) < 0)) {
        pieces_release(&pieces);
        return NULL;
    }
    return pieces_join(state, &pieces);
}

/* The object whose info() receives the message: a new reference. */
static PyObject *
upstream_target(console_logger_object *self, qbel_state *state)
{
    if (self->logger != NULL) {
        return Py_NewRef(self->logger);
    }
    if (state->settings_console_logger == NULL) {
        PyObject *settings = PyImport_ImportModule("querybook_eventlog._settings");
        if (settings == NULL) {
            return NULL;
        }
        PyObject *function = PyObject_GetAttrString(settings, "console_logger");
        Py_DECREF(settings);
        if (function == NULL) {
            return NULL;
        }
        Py_XSETREF(state->settings_console_logger, function);
    }
    /* held across the call: the call may re-enter and replace the state's */
    PyObject *function = Py_NewRef(state->settings_console_logger);
    PyObject *target = PyObject_CallNoArgs(function);
    Py_DECREF(function);
    return target;
}

static int
console_log_upstream(console_logger_object *self, qbel_state *state, const event_fields *fields)
{
    PyObject *message = upstream_message(self, state, fields);
    if (message == NULL) {
        return -1;
    }
    PyObject *target = upstream_target(self, state);
    if (target == NULL) {
        Py_DECREF(message);
        return -1;
    }
    PyObject *stack[2] = {target, message};
    PyObject *result = PyObject_VectorcallMethod(state->str_info, stack,
                                                 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(target);
    Py_DECREF(message);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* ---- format='text' / 'jsonl' ------------------------------------------ */

static int
console_log_to_stream(console_logger_object *self, qbel_state *state, const event_fields *fields)
{
    PyObject *stream = self->stream;
    if (stream == NULL) {
        stream = PySys_GetObject("stderr"); /* borrowed */
        if (stream == NULL || stream == Py_None) {
            return 0; /* no stderr at all (pythonw, closed at shutdown): nowhere to write */
        }
    }
    /* encoding event_data may run Python code that rebinds sys.stderr */
    Py_INCREF(stream);
    char inline_block[512];
    byte_buffer buffer;
    byte_buffer_init(&buffer, inline_block, sizeof(inline_block));
    PyObject *line = NULL;
    int result = -1;
    int colored = console_use_color(self, state, stream);
    if (colored < 0 || console_format_line(state, self->format, colored, fields, &buffer) < 0) {
        goto error;
    }
    line = PyUnicode_DecodeUTF8(buffer.data, (Py_ssize_t)buffer.length, NULL);
    if (line == NULL) {
        goto error;
    }
    PyObject *stack[2] = {stream, line};
    PyObject *written = PyObject_VectorcallMethod(state->str_write, stack,
                                                  2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (written == NULL) {
        goto error;
    }
    Py_DECREF(written);
    result = 0;

error:
    Py_XDECREF(line);
    byte_buffer_release(&buffer);
    Py_DECREF(stream);
    return result;
}

static int
console_log_fields(base_logger_object *base, qbel_state *state, const event_fields *fields)
{
    console_logger_object *self = (console_logger_object *)base;
    if (self->format == CONSOLE_FORMAT_UPSTREAM) {
        return console_log_upstream(self, state, fields);
    }
    return console_log_to_stream(self, state, fields);
}

static PyObject *
console_logger_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    qbel_state *state = qbel_state_of_type(type);
    if (state == NULL) {
        return NULL;
    }
    PyObject *self = base_logger_alloc(type, state->console_logger_type, console_log_fields);
    if (self == NULL) {
        return NULL;
    }
    /* valid defaults even when a subclass's __init__ skips ours */
    console_logger_object *console = (console_logger_object *)self;
    console->stream = NULL;
    console->logger = NULL;
    console->color = CONSOLE_COLOR_AUTO;
    console->format = CONSOLE_FORMAT_UPSTREAM;
    console->tty_checked_stream = NULL;
    console->tty_checked_result = false;
    return self;
}

/* format=None: 'upstream' without a stream, 'text' with one.  0 or -1. */
static int
console_format_from_arg(PyObject *format, PyObject *stream, int *code)
{
    static const char *const names[] = {"text", "jsonl", "upstream"};
    if (format == Py_None) {
        *code = stream == Py_None ? CONSOLE_FORMAT_UPSTREAM : CONSOLE_FORMAT_TEXT;
        return 0;
    }
    for (int i = 0; PyUnicode_Check(format) && i < 3; i++) {
        if (PyUnicode_CompareWithASCIIString(format, names[i]) == 0) {
            *code = i; /* names are in enum console_format order */
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "format must be 'upstream', 'text', 'jsonl' or None, not %R",
                 format);
    return -1;
}

static int
console_color_from_arg(PyObject *color, int *code)
{
    if (color == Py_None) {
        *code = CONSOLE_COLOR_AUTO;
        return 0;
    }
    if (PyBool_Check(color)) {
        *code = color == Py_True ? CONSOLE_COLOR_ON : CONSOLE_COLOR_OFF;
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "color must be None, True or False, not %R", color);
    return -1;
}

/* stream goes with 'text'/'jsonl', logger with 'upstream'.  0 or -1. */
static int
console_check_outputs(int format, PyObject *stream, PyObject *logger)
{
    if (format == CONSOLE_FORMAT_UPSTREAM && stream != Py_None) {
        PyErr_SetString(PyExc_ValueError,
                        "format='upstream' logs through logger.info(); stream is for 'text' "
                        "and 'jsonl'");
        return -1;
    }
    if (format != CONSOLE_FORMAT_UPSTREAM && logger != Py_None) {
        PyErr_SetString(PyExc_ValueError, "logger is for format='upstream' only");
        return -1;
    }
    if (stream != Py_None && !PyObject_HasAttrString(stream, "write")) {
        PyErr_Format(PyExc_TypeError, "stream must have a write() method, got %s",
                     Py_TYPE(stream)->tp_name);
        return -1;
    }
    if (logger != Py_None && !PyObject_HasAttrString(logger, "info")) {
        PyErr_Format(PyExc_TypeError, "logger must have an info() method, got %s",
                     Py_TYPE(logger)->tp_name);
        return -1;
    }
    return 0;
}

static int
console_logger_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"stream", "format", "color", "logger", NULL};
    PyObject *stream = Py_None, *format = Py_None, *color = Py_None, *logger = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$OOO:ConsoleEventLogger", keywords, &stream,
                                     &format, &color, &logger)) {
        return -1;
    }
    int format_code, color_code;
    if (console_format_from_arg(format, stream, &format_code) < 0 ||
        console_color_from_arg(color, &color_code) < 0 ||
        console_check_outputs(format_code, stream, logger) < 0) {
        return -1;
    }
    console_logger_object *console = (console_logger_object *)self;
    Py_XSETREF(console->stream, stream == Py_None ? NULL : Py_NewRef(stream));
    Py_XSETREF(console->logger, logger == Py_None ? NULL : Py_NewRef(logger));
    Py_CLEAR(console->tty_checked_stream);
    console->color = color_code;
    console->format = format_code;
    return 0;
}

static int
console_logger_traverse(PyObject *self, visitproc visit, void *arg)
{
    console_logger_object *console = (console_logger_object *)self;
    Py_VISIT(console->stream);
    Py_VISIT(console->logger);
    Py_VISIT(console->tty_checked_stream);
    return base_logger_traverse((base_logger_object *)self, visit, arg);
}

static int
console_logger_clear(PyObject *self)
{
    console_logger_object *console = (console_logger_object *)self;
    Py_CLEAR(console->stream);
    Py_CLEAR(console->logger);
    Py_CLEAR(console->tty_checked_stream);
    return base_logger_clear(self);
}

static void
console_logger_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (((base_logger_object *)self)->weakreflist != NULL) {
        PyObject_ClearWeakRefs(self);
    }
    console_logger_clear(self);
    type->tp_free(self);
    Py_DECREF(type);
}

static const char *
console_format_name(int format)
{
    switch (format) {
    case CONSOLE_FORMAT_JSONL:
        return "jsonl";
    case CONSOLE_FORMAT_UPSTREAM:
        return "upstream";
    default:
        return "text";
    }
}

static PyObject *
console_logger_repr(PyObject *self)
{
    PyObject *name = PyType_GetName(Py_TYPE(self));
    if (name == NULL) {
        return NULL;
    }
    PyObject *repr = PyUnicode_FromFormat(
        "<%U format='%s'>", name, console_format_name(((console_logger_object *)self)->format));
    Py_DECREF(name);
    return repr;
}

static PyObject *
console_logger_get_logger_name(PyObject *self, void *closure)
{
    (void)self;
    (void)closure;
    return PyUnicode_FromString("console");
}

static PyObject *
console_logger_get_stream(PyObject *self, void *closure)
{
    (void)closure;
    PyObject *stream = ((console_logger_object *)self)->stream;
    return Py_NewRef(stream ? stream : Py_None);
}

static PyObject *
console_logger_get_logger(PyObject *self, void *closure)
{
    (void)closure;
    PyObject *logger = ((console_logger_object *)self)->logger;
    return Py_NewRef(logger ? logger : Py_None);
}

static PyObject *
console_logger_get_color(PyObject *self, void *closure)
{
    (void)closure;
    int color = ((console_logger_object *)self)->color;
    if (color == CONSOLE_COLOR_AUTO) {
        Py_RETURN_NONE;
    }
    return PyBool_FromLong(color);
}

static PyObject *
console_logger_get_format(PyObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(console_format_name(((console_logger_object *)self)->format));
}

PyDoc_STRVAR(console_log_doc,
             "log($self, /, uid, event_type, event_data, timestamp=None)\n--\n\n"
             "Validate the event, then log it.  format='upstream': logger.info() of\n"
             "upstream's message, e.g.\n"
             "\\x1b[33;20mConsoleEventLogger - created_at: 2023-11-14 22:13:20, uid=5, "
             "event_type=EventType.CLICK, event_data={'a': 1}\\x1b[0m\n"
             "(UTC; uid, event_type and event_data as an f-string shows them).\n"
             "format='text': one line to the stream, event_data as compact JSON; format='jsonl': one\n"
             "JSON object per line.  Bad input raises TypeError/ValueError and logs\n"
             "nothing.");

static PyMethodDef console_logger_methods[] = {
    {"log", (PyCFunction)(void (*)(void))base_logger_builtin_log, METH_FASTCALL | METH_KEYWORDS,
     console_log_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef console_logger_getset[] = {
    {"logger_name", console_logger_get_logger_name, NULL, "'console'", NULL},
    {"stream", console_logger_get_stream, NULL,
     "The stream 'text'/'jsonl' lines go to, or None for sys.stderr (looked up at each\n"
     "event).",
     NULL},
    {"logger", console_logger_get_logger, NULL,
     "The object whose info() gets 'upstream' messages, or None for\n"
     "querybook_eventlog._settings.console_logger() (asked at each event).",
     NULL},
    {"color", console_logger_get_color, NULL,
     "True/False, or None: for 'upstream', colour as upstream; for 'text', colour when\n"
     "the stream is a TTY and NO_COLOR is unset; for 'jsonl', none.",
     NULL},
    {"format", console_logger_get_format, NULL, "'upstream', 'text' or 'jsonl'.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(console_logger_doc,
             "ConsoleEventLogger(stream=None, *, format=None, color=None, logger=None)\n--\n\n"
             "The logger named 'console'.  format=None means 'upstream' without a stream\n"
             "and 'text' with one.\n\n"
             "format='upstream' (upstream's output exactly): logger.info(message) with\n"
             "  \\x1b[33;20m<class name> - created_at: 2023-11-14 22:13:20, uid=5, "
             "event_type=EventType.CLICK, event_data={'a': 1}\\x1b[0m\n"
             "  (UTC; uid, event_type and event_data as an f-string shows what was passed;\n"
             "  the class name is the actual subclass's).  logger: any object with info(), typically\n"
             "  a logging.Logger; None: querybook_eventlog._settings.console_logger() at\n"
             "  each event (Querybook's own logger inside Querybook).  color=False drops\n"
             "  the two colour codes; None and True keep them.\n"
             "format='text' (upstream's fields and order, event_data as compact JSON),\n"
             "  one line per event written with a single stream.write() call:\n"
             "  created_at: 2023-11-14 22:13:20, uid=5, event_type=EventType.CLICK, "
             "event_data={\"a\":1}\n"
             "format='jsonl' (one JSON object per line, for log shippers):\n"
             "  {\"created_at\":\"2023-11-14T22:13:20.000000+00:00\",\"uid\":5,"
             "\"event_type\":\"CLICK\",\"event_data\":{\"a\":1}}\n"
             "  stream: any object with write() (None: sys.stderr at each event); its own\n"
             "  buffering applies.  Control characters in the data are escaped: an event\n"
             "  is always exactly one line.  color=True wraps each line (not its newline)\n"
             "  in upstream's yellow; color=None does so for text lines when the stream's\n"
             "  isatty() is true and NO_COLOR is unset or empty; color=False never.");

static PyType_Slot console_logger_slots[] = {
    {Py_tp_doc, (void *)console_logger_doc},   {Py_tp_new, console_logger_new},
    {Py_tp_init, console_logger_init},         {Py_tp_dealloc, console_logger_dealloc},
    {Py_tp_traverse, console_logger_traverse}, {Py_tp_clear, console_logger_clear},
    {Py_tp_repr, console_logger_repr},         {Py_tp_methods, console_logger_methods},
    {Py_tp_getset, console_logger_getset},     {0, NULL},
};

static PyType_Spec console_logger_type_spec = {
    .name = "querybook_eventlog._core.ConsoleEventLogger",
    .basicsize = sizeof(console_logger_object),
    .itemsize = 0,
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = console_logger_slots,
};

PyType_Spec *
console_logger_spec(void)
{
    return &console_logger_type_spec;
}
