/* qbel.h: the private header shared by the Python-facing C files of
 * querybook_eventlog._core.
 *
 * Owns nothing itself; it declares the module state (owned by the module
 * object, see module.c) and the entry points each file offers the others.
 * Pure-C parts (byte_buffer, event_record, writer, mysql_sink, spool) have
 * headers of their own and never include Python.h.
 */
#ifndef QBEL_H
#define QBEL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pycompat.h"

#include <stdbool.h>
#include <stdint.h>

#include "byte_buffer.h"
#include "event_record.h"

/* Deepest nesting qe.dumps accepts; deeper (or a cycle) is a ValueError. */
#define QBEL_MAX_JSON_DEPTH 256
/* Upstream's MAX_STR_PARAM_LENGTH for log_api_request pruning. */
#define QBEL_MAX_STR_PARAM_LENGTH 128

typedef struct qbel_state {
    /* types (heap types created in module exec) */
    PyTypeObject *base_logger_type;
    PyTypeObject *null_logger_type;
    PyTypeObject *console_logger_type;
    PyTypeObject *db_logger_type;
    PyTypeObject *kafka_logger_type;

    /* querybook_eventlog._event_type.EventType and its members by code */
    PyObject *event_type_enum;
    PyObject *event_type_members[EVENT_TYPE_COUNT];
    /* The members handed to a Python log() override (the application's own
     * EventType, e.g. Querybook's const.event_log.EventType; ours until
     * _set_application_event_type says otherwise) and f"{member}" of
     * each, for the console logger's upstream line.  Strong references. */
    PyObject *app_event_type_members[EVENT_TYPE_COUNT];
    PyObject *app_event_type_strs[EVENT_TYPE_COUNT];
    /* f"{member}" of our own members */
    PyObject *event_type_strs[EVENT_TYPE_COUNT];

    /* types the encoder's cold path recognises (imported in exec) */
    PyObject *datetime_type, *date_type, *time_type;
    PyObject *uuid_type, *enum_type, *decimal_type;
    PyObject *dataclass_fields; /* dataclasses.fields */

    /* the placeholders of BaseEventLogger's abstract members */
    PyObject *abstract_log;
    PyObject *abstract_logger_name;

    /* interned strings */
    PyObject *str_uid, *str_event_type, *str_event_data, *str_timestamp;
    PyObject *str_log, *str_logger_name, *str_api_allow_list, *str_api_deny_list;
    PyObject *str_should_log_api_request;
    PyObject *str_method, *str_route, *str_params, *str_args, *str_kwargs;
    PyObject *str_type, *str_prefix, *str_exact, *str_star;
    PyObject *str_write, *str_flush, *str_isatty;
    PyObject *str_info, *str_value, *str_empty;
    /* pieces of the console logger's upstream message */
    PyObject *str_color_start, *str_color_end, *str_event_type_label, *str_event_data_label;
    PyObject *log_kwnames; /* ("uid", "event_type", "event_data") */

    /* default deny lists as Python lists of dicts (what the properties return) */

    /* querybook_eventlog._url.parse_database_url, imported lazily */
    PyObject *parse_database_url;
    /* querybook_eventlog._settings.console_logger (the function, imported on
     * first use and called at each event: Querybook's context can switch) */
    PyObject *settings_console_logger;
    /* weakref.WeakSet of live DBEventLoggers, flushed at exit */
    PyObject *live_db_loggers;
} qbel_state;

extern PyModuleDef qbel_module_def;

static inline qbel_state *
qbel_state_of_module(PyObject *module)
{
    return (qbel_state *)PyModule_GetState(module);
}

/* The state reached from an instance of one of our types or of a Python
 * subclass of one (PyType_GetModuleByDef walks the MRO). */
static inline qbel_state *
qbel_state_of_type(PyTypeObject *type)
{
    PyObject *module = PyType_GetModuleByDef(type, &qbel_module_def);
    return module ? qbel_state_of_module(module) : NULL;
}

/* ---- json_encoder.c ---------------------------------------------------- */

/* Append the compact JSON of `obj` to `buffer`.  0, or -1 with a Python
 * exception set (TypeError naming the type and its path, ValueError for
 * depth/cycles/lone surrogates, MemoryError).  On error the buffer holds a
 * partial document: the caller discards it. */
int json_encode(qbel_state *state, byte_buffer *buffer, PyObject *obj);

/* qe.dumps(obj) -> bytes */
PyObject *json_dumps(PyObject *module, PyObject *obj);

/* ---- repr_writer.c ------------------------------------------------------ */

/* repr(obj), identical to CPython's, written in one pass for exact dicts,
 * lists, tuples, strs, ints, floats, bools and None (other objects inside
 * contribute their own repr()).  New str, or NULL with an exception set;
 * a UnicodeEncodeError means a foreign repr held a lone surrogate: the
 * caller may fall back to PyObject_Repr. */
PyObject *repr_of_json_shaped(PyObject *obj);

/* ---- event.c: validation shared by every logger ----------------------- */

/* One validated event.  The PyObject fields are borrowed from the caller's
 * arguments and valid only during the log() call that filled them. */
typedef struct event_fields {
    int64_t created_at_us;
    int32_t uid;
    bool uid_is_null;
    int event_type; /* enum event_type_code */
    /* any JSON-encodable value; NULL for None, which is JSON null (and SQL
     * NULL in the DB logger: its event_data text is exactly "null") */
    PyObject *event_data;
    PyObject *uid_object;        /* the uid argument as passed (int or None) */
    PyObject *event_type_object; /* the event_type argument as passed */
} event_fields;

/* Validate log() arguments (all borrowed; timestamp may be NULL or None).
 * uid: int (not bool) in signed 32-bit range, or None.  event_type: a
 * member of any enum.Enum whose value is 'API', 'WEBSOCKET', 'VIEW' or
 * 'CLICK' (ours and the application's by identity, others by .value), or
 * one of those strings.  event_data: None, or a value dumps() encodes
 * (dict, list, str, int, float, bool...; only the top-level type is
 * checked here).  timestamp: None or int/float milliseconds in years
 * 1970..9999.  0, or -1 with a TypeError/ValueError naming the bad value. */
int event_fields_from_args(qbel_state *state, PyObject *uid, PyObject *event_type,
                           PyObject *event_data, PyObject *timestamp, event_fields *out);

/* Fill state's EventType members (ours, from state->event_type_enum), the
 * application's (ours to begin with) and their f"{member}".  0 or -1. */
int event_types_setup(qbel_state *state);

/* _core._set_application_event_type(enum_class_or_None): the EventType
 * class whose members Python log() overrides receive.  Its API, WEBSOCKET,
 * VIEW and CLICK must be enum members whose value equals their name
 * (TypeError/ValueError otherwise, and nothing changes); None restores
 * querybook_eventlog's own.  Returns None. */
PyObject *event_types_set_application(PyObject *module, PyObject *enum_class);

/* Encode fields->event_data into `buffer`: its compact JSON, or the 4 bytes
 * `null` when it is NULL (None).  0, or -1 with an exception set. */
int event_fields_encode_data(qbel_state *state, const event_fields *fields,
                             byte_buffer *buffer);

/* ---- base_logger.c ---------------------------------------------------- */

typedef struct base_logger_object base_logger_object;

/* A builtin logger's C implementation of log(), on validated fields.
 * 0, or -1 with an exception set. */
typedef int (*logger_log_fields_fn)(base_logger_object *self, qbel_state *state,
                                    const event_fields *fields);

/* A builtin API rule: a route prefix or exact route, and a method ("*"
 * matches any). */
typedef struct api_rule {
    bool is_prefix;
    const char *route;
    const char *method;
} api_rule;

/* A logger type's builtin deny rules (static storage). */
typedef struct api_rule_table {
    const api_rule *rules;
    size_t count;
} api_rule_table;

/* BaseEventLogger's deny rules, every logger's unless its type brings its
 * own (base_logger_set_deny_rules). */
extern const api_rule_table base_logger_default_deny_rules;

/* Every instance of BaseEventLogger (and of its C and Python subclasses)
 * starts with this.  NullEventLogger/ConsoleEventLogger/DBEventLogger
 * extend it (their structs embed it first). */
struct base_logger_object {
    PyObject_HEAD
    /* the C log() of the nearest builtin type; NULL for direct Python
     * subclasses of BaseEventLogger */
    logger_log_fields_fn log_fields;
    /* borrowed (types outlive instances): the builtin C type whose
     * log_fields this is, used to tell whether a Python subclass
     * overrides log() */
    PyTypeObject *c_type;
    /* the builtin deny rules of this logger's type (static storage) */
    const api_rule_table *deny_rules;
    PyObject *weakreflist;
    /* the instance __dict__ (created on first use; NULL until then), so that
     * unittest.mock.patch.object(logger, "log") works on builtin loggers */
    PyObject *dict;
};

/* Call `self`'s log(): the C fast path when log() is not overridden in
 * Python (class or instance __dict__), else self.log(uid=...,
 * event_type=<the application's EventType member>, event_data=...) with
 * keyword arguments.  `event_data` is borrowed.  0 or -1. */
int base_logger_dispatch_log(base_logger_object *self, qbel_state *state, PyObject *uid,
                             int event_type, PyObject *event_data);

/* True when self's instance __dict__ holds `name`, or Py_TYPE(self)
 * overrides attribute `name` relative to self->c_type (or BaseEventLogger).
 * -1 on error. */
int base_logger_overrides(base_logger_object *self, qbel_state *state, PyObject *name);

/* Decide whether log_api_request logs (route, method): a Python override of
 * _should_log_api_request is called when there is one; else the allow list
 * (when not None) or the deny list decide, read from Python when a subclass
 * overrides the property, from self->deny_rules otherwise.  1 log,
 * 0 skip, -1 with an exception set (malformed rules: TypeError/ValueError). */
int base_logger_should_log_api_request(base_logger_object *self, qbel_state *state, PyObject *route,
                                       PyObject *method);

/* Allocate an instance of `type` (BaseEventLogger or a subclass) after
 * refusing abstract classes with abc's TypeError.  c_type/log_fields: the
 * builtin C type whose tp_new this is and its C log(), or NULL/NULL for
 * BaseEventLogger's own tp_new.  New reference, or NULL. */
PyObject *base_logger_alloc(PyTypeObject *type, PyTypeObject *c_type,
                            logger_log_fields_fn log_fields);

/* A logger type's tp_new, right after base_logger_alloc: the builtin deny
 * rules of its type instead of the default ones. */
void base_logger_set_deny_rules(base_logger_object *self, const api_rule_table *rules);

/* The log(uid, event_type, event_data, timestamp=None) method of the builtin
 * types (METH_FASTCALL | METH_KEYWORDS): validates, then self->log_fields.
 * Each builtin type lists it in its own tp_methods so that its "log" is its
 * own descriptor (that is how overrides are detected). */
PyObject *base_logger_builtin_log(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames);

/* For the builtin types' tp_traverse/tp_clear/tp_dealloc.  traverse visits
 * the type and the base fields (the instance dict); clear clears the base
 * fields: a type with fields of its own calls both from its slots. */
int base_logger_traverse(base_logger_object *self, visitproc visit, void *arg);
int base_logger_clear(PyObject *self);
/* tp_dealloc for a type with no fields beyond base_logger_object. */
void base_logger_dealloc(PyObject *self);

PyType_Spec *base_logger_spec(void);
/* Called from exec after the type exists: fills state->abstract_* and
 * state->base_* and the deny lists. */
int base_logger_setup(PyObject *module, qbel_state *state);

/* ---- null_logger.c, console_logger.c, db_logger.c -------------------- */

PyType_Spec *null_logger_spec(void);
PyType_Spec *console_logger_spec(void);
PyType_Spec *db_logger_spec(void);
PyType_Spec *kafka_logger_spec(void); /* kafka_logger.c */

/* ---- client_events.c ------------------------------------------------- */

/* qe.log_client_events(logger, uid, body) -> (logged, [(index, reason)]) */
PyObject *client_events_log(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames);

/* _replay_spool(url_parts, spool_dir, table, adopt_all=False) -> int: the replay CLI. */
PyObject *db_logger_replay_spool(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* Flush and close every live DBEventLogger (atexit hook). */
PyObject *db_logger_atexit(PyObject *module, PyObject *unused);

/* _db_defaults() -> dict: DBEventLogger's defaults (csrc/defaults.h). */
PyObject *db_logger_defaults(PyObject *module, PyObject *unused);

#ifdef QBEL_TEST_HOOKS
/* ---- test_hooks.c (test builds only) ------------------------------------ */

/* Add _live_allocations, _fail_allocation_at, _build_flags, _plant_fault. */
int test_hooks_add(PyObject *module);
#endif

#endif
