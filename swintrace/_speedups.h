/* swintrace._speedups: what _summaries.c gives _speedups.c. */
#ifndef SWINTRACE_SPEEDUPS_H
#define SWINTRACE_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Intern the attribute names the summaries use; -1 on error. */
int speedups_init_summaries(void);
/* configure(tensor_types, Tensor, strided, Summary, dtypes, simple_types, Module, general_names, plain) */
PyObject *speedups_configure(PyObject *self, PyObject *args);
/* summarise_values(values, recent, keep, n, indexes, general) */
PyObject *speedups_summarise_values(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
extern const char speedups_summarise_values_doc[];
/* Replace a step's values in place (tensors by summaries, ...), appending module
   values to the list `shown` unless it is NULL; -1 on error. */
int speedups_replace_values(PyObject *values, PyObject *recent, Py_ssize_t keep, Py_ssize_t n,
                            PyObject *indexes, PyObject *general, PyObject *shown);
/* Check the arguments shared by the entry points; -1 with an exception set. */
int speedups_check_arguments(PyObject *values, PyObject *recent, PyObject *indexes);

#endif
