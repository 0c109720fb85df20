/* client_events.c: the browser's batched VIEW/CLICK events.
 *
 * The front end sends `[{"type": "CLICK", "data": {...}, "timestamp": ms},
 * ...]` with navigator.sendBeacon to POST /ds/context_log/, unflagged as
 * JSON.  Upstream parses it and logs element by element, and one bad
 * element aborts the rest of the batch.  Here jansson parses the raw bytes,
 * each element is checked on its own, good ones are logged through the
 * logger's log() (C fast path or the Python override), and each bad one is
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

/* Parse `body` (bytes-like or str).  A new jansson array, or NULL with
 * ValueError/TypeError set. */
static json_t *
parse_body(PyObject *body)
{
    Py_buffer view;
    if (PyUnicode_Check(body)) {
        Py_ssize_t length;
        const char *text = PyUnicode_AsUTF8AndSize(body, &length);
        if (text == NULL) {
            return NULL;
        }
        view.buf = (void *)text;
        view.len = length;
        view.obj = NULL;
    }
    else if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "body must be bytes-like or str, not %.100s",
                     Py_TYPE(body)->tp_name);
        return NULL;
    }
    json_t *root = NULL;
    json_error_t error;
    if (view.len > CLIENT_EVENTS_MAX_BODY) {
        PyErr_Format(PyExc_ValueError, "client event batch of %zd bytes exceeds %d bytes",
                     view.len, CLIENT_EVENTS_MAX_BODY);
    }
    else {
        root = json_loadb(view.buf, (size_t)view.len, JSON_ALLOW_NUL, &error);
        if (root == NULL) {
            PyErr_Format(PyExc_ValueError, "client event batch is not JSON: %s (line %d, column %d)",
                         error.text, error.line, error.column);
        }
        else if (!json_is_array(root)) {
            PyErr_SetString(PyExc_ValueError, "client event batch is not a JSON array");
            json_decref(root);
            root = NULL;
        }
    }
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return root;
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
    json_t *root = parse_body(args[2]);
    if (root == NULL) {
        return NULL;
    }
    PyObject *rejections = PyList_New(0);
    Py_ssize_t logged = 0;
    if (rejections == NULL) {
        goto error;
    }
    size_t index;
    json_t *element;
    json_array_foreach(root, index, element)
    {
        const char *type_name = NULL;
        json_t *data = NULL, *timestamp = NULL;
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
    json_decref(root);
    PyObject *result = Py_BuildValue("(nN)", logged, rejections);
    return result;
error:
    json_decref(root);
    Py_XDECREF(rejections);
    return NULL;
}
