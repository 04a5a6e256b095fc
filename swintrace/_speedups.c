/*
 * swintrace._speedups: the hot path of recording, in C.
 *
 * Tracing runs a little Python between the model's tensor operations, and
 * that Python runs with cold CPU caches (each operation streams megabytes of
 * activations through them), several times slower than the same code run in
 * a loop. This module records without running bytecode: `step` is the twin of
 * recorder.python_step, `run_scope` of Recorder.run_scope for the module
 * scopes inside a forward, and _summaries.c the twin of summary.py's loop
 * over a step's values. The Python code stays the reference, used for all
 * this module leaves aside (see each function) and when it was not built;
 * tests check that both give the same trace.
 */
#include "_speedups.h"

static PyObject *str_f_code, *str_f_lasti, *str_name, *str_note, *str_rearranges, *str_c_state;
static PyObject *str_record_step;
static PyObject *str_modules, *str_scope_fields[5];
static PyObject *recorder_variable;  /* recorder._RECORDER, given by configure_step() */

/*
 * Record one step with `state` = the recorder's c_state,
 * (stack, records, STEP, recent, keep, n, indexes, general, shown):
 * replace the values (as summarise_values) and append the step's record
 * (STEP, scope, name, kind, depth, note, code, offset, modules, values, None, None),
 * the scope being the top of stack (an empty stack: nothing is recorded).
 */
static int
append_step(PyObject *state, PyObject *kind, PyObject *name, PyObject *note, PyObject *modules,
            PyObject *values, PyObject *frame)
{
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 9) {
        PyErr_SetString(PyExc_TypeError, "the recording state must be a 9-item tuple");
        return -1;
    }
    PyObject *stack = PyTuple_GET_ITEM(state, 0), *records = PyTuple_GET_ITEM(state, 1);
    PyObject *recent = PyTuple_GET_ITEM(state, 3), *indexes = PyTuple_GET_ITEM(state, 6);
    PyObject *general = PyTuple_GET_ITEM(state, 7), *shown = PyTuple_GET_ITEM(state, 8);
    Py_ssize_t keep = PyLong_AsSsize_t(PyTuple_GET_ITEM(state, 4));
    Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(state, 5));
    if (PyErr_Occurred() || speedups_check_arguments(values, recent, indexes) < 0)
        return -1;
    if (!PyList_Check(stack) || !PyList_Check(records) || !PyList_Check(shown)) {
        PyErr_SetString(PyExc_TypeError, "the recording stack, records and shown modules must be lists");
        return -1;
    }
    Py_ssize_t depth = PyList_GET_SIZE(stack);
    if (depth == 0)  /* a step outside any scope of a traced forward */
        return 0;
    PyObject *scope = Py_NewRef(PyList_GET_ITEM(stack, depth - 1));
    PyObject *code = NULL, *offset = NULL, *depth_number = NULL, *record = NULL;
    Py_ssize_t count = PyList_GET_SIZE(shown);  /* modules shown: the step's, then module values */
    if (PyList_SetSlice(shown, count, count, modules) == 0
        && speedups_replace_values(values, recent, keep, n, indexes, general, shown) == 0
        && (code = PyObject_GetAttr(frame, str_f_code)) != NULL
        && (offset = PyObject_GetAttr(frame, str_f_lasti)) != NULL
        && (depth_number = PyLong_FromSsize_t(depth)) != NULL) {
        PyObject *items[12] = {PyTuple_GET_ITEM(state, 2), scope, name, kind, depth_number, note,
                               code, offset, modules, values, Py_None, Py_None};
        record = PyTuple_New(12);
        for (int i = 0; record != NULL && i < 12; i++)
            PyTuple_SET_ITEM(record, i, Py_NewRef(items[i]));
    }
    int failed = record == NULL || PyList_Append(records, record) < 0;
    Py_XDECREF(record);
    Py_XDECREF(depth_number);
    Py_XDECREF(offset);
    Py_XDECREF(code);
    Py_DECREF(scope);
    return failed ? -1 : 0;
}

PyDoc_STRVAR(step_doc,
"step($module, kind, /, *modules, name=None, note=None, rearranges=None, **values)\n--\n\n"
"Record one step of the walkthrough (no-op outside tracing()).\n\n"
"The C twin of swintrace.recorder.python_step, whose docstring tells the arguments:\n"
"the same records, without a Python frame per step.");

static PyObject *
step(PyObject *Py_UNUSED(self), PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "step() missing 1 required positional argument: 'kind'");
        return NULL;
    }
    if (recorder_variable == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "swintrace._speedups.step is not configured");
        return NULL;
    }
    PyObject *recorder;
    if (PyContextVar_Get(recorder_variable, Py_None, &recorder) < 0)
        return NULL;
    if (recorder == Py_None) {  /* not tracing: the common case, as cheap as it gets */
        Py_DECREF(recorder);
        Py_RETURN_NONE;
    }
    PyObject *kind = args[0], *name = Py_None, *note = Py_None, *rearranges = Py_None;
    PyObject *modules = PyTuple_New(nargs - 1), *values = PyDict_New(), *result = NULL;
    if (modules == NULL || values == NULL)
        goto done;
    for (Py_ssize_t i = 1; i < nargs; i++)
        PyTuple_SET_ITEM(modules, i - 1, Py_NewRef(args[i]));
    Py_ssize_t keywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < keywords; i++) {
        PyObject *keyword = PyTuple_GET_ITEM(kwnames, i), *value = args[nargs + i];
        if (PyUnicode_Compare(keyword, str_name) == 0)
            name = value;
        else if (PyUnicode_Compare(keyword, str_note) == 0)
            note = value;
        else if (PyUnicode_Compare(keyword, str_rearranges) == 0)
            rearranges = value;
        else if (PyDict_SetItem(values, keyword, value) < 0)
            goto done;
    }
    int named = PyObject_IsTrue(name);  /* as `name or kind` */
    if (named < 0)
        goto done;
    if (!named)
        name = kind;
    PyObject *frame = (PyObject *)PyEval_GetFrame();  /* the caller's frame (borrowed) */
    if (frame == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "step() must be called from Python code");
        goto done;
    }
    PyObject *state = PyObject_GetAttr(recorder, str_c_state);
    if (state == NULL)
        goto done;
    if (state != Py_None) {
        if (append_step(state, kind, name, note, modules, values, frame) == 0)
            result = Py_NewRef(Py_None);
    } else {
        PyObject *call[8] = {recorder, kind, name, note, rearranges, modules, values, frame};
        result = PyObject_VectorcallMethod(str_record_step, call, 8, NULL);
    }
    Py_DECREF(state);
done:
    Py_XDECREF(modules);
    Py_XDECREF(values);
    Py_DECREF(recorder);
    return result;
}

static PyObject *
configure_step(PyObject *Py_UNUSED(self), PyObject *variable)
{
    if (!PyContextVar_CheckExact(variable)) {
        PyErr_SetString(PyExc_TypeError, "configure_step takes the recorder's ContextVar");
        return NULL;
    }
    Py_XSETREF(recorder_variable, Py_NewRef(variable));
    Py_RETURN_NONE;
}

/* Set the five slots of a new records.Scope; -1 on error. */
static int
fill_scope(PyObject *scope, PyObject *base, PyObject *parent, PyObject *slots, PyObject *labels)
{
    PyObject *fields[5] = {Py_None, base, parent, slots, labels};
    for (int i = 0; i < 5; i++)
        if (PyObject_SetAttr(scope, str_scope_fields[i], fields[i]) < 0)
            return -1;
    return 0;
}

/* {id(submodule): slot name} of a module's slots, as Recorder._module_scope makes it. */
static PyObject *
slot_labels(PyObject *slots)
{
    PyObject *labels = PyDict_New(), *slot, *submodule;
    Py_ssize_t position = 0;
    while (labels != NULL && PyDict_Next(slots, &position, &slot, &submodule)) {
        PyObject *key = PyLong_FromVoidPtr(submodule);
        if (key == NULL || PyDict_SetItem(labels, key, slot) < 0)
            Py_CLEAR(labels);
        Py_XDECREF(key);
    }
    return labels;
}

PyDoc_STRVAR(run_scope_doc,
"run_scope(state, module, call, args, kwargs)\n\n"
"Recorder.run_scope for a module scope inside a traced forward: append the\n"
"(ENTER, scope, kind, depth, source, doc) record, run call(*args, **kwargs), append\n"
"(EXIT, scope, kind, depth), also when the call raises. state is the recorder's\n"
"c_scope_state: (stack, records, ENTER, EXIT, module_names, described, Scope).\n"
"Returns FALLBACK, having run nothing, where Recorder.run_scope must do it: the\n"
"outermost scope, or a module class not yet in `described`.");

static PyObject *fallback;  /* the FALLBACK sentinel */

static PyObject *
run_scope(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyTuple_Check(args[0]) || PyTuple_GET_SIZE(args[0]) != 7 || !PyTuple_Check(args[3])
        || (args[4] != Py_None && !PyDict_Check(args[4]))) {
        PyErr_SetString(PyExc_TypeError, "run_scope(state, module, call, args: tuple, kwargs: dict)");
        return NULL;
    }
    PyObject *state = args[0], *module = args[1], *call = args[2];
    PyObject *stack = PyTuple_GET_ITEM(state, 0), *records = PyTuple_GET_ITEM(state, 1);
    PyObject *names = PyTuple_GET_ITEM(state, 4), *described = PyTuple_GET_ITEM(state, 5);
    if (!PyList_Check(stack) || !PyList_Check(records) || !PyDict_Check(names) || !PyDict_Check(described)) {
        PyErr_SetString(PyExc_TypeError, "run_scope: malformed state");
        return NULL;
    }
    Py_ssize_t depth = PyList_GET_SIZE(stack);
    PyObject *known = depth ? PyDict_GetItemWithError(described, (PyObject *)Py_TYPE(module)) : NULL;
    if (known == NULL)  /* (kind, source, doc) not known yet, or the outermost scope */
        return PyErr_Occurred() ? NULL : Py_NewRef(fallback);
    PyObject *key = PyLong_FromVoidPtr(module);
    if (key == NULL)
        return NULL;
    PyObject *base = PyDict_GetItemWithError(names, key);
    Py_DECREF(key);
    if (base == NULL && PyErr_Occurred())
        return NULL;
    PyObject *slots = PyObject_GetAttr(module, str_modules);
    if (slots == NULL)
        return NULL;
    PyObject *labels = PyDict_Check(slots) ? slot_labels(slots) : NULL;
    PyObject *scope = labels ? PyType_GenericAlloc((PyTypeObject *)PyTuple_GET_ITEM(state, 6), 0) : NULL;
    PyObject *depth_number = scope ? PyLong_FromSsize_t(depth) : NULL;
    PyObject *kind = PyTuple_GET_ITEM(known, 0), *enter = NULL, *exit = NULL;
    if (depth_number != NULL
        && fill_scope(scope, base ? base : Py_None, PyList_GET_ITEM(stack, depth - 1), slots, labels) == 0) {
        enter = PyTuple_Pack(6, PyTuple_GET_ITEM(state, 2), scope, kind, depth_number,
                             PyTuple_GET_ITEM(known, 1), PyTuple_GET_ITEM(known, 2));
        exit = enter ? PyTuple_Pack(4, PyTuple_GET_ITEM(state, 3), scope, kind, depth_number) : NULL;
    }
    Py_DECREF(slots);
    Py_XDECREF(labels);
    Py_XDECREF(depth_number);
    PyObject *result = NULL;
    if (exit == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "run_scope: a module's _modules must be a dict");
    if (exit != NULL && PyList_Append(records, enter) == 0 && PyList_Append(stack, scope) == 0) {
        result = PyObject_Call(call, args[3], args[4] == Py_None ? NULL : args[4]);
        /* Close the scope whatever happened, keeping the call's exception if it raised. */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        Py_ssize_t top = PyList_GET_SIZE(stack);
        int closed = top > 0 && PyList_SetSlice(stack, top - 1, top, NULL) == 0 && PyList_Append(records, exit) == 0;
        if (type != NULL) {
            PyErr_Restore(type, value, traceback);
        } else if (!closed) {
            Py_CLEAR(result);
        }
    }
    Py_XDECREF(enter);
    Py_XDECREF(exit);
    Py_XDECREF(scope);
    return result;
}

static PyMethodDef methods[] = {
    {"configure", speedups_configure, METH_VARARGS,
     "configure(tensor_types, Tensor, strided, Summary, dtypes, simple_types, Module, general_names, plain)"},
    {"summarise_values", (PyCFunction)(void (*)(void))speedups_summarise_values, METH_FASTCALL,
     speedups_summarise_values_doc},
    {"step", (PyCFunction)(void (*)(void))step, METH_FASTCALL | METH_KEYWORDS, step_doc},
    {"run_scope", (PyCFunction)(void (*)(void))run_scope, METH_FASTCALL, run_scope_doc},
    {"configure_step", configure_step, METH_O, "configure_step(variable): the ContextVar holding the recorder."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (speedups_init_summaries() < 0)
        return NULL;
    if (!(str_f_code = PyUnicode_InternFromString("f_code"))
        || !(str_f_lasti = PyUnicode_InternFromString("f_lasti"))
        || !(str_name = PyUnicode_InternFromString("name"))
        || !(str_note = PyUnicode_InternFromString("note"))
        || !(str_rearranges = PyUnicode_InternFromString("rearranges"))
        || !(str_c_state = PyUnicode_InternFromString("c_state"))
        || !(str_record_step = PyUnicode_InternFromString("record_step")))
        return NULL;
    const char *scope_fields[5] = {"id", "base", "parent", "slots", "labels"};
    for (int i = 0; i < 5; i++)
        if ((str_scope_fields[i] = PyUnicode_InternFromString(scope_fields[i])) == NULL)
            return NULL;
    if (!(str_modules = PyUnicode_InternFromString("_modules")))
        return NULL;
    PyObject *module = PyModule_Create(&speedups);
    /* A unique object run_scope returns when Recorder.run_scope must run the scope. */
    fallback = module ? PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type) : NULL;
    if (fallback == NULL || PyModule_AddObjectRef(module, "FALLBACK", fallback) < 0) {
        Py_XDECREF(module);
        return NULL;
    }
    return module;
}
