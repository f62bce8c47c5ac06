"""What every pytester-driven self-test shares (tests/plugin, tests/suite): a scrubbed
environment for inner runs, the machine lock, the `alone` marker, and `hide_package`.
A conftest imports these names; pytest finds the fixtures and the hook there."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

import pytest
from tests.machine import shared_machine

__all__ = ["hide_package", "pytest_configure", "scrubbed_env", "shared_machine"]

# Imported here, before any in-process pytester run: pytester snapshots sys.modules, so a
# module first imported inside an inner run is imported afresh by the next one, and
# exception classes from two copies no longer match (httpx maps httpcore's errors with
# a table it builds once, so httpcore, which httpx imports lazily, must be here too).
for _module in ("httpcore", "httpx", "pytest_sidecar.plugin", "pytest_sidecar.probes",
                "pytest_sidecar.embedded"):
    importlib.import_module(_module)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "alone: this self-test holds the machine alone "
                            "(it measures timing that other self-tests would disturb)")


@pytest.fixture(autouse=True)
def scrubbed_env(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    """No SIDECAR_* setting of the developer's shell leaks into a self-test."""
    for name in list(os.environ):
        if name.startswith("SIDECAR_"):
            monkeypatch.delenv(name)
    # Inner runs have no ini file; give them the one setting pytest-asyncio insists on
    # (after pytester is set up: it clears PYTEST_ADDOPTS when it starts).
    monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")


@pytest.fixture
def hide_package(pytester: pytest.Pytester,
                 monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """`hide_package("openai")`: the runs this test starts cannot import that package, as
    on a runner without the extra (a shim first on PYTHONPATH raises ImportError)."""
    def hide(name: str) -> None:
        shim = pytester.path / "shim" / name
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text(f"raise ImportError('{name} is not installed')\n")
        monkeypatch.setenv("PYTHONPATH", str(shim.parent))

    return hide
