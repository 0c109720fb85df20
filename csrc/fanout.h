/* fanout: the C part of FanOutEventLogger (querybook_eventlog/_fanout.py),
 * BaseEventLogger's _fan_out_* methods (fanout.c), and the base logger's
 * event_data builders it shares with log_api_request/log_websocket_event
 * (base_logger.c).  Caller thread, GIL held. */
#ifndef QBEL_FANOUT_H
#define QBEL_FANOUT_H

#include "qbel.h"

/* BaseEventLogger._fan_out_log(members, uid, event_type, event_data,
 * timestamp) (fanout.c): validate once, then each member's log() -- the C
 * one of a builtin member that does not override it, sharing one encoding
 * among the writer-backed ones; member.log(...) with the arguments as
 * given otherwise.  A list of (member, exception) for the members that
 * raised an Exception (others propagate), or None, calling no member,
 * when validation failed (each member then reports its own error). */
PyObject *fanout_log_members(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* BaseEventLogger._fan_out_log_api_request(members, uid, route, method,
 * params): each member's log_api_request -- for a member that does not
 * override it, its own _should_log_api_request then its log() with one
 * event_data built for all (so the writer-backed ones share its
 * encoding); member.log_api_request(...) otherwise.  A list of (member,
 * exception) for the members that raised an Exception. */
PyObject *fanout_log_api_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* BaseEventLogger._fan_out_log_websocket_event(members, uid, route, args,
 * kwargs): the same for log_websocket_event (no rules to apply). */
PyObject *fanout_log_websocket_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* log_api_request's event_data: {"method", "route", "params": pruned}.
 * New reference, or NULL. */
PyObject *base_logger_api_request_data(qbel_state *state, PyObject *route, PyObject *method,
                                       PyObject *params);

/* log_websocket_event's event_data: {"route", "args", "kwargs"}.  New
 * reference, or NULL. */
PyObject *base_logger_websocket_data(qbel_state *state, PyObject *route, PyObject *args,
                                     PyObject *kwargs);

#endif
