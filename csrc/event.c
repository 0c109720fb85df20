/* event.c: validation of log() arguments, shared by every logger.
 *
 * Owns nothing: it turns borrowed Python arguments into an event_fields
 * (plain C values plus a borrowed event_data dict) or raises a
 * TypeError/ValueError that names the bad value, before any logger writes
 * anything.
 */
#include "qbel.h"

/* 9999-12-31T23:59:59.999999 is the last instant we accept (MySQL DATETIME
 * and Python datetime both stop at year 9999). */
#define EVENT_MAX_TIMESTAMP_MS INT64_C(253402300800000)
#define EVENT_MAX_CREATED_AT_US (EVENT_MAX_TIMESTAMP_MS * 1000)
/* Error messages quote at most this many characters of a bad value. */
#define EVENT_REPR_LIMIT 80

/* repr(obj), cut to EVENT_REPR_LIMIT characters so that a huge bad value
 * cannot make the error message huge.  NULL with an exception set. */
static PyObject *
short_repr(PyObject *obj)
{
    PyObject *repr = PyObject_Repr(obj);
    if (repr == NULL || PyUnicode_GET_LENGTH(repr) <= EVENT_REPR_LIMIT) {
        return repr;
    }
    PyObject *head = PyUnicode_Substring(repr, 0, EVENT_REPR_LIMIT);
    Py_DECREF(repr);
    if (head == NULL) {
        return NULL;
    }
    PyObject *cut = PyUnicode_FromFormat("%U...", head);
    Py_DECREF(head);
    return cut;
}

/* Raise `exception` with "<prefix>, got <type> <short repr>". Returns -1. */
static int
raise_bad_value(PyObject *exception, const char *prefix, PyObject *value)
{
    PyObject *repr = short_repr(value);
    if (repr == NULL) {
        return -1;
    }
    PyErr_Format(exception, "%s, got %s %U", prefix, Py_TYPE(value)->tp_name, repr);
    Py_DECREF(repr);
    return -1;
}

static int
uid_from_arg(PyObject *uid, event_fields *out)
{
    if (uid == Py_None) {
        out->uid = 0;
        out->uid_is_null = true;
        return 0;
    }
    if (!PyLong_Check(uid) || PyBool_Check(uid)) {
        return raise_bad_value(PyExc_TypeError, "uid must be an int or None", uid);
    }
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(uid, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow != 0 || value < INT32_MIN || value > INT32_MAX) {
        return raise_bad_value(PyExc_ValueError,
                               "uid must fit in a signed 32-bit integer (MySQL INT)", uid);
    }
    out->uid = (int32_t)value;
    out->uid_is_null = false;
    return 0;
}

static int
event_type_from_arg(qbel_state *state, PyObject *event_type, event_fields *out)
{
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        if (event_type == state->event_type_members[code]) {
            out->event_type = code;
            return 0;
        }
    }
    if (!PyUnicode_Check(event_type)) {
        return raise_bad_value(PyExc_TypeError,
                               "event_type must be an EventType or one of 'API', "
                               "'WEBSOCKET', 'VIEW', 'CLICK'",
                               event_type);
    }
    Py_ssize_t length;
    const char *name = PyUnicode_AsUTF8AndSize(event_type, &length);
    int code = -1;
    if (name != NULL) {
        code = event_type_from_name(name, (size_t)length);
    }
    else {
        /* a lone surrogate cannot name an event type either */
        PyErr_Clear();
    }
    if (code < 0) {
        return raise_bad_value(PyExc_ValueError,
                               "event_type must be an EventType or one of 'API', "
                               "'WEBSOCKET', 'VIEW', 'CLICK'",
                               event_type);
    }
    out->event_type = code;
    return 0;
}

static int
raise_bad_timestamp(PyObject *timestamp)
{
    return raise_bad_value(PyExc_ValueError,
                           "timestamp must be milliseconds since the epoch within years "
                           "1970..9999 (0 <= timestamp < 253402300800000)",
                           timestamp);
}

static int
created_at_from_arg(PyObject *timestamp, event_fields *out)
{
    if (timestamp == NULL || timestamp == Py_None) {
        out->created_at_us = event_time_now_us();
        return 0;
    }
    if (PyFloat_Check(timestamp)) {
        double milliseconds = PyFloat_AS_DOUBLE(timestamp);
        if (!(milliseconds >= 0.0 && milliseconds < (double)EVENT_MAX_TIMESTAMP_MS)) {
            return raise_bad_timestamp(timestamp); /* NaN lands here too */
        }
        /* round half to even, as datetime does for sub-microsecond parts
         * (by hand: the value is non-negative and below 2**63) */
        double scaled = milliseconds * 1000.0;
        int64_t whole = (int64_t)scaled;
        double fraction = scaled - (double)whole;
        if (fraction > 0.5 || (fraction == 0.5 && (whole & 1))) {
            whole += 1;
        }
        if (whole >= EVENT_MAX_CREATED_AT_US) {
            return raise_bad_timestamp(timestamp);
        }
        out->created_at_us = whole;
        return 0;
    }
    if (!PyLong_Check(timestamp) || PyBool_Check(timestamp)) {
        return raise_bad_value(PyExc_TypeError,
                               "timestamp must be None or an int or float (milliseconds "
                               "since the epoch)",
                               timestamp);
    }
    int overflow;
    long long milliseconds = PyLong_AsLongLongAndOverflow(timestamp, &overflow);
    if (milliseconds == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow != 0 || milliseconds < 0 || milliseconds >= EVENT_MAX_TIMESTAMP_MS) {
        return raise_bad_timestamp(timestamp);
    }
    out->created_at_us = (int64_t)milliseconds * 1000;
    return 0;
}

int
event_fields_from_args(qbel_state *state, PyObject *uid, PyObject *event_type, PyObject *event_data,
                       PyObject *timestamp, event_fields *out)
{
    if (uid_from_arg(uid, out) < 0 || event_type_from_arg(state, event_type, out) < 0) {
        return -1;
    }
    if (event_data == Py_None) {
        out->event_data = NULL;
    }
    else if (PyDict_Check(event_data)) {
        out->event_data = event_data;
    }
    else {
        return raise_bad_value(PyExc_TypeError, "event_data must be a dict or None", event_data);
    }
    return created_at_from_arg(timestamp, out);
}

int
event_fields_encode_data(qbel_state *state, const event_fields *fields, byte_buffer *buffer)
{
    if (fields->event_data == NULL) {
        if (byte_buffer_append_literal(buffer, "{}") < 0) {
            PyErr_NoMemory();
            return -1;
        }
        return 0;
    }
    return json_encode(state, buffer, fields->event_data);
}
