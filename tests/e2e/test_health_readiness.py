"""Liveness and readiness (CONTRACT §2.10): /healthz says the process lives; /readyz is
503 not_ready naming a dependency that is really unavailable, and 200 once it is back.

The dependency is made unavailable through the chaos control file's
`dependency-outage` flag (capability readiness_switch). That disrupts the target, so in
embedded mode the spec runs on a stack of its own.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

import httpx
import pytest

from pytest_sidecar import Evidence, SidecarConfig, Target
from pytest_sidecar.fixtures.quiet import QuietTarget
from pytest_sidecar.tls import tls_context

pytestmark = [pytest.mark.needs("health")]

DEPENDENCIES = ("status_store", "upstream", "explainer")
DEADLINE_S = 10.0


def write_flags(path: str, flags: dict[str, Any]) -> None:
    """Replace the chaos control file atomically, as CONTRACT §7 requires."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".chaos-")
    with os.fdopen(fd, "w") as handle:
        json.dump(flags, handle)
    os.replace(tmp, path)


def wait_for(http: httpx.Client, status: int) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    while True:
        response = http.get("/readyz")
        if response.status_code == status or time.monotonic() - started > DEADLINE_S:
            return response, time.monotonic() - started
        time.sleep(0.05)


@pytest.mark.clause("§2.10/healthz", "§2.10/readyz")
def test_liveness_and_readiness_when_all_is_well(sidecar_target: Target,
                                                 evidence: Evidence) -> None:
    with httpx.Client(base_url=sidecar_target.url, timeout=10, verify=tls_context()) as http:
        live, ready = http.get("/healthz"), http.get("/readyz")
    # §2.10 specifies the status codes only; the bodies are the target's own.
    assert live.status_code == 200, f"§2.10: /healthz answered {live.status_code}"
    assert ready.status_code == 200, (
        f"§2.10: /readyz answered {ready.status_code} with every dependency up: "
        f"{ready.text[:200]}")
    evidence.record(healthz=200, readyz=200, readyz_body=ready.text[:300])


@pytest.mark.clause("§2.10/readyz")
@pytest.mark.disruptive
@pytest.mark.own_stack  # on the embedded stack, quiet_target is the module's own
@pytest.mark.needs("readiness_switch", "chaos_control", "chat")
@pytest.mark.parametrize("dependency", DEPENDENCIES)
def test_readiness_names_an_unavailable_dependency_and_recovers(
        dependency: str, quiet_target: QuietTarget, sidecar_config: SidecarConfig,
        evidence: Evidence) -> None:
    target = quiet_target.target
    control = target.chaos_control
    assert control, "§7: the target declares chaos_control but gives no path"
    with httpx.Client(base_url=target.url, timeout=sidecar_config.timeout,
                      verify=tls_context()) as http:
        try:
            write_flags(control, {"dependency-outage": {"enabled": True,
                                                        "dependency": dependency}})
            down, took_down = wait_for(http, 503)
            assert down.status_code == 503, (
                f"§2.10: /readyz still {down.status_code} {DEADLINE_S:g}s after {dependency} "
                "went down")
            body = down.json()
            assert body.get("code") == "not_ready", f"§2.10: the 503 has code {body.get('code')!r}"
            assert dependency in json.dumps(body), f"§2.10: the 503 does not name {dependency}"
            live = http.get("/healthz").status_code
            assert live == 200, f"§2.10: /healthz answered {live} while only {dependency} was down"
        finally:
            write_flags(control, {})
        up, took_up = wait_for(http, 200)
        assert up.status_code == 200, (
            f"§2.10: /readyz still {up.status_code} {DEADLINE_S:g}s after {dependency} came back")
    evidence.record(dependency=dependency, not_ready_after_s=round(took_down, 2),
                    ready_again_after_s=round(took_up, 2), exact=quiet_target.dedicated)
