"""pytest-sidecar: conformance, SLO and resilience suite for the Async Sidecar LLM gateway.

Public API: the client, the target model and the typed outcomes. The pytest plugin itself
is `pytest_sidecar.plugin` (entry point `sidecar`). Names are imported on first use, so
loading the plugin (and `pytest --help`) does not pay for httpx.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncSidecarClient": "client", "SidecarClient": "client", "Timeline": "client",
    "is_terminal": "client", "trace_id_of": "client",
    "FailReason": "outcomes", "SkipReason": "outcomes", "insufficient_data": "outcomes",
    "Target": "target", "TargetFileError": "target", "Tenant": "target", "Tokens": "target",
    "load_target_file": "target",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
