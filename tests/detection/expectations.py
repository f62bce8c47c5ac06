"""Which specs must fail for each opt-in defect of the reference stack (node id parts)."""

from __future__ import annotations

EXPECTED: dict[str, tuple[str, ...]] = {}
