/* console_logger.c: ConsoleEventLogger ("console").
 *
 * Owns its stream reference (NULL: sys.stderr, looked up at each call so
 * that redirections apply) and the stream whose isatty() answer it caches.
 * Each event becomes exactly one line, built in a byte_buffer and written
 * with a single stream.write(str): event_data is compact JSON, so newlines
 * and control characters in the data are escaped and cannot forge lines.
 */
#include "qbel.h"

#include <stdlib.h>

enum console_format { CONSOLE_FORMAT_TEXT = 0, CONSOLE_FORMAT_JSONL = 1 };
enum console_color { CONSOLE_COLOR_AUTO = -1, CONSOLE_COLOR_OFF = 0, CONSOLE_COLOR_ON = 1 };

/* upstream's yellow */
#define CONSOLE_COLOR_START "\x1b[33;20m"
#define CONSOLE_COLOR_END "\x1b[0m"

typedef struct console_logger_object {
    base_logger_object base;
    PyObject *stream; /* NULL: sys.stderr at each call */
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

/* Append a signed 32-bit integer in decimal. */
static int
append_int32(byte_buffer *buffer, int32_t value)
{
    char digits[12];
    int position = sizeof(digits);
    int64_t magnitude = value < 0 ? -(int64_t)value : value;
    do {
        digits[--position] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (value < 0) {
        digits[--position] = '-';
    }
    return byte_buffer_append(buffer, digits + position, sizeof(digits) - (size_t)position);
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

static int
console_log_fields(base_logger_object *base, qbel_state *state, const event_fields *fields)
{
    console_logger_object *self = (console_logger_object *)base;
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
    console->color = CONSOLE_COLOR_AUTO;
    console->format = CONSOLE_FORMAT_TEXT;
    console->tty_checked_stream = NULL;
    console->tty_checked_result = false;
    return self;
}

static int
console_logger_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"stream", "color", "format", NULL};
    PyObject *stream = Py_None, *color = Py_None, *format = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$OO:ConsoleEventLogger", keywords, &stream,
                                     &color, &format)) {
        return -1;
    }
    int format_code = CONSOLE_FORMAT_TEXT;
    if (format != NULL) {
        if (PyUnicode_Check(format) && PyUnicode_CompareWithASCIIString(format, "text") == 0) {
            format_code = CONSOLE_FORMAT_TEXT;
        }
        else if (PyUnicode_Check(format) &&
                 PyUnicode_CompareWithASCIIString(format, "jsonl") == 0) {
            format_code = CONSOLE_FORMAT_JSONL;
        }
        else {
            PyErr_Format(PyExc_ValueError, "format must be 'text' or 'jsonl', not %R", format);
            return -1;
        }
    }
    int color_code;
    if (color == Py_None) {
        color_code = CONSOLE_COLOR_AUTO;
    }
    else if (PyBool_Check(color)) {
        color_code = color == Py_True ? CONSOLE_COLOR_ON : CONSOLE_COLOR_OFF;
    }
    else {
        PyErr_Format(PyExc_TypeError, "color must be None, True or False, not %R", color);
        return -1;
    }
    if (stream != Py_None) {
        int has_write = PyObject_HasAttrString(stream, "write");
        if (!has_write) {
            PyErr_Format(PyExc_TypeError, "stream must have a write() method, got %s",
                         Py_TYPE(stream)->tp_name);
            return -1;
        }
    }
    console_logger_object *console = (console_logger_object *)self;
    Py_XSETREF(console->stream, stream == Py_None ? NULL : Py_NewRef(stream));
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
    Py_VISIT(console->tty_checked_stream);
    return base_logger_traverse((base_logger_object *)self, visit, arg);
}

static int
console_logger_clear(PyObject *self)
{
    console_logger_object *console = (console_logger_object *)self;
    Py_CLEAR(console->stream);
    Py_CLEAR(console->tty_checked_stream);
    return 0;
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
    return format == CONSOLE_FORMAT_JSONL ? "jsonl" : "text";
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
             "Validate the event and write it as one line to the stream, e.g.\n"
             "created_at: 2023-11-14 22:13:20, uid=5, event_type=EventType.CLICK, "
             "event_data={\"a\":1}\n"
             "(UTC; event_data as compact JSON), or one JSON object per line with\n"
             "format='jsonl'.  Bad input raises TypeError/ValueError and writes nothing.");

static PyMethodDef console_logger_methods[] = {
    {"log", (PyCFunction)(void (*)(void))base_logger_builtin_log, METH_FASTCALL | METH_KEYWORDS,
     console_log_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef console_logger_getset[] = {
    {"logger_name", console_logger_get_logger_name, NULL, "'console'", NULL},
    {"stream", console_logger_get_stream, NULL,
     "The stream written to, or None for sys.stderr (looked up at each event).", NULL},
    {"color", console_logger_get_color, NULL,
     "True/False, or None: colour when the stream is a TTY and NO_COLOR is unset.", NULL},
    {"format", console_logger_get_format, NULL, "'text' or 'jsonl'.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(console_logger_doc,
             "ConsoleEventLogger(stream=None, *, color=None, format='text')\n--\n\n"
             "The logger named 'console': one line per event, written with a single\n"
             "stream.write() call to stream (any object with write(); None: sys.stderr,\n"
             "looked up at each event).  The stream's own buffering applies.\n\n"
             "format='text' (upstream's fields and order, UTC, event_data as compact JSON):\n"
             "  created_at: 2023-11-14 22:13:20, uid=5, event_type=EventType.CLICK, "
             "event_data={\"a\":1}\n"
             "format='jsonl' (one JSON object per line, for log shippers):\n"
             "  {\"created_at\":\"2023-11-14T22:13:20.000000+00:00\",\"uid\":5,"
             "\"event_type\":\"CLICK\",\"event_data\":{\"a\":1}}\n"
             "Control characters in the data are escaped: an event is always exactly one\n"
             "line.  color=True wraps each line (not its newline) in upstream's yellow;\n"
             "color=None does so for text lines when the stream's isatty() is true and\n"
             "NO_COLOR is unset or empty; color=False never.");

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
