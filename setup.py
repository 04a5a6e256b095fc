"""Builds the optional C loop of recording (swintrace/_speedups.c); the rest is in pyproject.toml.

Without a C compiler the install still succeeds and tracing runs in Python
(the same results, slower; see docs/architecture.md).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("swintrace._speedups", ["swintrace/_speedups.c"], optional=True)])
