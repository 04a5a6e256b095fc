/*
 * swintrace._speedups, summaries: the C twin of summary.py's loop over a
 * step's values (SummaryBatch.summarise_values).
 *
 * For each plain strided CPU tensor it finds or makes the summary: the
 * seed-style slice t[:n, :n, ...] copied into a bytearray, shape, dtype,
 * remembered for the next steps. A strided CPU tensor's element (i0, i1, ...)
 * lies at data_ptr() + sum(i_d * stride_d) * itemsize; the caller holds the
 * tensor (alive) and the GIL for the whole call. Everything else (devices,
 * dtypes numpy lacks, masks, statistics) goes to summary.py, the reference.
 */
#include "_speedups.h"

#include <string.h>

#define MAX_DIMS 16

static PyObject *str_is_cpu, *str_layout, *str_dtype, *str_shape, *str_stride, *str_data_ptr;
static PyObject *str_is_neg, *str_is_inference, *str_version, *str_array, *str_stats, *str_masked;
static PyObject *str_device_cpu, *str_summary_fields[5];

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

PyObject *
speedups_configure(PyObject *Py_UNUSED(self), PyObject *args)
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

/* Whether the weak reference `reference` still refers to `object`. */
static int
refers_to(PyObject *reference, PyObject *object)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *referent = NULL;
    if (PyWeakref_GetRef(reference, &referent) < 0)
        PyErr_Clear();
    int same = referent == object;
    Py_XDECREF(referent);
    return same;
#else
    return PyWeakref_GetObject(reference) == object;
#endif
}

/* The remembered summary of `tensor` if it is still that tensor, unchanged; else NULL (no error). */
static PyObject *
remembered(PyObject *recent, PyObject *key, PyObject *tensor)
{
    PyObject *entry = PyDict_GetItemWithError(recent, key);  /* (weak ref, version or None, summary) */
    if (entry == NULL || !refers_to(PyTuple_GET_ITEM(entry, 0), tensor))
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
              PyObject *indexes, PyObject *general, PyObject *shown)
{
    if (!is_read_here(value)) {
        if (value == Py_None || PySet_Contains(simple_types, (PyObject *)Py_TYPE(value)) == 1)
            return Py_NewRef(value);
        int instance = PyObject_IsInstance(value, tensor_base);
        if (instance != 0)
            return instance < 0 ? NULL : PyObject_CallFunctionObjArgs(general, name, value, NULL);
        instance = PyObject_IsInstance(value, kept_as_is);
        if (instance != 0)  /* a module: shown with its repr */
            return instance < 0 || (shown != NULL && PyList_Append(shown, value) < 0) ? NULL : Py_NewRef(value);
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

const char speedups_summarise_values_doc[] = (
"summarise_values(values, recent, keep, n, indexes, general)\n\n"
"Replace the values of a step's dict `values` in place, as recorder.py does: plain\n"
"strided CPU tensors (of the configured types and dtypes) by their Summary, made here\n"
"and remembered in `recent` ({id: (weak ref, version, summary)}, at most `keep` entries);\n"
"`indexes[ndim]` is the slice text of t[:n, :n, ...]. Other tensors, and tensors named\n"
"as masks, by general(name, tensor). None, simple values and modules stay; any other\n"
"value becomes plain(value).");

/* Replace every value of `values` (see summarise_values), appending module values to
   the list `shown` unless it is NULL; -1 on error. */
int
speedups_replace_values(PyObject *values, PyObject *recent, Py_ssize_t keep, Py_ssize_t n, PyObject *indexes,
               PyObject *general, PyObject *shown)
{
    Py_ssize_t position = 0;
    PyObject *name, *value;
    /* Replacing the value of an existing key while iterating is allowed (the keys stay the same). */
    while (PyDict_Next(values, &position, &name, &value)) {
        PyObject *replacement = replace_value(name, value, recent, keep, n, indexes, general, shown);
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
int
speedups_check_arguments(PyObject *values, PyObject *recent, PyObject *indexes)
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

PyObject *
speedups_summarise_values(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "summarise_values takes 6 arguments");
        return NULL;
    }
    PyObject *values = args[0], *recent = args[1], *indexes = args[4], *general = args[5];
    Py_ssize_t keep = PyLong_AsSsize_t(args[2]), n = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred() || speedups_check_arguments(values, recent, indexes) < 0
        || speedups_replace_values(values, recent, keep, n, indexes, general, NULL) < 0)
        return NULL;
    Py_RETURN_NONE;
}

int
speedups_init_summaries(void)
{
    const char *fields[5] = {"shape", "dtype", "device", "index", "raw"};
    for (int i = 0; i < 5; i++)
        if ((str_summary_fields[i] = PyUnicode_InternFromString(fields[i])) == NULL)
            return -1;
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
        || !(str_device_cpu = PyUnicode_InternFromString("cpu")))
        return -1;
    return 0;
}
