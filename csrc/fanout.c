/* fanout.c: the C part of a fan-out logger's log() (writer_logger.h:
 * fanout_log_members): validates an event once and hands it to each
 * member, the writer-backed builtin members sharing one encoding.  The
 * Python part (querybook_eventlog/_fanout.py) owns the members, failure
 * reports and everything else.  Caller thread, GIL held. */
#include "writer_logger.h"

/* member.log(uid=..., event_type=..., event_data=..., timestamp=...) with
 * the arguments as the fan-out got them.  0 or -1. */
static int
call_python_log(qbel_state *state, PyObject *member, PyObject *const *values)
{
    PyObject *names = PyTuple_Pack(4, state->str_uid, state->str_event_type,
                                   state->str_event_data, state->str_timestamp);
    if (names == NULL) {
        return -1;
    }
    PyObject *call_args[5] = {member, values[0], values[1], values[2], values[3]};
    PyObject *result = PyObject_VectorcallMethod(
        state->str_log, call_args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, names);
    Py_DECREF(names);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* One member's log(): its C log() on the shared fields unless it
 * overrides log() in Python.  0 or -1. */
static int
log_to_member(qbel_state *state, PyObject *member, const event_fields *fields,
              PyObject *const *values)
{
    if (PyObject_TypeCheck(member, state->base_logger_type)) {
        base_logger_object *base = (base_logger_object *)member;
        if (base->log_fields != NULL) {
            int overridden = base_logger_overrides(base, state, state->str_log);
            if (overridden < 0) {
                return -1;
            }
            if (!overridden) {
                return base->log_fields(base, state, fields);
            }
        }
    }
    return call_python_log(state, member, values);
}

/* The raised Exception as (member, exception), appended to `failures`; an
 * exception that is not an Exception (KeyboardInterrupt...) stays set.
 * 0 or -1. */
static int
append_failure(PyObject *failures, PyObject *member)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    PyObject *pair = PyTuple_Pack(2, member, value);
    Py_DECREF(value);
    if (pair == NULL) {
        return -1;
    }
    int appended = PyList_Append(failures, pair);
    Py_DECREF(pair);
    return appended;
}

PyObject *
fanout_log_members(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    qbel_state *state = qbel_state_of_type(Py_TYPE(self));
    if (state == NULL) {
        return NULL;
    }
    if (nargs != 5 || !PyTuple_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "_fan_out_log(members: tuple, uid, event_type, event_data, timestamp)");
        return NULL;
    }
    PyObject *const *values = args + 1;
    event_fields fields;
    if (event_fields_from_args(state, values[0], values[1], values[2], values[3], &fields) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *failures = PyList_New(0);
    if (failures == NULL) {
        return NULL;
    }
    /* a plugin member may change the tuple's owner meanwhile: hold it */
    PyObject *members = Py_NewRef(args[0]);
    writer_logger_shared_event shared;
    writer_logger_share_begin(&shared, fields.event_data);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(members); i++) {
        PyObject *member = PyTuple_GET_ITEM(members, i);
        if (log_to_member(state, member, &fields, values) < 0 &&
            append_failure(failures, member) < 0) {
            Py_CLEAR(failures);
            break;
        }
    }
    writer_logger_share_end(&shared);
    Py_DECREF(members);
    return failures;
}
