/*
 * swintrace._speedups: the hot loop of recording a step, in C.
 *
 * Tracing runs a little Python between the model's tensor operations, and
 * that Python runs with cold CPU caches (each operation streams megabytes of
 * activations through them), several times slower than the same code run in
 * a loop. This module does the per-tensor work of a step without running
 * bytecode: for each CPU tensor among a step's values it finds or makes the
 * summary (the seed-style slice t[:n, :n, ...] copied into a bytearray, shape,
 * dtype) and remembers it for the next steps. summary.py holds the same
 * logic in Python (used for everything this module leaves aside: devices,
 * statistics, masks, unusual dtypes, and when this module was not built);
 * tests check that both give the same trace.
 *
 * Reading the slice: a strided CPU tensor's element (i0, i1, ...) lies at
 * data_ptr() + sum(i_d * stride_d) * itemsize; the tensor is alive (the
 * caller holds it) for the whole call, with the GIL held.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_DIMS 16

static PyObject *str_is_cpu, *str_layout, *str_dtype, *str_shape, *str_stride, *str_data_ptr;
static PyObject *str_is_neg, *str_is_inference, *str_version, *str_array, *str_stats, *str_masked;
static PyObject *str_device_cpu, *str_summary_fields[5];
static PyObject *str_f_code, *str_f_lasti, *str_name, *str_note, *str_rearranges, *str_c_state;
static PyObject *str_record_step;
static PyObject *recorder_variable;
static PyObject *str_modules, *str_scope_fields[5];  /* recorder._RECORDER, given by configure_step() */

/* What configure() was given: fixed for the life of the process. */
static PyObject *tensor_types;   /* tuple of the exact types read here (Tensor, Parameter) */
static PyObject *tensor_base;    /* torch.Tensor: instances of other subclasses go to `general` */
static PyObject *strided;        /* torch.strided */
static PyObject *summary_type;   /* summary.Summary */
static PyObject *dtypes;         /* {torch dtype: (name, itemsize)} read here */
static PyObject *simple_types;   /* frozenset of types kept as they are (int, float, str, bool) */
static PyObject *kept_as_is;     /* type whose instances are kept as they are (nn.Module) */
static PyObject *general_names;  /* frozenset of value names always sent to `general` (masks) */
static PyObject *plain;          /* plain(value): the JSON-friendly copy of any other value */

static PyObject *
configure(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *types, *base, *layout, *summary, *known, *simple, *kept, *names, *to_plain;
    if (!PyArg_ParseTuple(args, "O!OOO!O!O!OO!O", &PyTuple_Type, &types, &base, &layout, &PyType_Type,
                          &summary, &PyDict_Type, &known, &PyFrozenSet_Type, &simple, &kept,
                          &PyFrozenSet_Type, &names, &to_plain))
        return NULL;
    Py_XSETREF(tensor_types, Py_NewRef(types));
    Py_XSETREF(tensor_base, Py_NewRef(base));
    Py_XSETREF(strided, Py_NewRef(layout));
    Py_XSETREF(summary_type, Py_NewRef(summary));
    Py_XSETREF(dtypes, Py_NewRef(known));
    Py_XSETREF(simple_types, Py_NewRef(simple));
    Py_XSETREF(kept_as_is, Py_NewRef(kept));
    Py_XSETREF(general_names, Py_NewRef(names));
    Py_XSETREF(plain, Py_NewRef(to_plain));
    Py_RETURN_NONE;
}

static int
is_read_here(PyObject *value)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tensor_types); i++)
        if ((PyObject *)Py_TYPE(value) == PyTuple_GET_ITEM(tensor_types, i))
            return 1;
    return 0;
}

/* 1 if attribute `name` of `object` is True, 0 if not, -1 on error. */
static int
attribute_is_true(PyObject *object, PyObject *name, int call)
{
    PyObject *value = call ? PyObject_CallMethodNoArgs(object, name) : PyObject_GetAttr(object, name);
    if (value == NULL)
        return -1;
    int result = value == Py_True;
    Py_DECREF(value);
    return result;
}

/* The remembered summary of `tensor` if it is still that tensor, unchanged; else NULL (no error). */
static PyObject *
remembered(PyObject *recent, PyObject *key, PyObject *tensor)
{
    PyObject *entry = PyDict_GetItemWithError(recent, key);  /* (weak ref, version or None, summary) */
    if (entry == NULL || PyWeakref_GetObject(PyTuple_GET_ITEM(entry, 0)) != tensor)
        return NULL;
    PyObject *version = PyTuple_GET_ITEM(entry, 1);
    if (version != Py_None) {  /* None: an inference tensor, which has no version counter */
        PyObject *now = PyObject_GetAttr(tensor, str_version);
        if (now == NULL)
            return NULL;
        int same = PyObject_RichCompareBool(now, version, Py_EQ);
        Py_DECREF(now);
        if (same != 1)
            return NULL;
    }
    return PyTuple_GET_ITEM(entry, 2);
}

/* Copy tensor[:n, :n, ...] (C order) into a new bytearray; NULL on error. */
static PyObject *
copy_slice(PyObject *tensor, PyObject *shape, Py_ssize_t itemsize, Py_ssize_t n, PyObject **slice_shape)
{
    Py_ssize_t ndim = PyTuple_GET_SIZE(shape), sizes[MAX_DIMS], steps[MAX_DIMS], index[MAX_DIMS];
    Py_ssize_t count = 1;
    PyObject *strides = PyObject_CallMethodNoArgs(tensor, str_stride);
    if (strides == NULL)
        return NULL;
    PyObject *address = PyObject_CallMethodNoArgs(tensor, str_data_ptr);
    if (address == NULL) {
        Py_DECREF(strides);
        return NULL;
    }
    const char *base = (const char *)PyLong_AsVoidPtr(address);
    Py_DECREF(address);
    *slice_shape = PyTuple_New(ndim);
    if (*slice_shape == NULL) {
        Py_DECREF(strides);
        return NULL;
    }
    for (Py_ssize_t d = 0; d < ndim; d++) {
        Py_ssize_t size = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, d));
        sizes[d] = size < n ? size : n;
        steps[d] = PyLong_AsSsize_t(PyTuple_GET_ITEM(strides, d)) * itemsize;
        index[d] = 0;
        count *= sizes[d];
        PyTuple_SET_ITEM(*slice_shape, d, PyLong_FromSsize_t(sizes[d]));
    }
    Py_DECREF(strides);
    if (PyErr_Occurred()) {
        Py_CLEAR(*slice_shape);
        return NULL;
    }
    PyObject *raw = PyByteArray_FromStringAndSize(NULL, count * itemsize);
    if (raw == NULL) {
        Py_CLEAR(*slice_shape);
        return NULL;
    }
    char *out = PyByteArray_AS_STRING(raw);
    for (Py_ssize_t k = 0; k < count; k++) {
        Py_ssize_t offset = 0;
        for (Py_ssize_t d = 0; d < ndim; d++)
            offset += index[d] * steps[d];
        memcpy(out + k * itemsize, base + offset, itemsize);
        for (Py_ssize_t d = ndim - 1; d >= 0; d--) {  /* the next index, last dimension fastest */
            if (++index[d] < sizes[d])
                break;
            index[d] = 0;
        }
    }
    return raw;
}

/*
 * A new Summary of a plain strided CPU tensor, or Py_None (new reference) when
 * the tensor is not one (another device or layout, a dtype not in `dtypes`, a
 * negative view, too many dimensions); NULL on error.
 */
static PyObject *
new_summary(PyObject *tensor, Py_ssize_t n, PyObject *indexes, PyObject **version)
{
    int on_cpu = attribute_is_true(tensor, str_is_cpu, 0);
    if (on_cpu != 1)
        return on_cpu < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *layout = PyObject_GetAttr(tensor, str_layout);
    if (layout == NULL)
        return NULL;
    Py_DECREF(layout);
    if (layout != strided)
        return Py_NewRef(Py_None);
    PyObject *dtype = PyObject_GetAttr(tensor, str_dtype);
    if (dtype == NULL)
        return NULL;
    PyObject *known = PyDict_GetItemWithError(dtypes, dtype);  /* (name, itemsize) */
    Py_DECREF(dtype);
    if (known == NULL)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    int negative = attribute_is_true(tensor, str_is_neg, 1);
    if (negative != 0)
        return negative < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *shape = PyObject_GetAttr(tensor, str_shape);
    if (shape == NULL)
        return NULL;
    Py_ssize_t ndim = PyTuple_GET_SIZE(shape);
    if (ndim >= MAX_DIMS || ndim >= PyList_GET_SIZE(indexes)) {
        Py_DECREF(shape);
        return Py_NewRef(Py_None);
    }
    int inference = attribute_is_true(tensor, str_is_inference, 1);
    *version = inference ? Py_NewRef(Py_None) : PyObject_GetAttr(tensor, str_version);
    if (inference < 0 || *version == NULL) {
        Py_DECREF(shape);
        return NULL;
    }
    PyObject *slice_shape = NULL;
    Py_ssize_t itemsize = PyLong_AsSsize_t(PyTuple_GET_ITEM(known, 1));
    PyObject *raw = copy_slice(tensor, shape, itemsize, n, &slice_shape);
    PyObject *summary = raw ? PyType_GenericAlloc((PyTypeObject *)summary_type, 0) : NULL;
    PyObject *packed = summary ? PyTuple_Pack(2, raw, slice_shape) : NULL;
    PyObject *fields[5] = {shape, PyTuple_GET_ITEM(known, 0), str_device_cpu,
                           PyList_GET_ITEM(indexes, ndim), packed};
    int failed = packed == NULL;
    for (int i = 0; i < 5 && !failed; i++)  /* shape, dtype, device, index, raw */
        failed = PyObject_SetAttr(summary, str_summary_fields[i], fields[i]) < 0;
    failed = failed || PyObject_SetAttr(summary, str_array, Py_None) < 0
             || PyObject_SetAttr(summary, str_stats, Py_None) < 0
             || PyObject_SetAttr(summary, str_masked, Py_None) < 0;
    Py_DECREF(shape);
    Py_XDECREF(raw);
    Py_XDECREF(slice_shape);
    Py_XDECREF(packed);
    if (failed) {
        Py_XDECREF(summary);
        Py_CLEAR(*version);
        return NULL;
    }
    return summary;
}

/* Remember `summary` for `tensor` in `recent`, forgetting the oldest entry beyond `keep`. */
static int
remember(PyObject *recent, PyObject *key, PyObject *tensor, PyObject *version, PyObject *summary,
         Py_ssize_t keep)
{
    PyObject *reference = PyWeakref_NewRef(tensor, NULL);
    if (reference == NULL)
        return -1;
    PyObject *entry = PyTuple_Pack(3, reference, version, summary);
    Py_DECREF(reference);
    if (entry == NULL || PyDict_SetItem(recent, key, entry) < 0) {
        Py_XDECREF(entry);
        return -1;
    }
    Py_DECREF(entry);
    if (PyDict_GET_SIZE(recent) > keep) {
        Py_ssize_t position = 0;
        PyObject *oldest, *ignored;
        PyDict_Next(recent, &position, &oldest, &ignored);  /* dicts keep insertion order */
        Py_INCREF(oldest);
        int result = PyDict_DelItem(recent, oldest);
        Py_DECREF(oldest);
        return result;
    }
    return 0;
}

/* The replacement of one value: a summary, a plain copy, or the value itself (new references). */
static PyObject *
replace_value(PyObject *name, PyObject *value, PyObject *recent, Py_ssize_t keep, Py_ssize_t n,
              PyObject *indexes, PyObject *general)
{
    if (!is_read_here(value)) {
        if (value == Py_None || PySet_Contains(simple_types, (PyObject *)Py_TYPE(value)) == 1)
            return Py_NewRef(value);
        int instance = PyObject_IsInstance(value, tensor_base);
        if (instance != 0)
            return instance < 0 ? NULL : PyObject_CallFunctionObjArgs(general, name, value, NULL);
        instance = PyObject_IsInstance(value, kept_as_is);
        if (instance != 0)
            return instance < 0 ? NULL : Py_NewRef(value);
        return PyObject_CallOneArg(plain, value);
    }
    if (PySet_Contains(general_names, name) == 1)
        return PyObject_CallFunctionObjArgs(general, name, value, NULL);
    PyObject *key = PyLong_FromVoidPtr(value);
    if (key == NULL)
        return NULL;
    PyObject *summary = Py_XNewRef(remembered(recent, key, value));
    if (summary == NULL && !PyErr_Occurred()) {
        PyObject *version = NULL;
        summary = new_summary(value, n, indexes, &version);
        if (summary == Py_None) {
            Py_DECREF(summary);
            summary = PyObject_CallFunctionObjArgs(general, name, value, NULL);
        } else if (summary != NULL && remember(recent, key, value, version, summary, keep) < 0) {
            Py_CLEAR(summary);
        }
        Py_XDECREF(version);
    }
    Py_DECREF(key);
    return summary;
}

PyDoc_STRVAR(summarise_values_doc,
"summarise_values(values, recent, keep, n, indexes, general)\n\n"
"Replace the values of a step's dict `values` in place, as recorder.py does: plain\n"
"strided CPU tensors (of the configured types and dtypes) by their Summary, made here\n"
"and remembered in `recent` ({id: (weak ref, version, summary)}, at most `keep` entries);\n"
"`indexes[ndim]` is the slice text of t[:n, :n, ...]. Other tensors, and tensors named\n"
"as masks, by general(name, tensor). None, simple values and modules stay; any other\n"
"value becomes plain(value).");

/* Replace every value of `values` (see summarise_values); -1 on error. */
static int
replace_values(PyObject *values, PyObject *recent, Py_ssize_t keep, Py_ssize_t n, PyObject *indexes,
               PyObject *general)
{
    Py_ssize_t position = 0;
    PyObject *name, *value;
    /* Replacing the value of an existing key while iterating is allowed (the keys stay the same). */
    while (PyDict_Next(values, &position, &name, &value)) {
        PyObject *replacement = replace_value(name, value, recent, keep, n, indexes, general);
        if (replacement == NULL)
            return -1;
        int failed = replacement != value && PyDict_SetItem(values, name, replacement) < 0;
        Py_DECREF(replacement);
        if (failed)
            return -1;
    }
    return 0;
}

/* Check the shared arguments; 0 when fine, -1 with an exception set. */
static int
check_arguments(PyObject *values, PyObject *recent, PyObject *indexes)
{
    if (summary_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "swintrace._speedups is not configured");
        return -1;
    }
    if (!PyDict_Check(values) || !PyDict_Check(recent) || !PyList_Check(indexes)) {
        PyErr_SetString(PyExc_TypeError, "values and recent must be dicts, indexes a list");
        return -1;
    }
    return 0;
}

static PyObject *
summarise_values(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "summarise_values takes 6 arguments");
        return NULL;
    }
    PyObject *values = args[0], *recent = args[1], *indexes = args[4], *general = args[5];
    Py_ssize_t keep = PyLong_AsSsize_t(args[2]), n = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred() || check_arguments(values, recent, indexes) < 0
        || replace_values(values, recent, keep, n, indexes, general) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/*
 * Record one step with `state` = the recorder's c_state,
 * (stack, records, STEP, recent, keep, n, indexes, general):
 * replace the values (as summarise_values) and append the step's record
 * (STEP, scope, name, kind, depth, note, code, offset, modules, values, None, None),
 * the scope being the top of stack (an empty stack: nothing is recorded).
 */
static int
append_step(PyObject *state, PyObject *kind, PyObject *name, PyObject *note, PyObject *modules,
            PyObject *values, PyObject *frame)
{
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 8) {
        PyErr_SetString(PyExc_TypeError, "the recording state must be an 8-item tuple");
        return -1;
    }
    PyObject *stack = PyTuple_GET_ITEM(state, 0), *records = PyTuple_GET_ITEM(state, 1);
    PyObject *recent = PyTuple_GET_ITEM(state, 3), *indexes = PyTuple_GET_ITEM(state, 6);
    PyObject *general = PyTuple_GET_ITEM(state, 7);
    Py_ssize_t keep = PyLong_AsSsize_t(PyTuple_GET_ITEM(state, 4));
    Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(state, 5));
    if (PyErr_Occurred() || check_arguments(values, recent, indexes) < 0)
        return -1;
    if (!PyList_Check(stack) || !PyList_Check(records)) {
        PyErr_SetString(PyExc_TypeError, "the recording stack and records must be lists");
        return -1;
    }
    Py_ssize_t depth = PyList_GET_SIZE(stack);
    if (depth == 0)  /* a step outside any scope of a traced forward */
        return 0;
    PyObject *scope = Py_NewRef(PyList_GET_ITEM(stack, depth - 1));
    PyObject *code = NULL, *offset = NULL, *depth_number = NULL, *record = NULL;
    if (replace_values(values, recent, keep, n, indexes, general) == 0
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
    {"configure", configure, METH_VARARGS,
     "configure(tensor_types, Tensor, strided, Summary, dtypes, simple_types, Module, general_names, plain)"},
    {"summarise_values", (PyCFunction)(void (*)(void))summarise_values, METH_FASTCALL, summarise_values_doc},
    {"step", (PyCFunction)(void (*)(void))step, METH_FASTCALL | METH_KEYWORDS, step_doc},
    {"run_scope", (PyCFunction)(void (*)(void))run_scope, METH_FASTCALL, run_scope_doc},
    {"configure_step", configure_step, METH_O, "configure_step(variable): the ContextVar holding the recorder."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    const char *fields[5] = {"shape", "dtype", "device", "index", "raw"};
    for (int i = 0; i < 5; i++)
        if ((str_summary_fields[i] = PyUnicode_InternFromString(fields[i])) == NULL)
            return NULL;
    if (!(str_is_cpu = PyUnicode_InternFromString("is_cpu")) || !(str_layout = PyUnicode_InternFromString("layout"))
        || !(str_dtype = PyUnicode_InternFromString("dtype")) || !(str_shape = PyUnicode_InternFromString("shape"))
        || !(str_stride = PyUnicode_InternFromString("stride"))
        || !(str_data_ptr = PyUnicode_InternFromString("data_ptr"))
        || !(str_is_neg = PyUnicode_InternFromString("is_neg"))
        || !(str_is_inference = PyUnicode_InternFromString("is_inference"))
        || !(str_version = PyUnicode_InternFromString("_version"))
        || !(str_array = PyUnicode_InternFromString("_array"))
        || !(str_stats = PyUnicode_InternFromString("stats"))
        || !(str_masked = PyUnicode_InternFromString("masked"))
        || !(str_device_cpu = PyUnicode_InternFromString("cpu"))
        || !(str_f_code = PyUnicode_InternFromString("f_code"))
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
