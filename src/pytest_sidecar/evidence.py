"""Evidence: what a passing spec measured, shown in the report next to its verdict.

Plain Python on purpose: the package exports it for spec annotations, and tools that
import the package (`sidecar-stack`, the control plane) must not load pytest. The
`evidence` fixture (fixtures/contracts.py) hands it a test's `user_properties`, which is
how the facts cross xdist to the controller's report.
"""

from __future__ import annotations

from typing import Any

from .vocabulary.keys import ADVISORY_PROPERTY, EVIDENCE_PROPERTY, FIGURE_PROPERTY

__all__ = ["Evidence"]


class Evidence:
    """What a passing spec measured; shown in the report next to its verdict."""

    def __init__(self, properties: list[tuple[str, object]]) -> None:
        self._properties = properties
        self.count = 0

    def record(self, **facts: Any) -> None:
        """Record named facts (ids, counts, timings); call it at least once per pass."""
        self._properties.append((EVIDENCE_PROPERTY, facts))
        self.count += 1

    def advise(self, text: str) -> None:
        """Note something the contract does not require but a careful operator would want
        (a pod that may run as root, a pool without a GPU taint): shown in the report's
        advisories, never a failure."""
        self._properties.append((ADVISORY_PROPERTY, text))

    def figure(self, name: str, svg: str) -> None:
        """Attach an SVG figure (pytest-html extra; a file next to the Markdown report).
        A figure illustrates evidence; it does not count as evidence by itself."""
        self._properties.append((FIGURE_PROPERTY, {"name": name, "svg": svg}))
