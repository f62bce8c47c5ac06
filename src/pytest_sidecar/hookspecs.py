"""pytest-sidecar's extension points, added with `pytest_addhooks` (as pytest-xdist adds
its own). A conftest.py or a plugin implements them; a new wing plugs in here instead of
editing a closed list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .probes import Probe
    from .reporting.types import Report
    from .target import Target


@pytest.hookspec
def pytest_sidecar_report_sections(report: Report) -> list[str] | None:
    """One extra section of sidecar-report.md: its Markdown lines, starting with its
    '## ' heading (None: no section). Called once on the controller when the report is
    built; the sections go before the re-run command, in plugin registration order. The
    report is read-only here, and already redacted."""


@pytest.hookspec
def pytest_sidecar_probes() -> dict[str, Probe] | None:
    """Probes by capability name. A probe is `probe(target, timeout) -> str | None`: None
    when the declared capability is really there, else a one-line reason (the spec that
    needs it then fails DECLARED_BUT_MISSING). Probes given here replace the built-in
    one of the same capability. Called once per process, on the first probe."""


@pytest.hookspec
def pytest_sidecar_fault_backends(target: Target) -> list[Any] | None:
    """Fault backends this target offers to chaos specs (the resilience wing defines their
    protocol: inject a fault with a lease, roll it back, list leftovers). Each plugin
    returns the backends it can drive for `target`, or None."""
