"""The self-tests share two cores: the load self-test measures a load generator whose
own scheduler lag must stay under 2 ms, so it holds the machine alone while the other
heavy self-tests (plugin runs, the control plane's servers and browsers) hold it shared.
The lock is the plugin's own MachineLock, in the session's directory that every xdist
worker shares (a gate keeps new shared holders out while the exclusive one waits)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pytest_sidecar.serial import MachineLock


def _lock(tmp_path_factory: pytest.TempPathFactory) -> MachineLock:
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return MachineLock(str(shared))


@contextmanager
def machine(tmp_path_factory: pytest.TempPathFactory, alone: bool) -> Iterator[None]:
    lock = _lock(tmp_path_factory)
    with lock.exclusive() if alone else lock.shared():
        yield


@pytest.fixture(autouse=True)
def shared_machine(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every self-test of a directory whose conftest imports this holds the machine
    shared; one marked `alone` holds it alone."""
    with machine(tmp_path_factory, alone=request.node.get_closest_marker("alone") is not None):
        yield
