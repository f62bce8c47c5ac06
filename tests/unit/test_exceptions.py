"""One exception root per package: every exception pytest-sidecar defines derives from
its package's root, so `except StackError` (or SidecarError, ChaosError, ...) catches all
that package raises, as chaostoolkit-lib's `exceptions.py` promises its callers."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import pytest_sidecar
from pytest_sidecar.chaos.exceptions import ChaosError
from pytest_sidecar.controlplane.exceptions import ControlPlaneError
from pytest_sidecar.errors import SidecarError
from pytest_sidecar.load.exceptions import LoadError
from pytest_sidecar.stack.exceptions import StackError

# The longest prefix wins: pytest_sidecar.stack.* belongs to StackError, not SidecarError.
ROOTS = {"pytest_sidecar.stack": StackError, "pytest_sidecar.chaos": ChaosError,
         "pytest_sidecar.controlplane": ControlPlaneError, "pytest_sidecar.load": LoadError,
         "pytest_sidecar": SidecarError}


def root_of(module: str) -> type[Exception]:
    return ROOTS[max((p for p in ROOTS if module == p or module.startswith(p + ".")),
                     key=len)]


def defined_exceptions() -> list[type[Exception]]:
    """Every Exception subclass defined in the package (a BaseException such as the chaos
    runner's Interrupted is meant to pass every handler, and is left out)."""
    found = []
    for info in pkgutil.walk_packages(pytest_sidecar.__path__, "pytest_sidecar."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra (playwright, schemathesis) not installed
            continue
        found += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                  if issubclass(obj, Exception) and obj.__module__ == info.name]
    return found


def test_every_exception_derives_from_its_packages_root() -> None:
    exceptions = defined_exceptions()
    assert len(exceptions) >= 25, [e.__name__ for e in exceptions]  # presence first
    strays = [f"{e.__module__}.{e.__qualname__}" for e in exceptions
              if e not in ROOTS.values() and not issubclass(e, root_of(e.__module__))]
    assert not strays, f"exceptions outside their package's root: {strays}"


@pytest.mark.parametrize("root", list(ROOTS.values()), ids=lambda root: root.__name__)
def test_each_root_is_an_exception_and_distinct(root: type[Exception]) -> None:
    assert issubclass(root, Exception)
    assert sum(1 for other in ROOTS.values() if other.__name__ == root.__name__) == 1
