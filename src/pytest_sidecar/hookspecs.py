"""pytest-sidecar's extension points, added with `pytest_addhooks` (as pytest-xdist adds
its own). A conftest.py or a plugin implements them; a new wing plugs in here instead of
editing a closed list.

None of these is `firstresult`: pytest calls every implementation and hands pytest-sidecar
the list of what they returned (None results left out), in plugin registration order.

A worked example, a conftest.py that adds a report section, a probe and a fault backend::

    from pytest_sidecar.target import Target

    def pytest_sidecar_report_sections(report):
        failed = report["summary"]["failed"]
        return ["## On-call", "", f"{failed} failing specs page the gateway team."]

    def pytest_sidecar_probes():
        def tenants_header(target: Target, timeout: float) -> str | None:
            ...  # reach the target; None when the capability is really there
            return None
        return {"tenants": tenants_header}

    def pytest_sidecar_fault_backends(target: Target):
        if target.resilience.get("litmus"):
            return [LitmusBackend(target.resilience["litmus"])]
        return None
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .chaos.backends import FaultBackend
    from .probes import Probe
    from .reporting.types import Report
    from .target import Target


@pytest.hookspec
def pytest_sidecar_report_sections(report: Report) -> list[str] | None:
    """One extra section of sidecar-report.md.

    Called once, on the controller, when the report is built; the sections go before the
    re-run command, in plugin registration order. Not firstresult: every
    implementation's section is used.

    :param report: the report model, read-only and already redacted (tokens and PII are
        gone), as written to sidecar-report.json.
    :return: the section's Markdown lines, starting with its '## ' heading; None for no
        section.
    """


@pytest.hookspec
def pytest_sidecar_probes() -> dict[str, Probe] | None:
    """Probes by capability name, that cross-check what a target declares.

    A probe is `probe(target, timeout) -> str | None`. Called once per process, on the
    first probe; not firstresult: the dictionaries are merged in registration order, and
    a probe given here replaces the built-in one of the same capability.

    :return: capability name -> probe; None for none. A probe returns None when the
        declared capability is really there, else a one-line reason, and the specs that
        need the capability then fail DECLARED_BUT_MISSING with it.
    """


@pytest.hookspec
def pytest_sidecar_fault_backends(target: Target) -> list[FaultBackend] | None:
    """Fault backends this target offers to the chaos specs.

    A backend injects a fault with a lease, rolls it back, and lists leftovers (the
    protocol is `chaos.backends.FaultBackend`). Called when the chaos fixture is first
    used; not firstresult: the backends of every plugin are offered, in registration
    order.

    :param target: the resolved target (URL, declared capabilities, files, resilience
        settings of the target file).
    :return: the backends this plugin can drive for `target`; None for none.
    """
