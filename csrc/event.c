/* event.c: validation of log() arguments, shared by every logger, and the
 * EventType members the loggers recognise and hand out.
 *
 * Validation owns nothing: it turns borrowed Python arguments into an
 * event_fields (plain C values plus borrowed objects) or raises a
 * TypeError/ValueError that names the bad value, before any logger writes
 * anything.  The EventType members (ours and the application's, in the
 * module state) are set up here and switched by
 * _set_application_event_type.
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

#define EVENT_TYPE_EXPECTED                                                                   \
    "event_type must be an EventType (any enum member whose value is 'API', 'WEBSOCKET', "   \
    "'VIEW' or 'CLICK') or one of those strings"

/* The code a str names: >= 0, -1 when it names none (lone surrogates
 * included), -2 with an exception set. */
static int
event_type_code_of_str(PyObject *text)
{
    Py_ssize_t length;
    const char *name = PyUnicode_AsUTF8AndSize(text, &length);
    if (name == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            return -2;
        }
        PyErr_Clear();
        return -1;
    }
    return event_type_from_name(name, (size_t)length);
}

/* The code of a member of any enum.Enum, by its value: >= 0, -1 when
 * `member` is no Enum member or its value names no event type, -2 with an
 * exception set. */
static int
event_type_code_of_enum_member(qbel_state *state, PyObject *member)
{
    if (!PyObject_TypeCheck(member, (PyTypeObject *)state->enum_type)) {
        return -1;
    }
    PyObject *value = PyObject_GetAttr(member, state->str_value);
    if (value == NULL) {
        return -2;
    }
    int code = PyUnicode_Check(value) ? event_type_code_of_str(value) : -1;
    Py_DECREF(value);
    return code;
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
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        if (event_type == state->app_event_type_members[code]) {
            out->event_type = code;
            return 0;
        }
    }
    bool is_enum = PyObject_TypeCheck(event_type, (PyTypeObject *)state->enum_type);
    if (!is_enum && !PyUnicode_Check(event_type)) {
        return raise_bad_value(PyExc_TypeError, EVENT_TYPE_EXPECTED, event_type);
    }
    /* an Enum member (str mixins included) counts by its value */
    int code = is_enum ? event_type_code_of_enum_member(state, event_type)
                       : event_type_code_of_str(event_type);
    if (code == -2) {
        return -1;
    }
    if (code < 0) {
        return raise_bad_value(PyExc_ValueError, EVENT_TYPE_EXPECTED, event_type);
    }
    out->event_type = code;
    return 0;
}

/* ---- the application's EventType ------------------------------------- */

/* f"{member}" (format(member, ''), which differs from str() for str/int
 * mixins before 3.11) of each of `members`, into strs (new references).
 * 0 or -1; on failure strs holds nothing. */
static int
event_type_strs_of(qbel_state *state, PyObject *const *members, PyObject **strs)
{
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        strs[code] = PyObject_Format(members[code], state->str_empty);
        if (strs[code] == NULL) {
            for (int done = 0; done < code; done++) {
                Py_CLEAR(strs[done]);
            }
            return -1;
        }
    }
    return 0;
}

/* Replace the application's members and their str() by new references
 * (taken). */
static void
event_types_install_app_take(qbel_state *state, PyObject **members, PyObject **strs)
{
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        Py_XSETREF(state->app_event_type_members[code], members[code]);
        Py_XSETREF(state->app_event_type_strs[code], strs[code]);
    }
}

int
event_types_setup(qbel_state *state)
{
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        state->event_type_members[code] =
            PyObject_GetAttrString(state->event_type_enum, event_type_name(code));
        if (state->event_type_members[code] == NULL) {
            return -1;
        }
    }
    if (event_type_strs_of(state, state->event_type_members, state->event_type_strs) < 0) {
        return -1;
    }
    PyObject *members[EVENT_TYPE_COUNT], *strs[EVENT_TYPE_COUNT];
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        members[code] = Py_NewRef(state->event_type_members[code]);
        strs[code] = Py_NewRef(state->event_type_strs[code]);
    }
    event_types_install_app_take(state, members, strs);
    return 0;
}

/* enum_class.<name>, checked to be an Enum member whose value is `name`.
 * New reference, or NULL with TypeError/ValueError. */
static PyObject *
application_member(qbel_state *state, PyObject *enum_class, int code)
{
    const char *name = event_type_name(code);
    PyObject *member = PyObject_GetAttrString(enum_class, name);
    if (member == NULL) {
        return NULL;
    }
    if (!PyObject_TypeCheck(member, (PyTypeObject *)state->enum_type)) {
        PyErr_Format(PyExc_TypeError, "%R.%s must be an enum.Enum member, got %s", enum_class,
                     name, Py_TYPE(member)->tp_name);
        Py_DECREF(member);
        return NULL;
    }
    if (event_type_code_of_enum_member(state, member) != code) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError, "%R.%s must have the value '%s', got %R", enum_class,
                         name, name, member);
        }
        Py_DECREF(member);
        return NULL;
    }
    return member;
}

PyObject *
event_types_set_application(PyObject *module, PyObject *enum_class)
{
    qbel_state *state = qbel_state_of_module(module);
    PyObject *members[EVENT_TYPE_COUNT], *strs[EVENT_TYPE_COUNT];
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        members[code] = enum_class == Py_None ? Py_NewRef(state->event_type_members[code])
                                              : application_member(state, enum_class, code);
        if (members[code] == NULL) {
            for (int done = 0; done < code; done++) {
                Py_DECREF(members[done]);
            }
            return NULL;
        }
    }
    if (event_type_strs_of(state, members, strs) < 0) {
        for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
            Py_DECREF(members[code]);
        }
        return NULL;
    }
    event_types_install_app_take(state, members, strs);
    Py_RETURN_NONE;
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

/* Anything beyond the common JSON types is checked by encoding it once
 * (rare: a top-level tuple, datetime, dataclass...). */
static int
event_data_check_encodable(qbel_state *state, PyObject *event_data)
{
    char inline_block[256];
    byte_buffer scratch;
    byte_buffer_init(&scratch, inline_block, sizeof(inline_block));
    int status = json_encode(state, &scratch, event_data);
    byte_buffer_release(&scratch);
    if (status < 0 && PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        return raise_bad_value(PyExc_TypeError,
                               "event_data must be None or a JSON-encodable value (dict, "
                               "list, str, int, float, bool)",
                               event_data);
    }
    return status;
}

static int
event_data_from_arg(qbel_state *state, PyObject *event_data, event_fields *out)
{
    if (event_data == Py_None) {
        out->event_data = NULL;
        return 0;
    }
    out->event_data = event_data;
    if (PyDict_Check(event_data) || PyList_Check(event_data) || PyUnicode_Check(event_data) ||
        PyLong_Check(event_data) || PyFloat_Check(event_data)) {
        return 0; /* bool is an int */
    }
    return event_data_check_encodable(state, event_data);
}

int
event_fields_from_args(qbel_state *state, PyObject *uid, PyObject *event_type, PyObject *event_data,
                       PyObject *timestamp, event_fields *out)
{
    out->uid_object = uid;
    out->event_type_object = event_type;
    if (uid_from_arg(uid, out) < 0 || event_type_from_arg(state, event_type, out) < 0 ||
        event_data_from_arg(state, event_data, out) < 0) {
        return -1;
    }
    return created_at_from_arg(timestamp, out);
}

int
event_fields_encode_data(qbel_state *state, const event_fields *fields, byte_buffer *buffer)
{
    if (fields->event_data == NULL) {
        if (byte_buffer_append_literal(buffer, "null") < 0) {
            PyErr_NoMemory();
            return -1;
        }
        return 0;
    }
    return json_encode(state, buffer, fields->event_data);
}
