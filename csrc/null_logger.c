/* null_logger.c: NullEventLogger ("null"), the default logger.
 *
 * Owns nothing beyond BaseEventLogger's fields.  log() validates its
 * arguments like every logger (bad input raises) and then drops the event.
 */
#include "qbel.h"

static int
null_log_fields(base_logger_object *self, qbel_state *state, const event_fields *fields)
{
    (void)self;
    (void)state;
    (void)fields;
    return 0;
}

static PyObject *
null_logger_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    qbel_state *state = qbel_state_of_type(type);
    if (state == NULL) {
        return NULL;
    }
    return base_logger_alloc(type, state->null_logger_type, null_log_fields);
}

static int
null_logger_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, ":NullEventLogger", (char *[]){NULL})) {
        return -1;
    }
    return 0;
}

static int
null_logger_traverse(PyObject *self, visitproc visit, void *arg)
{
    return base_logger_traverse((base_logger_object *)self, visit, arg);
}

static PyObject *
null_logger_repr(PyObject *self)
{
    PyObject *name = PyType_GetName(Py_TYPE(self));
    if (name == NULL) {
        return NULL;
    }
    PyObject *repr = PyUnicode_FromFormat("<%U>", name);
    Py_DECREF(name);
    return repr;
}

static PyObject *
null_logger_get_logger_name(PyObject *self, void *closure)
{
    (void)self;
    (void)closure;
    return PyUnicode_FromString("null");
}

PyDoc_STRVAR(null_log_doc,
             "log($self, /, uid, event_type, event_data, timestamp=None)\n--\n\n"
             "Validate the event's fields (raising TypeError/ValueError on bad input, as\n"
             "every logger does) and drop it.");

static PyMethodDef null_logger_methods[] = {
    {"log", (PyCFunction)(void (*)(void))base_logger_builtin_log, METH_FASTCALL | METH_KEYWORDS,
     null_log_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef null_logger_getset[] = {
    {"logger_name", null_logger_get_logger_name, NULL, "'null'", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(null_logger_doc,
             "NullEventLogger()\n--\n\n"
             "The logger named 'null' (the default when EVENT_LOGGER_NAME is unset): it\n"
             "validates each event and records nothing.");

static PyType_Slot null_logger_slots[] = {
    {Py_tp_doc, (void *)null_logger_doc},   {Py_tp_new, null_logger_new},
    /* no fields of its own: BaseEventLogger's dealloc and clear serve */
    {Py_tp_init, null_logger_init},         {Py_tp_dealloc, base_logger_dealloc},
    {Py_tp_traverse, null_logger_traverse}, {Py_tp_clear, base_logger_clear},
    {Py_tp_repr, null_logger_repr},         {Py_tp_methods, null_logger_methods},
    {Py_tp_getset, null_logger_getset},     {0, NULL},
};

static PyType_Spec null_logger_type_spec = {
    .name = "querybook_eventlog._core.NullEventLogger",
    .basicsize = sizeof(base_logger_object),
    .itemsize = 0,
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = null_logger_slots,
};

PyType_Spec *
null_logger_spec(void)
{
    return &null_logger_type_spec;
}
