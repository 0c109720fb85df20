/* fanout.c: the C part of a fan-out logger's log(), log_api_request()
 * and log_websocket_event() (fanout.h): each event is validated and its
 * event_data built once and handed to each member, the writer-backed
 * builtin members sharing one encoding (writer_logger.h).  The Python part
 * (querybook_eventlog/_fanout.py) owns the members, failure reports and
 * everything else.  Caller thread, GIL held. */
#include "fanout.h"

#include <stddef.h>

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

/* ---- log_api_request / log_websocket_event ------------------------------ */

/* One log_api_request or log_websocket_event call being handed out. */
typedef struct fan_out_request {
    PyObject *const *values;   /* uid, route, then method+params or args+kwargs */
    PyObject *method_name;     /* "log_api_request" or "log_websocket_event" */
    PyObject *keyword_names;   /* their parameter names, for a Python call */
    bool apply_rules;          /* _should_log_api_request decides per member */
    int event_type;
    PyObject *(*build)(qbel_state *state, PyObject *route, PyObject *a, PyObject *b);
    PyObject *event_data;      /* built by the first member that logs it */
    writer_logger_shared_event shared; /* its encoding, once event_data exists */
} fan_out_request;

/* A member that does not override the method: its own rules, then its log()
 * of the one event_data.  0 or -1. */
static int
request_to_builtin_path(qbel_state *state, base_logger_object *member, fan_out_request *request)
{
    PyObject *const *values = request->values;
    if (request->apply_rules) {
        int should_log = base_logger_should_log_api_request(member, state, values[1], values[2]);
        if (should_log <= 0) {
            return should_log;
        }
    }
    if (request->event_data == NULL) {
        request->event_data = request->build(state, values[1], values[2], values[3]);
        if (request->event_data == NULL) {
            return -1;
        }
        writer_logger_share_begin(&request->shared, request->event_data);
    }
    return base_logger_dispatch_log(member, state, values[0], request->event_type,
                                    request->event_data);
}

/* One member's method, as its own call would run it.  0 or -1. */
static int
request_to_member(qbel_state *state, PyObject *member, fan_out_request *request)
{
    if (PyObject_TypeCheck(member, state->base_logger_type)) {
        base_logger_object *base = (base_logger_object *)member;
        int overridden = base_logger_overrides(base, state, request->method_name);
        if (overridden < 0) {
            return -1;
        }
        if (!overridden) {
            return request_to_builtin_path(state, base, request);
        }
    }
    PyObject *const *values = request->values;
    PyObject *call_args[5] = {member, values[0], values[1], values[2], values[3]};
    PyObject *result = PyObject_VectorcallMethod(request->method_name, call_args,
                                                 1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                                 request->keyword_names);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* Hand `request` to each of the members in args[0]; args[1..5) are its
 * values.  The failures list, or NULL. */
static PyObject *
fan_out_request_run(qbel_state *state, PyObject *const *args, Py_ssize_t nargs,
                    fan_out_request *request, const char *method_name)
{
    if (nargs != 5 || !PyTuple_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "_fan_out_%s(members: tuple, uid, route, ...): 5 arguments",
                     method_name);
        return NULL;
    }
    request->values = args + 1;
    request->event_data = NULL;
    request->method_name = PyUnicode_InternFromString(method_name);
    if (request->method_name == NULL) {
        return NULL;
    }
    PyObject *failures = PyList_New(0);
    if (failures == NULL) {
        Py_DECREF(request->method_name);
        return NULL;
    }
    PyObject *members = Py_NewRef(args[0]);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(members); i++) {
        PyObject *member = PyTuple_GET_ITEM(members, i);
        if (request_to_member(state, member, request) < 0 && append_failure(failures, member) < 0) {
            Py_CLEAR(failures);
            break;
        }
    }
    if (request->event_data != NULL) {
        writer_logger_share_end(&request->shared);
        Py_DECREF(request->event_data);
    }
    Py_DECREF(members);
    Py_DECREF(request->method_name);
    return failures;
}

/* What differs between the two methods, in static storage. */
typedef struct fan_out_method {
    const char *name;
    bool apply_rules;
    int event_type;
    PyObject *(*build)(qbel_state *state, PyObject *route, PyObject *a, PyObject *b);
    size_t third, fourth; /* offsets in qbel_state of the last two parameter names */
} fan_out_method;

static const fan_out_method api_request_method = {
    "log_api_request", true, EVENT_TYPE_API, base_logger_api_request_data,
    offsetof(qbel_state, str_method), offsetof(qbel_state, str_params)};

static const fan_out_method websocket_event_method = {
    "log_websocket_event", false, EVENT_TYPE_WEBSOCKET, base_logger_websocket_data,
    offsetof(qbel_state, str_args), offsetof(qbel_state, str_kwargs)};

static PyObject *
fan_out_method_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                    const fan_out_method *method)
{
    qbel_state *state = qbel_state_of_type(Py_TYPE(self));
    if (state == NULL) {
        return NULL;
    }
    PyObject *names = PyTuple_Pack(4, state->str_uid, state->str_route,
                                   *(PyObject **)((char *)state + method->third),
                                   *(PyObject **)((char *)state + method->fourth));
    if (names == NULL) {
        return NULL;
    }
    fan_out_request request = {.keyword_names = names, .apply_rules = method->apply_rules,
                               .event_type = method->event_type, .build = method->build};
    PyObject *failures = fan_out_request_run(state, args, nargs, &request, method->name);
    Py_DECREF(names);
    return failures;
}

PyObject *
fanout_log_api_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return fan_out_method_call(self, args, nargs, &api_request_method);
}

PyObject *
fanout_log_websocket_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return fan_out_method_call(self, args, nargs, &websocket_event_method);
}
