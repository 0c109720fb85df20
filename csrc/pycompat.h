/* pycompat.h: the few CPython C-API entry points this extension uses that
 * are newer than the oldest Python it supports (3.9), provided for the older
 * ones from public API only.  Include it through qbel.h, after Python.h.
 */
#ifndef QBEL_PYCOMPAT_H
#define QBEL_PYCOMPAT_H

#include <Python.h>

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
Py_NewRef(PyObject *obj)
{
    Py_INCREF(obj);
    return obj;
}

static inline PyObject *
Py_XNewRef(PyObject *obj)
{
    Py_XINCREF(obj);
    return obj;
}
#endif

/* 3.9 has no immutable heap types: a class attribute of ours can then be
 * reassigned from Python, which only the caller's own code can notice. */
#ifndef Py_TPFLAGS_IMMUTABLETYPE
#define Py_TPFLAGS_IMMUTABLETYPE 0
#endif

#if PY_VERSION_HEX < 0x030B0000
/* The first class in type's MRO that was created by module `def` (what
 * 3.11's PyType_GetModuleByDef returns); borrowed, or NULL with TypeError. */
static inline PyObject *
qbel_compat_type_module_by_def(PyTypeObject *type, PyModuleDef *def)
{
    PyObject *mro = type->tp_mro;
    Py_ssize_t count = mro ? PyTuple_GET_SIZE(mro) : 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyTypeObject *candidate = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(candidate->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            continue;
        }
        PyObject *module = ((PyHeapTypeObject *)candidate)->ht_module;
        if (module && PyModule_GetDef(module) == def) {
            return module;
        }
    }
    PyErr_Format(PyExc_TypeError, "PyType_GetModuleByDef: no superclass of '%s' has the given module",
                 type->tp_name);
    return NULL;
}
#define PyType_GetModuleByDef qbel_compat_type_module_by_def

/* 3.11's PyType_GetName: the type's __name__ (new reference). */
static inline PyObject *
qbel_compat_type_name(PyTypeObject *type)
{
    return PyObject_GetAttrString((PyObject *)type, "__name__");
}
#define PyType_GetName qbel_compat_type_name
#endif

#endif /* QBEL_PYCOMPAT_H */
