/* module.c: querybook_eventlog._core — multi-phase init, the module state
 * (types, interned strings, imported helper types) and its
 * traverse/clear/free trio, and the module-level functions. */
#include "qbel.h"

#include <pthread.h>

#include "encode_unicode.h"
#include "mysql_sink.h"
#include "writer.h"

static pthread_once_t process_init_once = PTHREAD_ONCE_INIT;
static int process_init_status = 0;

/* Once per process: Connector/C's library init (not thread-safe when left
 * to the first mysql_init) and the fork handlers.  pthread_atfork is
 * process-wide by nature; the writers it visits live on a process-wide
 * list in writer.c. */
static void
process_init(void)
{
    if (mysql_sink_library_init() < 0 ||
        pthread_atfork(writer_fork_prepare, writer_fork_parent, writer_fork_child) != 0) {
        process_init_status = -1;
    }
}

static int
intern_strings(qbel_state *state)
{
#define INTERN(field, text)                                   \
    do {                                                      \
        state->field = PyUnicode_InternFromString(text);      \
        if (state->field == NULL) {                           \
            return -1;                                        \
        }                                                     \
    } while (0)
    INTERN(str_uid, "uid");
    INTERN(str_event_type, "event_type");
    INTERN(str_event_data, "event_data");
    INTERN(str_timestamp, "timestamp");
    INTERN(str_log, "log");
    INTERN(str_logger_name, "logger_name");
    INTERN(str_api_allow_list, "_api_allow_list");
    INTERN(str_api_deny_list, "_api_deny_list");
    INTERN(str_should_log_api_request, "_should_log_api_request");
    INTERN(str_method, "method");
    INTERN(str_route, "route");
    INTERN(str_params, "params");
    INTERN(str_args, "args");
    INTERN(str_kwargs, "kwargs");
    INTERN(str_type, "type");
    INTERN(str_prefix, "prefix");
    INTERN(str_exact, "exact");
    INTERN(str_star, "*");
    INTERN(str_write, "write");
    INTERN(str_flush, "flush");
    INTERN(str_isatty, "isatty");
    INTERN(str_info, "info");
    INTERN(str_value, "value");
    INTERN(str_empty, "");
    INTERN(str_color_start, "\x1b[33;20m"); /* upstream's COLOR_YELLOW, COLOR_RESET */
    INTERN(str_color_end, "\x1b[0m");
    INTERN(str_event_type_label, ", event_type=");
    INTERN(str_event_data_label, ", event_data=");
#undef INTERN
    state->log_kwnames =
        PyTuple_Pack(3, state->str_uid, state->str_event_type, state->str_event_data);
    return state->log_kwnames ? 0 : -1;
}

/* *target = getattr(import(module_name), attribute) */
static int
import_attribute(const char *module_name, const char *attribute, PyObject **target)
{
    PyObject *module = PyImport_ImportModule(module_name);
    if (module == NULL) {
        return -1;
    }
    *target = PyObject_GetAttrString(module, attribute);
    Py_DECREF(module);
    return *target ? 0 : -1;
}

static int
import_helpers(qbel_state *state)
{
    if (import_attribute("datetime", "datetime", &state->datetime_type) < 0 ||
        import_attribute("datetime", "date", &state->date_type) < 0 ||
        import_attribute("datetime", "time", &state->time_type) < 0 ||
        import_attribute("uuid", "UUID", &state->uuid_type) < 0 ||
        import_attribute("enum", "Enum", &state->enum_type) < 0 ||
        import_attribute("decimal", "Decimal", &state->decimal_type) < 0 ||
        import_attribute("dataclasses", "fields", &state->dataclass_fields) < 0 ||
        import_attribute("querybook_eventlog._event_type", "EventType",
                         &state->event_type_enum) < 0 ||
        import_attribute("weakref", "WeakSet", &state->live_db_loggers) < 0) {
        return -1;
    }
    /* live_db_loggers holds the WeakSet class until replaced by an instance */
    PyObject *weak_set = PyObject_CallNoArgs(state->live_db_loggers);
    Py_SETREF(state->live_db_loggers, weak_set);
    if (weak_set == NULL) {
        return -1;
    }
    return event_types_setup(state);
}

static int
add_type(PyObject *module, PyType_Spec *spec, PyObject *base, PyTypeObject **target)
{
    /* 3.9 takes only a tuple of bases here (a single type from 3.10 on). */
    PyObject *bases = base ? PyTuple_Pack(1, base) : NULL;
    if (base && bases == NULL) {
        return -1;
    }
    *target = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, bases);
    Py_XDECREF(bases);
    if (*target == NULL) {
        return -1;
    }
    return PyModule_AddType(module, *target);
}

/* atexit runs this with the GIL held; DB loggers release it while waiting. */
static int
register_atexit(PyObject *module)
{
    PyObject *hook = PyObject_GetAttrString(module, "_atexit_flush_all");
    if (hook == NULL) {
        return -1;
    }
    PyObject *atexit = PyImport_ImportModule("atexit");
    if (atexit == NULL) {
        Py_DECREF(hook);
        return -1;
    }
    PyObject *result = PyObject_CallMethod(atexit, "register", "O", hook);
    Py_DECREF(atexit);
    Py_DECREF(hook);
    Py_XDECREF(result);
    return result ? 0 : -1;
}

/* isinstance(logger, abc.ABC) holds, as for upstream's loggers. */
static int
register_with_abc(qbel_state *state)
{
    PyObject *abc = NULL;
    if (import_attribute("abc", "ABC", &abc) < 0) {
        return -1;
    }
    PyObject *result = PyObject_CallMethod(abc, "register", "O", state->base_logger_type);
    Py_DECREF(abc);
    Py_XDECREF(result);
    return result ? 0 : -1;
}

static int
module_exec(PyObject *module)
{
    qbel_state *state = qbel_state_of_module(module);
    if (intern_strings(state) < 0 || import_helpers(state) < 0) {
        return -1;
    }
    if (add_type(module, base_logger_spec(), NULL, &state->base_logger_type) < 0 ||
        base_logger_setup(module, state) < 0 || register_with_abc(state) < 0) {
        return -1;
    }
    PyObject *base = (PyObject *)state->base_logger_type;
    if (add_type(module, null_logger_spec(), base, &state->null_logger_type) < 0 ||
        add_type(module, console_logger_spec(), base, &state->console_logger_type) < 0 ||
        add_type(module, db_logger_spec(), base, &state->db_logger_type) < 0 ||
        add_type(module, kafka_logger_spec(), base, &state->kafka_logger_type) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "MAX_JSON_DEPTH", QBEL_MAX_JSON_DEPTH) < 0 ||
        PyModule_AddIntConstant(module, "MAX_STR_PARAM_LENGTH", QBEL_MAX_STR_PARAM_LENGTH) < 0) {
        return -1;
    }
    if (register_atexit(module) < 0) {
        return -1;
    }
#ifdef QBEL_TEST_HOOKS
    if (test_hooks_add(module) < 0) {
        return -1;
    }
#endif
    pthread_once(&process_init_once, process_init);
    if (process_init_status < 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "querybook_eventlog: MariaDB Connector/C or fork handlers failed to "
                        "initialise");
        return -1;
    }
    return 0;
}

#define QBEL_STATE_OBJECTS(APPLY)                                                        \
    APPLY(base_logger_type) APPLY(null_logger_type) APPLY(console_logger_type)            \
    APPLY(db_logger_type) APPLY(kafka_logger_type) APPLY(event_type_enum) APPLY(datetime_type) APPLY(date_type)    \
    APPLY(time_type) APPLY(uuid_type) APPLY(enum_type) APPLY(decimal_type)                \
    APPLY(dataclass_fields) APPLY(abstract_log) APPLY(abstract_logger_name)               \
    APPLY(str_uid) APPLY(str_event_type) APPLY(str_event_data) APPLY(str_timestamp)       \
    APPLY(str_log) APPLY(str_logger_name) APPLY(str_api_allow_list)                        \
    APPLY(str_api_deny_list) APPLY(str_should_log_api_request) APPLY(str_method)           \
    APPLY(str_route) APPLY(str_params) APPLY(str_args) APPLY(str_kwargs) APPLY(str_type)   \
    APPLY(str_prefix) APPLY(str_exact) APPLY(str_star) APPLY(str_write) APPLY(str_flush)   \
    APPLY(str_isatty) APPLY(str_info) APPLY(str_value) APPLY(str_empty) APPLY(log_kwnames) \
    APPLY(str_color_start) APPLY(str_color_end) APPLY(str_event_type_label)                \
    APPLY(str_event_data_label)                                                            \
    APPLY(parse_database_url)                 \
    APPLY(settings_console_logger) APPLY(live_db_loggers)

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    qbel_state *state = qbel_state_of_module(module);
#define VISIT(field) Py_VISIT(state->field);
    QBEL_STATE_OBJECTS(VISIT)
#undef VISIT
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        Py_VISIT(state->event_type_members[code]);
        Py_VISIT(state->event_type_strs[code]);
        Py_VISIT(state->app_event_type_members[code]);
        Py_VISIT(state->app_event_type_strs[code]);
    }
    return 0;
}

static int
module_clear(PyObject *module)
{
    qbel_state *state = qbel_state_of_module(module);
#define CLEAR(field) Py_CLEAR(state->field);
    QBEL_STATE_OBJECTS(CLEAR)
#undef CLEAR
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        Py_CLEAR(state->event_type_members[code]);
        Py_CLEAR(state->event_type_strs[code]);
        Py_CLEAR(state->app_event_type_members[code]);
        Py_CLEAR(state->app_event_type_strs[code]);
    }
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

PyDoc_STRVAR(dumps_doc,
             "dumps(obj, /) -> bytes\n--\n\n"
             "Encode obj as compact, strict RFC 8259 JSON in UTF-8, keeping key order.\n"
             "Beyond json.dumps: datetime/date/time -> ISO 8601, UUID -> str, Enum -> value,\n"
             "tuple/set/frozenset -> array, dataclass -> object, finite Decimal -> number;\n"
             "NaN and +-Infinity -> null.  Raises TypeError for anything else (naming the\n"
             "type and where it sits) and ValueError for cycles or nesting deeper than\n"
             "MAX_JSON_DEPTH.");

PyDoc_STRVAR(log_client_events_doc,
             "log_client_events(logger, uid, body, /) -> (int, list[tuple[int, str]])\n--\n\n"
             "Log the browser's batched events (the raw body of POST /ds/context_log/: a JSON\n"
             "array of {\"type\", \"data\", \"timestamp\"} objects) through logger.log(), one by\n"
             "one.  \"data\" may be any JSON value; missing means None (JSON null).  A\n"
             "Python log() gets the application's EventType member (see\n"
             "_set_application_event_type).  Returns how many were logged and, for every\n"
             "element that was not, its index and the reason.  A body that is not a JSON\n"
             "array raises ValueError and logs nothing.");

PyDoc_STRVAR(set_application_event_type_doc,
             "_set_application_event_type(enum_class, /) -> None\n--\n\n"
             "Hand the members of enum_class (e.g. Querybook's const.event_log.EventType)\n"
             "to Python log() overrides called from log_api_request, log_websocket_event\n"
             "and log_client_events, instead of querybook_eventlog.EventType.  Its API,\n"
             "WEBSOCKET, VIEW and CLICK must be enum members whose value is their name\n"
             "(TypeError/ValueError otherwise, and nothing changes).  None restores\n"
             "querybook_eventlog's own.  Every logger accepts either class's members.");

static PyObject *
unicode_simd_path_name(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(unicode_simd_path());
}

static PyMethodDef module_methods[] = {
    {"dumps", (PyCFunction)json_dumps, METH_O, dumps_doc},
    {"log_client_events", (PyCFunction)(void (*)(void))client_events_log,
     METH_FASTCALL | METH_KEYWORDS, log_client_events_doc},
    {"_set_application_event_type", event_types_set_application, METH_O,
     set_application_event_type_doc},
    {"_replay_spool", (PyCFunction)(void (*)(void))db_logger_replay_spool, METH_FASTCALL,
     "_replay_spool(url_parts, spool_dir, table, adopt_all=False) -> int: replay spool files\n"
     "exactly once (lines for another target only with adopt_all)."},
    {"_atexit_flush_all", (PyCFunction)db_logger_atexit, METH_NOARGS,
     "Flush and close every live DBEventLogger (registered with atexit)."},
    {"_db_defaults", (PyCFunction)db_logger_defaults, METH_NOARGS,
     "_db_defaults() -> dict: DBEventLogger's default options, from their one source."},
    {"_unicode_simd_path", unicode_simd_path_name, METH_NOARGS,
     "_unicode_simd_path() -> 'avx2', 'sse4.1' or 'none': how non-ASCII str is encoded here\n"
     "(the environment variable QBEL_SIMD caps it)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

PyModuleDef qbel_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "querybook_eventlog._core",
    .m_doc = "The C core of querybook_eventlog.",
    .m_size = sizeof(qbel_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&qbel_module_def);
}
