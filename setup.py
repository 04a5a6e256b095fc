"""Builds the optional C twin of recording's hot path (swintrace/_speedups.c,
_summaries.c); everything else is in pyproject.toml.

Without a C compiler the install still succeeds and tracing runs in Python
(the same results, slower; see docs/architecture.md).
"""

from setuptools import Extension, setup

speedups = Extension(
    "swintrace._speedups",
    sources=["swintrace/_speedups.c", "swintrace/_summaries.c"],
    depends=["swintrace/_speedups.h"],
    optional=True,
)
setup(ext_modules=[speedups])
