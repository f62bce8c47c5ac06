"""pytest-sidecar: conformance, SLO and resilience suite for the Async Sidecar LLM gateway.

Public API: the client, the target model, the typed outcomes and the types a spec
annotates its fixtures with (`evidence: Evidence`, `traces: Traces`, ...). The pytest
plugin itself is `pytest_sidecar.plugin` (entry point `sidecar`).

Everything is imported here, eagerly, so type checkers see each name; none of these
modules loads pytest or httpx when imported (they do so when a client is made or an
outcome raised), so `sidecar-stack` and the control plane, which import this package,
stay free of both.
"""

from __future__ import annotations

from .client import (
    AsyncSidecarClient,
    GatewayFactory,
    SidecarClient,
    Timeline,
    is_terminal,
    trace_id_of,
)
from .config import SidecarConfig
from .contracts.hif import HifValidator
from .evidence import Evidence
from .metrics import MetricsFactory, Scrape, Scraper
from .outcomes import FailReason, SkipReason, insufficient_data
from .target import Target, TargetFileError, Tenant, Tokens, load_target_file
from .traces import Finished, Opened, Traces
from .vocabulary.shapes import TraceStatus

__version__ = "0.1.0"

__all__ = [
    "AsyncSidecarClient",
    "Evidence",
    "FailReason",
    "Finished",
    "GatewayFactory",
    "HifValidator",
    "MetricsFactory",
    "Opened",
    "Scrape",
    "Scraper",
    "SidecarClient",
    "SidecarConfig",
    "SkipReason",
    "Target",
    "TargetFileError",
    "Tenant",
    "Timeline",
    "Tokens",
    "TraceStatus",
    "Traces",
    "insufficient_data",
    "is_terminal",
    "load_target_file",
    "trace_id_of",
]
