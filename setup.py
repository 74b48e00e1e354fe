"""Maps the top-level `tasks/`, `methods/` and `attacks/` folders into the `mu_eval` namespace.

Everything else lives in pyproject.toml; only the package list needs code, because setuptools'
`packages.find` cannot rename folders.
"""

from setuptools import find_packages, setup

MAPPED_FOLDERS = ("tasks", "methods", "attacks")

packages = find_packages(include=["mu_eval", "mu_eval.*"])
for folder in MAPPED_FOLDERS:
    packages.append(f"mu_eval.{folder}")
    packages += [f"mu_eval.{folder}.{sub}" for sub in find_packages(where=folder)]

setup(packages=packages)
