/* repr_writer.c: repr() of JSON-shaped values, as CPython writes it.
 *
 * The console logger's upstream line shows event_data as upstream's
 * f-string does: its repr.  CPython builds a dict's repr from one new str
 * per key and value; this writes exact dicts, lists, tuples, strs, ints,
 * floats, bools and None straight into one UTF-8 buffer, character for
 * character as their own reprs do (quote choice and escapes of str.__repr__,
 * float's shortest round-trip digits, "{...}" for a cycle).  Any other
 * object, subclasses included, contributes its own repr().  Owns nothing
 * beyond one call.
 */
#include "qbel.h"

static int repr_write_value(byte_buffer *buffer, PyObject *obj);

static const char hex_digits[] = "0123456789abcdef";

static int
raise_no_memory(void)
{
    PyErr_NoMemory();
    return -1;
}

/* Bytes str.__repr__ writes for `ch`, quotes aside (they depend on the
 * quote chosen). */
static size_t
repr_char_size(Py_UCS4 ch)
{
    if (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r') {
        return 2;
    }
    if (ch < ' ' || ch == 0x7f) {
        return 4;
    }
    if (ch < 0x7f) {
        return 1;
    }
    if (Py_UNICODE_ISPRINTABLE(ch)) { /* kept, as UTF-8 (never a surrogate) */
        return ch < 0x800 ? 2 : ch < 0x10000 ? 3 : 4;
    }
    return ch <= 0xff ? 4 : ch <= 0xffff ? 6 : 10;
}

/* Write `ch` as str.__repr__ does (quote already handled); `out` has room
 * for repr_char_size(ch) bytes.  Returns the bytes written. */
static size_t
repr_char_write(char *out, Py_UCS4 ch)
{
    switch (ch) {
    case '\\':
        memcpy(out, "\\\\", 2);
        return 2;
    case '\t':
        memcpy(out, "\\t", 2);
        return 2;
    case '\n':
        memcpy(out, "\\n", 2);
        return 2;
    case '\r':
        memcpy(out, "\\r", 2);
        return 2;
    default:
        break;
    }
    if (ch < 0x7f && ch >= ' ') {
        out[0] = (char)ch;
        return 1;
    }
    if (ch > 0x7f && Py_UNICODE_ISPRINTABLE(ch)) {
        if (ch < 0x800) {
            out[0] = (char)(0xc0 | (ch >> 6));
            out[1] = (char)(0x80 | (ch & 0x3f));
            return 2;
        }
        if (ch < 0x10000) {
            out[0] = (char)(0xe0 | (ch >> 12));
            out[1] = (char)(0x80 | ((ch >> 6) & 0x3f));
            out[2] = (char)(0x80 | (ch & 0x3f));
            return 3;
        }
        out[0] = (char)(0xf0 | (ch >> 18));
        out[1] = (char)(0x80 | ((ch >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((ch >> 6) & 0x3f));
        out[3] = (char)(0x80 | (ch & 0x3f));
        return 4;
    }
    int digits = ch <= 0xff ? 2 : ch <= 0xffff ? 4 : 8;
    out[0] = '\\';
    out[1] = digits == 2 ? 'x' : digits == 4 ? 'u' : 'U';
    for (int i = 0; i < digits; i++) {
        out[2 + i] = hex_digits[(ch >> (4 * (digits - 1 - i))) & 0xf];
    }
    return (size_t)(2 + digits);
}

/* str.__repr__: single quotes unless the text holds ' and no ". */
static int
repr_write_str(byte_buffer *buffer, PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    size_t size = 2;
    Py_ssize_t singles = 0, doubles = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        singles += ch == '\'';
        doubles += ch == '"';
        size += repr_char_size(ch); /* at most 10 per character: no overflow */
    }
    Py_UCS4 quote = singles && !doubles ? '"' : '\'';
    size += (size_t)(quote == '\'' ? singles : doubles); /* the escaping backslashes */
    if (byte_buffer_reserve(buffer, size) < 0) {
        return raise_no_memory();
    }
    char *out = buffer->data + buffer->length;
    size_t position = 0;
    out[position++] = (char)quote;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch == quote) {
            out[position++] = '\\';
            out[position++] = (char)ch;
        }
        else {
            position += repr_char_write(out + position, ch);
        }
    }
    out[position++] = (char)quote;
    buffer->length += position;
    return 0;
}

static int
repr_write_int(byte_buffer *buffer, PyObject *value)
{
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow) {
        return -2; /* the caller uses int's own repr */
    }
    char digits[24];
    int position = sizeof(digits);
    /* unsigned, so that LLONG_MIN negates without overflow */
    unsigned long long magnitude =
        number < 0 ? 0ULL - (unsigned long long)number : (unsigned long long)number;
    do {
        digits[--position] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (number < 0) {
        digits[--position] = '-';
    }
    return byte_buffer_append(buffer, digits + position, sizeof(digits) - (size_t)position) < 0
               ? raise_no_memory()
               : 0;
}

static int
repr_write_float(byte_buffer *buffer, PyObject *value)
{
    /* exactly what float.__repr__ does */
    char *text = PyOS_double_to_string(PyFloat_AS_DOUBLE(value), 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) {
        return -1;
    }
    int status = byte_buffer_append(buffer, text, strlen(text));
    PyMem_Free(text);
    return status < 0 ? raise_no_memory() : 0;
}

/* Any other object: its own repr(), as UTF-8 (a lone surrogate in it is a
 * UnicodeEncodeError, which the caller handles). */
static int
repr_write_foreign(byte_buffer *buffer, PyObject *obj)
{
    PyObject *repr = PyObject_Repr(obj);
    if (repr == NULL) {
        return -1;
    }
    Py_ssize_t length;
    const char *utf8 = PyUnicode_AsUTF8AndSize(repr, &length);
    int status = utf8 == NULL ? -1
                 : byte_buffer_append(buffer, utf8, (size_t)length) < 0 ? raise_no_memory()
                                                                         : 0;
    Py_DECREF(repr);
    return status;
}

/* The items of an exact list or tuple between `open` and `close`.  The
 * length is read at each step: a foreign repr may shrink a list. */
static int
repr_write_items(byte_buffer *buffer, PyObject *sequence, char open, char close)
{
    bool is_tuple = PyTuple_CheckExact(sequence);
    if (byte_buffer_append_char(buffer, open) < 0) {
        return raise_no_memory();
    }
    Py_ssize_t i = 0;
    for (; i < (is_tuple ? PyTuple_GET_SIZE(sequence) : PyList_GET_SIZE(sequence)); i++) {
        if (i > 0 && byte_buffer_append_literal(buffer, ", ") < 0) {
            return raise_no_memory();
        }
        PyObject *item = is_tuple ? PyTuple_GET_ITEM(sequence, i) : PyList_GET_ITEM(sequence, i);
        Py_INCREF(item);
        int status = repr_write_value(buffer, item);
        Py_DECREF(item);
        if (status < 0) {
            return -1;
        }
    }
    if (is_tuple && i == 1 && byte_buffer_append_char(buffer, ',') < 0) {
        return raise_no_memory();
    }
    return byte_buffer_append_char(buffer, close) < 0 ? raise_no_memory() : 0;
}

static int
repr_write_dict(byte_buffer *buffer, PyObject *dict)
{
    if (byte_buffer_append_char(buffer, '{') < 0) {
        return raise_no_memory();
    }
    Py_ssize_t position = 0;
    PyObject *key, *value;
    bool first = true;
    while (PyDict_Next(dict, &position, &key, &value)) {
        /* a foreign repr may mutate the dict: hold what we write */
        Py_INCREF(key);
        Py_INCREF(value);
        int status = 0;
        if (!first && byte_buffer_append_literal(buffer, ", ") < 0) {
            status = raise_no_memory();
        }
        first = false;
        if (status == 0) {
            status = repr_write_value(buffer, key);
        }
        if (status == 0 && byte_buffer_append_literal(buffer, ": ") < 0) {
            status = raise_no_memory();
        }
        if (status == 0) {
            status = repr_write_value(buffer, value);
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (status < 0) {
            return -1;
        }
    }
    return byte_buffer_append_char(buffer, '}') < 0 ? raise_no_memory() : 0;
}

/* A container, guarded as CPython guards its repr: "{...}" / "[...]" /
 * "(...)" for a cycle, RecursionError when nested too deep. */
static int
repr_write_container(byte_buffer *buffer, PyObject *obj)
{
    int seen = Py_ReprEnter(obj);
    if (seen != 0) {
        if (seen < 0) {
            return -1;
        }
        const char *cycle = PyDict_CheckExact(obj) ? "{...}" : PyList_CheckExact(obj) ? "[...]"
                                                                                    : "(...)";
        return byte_buffer_append(buffer, cycle, 5) < 0 ? raise_no_memory() : 0;
    }
    if (Py_EnterRecursiveCall(" while getting the repr of an object")) {
        Py_ReprLeave(obj);
        return -1;
    }
    int status = PyDict_CheckExact(obj)   ? repr_write_dict(buffer, obj)
                 : PyList_CheckExact(obj) ? repr_write_items(buffer, obj, '[', ']')
                                          : repr_write_items(buffer, obj, '(', ')');
    Py_LeaveRecursiveCall();
    Py_ReprLeave(obj);
    return status;
}

static int
repr_write_value(byte_buffer *buffer, PyObject *obj)
{
    if (PyUnicode_CheckExact(obj)) {
        return repr_write_str(buffer, obj);
    }
    if (PyLong_CheckExact(obj)) {
        int status = repr_write_int(buffer, obj);
        return status == -2 ? repr_write_foreign(buffer, obj) : status;
    }
    if (PyFloat_CheckExact(obj)) {
        return repr_write_float(buffer, obj);
    }
    if (obj == Py_True || obj == Py_False || obj == Py_None) {
        const char *text = obj == Py_True ? "True" : obj == Py_False ? "False" : "None";
        return byte_buffer_append(buffer, text, strlen(text)) < 0 ? raise_no_memory() : 0;
    }
    if (PyDict_CheckExact(obj) || PyList_CheckExact(obj) || PyTuple_CheckExact(obj)) {
        return repr_write_container(buffer, obj);
    }
    return repr_write_foreign(buffer, obj);
}

PyObject *
repr_of_json_shaped(PyObject *obj)
{
    char inline_block[1024];
    byte_buffer buffer;
    byte_buffer_init(&buffer, inline_block, sizeof(inline_block));
    PyObject *text = NULL;
    if (repr_write_value(&buffer, obj) == 0) {
        text = PyUnicode_DecodeUTF8(buffer.data, (Py_ssize_t)buffer.length, NULL);
    }
    byte_buffer_release(&buffer);
    return text;
}
