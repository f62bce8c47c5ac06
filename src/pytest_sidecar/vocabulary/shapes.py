"""The JSON shapes of the contract that cross our modules, named (docs/contract.md).

A target may send more fields than these; a spec reads them with `.get`, since what a
target sent is judged, never assumed (hence total=False).
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["TraceStatus"]


class TraceStatus(TypedDict, total=False):
    """The status object of GET /v1/traces/{id}/status (§2.3)."""

    trace_id: str
    state: str
    progress: float
    stage: str
    granularity: str
    featureset: str
    created_at: str
    updated_at: str
    error: str | None
    s3_key: str | None
    bp_level: int
    bp_actions: list[str]
    granularity_downgraded: bool
