"""Helpers shared by the e2e specs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pytest_sidecar.client import SidecarClient, Timeline, is_terminal, trace_id_of
from pytest_sidecar.config import SidecarConfig


@dataclass
class Explained:
    """A chat that opened a trace, and what polling it to a terminal state saw."""

    response: httpx.Response
    trace_id: str
    timeline: Timeline

    @property
    def status(self) -> dict[str, Any]:
        return self.timeline.last or {}


ExplainAndWait = Callable[..., Explained]


@pytest.fixture
def explain_and_wait(gateway: SidecarClient, sidecar_config: SidecarConfig) -> ExplainAndWait:
    """Submit an explained chat and poll it to a terminal state (fresh trace per call)."""

    def run(client: SidecarClient | None = None, **options: Any) -> Explained:
        client = client or gateway
        response = client.explain(**options)
        assert response.status_code == 200, f"chat answered {response.status_code}: {response.text}"
        trace_id = trace_id_of(response)
        assert trace_id, "the response has no explanation_metadata.trace_id"
        timeline = client.poll_until(trace_id, is_terminal, sidecar_config.trace_deadline)
        assert timeline.reached, (f"trace {trace_id} not terminal after "
                                  f"{sidecar_config.trace_deadline}s: {timeline.states}")
        return Explained(response, trace_id, timeline)

    return run
