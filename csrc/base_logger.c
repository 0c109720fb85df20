/* base_logger.c: BaseEventLogger, the plugin contract, in C.
 *
 * Owns the BaseEventLogger heap type: its abstract members (placeholders
 * that make a subclass lacking log/logger_name uninstantiable, as abc.ABC
 * does), the API allow/deny rule matching, parameter pruning, and the
 * dispatch from log_api_request/log_websocket_event to log() — straight to
 * the builtin logger's C log_fields when log() is not overridden in Python,
 * else a Python call with keyword arguments.  Also the default deny rules
 * (a C table; each logger type may bring its own, see
 * base_logger_set_deny_rules) and the Python lists the _api_deny_list
 * property builds from them.
 */
#include "qbel.h"
#include "fanout.h"

#include "structmember.h"

/* ---- API rule tables -------------------------------------------------- */

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

static const api_rule default_deny_rules[] = {
    {true, "/admin", "*"},
    {false, "/login/", "POST"},
    {false, "/signup/", "POST"},
};

const api_rule_table base_logger_default_deny_rules = {default_deny_rules,
                                                       COUNT_OF(default_deny_rules)};


static bool
table_matches(const api_rule *rules, size_t count, const char *route, size_t route_length,
              const char *method, size_t method_length)
{
    for (size_t i = 0; i < count; i++) {
        size_t rule_length = strlen(rules[i].route);
        bool route_matched =
            rules[i].is_prefix ? route_length >= rule_length : route_length == rule_length;
        if (!route_matched || memcmp(route, rules[i].route, rule_length) != 0) {
            continue;
        }
        if (strcmp(rules[i].method, "*") == 0 ||
            (strlen(rules[i].method) == method_length &&
             memcmp(rules[i].method, method, method_length) == 0)) {
            return true;
        }
    }
    return false;
}

/* A Python list of {"type", "route", "method"} dicts for a table. */
static PyObject *
rules_list_from_table(qbel_state *state, const api_rule *rules, size_t count)
{
    PyObject *list = PyList_New((Py_ssize_t)count);
    if (list == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        PyObject *rule = Py_BuildValue(
            "{OOOsOs}", state->str_type, rules[i].is_prefix ? state->str_prefix : state->str_exact,
            state->str_route, rules[i].route, state->str_method, rules[i].method);
        if (rule == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, rule);
    }
    return list;
}

/* A new reference to rule[key] as a str; ValueError when missing,
 * TypeError when not a str.  New, not borrowed: looking up the next field
 * can run a key's __eq__, which may empty the dict. */
static PyObject *
rule_field(PyObject *rule, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(rule, key);
    if (value == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError, "API filter rule %R has no %R", rule, key);
        }
        return NULL;
    }
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "API filter rule %R: %R must be a str, not %s", rule, key,
                     Py_TYPE(value)->tp_name);
        return NULL;
    }
    return Py_NewRef(value);
}

/* Whether route/method match one rule's fields (all str).  1, 0 or -1. */
static int
rule_fields_match(qbel_state *state, PyObject *rule, PyObject *type, PyObject *rule_route,
                  PyObject *rule_method, PyObject *route, PyObject *method)
{
    int route_matched;
    if (PyUnicode_Compare(type, state->str_prefix) == 0) {
        route_matched = PyUnicode_Tailmatch(route, rule_route, 0, PY_SSIZE_T_MAX, -1) > 0;
    }
    else if (PyUnicode_Compare(type, state->str_exact) == 0) {
        route_matched = PyUnicode_Compare(route, rule_route) == 0;
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "API filter rule %R: 'type' must be 'prefix' or 'exact', not %R", rule, type);
        return -1;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    if (!route_matched) {
        return 0;
    }
    return PyUnicode_Compare(rule_method, state->str_star) == 0 ||
           PyUnicode_Compare(rule_method, method) == 0;
}

/* Upstream's rule semantics on one Python rule.  1 match, 0 no, -1 error. */
static int
python_rule_matches(qbel_state *state, PyObject *rule, PyObject *route, PyObject *method)
{
    if (!PyDict_Check(rule)) {
        PyErr_Format(PyExc_TypeError,
                     "an API filter rule must be a dict with 'type', 'route' and 'method', "
                     "not %s",
                     Py_TYPE(rule)->tp_name);
        return -1;
    }
    PyObject *type = rule_field(rule, state->str_type);
    PyObject *rule_route = type ? rule_field(rule, state->str_route) : NULL;
    PyObject *rule_method = rule_route ? rule_field(rule, state->str_method) : NULL;
    int matched = -1;
    if (rule_method != NULL) {
        matched = rule_fields_match(state, rule, type, rule_route, rule_method, route, method);
    }
    Py_XDECREF(type);
    Py_XDECREF(rule_route);
    Py_XDECREF(rule_method);
    return matched;
}

/* Does any rule of a Python iterable match?  1, 0 or -1. */
static int
python_rules_match(qbel_state *state, PyObject *rules, PyObject *route, PyObject *method,
                   const char *property)
{
    PyObject *sequence = PySequence_Fast(rules, property);
    if (sequence == NULL) {
        return -1;
    }
    int matched = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence) && matched == 0; i++) {
        PyObject *rule = PySequence_Fast_GET_ITEM(sequence, i);
        Py_INCREF(rule);
        matched = python_rule_matches(state, rule, route, method);
        Py_DECREF(rule);
    }
    Py_DECREF(sequence);
    return matched;
}

/* ---- overrides -------------------------------------------------------- */

/* Whether the instance __dict__ holds `name` (unittest.mock.patch.object
 * puts a patched method there).  1, 0 or -1; cheap when there is no dict. */
static int
instance_dict_holds(base_logger_object *self, PyObject *name)
{
    PyObject *dict = self->dict;
    if (dict == NULL || PyDict_GET_SIZE(dict) == 0) {
        return 0;
    }
    Py_INCREF(dict); /* a key's __eq__ could replace self.__dict__ */
    int found = PyDict_Contains(dict, name);
    Py_DECREF(dict);
    return found;
}

int
base_logger_overrides(base_logger_object *self, qbel_state *state, PyObject *name)
{
    int in_instance = instance_dict_holds(self, name);
    if (in_instance != 0) {
        return in_instance;
    }
    PyTypeObject *reference = self->c_type ? self->c_type : state->base_logger_type;
    if (Py_TYPE(self) == reference) {
        return 0; /* our types are immutable: nothing to look up */
    }
    PyObject *own = PyObject_GetAttr((PyObject *)Py_TYPE(self), name);
    if (own == NULL) {
        return -1;
    }
    PyObject *builtin = PyObject_GetAttr((PyObject *)reference, name);
    if (builtin == NULL) {
        Py_DECREF(own);
        return -1;
    }
    int overridden = own != builtin;
    Py_DECREF(own);
    Py_DECREF(builtin);
    return overridden;
}

/* The allow/deny decision without consulting _should_log_api_request (so
 * that the C _should_log_api_request, reached through super() from a
 * Python override, does not call the override again). */
static int
should_log_by_rules(base_logger_object *self, qbel_state *state, PyObject *route, PyObject *method)
{
    if (!PyUnicode_Check(route) || !PyUnicode_Check(method)) {
        PyErr_Format(PyExc_TypeError, "route and method must be str, not %s and %s",
                     Py_TYPE(route)->tp_name, Py_TYPE(method)->tp_name);
        return -1;
    }
    int overridden = base_logger_overrides(self, state, state->str_api_allow_list);
    if (overridden < 0) {
        return -1;
    }
    if (overridden) {
        PyObject *allow = PyObject_GetAttr((PyObject *)self, state->str_api_allow_list);
        if (allow == NULL) {
            return -1;
        }
        if (allow != Py_None) {
            int matched = python_rules_match(state, allow, route, method,
                                             "_api_allow_list must be a list of rules");
            Py_DECREF(allow);
            return matched;
        }
        Py_DECREF(allow);
    }
    overridden = base_logger_overrides(self, state, state->str_api_deny_list);
    if (overridden < 0) {
        return -1;
    }
    const api_rule_table *table = self->deny_rules;
    if (overridden) {
        PyObject *deny = PyObject_GetAttr((PyObject *)self, state->str_api_deny_list);
        if (deny == NULL) {
            return -1;
        }
        int matched = 0;
        if (deny != Py_None) {
            matched = python_rules_match(state, deny, route, method,
                                         "_api_deny_list must be a list of rules");
        }
        Py_DECREF(deny);
        return matched < 0 ? -1 : !matched;
    }
    Py_ssize_t route_length, method_length;
    const char *route_utf8 = PyUnicode_AsUTF8AndSize(route, &route_length);
    const char *method_utf8 = route_utf8 ? PyUnicode_AsUTF8AndSize(method, &method_length) : NULL;
    if (method_utf8 == NULL) {
        /* lone surrogates: compare as code points against the Python lists */
        PyErr_Clear();
        PyObject *rules = rules_list_from_table(state, table->rules, table->count);
        if (rules == NULL) {
            return -1;
        }
        int matched = python_rules_match(state, rules, route, method, "");
        Py_DECREF(rules);
        return matched < 0 ? -1 : !matched;
    }
    return !table_matches(table->rules, table->count, route_utf8, (size_t)route_length,
                          method_utf8, (size_t)method_length);
}

int
base_logger_should_log_api_request(base_logger_object *self, qbel_state *state, PyObject *route,
                                   PyObject *method)
{
    int overridden = base_logger_overrides(self, state, state->str_should_log_api_request);
    if (overridden < 0) {
        return -1;
    }
    if (!overridden) {
        return should_log_by_rules(self, state, route, method);
    }
    PyObject *stack[3] = {(PyObject *)self, route, method};
    PyObject *verdict = PyObject_VectorcallMethod(state->str_should_log_api_request, stack,
                                                  3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (verdict == NULL) {
        return -1;
    }
    int result = PyObject_IsTrue(verdict);
    Py_DECREF(verdict);
    return result;
}

/* ---- dispatch --------------------------------------------------------- */

static int
dispatch_log_member(base_logger_object *self, qbel_state *state, PyObject *uid, PyObject *member,
                    PyObject *event_data)
{
    if (self->log_fields != NULL) {
        int overridden = base_logger_overrides(self, state, state->str_log);
        if (overridden < 0) {
            return -1;
        }
        if (!overridden) {
            event_fields fields;
            if (event_fields_from_args(state, uid, member, event_data, NULL, &fields) < 0) {
                return -1;
            }
            return self->log_fields(self, state, &fields);
        }
    }
    /* stack[0] is scratch space for PY_VECTORCALL_ARGUMENTS_OFFSET */
    PyObject *stack[5] = {NULL, (PyObject *)self, uid, member, event_data};
    PyObject *result = PyObject_VectorcallMethod(
        state->str_log, stack + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, state->log_kwnames);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

int
base_logger_dispatch_log(base_logger_object *self, qbel_state *state, PyObject *uid, int event_type,
                         PyObject *event_data)
{
    /* held: the override checks and log() itself may switch the
     * application's EventType */
    PyObject *member = Py_NewRef(state->app_event_type_members[event_type]);
    int status = dispatch_log_member(self, state, uid, member, event_data);
    Py_DECREF(member);
    return status;
}

int
base_logger_traverse(base_logger_object *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->dict);
    return 0;
}

/* ---- argument parsing for the vectorcall methods ---------------------- */

/* Fill values[0..total) from positional then keyword arguments matched
 * against `names` (interned, so usually an identity match); optional
 * arguments not given are NULL.  0, or -1 with a TypeError. */
static int
parse_arguments(const char *function, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                PyObject *const *names, Py_ssize_t required, Py_ssize_t total, PyObject **values)
{
    if (nargs > total) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)", function,
                     total, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < total; i++) {
        values[i] = i < nargs ? args[i] : NULL;
    }
    Py_ssize_t keyword_count = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < keyword_count; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t index = -1;
        for (Py_ssize_t i = 0; i < total && index < 0; i++) {
            if (key == names[i]) {
                index = i;
            }
        }
        for (Py_ssize_t i = 0; i < total && index < 0; i++) {
            if (PyUnicode_Compare(key, names[i]) == 0) {
                index = i;
            }
        }
        if (index < 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", function,
                         key);
            return -1;
        }
        if (values[index] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument %R", function,
                         key);
            return -1;
        }
        values[index] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < required; i++) {
        if (values[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument %R", function, names[i]);
            return -1;
        }
    }
    return 0;
}

/* ---- pruning ---------------------------------------------------------- */

static PyObject *prune_params(PyObject *params);

/* One pruned value: new reference, or NULL. */
static PyObject *
prune_value(PyObject *value)
{
    if (PyUnicode_Check(value)) {
        if (PyUnicode_GET_LENGTH(value) <= QBEL_MAX_STR_PARAM_LENGTH) {
            return Py_NewRef(value);
        }
        PyObject *head = PyUnicode_Substring(value, 0, QBEL_MAX_STR_PARAM_LENGTH);
        if (head == NULL) {
            return NULL;
        }
        PyObject *pruned = PyUnicode_FromFormat("%U...", head);
        Py_DECREF(head);
        return pruned;
    }
    if (PyDict_Check(value)) {
        return prune_params(value);
    }
    return Py_NewRef(value);
}

/* Upstream's __prune_api_request_params: a new dict, long str values cut,
 * dict values pruned recursively, everything else kept (same objects). */
static PyObject *
prune_params(PyObject *params)
{
    if (!PyDict_Check(params)) {
        PyErr_Format(PyExc_TypeError, "params must be a dict, not %s", Py_TYPE(params)->tp_name);
        return NULL;
    }
    if (Py_EnterRecursiveCall(" while pruning log_api_request params")) {
        return NULL;
    }
    PyObject *pruned = PyDict_New();
    PyObject *items = NULL;
    if (pruned == NULL) {
        goto error;
    }
    if (PyDict_CheckExact(params)) {
        Py_ssize_t position = 0;
        PyObject *key, *value;
        while (PyDict_Next(params, &position, &key, &value)) {
            /* a key's __hash__/__eq__ may run Python code that mutates params */
            Py_INCREF(key);
            Py_INCREF(value);
            PyObject *new_value = prune_value(value);
            int status = new_value ? PyDict_SetItem(pruned, key, new_value) : -1;
            Py_XDECREF(new_value);
            Py_DECREF(key);
            Py_DECREF(value);
            if (status < 0) {
                goto error;
            }
        }
    }
    else {
        /* dict subclasses (werkzeug's MultiDict) define what items() means */
        items = PyMapping_Items(params);
        if (items == NULL) {
            goto error;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
            /* the list may be one items() keeps and clears under us: hold the pair */
            PyObject *item = Py_NewRef(PyList_GET_ITEM(items, i));
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
                Py_DECREF(item);
                PyErr_SetString(PyExc_TypeError, "params.items() must yield (key, value) pairs");
                goto error;
            }
            PyObject *new_value = prune_value(PyTuple_GET_ITEM(item, 1));
            int status =
                new_value ? PyDict_SetItem(pruned, PyTuple_GET_ITEM(item, 0), new_value) : -1;
            Py_XDECREF(new_value);
            Py_DECREF(item);
            if (status < 0) {
                goto error;
            }
        }
        Py_DECREF(items);
    }
    Py_LeaveRecursiveCall();
    return pruned;

error:
    Py_LeaveRecursiveCall();
    Py_XDECREF(items);
    Py_XDECREF(pruned);
    return NULL;
}

/* ---- abstract classes ------------------------------------------------- */

/* Is `value` abstract in abc's sense (or one of our placeholders)?  1/0/-1. */
static int
is_abstract_value(qbel_state *state, PyObject *value)
{
    if (value == state->abstract_log || value == state->abstract_logger_name) {
        return 1;
    }
    PyObject *flag = PyObject_GetAttrString(value, "__isabstractmethod__");
    if (flag == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    int result = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    return result;
}

/* Add `name` to `abstracts` when getattr(cls, name) is abstract. */
static int
add_if_abstract(qbel_state *state, PyObject *cls, PyObject *name, PyObject *abstracts)
{
    PyObject *value = PyObject_GetAttr(cls, name);
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    int abstract = is_abstract_value(state, value);
    Py_DECREF(value);
    if (abstract <= 0) {
        return abstract;
    }
    return PySet_Add(abstracts, name);
}

/* The abstract names of `cls`, computed as ABCMeta does, plus our two
 * placeholders.  New set, or NULL. */
static PyObject *
compute_abstract_names(qbel_state *state, PyObject *cls)
{
    PyObject *abstracts = PySet_New(NULL);
    PyObject *namespace = NULL, *items = NULL, *inherited = NULL, *iterator = NULL;
    if (abstracts == NULL) {
        goto error;
    }
    namespace = PyObject_GetAttrString(cls, "__dict__");
    items = namespace ? PyMapping_Items(namespace) : NULL;
    if (items == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        int abstract = is_abstract_value(state, PyTuple_GET_ITEM(item, 1));
        if (abstract < 0 || (abstract && PySet_Add(abstracts, PyTuple_GET_ITEM(item, 0)) < 0)) {
            goto error;
        }
    }
    PyObject *bases = ((PyTypeObject *)cls)->tp_bases;
    for (Py_ssize_t i = 0; bases && i < PyTuple_GET_SIZE(bases); i++) {
        inherited = PyObject_GetAttrString(PyTuple_GET_ITEM(bases, i), "__abstractmethods__");
        if (inherited == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                goto error;
            }
            PyErr_Clear();
            continue;
        }
        iterator = PyObject_GetIter(inherited);
        if (iterator == NULL) {
            goto error;
        }
        PyObject *name;
        while ((name = PyIter_Next(iterator)) != NULL) {
            int status = add_if_abstract(state, cls, name, abstracts);
            Py_DECREF(name);
            if (status < 0) {
                goto error;
            }
        }
        if (PyErr_Occurred()) {
            goto error;
        }
        Py_CLEAR(iterator);
        Py_CLEAR(inherited);
    }
    if (add_if_abstract(state, cls, state->str_log, abstracts) < 0 ||
        add_if_abstract(state, cls, state->str_logger_name, abstracts) < 0) {
        goto error;
    }
    Py_DECREF(items);
    Py_DECREF(namespace);
    return abstracts;

error:
    Py_XDECREF(iterator);
    Py_XDECREF(inherited);
    Py_XDECREF(items);
    Py_XDECREF(namespace);
    Py_XDECREF(abstracts);
    return NULL;
}

/* Raise the TypeError the running Python's object.__new__ raises for an
 * abstract class (3.12 reworded it): `type` has Py_TPFLAGS_IS_ABSTRACT set,
 * so object.__new__ refuses it without allocating.  Returns -1. */
static int
raise_abstract(PyTypeObject *type)
{
    PyObject *no_arguments = PyTuple_New(0);
    if (no_arguments == NULL) {
        return -1;
    }
    PyObject *instance = PyBaseObject_Type.tp_new(type, no_arguments, NULL);
    Py_DECREF(no_arguments);
    if (instance != NULL) { /* unreachable while the flag is set */
        Py_DECREF(instance);
        PyErr_Format(PyExc_TypeError, "Can't instantiate abstract class %s", type->tp_name);
    }
    return -1;
}

/* Record `names` (a non-empty set) as type.__abstractmethods__, which
 * also sets Py_TPFLAGS_IS_ABSTRACT.  0 or -1. */
static int
mark_abstract(PyTypeObject *type, PyObject *names)
{
    PyObject *frozen = PyFrozenSet_New(names);
    if (frozen == NULL) {
        return -1;
    }
    int status = PyObject_SetAttrString((PyObject *)type, "__abstractmethods__", frozen);
    Py_DECREF(frozen);
    return status;
}

/* 0 when `type` may be instantiated, else -1 with abc's TypeError. */
static int
check_instantiable(qbel_state *state, PyTypeObject *type)
{
    if (type == state->null_logger_type || type == state->console_logger_type ||
        type == state->db_logger_type) {
        return 0;
    }
    if (!(type->tp_flags & Py_TPFLAGS_IS_ABSTRACT)) {
        /* a Python __init_subclass__ that did not call super(), or ABCMeta
         * recomputing __abstractmethods__ without our placeholders, left
         * the class unmarked: mark it as ours would have */
        PyObject *found = PySet_New(NULL);
        if (found == NULL || add_if_abstract(state, (PyObject *)type, state->str_log, found) < 0 ||
            add_if_abstract(state, (PyObject *)type, state->str_logger_name, found) < 0) {
            Py_XDECREF(found);
            return -1;
        }
        int status = PySet_GET_SIZE(found) == 0 ? 1 : mark_abstract(type, found);
        Py_DECREF(found);
        if (status != 0) {
            return status > 0 ? 0 : -1;
        }
    }
    return raise_abstract(type);
}

PyObject *
base_logger_alloc(PyTypeObject *type, PyTypeObject *c_type, logger_log_fields_fn log_fields)
{
    qbel_state *state = qbel_state_of_type(type);
    if (state == NULL || check_instantiable(state, type) < 0) {
        return NULL;
    }
    base_logger_object *self = (base_logger_object *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->log_fields = log_fields;
    self->c_type = c_type;
    self->deny_rules = &base_logger_default_deny_rules;
    self->weakreflist = NULL;
    self->dict = NULL;
    return (PyObject *)self;
}

void
base_logger_set_deny_rules(base_logger_object *self, const api_rule_table *rules)
{
    self->deny_rules = rules;
}

static PyObject *
base_logger_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs; /* arguments are __init__'s business (plugins define their own) */
    return base_logger_alloc(type, NULL, NULL);
}

PyDoc_STRVAR(init_subclass_doc,
             "__init_subclass__(**kwargs)\n--\n\n"
             "Compute the subclass's __abstractmethods__ as abc.ABCMeta does, so that a\n"
             "subclass lacking log() or logger_name cannot be instantiated.");

static PyObject *
base_logger_init_subclass(PyObject *cls, PyObject *args, PyObject *kwargs)
{
    qbel_state *state = qbel_state_of_type((PyTypeObject *)cls);
    if (state == NULL) {
        return NULL;
    }
    /* cooperate with mixins' __init_subclass__ further along the MRO */
    PyObject *parent = PyObject_CallFunctionObjArgs((PyObject *)&PySuper_Type,
                                                    (PyObject *)state->base_logger_type, cls, NULL);
    if (parent == NULL) {
        return NULL;
    }
    PyObject *method = PyObject_GetAttrString(parent, "__init_subclass__");
    Py_DECREF(parent);
    if (method == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_Call(method, args, kwargs);
    Py_DECREF(method);
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    PyObject *abstracts = compute_abstract_names(state, cls);
    if (abstracts == NULL) {
        return NULL;
    }
    PyObject *frozen = PyFrozenSet_New(abstracts);
    Py_DECREF(abstracts);
    if (frozen == NULL) {
        return NULL;
    }
    int status = PyObject_SetAttrString(cls, "__abstractmethods__", frozen);
    Py_DECREF(frozen);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- methods ---------------------------------------------------------- */

PyDoc_STRVAR(abstract_log_doc,
             "log($self, /, uid, event_type, event_data, timestamp=None)\n--\n\n"
             "Record one event (abstract: every logger implements it).\n\n"
             "uid: the acting user's id (int in the signed 32-bit range) or None.\n"
             "event_type: an EventType member (of any enum.Enum whose value is 'API',\n"
             "'WEBSOCKET', 'VIEW' or 'CLICK') or one of those strings.\n"
             "event_data: any JSON-able value (dict, list, str, int, float, bool), or None\n"
             "for JSON null (SQL NULL in the DB logger).  timestamp: when it happened, in\n"
             "milliseconds since the epoch (None: now).");

static PyObject *
base_logger_abstract_log(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    (void)args;
    (void)nargs;
    (void)kwnames;
    PyErr_Format(PyExc_NotImplementedError, "%s does not implement log()", Py_TYPE(self)->tp_name);
    return NULL;
}

PyObject *
base_logger_builtin_log(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    qbel_state *state = qbel_state_of_type(Py_TYPE(self));
    if (state == NULL) {
        return NULL;
    }
    PyObject *names[4] = {state->str_uid, state->str_event_type, state->str_event_data,
                          state->str_timestamp};
    PyObject *values[4];
    if (parse_arguments("log", args, nargs, kwnames, names, 3, 4, values) < 0) {
        return NULL;
    }
    base_logger_object *logger = (base_logger_object *)self;
    if (logger->log_fields == NULL) {
        PyErr_Format(PyExc_TypeError, "%s was not initialised by its own __new__",
                     Py_TYPE(self)->tp_name);
        return NULL;
    }
    event_fields fields;
    if (event_fields_from_args(state, values[0], values[1], values[2], values[3], &fields) < 0 ||
        logger->log_fields(logger, state, &fields) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
base_logger_api_request_data(qbel_state *state, PyObject *route, PyObject *method,
                             PyObject *params)
{
    PyObject *pruned = prune_params(params);
    if (pruned == NULL) {
        return NULL;
    }
    PyObject *event_data = PyDict_New();
    if (event_data == NULL || PyDict_SetItem(event_data, state->str_method, method) < 0 ||
        PyDict_SetItem(event_data, state->str_route, route) < 0 ||
        PyDict_SetItem(event_data, state->str_params, pruned) < 0) {
        Py_DECREF(pruned);
        Py_XDECREF(event_data);
        return NULL;
    }
    Py_DECREF(pruned);
    return event_data;
}

PyObject *
base_logger_websocket_data(qbel_state *state, PyObject *route, PyObject *args, PyObject *kwargs)
{
    PyObject *event_data = PyDict_New();
    if (event_data == NULL || PyDict_SetItem(event_data, state->str_route, route) < 0 ||
        PyDict_SetItem(event_data, state->str_args, args) < 0 ||
        PyDict_SetItem(event_data, state->str_kwargs, kwargs) < 0) {
        Py_XDECREF(event_data);
        return NULL;
    }
    return event_data;
}

PyDoc_STRVAR(log_api_request_doc,
             "log_api_request($self, /, uid, route, method, params)\n--\n\n"
             "Log an API request as an EventType.API event, unless\n"
             "_should_log_api_request(route, method) says no.  str values of params longer\n"
             "than MAX_STR_PARAM_LENGTH (128) characters are cut to 128 + '...', nested\n"
             "dicts likewise (params itself is not modified); then\n"
             "log(uid=uid, event_type=EventType.API,\n"
             "    event_data={'method': method, 'route': route, 'params': pruned}).");

static PyObject *
base_logger_log_api_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    qbel_state *state = qbel_state_of_type(Py_TYPE(self));
    if (state == NULL) {
        return NULL;
    }
    PyObject *names[4] = {state->str_uid, state->str_route, state->str_method, state->str_params};
    PyObject *values[4];
    if (parse_arguments("log_api_request", args, nargs, kwnames, names, 4, 4, values) < 0) {
        return NULL;
    }
    base_logger_object *logger = (base_logger_object *)self;
    int should_log = base_logger_should_log_api_request(logger, state, values[1], values[2]);
    if (should_log <= 0) {
        return should_log < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *event_data = base_logger_api_request_data(state, values[1], values[2], values[3]);
    if (event_data == NULL) {
        return NULL;
    }
    int status = base_logger_dispatch_log(logger, state, values[0], EVENT_TYPE_API, event_data);
    Py_DECREF(event_data);
    return status < 0 ? NULL : Py_NewRef(Py_None);
}

PyDoc_STRVAR(log_websocket_event_doc,
             "log_websocket_event($self, /, uid, route, args, kwargs)\n--\n\n"
             "Log a socket.io event (route: namespace + '/' + event name) as\n"
             "log(uid=uid, event_type=EventType.WEBSOCKET,\n"
             "    event_data={'route': route, 'args': args, 'kwargs': kwargs}).");

static PyObject *
base_logger_log_websocket_event(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    qbel_state *state = qbel_state_of_type(Py_TYPE(self));
    if (state == NULL) {
        return NULL;
    }
    PyObject *names[4] = {state->str_uid, state->str_route, state->str_args, state->str_kwargs};
    PyObject *values[4];
    if (parse_arguments("log_websocket_event", args, nargs, kwnames, names, 4, 4, values) < 0) {
        return NULL;
    }
    PyObject *event_data = base_logger_websocket_data(state, values[1], values[2], values[3]);
    if (event_data == NULL) {
        return NULL;
    }
    int status = base_logger_dispatch_log((base_logger_object *)self, state, values[0],
                                          EVENT_TYPE_WEBSOCKET, event_data);
    Py_DECREF(event_data);
    return status < 0 ? NULL : Py_NewRef(Py_None);
}

PyDoc_STRVAR(should_log_api_request_doc,
             "_should_log_api_request($self, /, route, method)\n--\n\n"
             "True when log_api_request should log this request: when _api_allow_list is\n"
             "not None, only requests matching one of its rules; otherwise every request\n"
             "not matching a rule of _api_deny_list.  A rule matches when the route\n"
             "matches (type 'prefix': route.startswith(rule['route']); 'exact': equality)\n"
             "and the method matches (rule['method'] == '*' or equal).  Subclasses may\n"
             "override it.");

static PyObject *
base_logger_should_log_api_request_method(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                          PyObject *kwnames)
{
    qbel_state *state = qbel_state_of_type(Py_TYPE(self));
    if (state == NULL) {
        return NULL;
    }
    PyObject *names[2] = {state->str_route, state->str_method};
    PyObject *values[2];
    if (parse_arguments("_should_log_api_request", args, nargs, kwnames, names, 2, 2, values) < 0) {
        return NULL;
    }
    int verdict = should_log_by_rules((base_logger_object *)self, state, values[0], values[1]);
    return verdict < 0 ? NULL : PyBool_FromLong(verdict);
}

/* ---- properties ------------------------------------------------------- */

static PyObject *
base_logger_abstract_logger_name(PyObject *self, void *closure)
{
    (void)closure;
    PyErr_Format(PyExc_NotImplementedError, "%s does not implement logger_name",
                 Py_TYPE(self)->tp_name);
    return NULL;
}

static PyObject *
base_logger_get_api_allow_list(PyObject *self, void *closure)
{
    (void)self;
    (void)closure;
    Py_RETURN_NONE;
}

static PyObject *
base_logger_get_api_deny_list(PyObject *self, void *closure)
{
    (void)closure;
    qbel_state *state = qbel_state_of_type(Py_TYPE(self));
    if (state == NULL) {
        return NULL;
    }
    const api_rule_table *table = ((base_logger_object *)self)->deny_rules;
    return rules_list_from_table(state, table->rules, table->count);
}

PyDoc_STRVAR(fan_out_log_doc,
             "_fan_out_log($self, members, uid, event_type, event_data, timestamp, /)\n--\n\n"
             "For FanOutEventLogger.log: validate once, then each member's log(), the\n"
             "writer-backed builtin members sharing one encoding.  [(member, exception)]\n"
             "for the members that failed, or None (no member called) when the event\n"
             "is invalid.");

PyDoc_STRVAR(fan_out_log_api_request_doc,
             "_fan_out_log_api_request($self, members, uid, route, method, params, /)\n--\n\n"
             "For FanOutEventLogger.log_api_request: each member's own allow/deny rules,\n"
             "one event_data for those that log it, shared by the writer-backed ones.\n"
             "[(member, exception)] for the members that failed.");

PyDoc_STRVAR(fan_out_log_websocket_event_doc,
             "_fan_out_log_websocket_event($self, members, uid, route, args, kwargs, /)\n--\n\n"
             "For FanOutEventLogger.log_websocket_event, as _fan_out_log_api_request.");

static PyMethodDef base_logger_methods[] = {
    {"log", (PyCFunction)(void (*)(void))base_logger_abstract_log, METH_FASTCALL | METH_KEYWORDS,
     abstract_log_doc},
    {"log_api_request", (PyCFunction)(void (*)(void))base_logger_log_api_request,
     METH_FASTCALL | METH_KEYWORDS, log_api_request_doc},
    {"log_websocket_event", (PyCFunction)(void (*)(void))base_logger_log_websocket_event,
     METH_FASTCALL | METH_KEYWORDS, log_websocket_event_doc},
    {"_should_log_api_request",
     (PyCFunction)(void (*)(void))base_logger_should_log_api_request_method,
     METH_FASTCALL | METH_KEYWORDS, should_log_api_request_doc},
    {"__init_subclass__", (PyCFunction)(void (*)(void))base_logger_init_subclass,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS, init_subclass_doc},
    {"_fan_out_log", (PyCFunction)(void (*)(void))fanout_log_members, METH_FASTCALL,
     fan_out_log_doc},
    {"_fan_out_log_api_request", (PyCFunction)(void (*)(void))fanout_log_api_request,
     METH_FASTCALL, fan_out_log_api_request_doc},
    {"_fan_out_log_websocket_event", (PyCFunction)(void (*)(void))fanout_log_websocket_event,
     METH_FASTCALL, fan_out_log_websocket_event_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef base_logger_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"logger_name", base_logger_abstract_logger_name, NULL,
     "The logger's name, as EVENT_LOGGER_NAME selects it (abstract: every logger "
     "defines it).",
     NULL},
    {"_api_allow_list", base_logger_get_api_allow_list, NULL,
     "API filter rules of requests to log, or None (the default) to log all but\n"
     "those the deny list names.  Rules are dicts {'type': 'prefix'|'exact',\n"
     "'route': str, 'method': 'GET'|'POST'|'PUT'|'DELETE'|'*'}.  Overridable.",
     NULL},
    {"_api_deny_list", base_logger_get_api_deny_list, NULL,
     "API filter rules of requests not to log (ignored when _api_allow_list is not\n"
     "None); a fresh list each time.  Default: prefix '/admin' any method, exact\n"
     "'/login/' POST, exact '/signup/' POST.  Overridable.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef base_logger_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(base_logger_object, weakreflist), READONLY, NULL},
    {"__dictoffset__", T_PYSSIZET, offsetof(base_logger_object, dict), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

int
base_logger_clear(PyObject *self)
{
    Py_CLEAR(((base_logger_object *)self)->dict);
    return 0;
}

void
base_logger_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (((base_logger_object *)self)->weakreflist != NULL) {
        PyObject_ClearWeakRefs(self);
    }
    base_logger_clear(self);
    type->tp_free(self);
    Py_DECREF(type);
}

PyDoc_STRVAR(base_logger_doc,
             "BaseEventLogger()\n--\n\n"
             "The event logger plugin contract, as Querybook's abstract base class.\n\n"
             "Subclasses define the property logger_name (the name EVENT_LOGGER_NAME\n"
             "selects) and log(uid, event_type, event_data, timestamp=None); a subclass\n"
             "lacking either cannot be instantiated (TypeError, as with abc.ABC).  Provided:\n"
             "log_api_request(), log_websocket_event(), and the overridable\n"
             "_api_allow_list, _api_deny_list and _should_log_api_request().");

static PyType_Slot base_logger_slots[] = {
    {Py_tp_doc, (void *)base_logger_doc},
    {Py_tp_new, base_logger_new},
    {Py_tp_dealloc, base_logger_dealloc},
    {Py_tp_traverse, base_logger_traverse},
    {Py_tp_clear, base_logger_clear},
    {Py_tp_methods, base_logger_methods},
    {Py_tp_getset, base_logger_getset},
    {Py_tp_members, base_logger_members},
    {0, NULL},
};

static PyType_Spec base_logger_type_spec = {
    .name = "querybook_eventlog._core.BaseEventLogger",
    .basicsize = sizeof(base_logger_object),
    .itemsize = 0,
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = base_logger_slots,
};

PyType_Spec *
base_logger_spec(void)
{
    return &base_logger_type_spec;
}

int
base_logger_setup(PyObject *module, qbel_state *state)
{
    (void)module;
    PyObject *type = (PyObject *)state->base_logger_type;
    state->abstract_log = PyObject_GetAttr(type, state->str_log);
    state->abstract_logger_name = PyObject_GetAttr(type, state->str_logger_name);
    if (state->abstract_log == NULL || state->abstract_logger_name == NULL) {
        return -1;
    }
    /* type.__abstractmethods__'s own setter (which also sets
     * Py_TPFLAGS_IS_ABSTRACT, so inspect.isabstract() agrees); type's
     * __setattr__ would refuse, the type being immutable. */
    PyObject *abstracts = Py_BuildValue("(OO)", state->str_log, state->str_logger_name);
    PyObject *frozen = abstracts ? PyFrozenSet_New(abstracts) : NULL;
    Py_XDECREF(abstracts);
    if (frozen == NULL) {
        return -1;
    }
    PyObject *name = PyUnicode_InternFromString("__abstractmethods__");
    int status = name ? PyObject_GenericSetAttr(type, name, frozen) : -1;
    Py_XDECREF(name);
    Py_DECREF(frozen);
    return status;
}
