"""Package discovery; everything else is in pyproject.toml.

Every package under ``swintrace/`` is found, so a new one cannot be forgotten.
The templates live at the top of the repository (the project's layout) and
ship inside the wheel as ``swintrace.templates``: that one mapping is declared here.
"""

from setuptools import find_namespace_packages, setup

setup(
    # Namespace discovery also finds folders of data files (swintrace/data).
    packages=[*find_namespace_packages(include=["swintrace", "swintrace.*"], exclude=["*.__pycache__"]),
              "swintrace.templates"],
    package_dir={"swintrace.templates": "templates"},
)
