"""pytest-sidecar: conformance, SLO and resilience suite for the Async Sidecar LLM gateway.

Public API: the client, the target model and the typed outcomes. The pytest plugin itself
is `pytest_sidecar.plugin` (entry point `sidecar`).
"""

from .client import AsyncSidecarClient, SidecarClient, Timeline, is_terminal, trace_id_of
from .outcomes import FailReason, SkipReason, insufficient_data
from .target import Target, TargetFileError, Tenant, Tokens, load_target_file

__version__ = "0.1.0"
__all__ = ["AsyncSidecarClient", "FailReason", "SidecarClient", "SkipReason", "Target",
           "TargetFileError", "Tenant", "Timeline", "Tokens", "insufficient_data",
           "is_terminal", "load_target_file", "trace_id_of"]
