"""Helpers shared by the e2e specs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_sidecar.client import SidecarClient, Timeline, is_terminal, trace_id_of
from pytest_sidecar.config import SidecarConfig
from pytest_sidecar.outcomes import SkipReason, skip
from pytest_sidecar.target import Target


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


# Tenant A's limits on the dedicated embedded stack; tenant B keeps the defaults.
TIGHT = {"write": {"rps": 0.5, "burst": 5}, "read": {"rps": 1.0, "burst": 8}}
MAX_TESTABLE_BURST = 50  # beyond this a spec would flood the target to see one 429


@dataclass
class QuietTarget:
    """A target for specs that need quiet or disruption: exact counter deltas, exhausted
    rate limits, dependencies switched off. In embedded mode it is a stack of its own
    (`dedicated`: no other spec touches it, so counts are exact); tenant A's rate limits
    there are tight, tenant B keeps the defaults."""

    target: Target
    limits: dict[str, dict[str, float]]
    dedicated: bool  # no other spec spends these buckets, so the count is exact

    def client(self, tenant: str, role: str, timeout: float,
               retry: bool = False) -> SidecarClient:
        """A client of this target; it returns 429s unless `retry`."""
        token = getattr(self.target.tenants[tenant].tokens, role)
        return SidecarClient(self.target.url, token, timeout, retry_rate_limited=retry)


@pytest.fixture(scope="module")
def quiet_target(sidecar_target: Target, stack_factory: Any) -> QuietTarget:
    """Embedded mode: a stack of this module's own (tight limits for tenant A). Otherwise
    the target itself: its declaration accepted the disruption, but counts are not exact."""
    if sidecar_target.origin == "embedded":
        target = stack_factory(RATE_LIMITS_JSON=json.dumps({"tenant-a": TIGHT}))
        return QuietTarget(target, TIGHT, True)
    return QuietTarget(sidecar_target, {k: dict(v) for k, v in sidecar_target.rate_limits.items()},
                       False)


@pytest.fixture(scope="module")
def rate_limited(quiet_target: QuietTarget) -> QuietTarget:
    """The quiet target, if its tenant-A rate limits are small enough to exhaust."""
    limits = quiet_target.limits
    if not (limits and all(limit["burst"] <= MAX_TESTABLE_BURST for limit in limits.values())):
        skip(SkipReason.NOT_DECLARED, "no rate limits small enough to exercise are declared",
             f"declare rate_limits.read/write with burst <= {MAX_TESTABLE_BURST}", "§3")
    return quiet_target


@dataclass
class Platform:
    """The manifests under test: the rendered chart and the other manifest files."""

    root: Path
    chart: Path
    rendered: list[dict[str, Any]]
    argocd: list[dict[str, Any]]
    karpenter: list[dict[str, Any]]
    renderer: str


@pytest.fixture(scope="module")
def platform(sidecar_config: SidecarConfig, pytestconfig: pytest.Config) -> Platform:
    """Render the chart (helm binary or helm-python-sdk) and read the other manifests
    (a relative --sidecar-manifests is taken from the rootdir); TOOL_MISSING when this
    runner has no Helm renderer."""
    from pytest_sidecar import manifests

    root = (pytestconfig.rootpath / sidecar_config.manifests).resolve()
    chart = root / "helm" / "hypergraph"
    try:
        renderer = manifests.renderer()
    except manifests.ToolMissing as missing:
        skip(SkipReason.TOOL_MISSING, str(missing).split(":")[0], manifests.INSTALL_HINT, "§8")
    try:
        rendered = manifests.render_chart(chart)
    except manifests.RenderError as exc:
        pytest.fail(f"the chart does not render: {exc}", pytrace=False)
    return Platform(root, chart, rendered,
                    manifests.load_documents(root / "argocd" / "argocd-apps.yaml"),
                    manifests.load_documents(root / "karpenter" / "karpenter-provisioners.yaml"),
                    renderer)
