/* client_events.c: the browser's batched VIEW/CLICK events.
 *
 * The front end sends `[{"type": "CLICK", "data": {...}, "timestamp": ms},
 * ...]` with navigator.sendBeacon to POST /ds/context_log/, unflagged as
 * JSON.  Upstream parses it and logs element by element, and one bad
 * element aborts the rest of the batch.  Here the body is cut into its
 * top-level elements and jansson parses each one; only then is anything
 * logged, so a body that is not a JSON array logs nothing.  Each element is
 * checked on its own: good ones are logged through the logger's log() (C
 * fast path or the Python override), and each bad one -- one jansson
 * cannot hold (a NUL in a key, 1e400, a lone surrogate) included -- is
 * reported with its index and reason.  Owns nothing beyond one call.
 */
#include "qbel.h"

/* jansson has a json_dumps of its own; ours (qbel.h) is qe.dumps. */
#define json_dumps jansson_json_dumps
#include <jansson.h>
#undef json_dumps

/* Body size above which a batch is refused outright (the browser flushes
 * every 2 s; a real batch is a few KiB). */
#define CLIENT_EVENTS_MAX_BODY (8 * 1024 * 1024)

static PyObject *json_value_to_python(json_t *value, int depth);

static PyObject *
json_object_to_python(json_t *object, int depth)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    const char *key;
    size_t key_length;
    json_t *member;
    json_object_keylen_foreach(object, key, key_length, member)
    {
        PyObject *py_key = PyUnicode_DecodeUTF8(key, (Py_ssize_t)key_length, "strict");
        PyObject *py_value = py_key ? json_value_to_python(member, depth + 1) : NULL;
        int failed = py_value == NULL || PyDict_SetItem(dict, py_key, py_value) < 0;
        Py_XDECREF(py_key);
        Py_XDECREF(py_value);
        if (failed) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

static PyObject *
json_array_to_python(json_t *array, int depth)
{
    size_t size = json_array_size(array);
    PyObject *list = PyList_New((Py_ssize_t)size);
    if (list == NULL) {
        return NULL;
    }
    for (size_t index = 0; index < size; index++) {
        PyObject *item = json_value_to_python(json_array_get(array, index), depth + 1);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)index, item);
    }
    return list;
}

/* A new reference to the Python value of a jansson value. */
static PyObject *
json_value_to_python(json_t *value, int depth)
{
    if (depth > QBEL_MAX_JSON_DEPTH) {
        PyErr_Format(PyExc_ValueError, "nested deeper than %d levels", QBEL_MAX_JSON_DEPTH);
        return NULL;
    }
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return json_object_to_python(value, depth);
    case JSON_ARRAY:
        return json_array_to_python(value, depth);
    case JSON_STRING:
        return PyUnicode_DecodeUTF8(json_string_value(value),
                                    (Py_ssize_t)json_string_length(value), "strict");
    case JSON_INTEGER:
        return PyLong_FromLongLong(json_integer_value(value));
    case JSON_REAL:
        return PyFloat_FromDouble(json_real_value(value));
    case JSON_TRUE:
        Py_RETURN_TRUE;
    case JSON_FALSE:
        Py_RETURN_FALSE;
    case JSON_NULL:
        Py_RETURN_NONE;
    }
    PyErr_SetString(PyExc_ValueError, "unknown JSON value");
    return NULL;
}

/* Append (index, reason) to `rejections`.  0 or -1. */
static int
reject(PyObject *rejections, size_t index, PyObject *reason)
{
    if (reason == NULL) {
        return -1;
    }
    PyObject *entry = Py_BuildValue("(nO)", (Py_ssize_t)index, reason);
    Py_DECREF(reason);
    if (entry == NULL) {
        return -1;
    }
    int result = PyList_Append(rejections, entry);
    Py_DECREF(entry);
    return result;
}

/* Turn the exception log() raised into a rejection reason; MemoryError and
 * anything that is not an Exception (KeyboardInterrupt...) propagate. */
static int
reject_with_current_exception(PyObject *rejections, size_t index)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception) || PyErr_ExceptionMatches(PyExc_MemoryError)) {
        return -1;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *reason = value ? PyUnicode_FromFormat("%s: %S", ((PyTypeObject *)type)->tp_name,
                                                    value)
                             : NULL;
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return reject(rejections, index, reason);
}

/* The reason an element is not a loggable event, or NULL when it is;
 * fills type_name, data and timestamp (borrowed from the element). */
static const char *
check_element(json_t *element, const char **type_name, json_t **data, json_t **timestamp)
{
    if (!json_is_object(element)) {
        return "element is not an object";
    }
    json_t *type = json_object_get(element, "type");
    if (!json_is_string(type)) {
        return "\"type\" is missing or not a string";
    }
    *type_name = json_string_value(type);
    if (event_type_from_name(*type_name, json_string_length(type)) < 0) {
        return "\"type\" is not one of API, WEBSOCKET, VIEW, CLICK";
    }
    *data = json_object_get(element, "data"); /* any JSON value; missing is null */
    *timestamp = json_object_get(element, "timestamp");
    if (*timestamp != NULL && !json_is_number(*timestamp) && !json_is_null(*timestamp)) {
        return "\"timestamp\" is not a number";
    }
    return NULL;
}

/* Log one good element through logger.log(uid=, event_type=, event_data=,
 * timestamp=).  0, or -1 with the exception of the call set. */
static int
log_element(qbel_state *state, PyObject *logger, PyObject *uid, const char *type_name,
            json_t *data, json_t *timestamp)
{
    PyObject *event_data = NULL, *py_timestamp = NULL, *result = NULL;
    int code = event_type_from_name(type_name, strlen(type_name));
    /* held: log() may switch the application's EventType */
    PyObject *member = Py_NewRef(state->app_event_type_members[code]);
    event_data = data ? json_value_to_python(data, 1) : Py_NewRef(Py_None);
    if (event_data == NULL) {
        goto error;
    }
    if (timestamp == NULL || json_is_null(timestamp)) {
        py_timestamp = Py_NewRef(Py_None);
    }
    else if (json_is_integer(timestamp)) {
        py_timestamp = PyLong_FromLongLong(json_integer_value(timestamp));
    }
    else {
        py_timestamp = PyFloat_FromDouble(json_real_value(timestamp));
    }
    if (py_timestamp == NULL) {
        goto error;
    }
    PyObject *args[] = {logger, uid, member, event_data, py_timestamp};
    PyObject *kwnames = PyTuple_Pack(4, state->str_uid, state->str_event_type,
                                     state->str_event_data, state->str_timestamp);
    if (kwnames == NULL) {
        goto error;
    }
    result = PyObject_VectorcallMethod(state->str_log, args,
                                       1 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
    Py_DECREF(kwnames);
error:
    Py_DECREF(member);
    Py_XDECREF(event_data);
    Py_XDECREF(py_timestamp);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* The batch, parsed element by element. */
typedef struct parsed_batch {
    json_t *elements; /* jansson array: each element, or `refused` in its place */
    json_t *refused;  /* the placeholder of an element jansson could not hold */
    PyObject *reasons; /* list of str: why, for each placeholder in order */
} parsed_batch;

static void
parsed_batch_clear(parsed_batch *batch)
{
    json_decref(batch->elements);
    json_decref(batch->refused);
    Py_CLEAR(batch->reasons);
    batch->elements = batch->refused = NULL;
}

static size_t
skip_json_space(const char *text, size_t length, size_t at)
{
    while (at < length && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' ||
                           text[at] == '\r')) {
        at++;
    }
    return at;
}

/* Where the element starting at `at` ends: the index of the ',' or ']' (or
 * a stray '}') that follows it at the array's top level, or `length`.
 * Strings and brackets are followed only to find that delimiter; jansson
 * then checks the element itself, so a malformed one is still caught. */
static size_t
element_end(const char *text, size_t length, size_t at)
{
    size_t depth = 0;
    for (; at < length; at++) {
        switch (text[at]) {
        case '"':
            for (at++; at < length && text[at] != '"'; at++) {
                at += text[at] == '\\';
            }
            if (at >= length) {
                return length;
            }
            break;
        case '[':
        case '{':
            depth++;
            break;
        case ']':
        case '}':
            if (depth == 0) {
                return at;
            }
            depth--;
            break;
        case ',':
            if (depth == 0) {
                return at;
            }
            break;
        default:
            break;
        }
    }
    return length;
}

/* Whether jansson refused an element for what it holds rather than for
 * how the body is written: the element alone is rejected, not the batch. */
static bool
refused_for_content(const json_error_t *error)
{
    switch (json_error_code(error)) {
    case json_error_null_byte_in_key:
    case json_error_numeric_overflow:
    case json_error_stack_overflow:
        return true;
    case json_error_invalid_syntax:
        /* a lone surrogate escape: valid JSON grammar, but no Unicode text */
        return strncmp(error->text, "invalid Unicode '", 17) == 0;
    default:
        return false;
    }
}

/* Parse the element text[at, end) into batch (0), or set ValueError for a
 * body that is not JSON (-1). */
static int
parse_element(parsed_batch *batch, const char *text, size_t at, size_t end)
{
    json_error_t error;
    json_t *value = json_loadb(text + at, end - at, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (value == NULL && json_error_code(&error) == json_error_out_of_memory) {
        PyErr_NoMemory();
        return -1;
    }
    if (value != NULL) {
        if (json_array_append_new(batch->elements, value) != 0) { /* steals `value` */
            PyErr_NoMemory();
            return -1;
        }
        return 0;
    }
    if (!refused_for_content(&error)) {
        PyErr_Format(PyExc_ValueError, "client event batch is not JSON: %s (element %zu, byte %zu)",
                     error.text, json_array_size(batch->elements), at + (size_t)error.position);
        return -1;
    }
    PyObject *reason = PyUnicode_FromFormat("not loggable JSON: %s", error.text);
    if (reason == NULL) {
        return -1;
    }
    int appended = PyList_Append(batch->reasons, reason);
    Py_DECREF(reason);
    if (appended < 0) {
        return -1;
    }
    if (json_array_append(batch->elements, batch->refused) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Parse text[0, length), a JSON array, element by element.  0, or -1 with
 * ValueError (or MemoryError) set and nothing in `batch` to free. */
static int
parse_elements(parsed_batch *batch, const char *text, size_t length)
{
    batch->elements = json_array();
    batch->refused = json_object();
    batch->reasons = PyList_New(0);
    if (batch->elements == NULL || batch->refused == NULL || batch->reasons == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        goto error;
    }
    size_t at = skip_json_space(text, length, 0);
    if (at == length || text[at] != '[') {
        PyErr_SetString(PyExc_ValueError, "client event batch is not a JSON array");
        goto error;
    }
    at = skip_json_space(text, length, at + 1);
    bool closed = at < length && text[at] == ']';
    while (!closed) {
        size_t end = element_end(text, length, at);
        if (parse_element(batch, text, at, end) < 0) {
            goto error;
        }
        if (end == length || text[end] == '}') {
            PyErr_Format(PyExc_ValueError, "client event batch is not JSON: ']' expected "
                                           "(byte %zu)", end);
            goto error;
        }
        closed = text[end] == ']';
        at = end;
        at += !closed;
    }
    at = skip_json_space(text, length, at + 1);
    if (at != length) {
        PyErr_Format(PyExc_ValueError, "client event batch is not JSON: end of input expected "
                                       "after the array (byte %zu)", at);
        goto error;
    }
    return 0;
error:
    parsed_batch_clear(batch);
    return -1;
}

/* Parse `body` (bytes-like or str) into `batch`.  0, or -1 with
 * ValueError/TypeError set. */
static int
parse_body(PyObject *body, parsed_batch *batch)
{
    Py_buffer view;
    if (PyUnicode_Check(body)) {
        Py_ssize_t length;
        const char *text = PyUnicode_AsUTF8AndSize(body, &length);
        if (text == NULL) {
            return -1;
        }
        view.buf = (void *)text;
        view.len = length;
        view.obj = NULL;
    }
    else if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "body must be bytes-like or str, not %.100s",
                     Py_TYPE(body)->tp_name);
        return -1;
    }
    int result = -1;
    if (view.len > CLIENT_EVENTS_MAX_BODY) {
        PyErr_Format(PyExc_ValueError, "client event batch of %zd bytes exceeds %d bytes",
                     view.len, CLIENT_EVENTS_MAX_BODY);
    }
    else {
        result = parse_elements(batch, view.buf, (size_t)view.len);
    }
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return result;
}

PyObject *
client_events_log(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        PyErr_SetString(PyExc_TypeError, "log_client_events() takes positional arguments only");
        return NULL;
    }
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "log_client_events(logger, uid, body) takes 3 arguments, "
                                      "got %zd", nargs);
        return NULL;
    }
    qbel_state *state = qbel_state_of_module(module);
    PyObject *logger = args[0], *uid = args[1];
    if (!PyObject_TypeCheck(logger, state->base_logger_type)) {
        PyErr_Format(PyExc_TypeError, "logger must be a BaseEventLogger, not %.100s",
                     Py_TYPE(logger)->tp_name);
        return NULL;
    }
    parsed_batch batch = {NULL, NULL, NULL};
    if (parse_body(args[2], &batch) < 0) {
        return NULL;
    }
    PyObject *rejections = PyList_New(0);
    Py_ssize_t logged = 0, next_reason = 0;
    if (rejections == NULL) {
        goto error;
    }
    size_t index;
    json_t *element;
    json_array_foreach(batch.elements, index, element)
    {
        const char *type_name = NULL;
        json_t *data = NULL, *timestamp = NULL;
        if (element == batch.refused) {
            PyObject *reason = PyList_GET_ITEM(batch.reasons, next_reason++);
            if (reject(rejections, index, Py_NewRef(reason)) < 0) {
                goto error;
            }
            continue;
        }
        const char *reason = check_element(element, &type_name, &data, &timestamp);
        if (reason != NULL) {
            if (reject(rejections, index, PyUnicode_FromString(reason)) < 0) {
                goto error;
            }
            continue;
        }
        if (log_element(state, logger, uid, type_name, data, timestamp) < 0) {
            if (reject_with_current_exception(rejections, index) < 0) {
                goto error;
            }
            continue;
        }
        logged++;
    }
    parsed_batch_clear(&batch);
    return Py_BuildValue("(nN)", logged, rejections);
error:
    parsed_batch_clear(&batch);
    Py_XDECREF(rejections);
    return NULL;
}
