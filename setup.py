"""Which packages and files the wheel holds: found, not listed by hand.

The design keeps the code in src/domain, src/application, src/projections and
src/api; installed, src/ is the package `fieldledger` (pyproject.toml names
everything else). Every directory under src/ is a package of it (a new
subpackage cannot be left out), and every file in them but compiled Python is
its data (console templates, static files, catalogues, the default policy).
tests/unit/test_packaging.py builds the wheel and checks both.
"""

from setuptools import find_namespace_packages, setup

SUBPACKAGES = find_namespace_packages("src", exclude=["*__pycache__*"])

setup(
    package_dir={"fieldledger": "src"},
    packages=["fieldledger", *(f"fieldledger.{name}" for name in SUBPACKAGES)],
    package_data={"": ["*"]},
    exclude_package_data={"": ["*.pyc", "*.pyo"]},
)
