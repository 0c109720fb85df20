/* test_hooks: module functions that exist only in test builds (setup.py's
 * QBEL_TEST_BUILD=1): the live-allocation counter and chaos allocator of
 * qbel_alloc.c, the build's flags, and faults planted on purpose so the
 * sanitizer pass can show that a report fails it.  Never in a shipped build. */
#ifndef QBEL_TEST_HOOKS
#error "test_hooks.c belongs to test builds only (-DQBEL_TEST_HOOKS)"
#endif

#include "qbel.h"
#include "qbel_alloc.h"

#ifndef QBEL_BUILD_CFLAGS
#define QBEL_BUILD_CFLAGS ""
#endif

#if defined(__SANITIZE_ADDRESS__)
#define QBEL_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QBEL_ADDRESS_SANITIZER 1
#endif
#endif
#ifndef QBEL_ADDRESS_SANITIZER
#define QBEL_ADDRESS_SANITIZER 0
#endif

static PyObject *
live_allocations(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    long long blocks, bytes;
    qbel_alloc_live(&blocks, &bytes);
    return Py_BuildValue("(LL)", blocks, bytes);
}

static PyObject *
fail_allocation_at(PyObject *Py_UNUSED(module), PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    qbel_alloc_fail_at(n);
    Py_RETURN_NONE;
}

static PyObject *
build_flags(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{s:s,s:O,s:O}", "cflags", QBEL_BUILD_CFLAGS, "address_sanitizer",
                         QBEL_ADDRESS_SANITIZER ? Py_True : Py_False, "test_hooks", Py_True);
}

/* The faults: each is a real bug of the kind the sanitizers exist for.
 * noinline keeps each one's name in the report's stack. */
static __attribute__((noinline)) void
plant_leak(void)
{
    char *volatile block = qbel_malloc(64 * 1024);
    if (block != NULL) {
        memset(block, 'L', 64 * 1024);
    }
    block = NULL; /* dropped: nothing frees it */
}

static __attribute__((noinline)) void
plant_heap_overflow(void)
{
    char *block = qbel_malloc(64);
    if (block != NULL) {
        ((volatile char *)block)[64] = 'O'; /* one byte past the end */
        qbel_free(block);
    }
}

static __attribute__((noinline)) int
plant_use_after_free(void)
{
    char *block = qbel_malloc(64);
    if (block == NULL) {
        return 0;
    }
    memset(block, 'U', 64);
    qbel_free(block);
    return ((volatile char *)block)[8]; /* read after free */
}

static PyObject *
plant_fault(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) {
        return NULL;
    }
    if (strcmp(name, "leak") == 0) {
        plant_leak();
    }
    else if (strcmp(name, "heap-overflow") == 0) {
        plant_heap_overflow();
    }
    else if (strcmp(name, "use-after-free") == 0) {
        return PyLong_FromLong(plant_use_after_free());
    }
    else {
        PyErr_Format(PyExc_ValueError, "no such fault: %R", arg);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef test_hook_methods[] = {
    {"_live_allocations", live_allocations, METH_NOARGS,
     "_live_allocations() -> (blocks, bytes) the C core holds from malloc (test builds)."},
    {"_fail_allocation_at", fail_allocation_at, METH_O,
     "_fail_allocation_at(n): the nth C-core allocation from now fails; 0 = never (test builds)."},
    {"_build_flags", build_flags, METH_NOARGS,
     "_build_flags() -> dict: the extra compiler flags and sanitizers of this build (test builds)."},
    {"_plant_fault", plant_fault, METH_O,
     "_plant_fault(name): commit a memory bug on purpose: 'leak', 'heap-overflow' or "
     "'use-after-free' (test builds, for the sanitizer pass's own test)."},
    {NULL, NULL, 0, NULL},
};

int
test_hooks_add(PyObject *module)
{
    return PyModule_AddFunctions(module, test_hook_methods);
}
