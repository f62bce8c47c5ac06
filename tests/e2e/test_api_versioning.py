"""API versioning (CONTRACT §2, §4, §8): a valid OpenAPI document whose API is only /v1,
a served route table equal to the documented one, HIF v1 at runtime, and the
change-management rules stated as checkable facts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_sidecar.client import SidecarClient
from pytest_sidecar.contracts.openapi import documented_routes, load_openapi
from pytest_sidecar.fixtures.traces import Traces
from pytest_sidecar.target import Target

pytestmark = [pytest.mark.profile("core"), pytest.mark.contract("§8")]

CHANGE_MANAGEMENT = Path(__file__).resolve().parents[2] / "docs" / "change-management.md"
UNDOCUMENTED = [("GET", "/v2/chat/completions"), ("POST", "/v2/chat/completions"),
                ("GET", "/v1/traces"), ("GET", "/v1/admin"), ("GET", "/docs"),
                ("GET", "/openapi.json"), ("GET", "/debug/vars"), ("GET", "/v1")]


def test_the_document_is_valid_openapi_and_its_api_is_only_v1(evidence: Any) -> None:
    from openapi_spec_validator import validate

    document = load_openapi()
    validate(document)
    paths = list(document["paths"])
    assert paths and all(path.startswith("/v1/") for path in paths), paths
    assert document["openapi"].startswith("3.")
    evidence.record(openapi=document["openapi"], api_paths=len(paths),
                    operations=len(documented_routes()))


@pytest.mark.needs("route_table")
def test_the_served_routes_are_exactly_the_documented_ones(sidecar_target: Target,
                                                           evidence: Any) -> None:
    served = {tuple(route.split(" ", 1)) for route in sidecar_target.routes}
    documented = documented_routes()
    assert not served - documented, f"served but undocumented: {sorted(served - documented)}"
    assert not documented - served, f"documented but not served: {sorted(documented - served)}"
    evidence.record(routes=len(served))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "versioning-probe", path)


@pytest.mark.needs("chat", "health")
def test_every_documented_route_answers_and_nothing_else_does(
        sidecar_target: Target, evidence: Any) -> None:
    answers = {}
    with httpx.Client(base_url=sidecar_target.url, timeout=10) as http:
        for method, path in sorted(documented_routes()):
            response = http.request(method, concrete(path), json={} if method == "POST" else None)
            # Without a token a documented route says 401 (or serves health); a missing
            # route would be a 404 with code not_found, a wrong method a 405.
            body_code = response.json().get("code") if response.headers.get(
                "content-type", "").startswith("application/json") else None
            assert response.status_code != 405, f"{method} {path}: 405"
            assert not (response.status_code == 404 and body_code == "not_found"), (
                f"{method} {path} is documented but not served")
            answers[f"{method} {path}"] = response.status_code
        for method, path in UNDOCUMENTED:
            response = http.request(method, path)
            assert response.status_code in (404, 405), f"{method} {path}: {response.status_code}"
            answers[f"{method} {path}"] = response.status_code
    evidence.record(answers=answers)


@pytest.mark.needs("chat", "explain")
@pytest.mark.contract("§4")
def test_runtime_graphs_are_hif_1(gateway: SidecarClient, traces: Traces,
                                  evidence: Any) -> None:
    trace_id = traces.complete().trace_id
    graph = gateway.graph(trace_id)
    assert graph.status_code == 200, f"§2.4: graph of a complete trace: {graph.text[:200]}"
    meta = graph.json().get("meta") or {}
    assert meta.get("version") == "hif-1", f"§4: meta.version of a v1 graph: {meta}"
    evidence.record(trace_id=trace_id, version=meta["version"])


def policy_fields() -> dict[str, dict[str, str]]:
    """`- Field: value` lines of docs/change-management.md, by `##` section."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in CHANGE_MANAGEMENT.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip().lower(), {})
        elif current is not None and (match := re.match(r"^- ([^:]+): (.+)$", line)):
            current[match[1].strip().lower()] = match[2].strip()
    return sections


def test_change_management_states_adr_freeze_and_deprecation_window(evidence: Any) -> None:
    policy = policy_fields()
    adr = policy.get("architecture decision records", {})
    assert adr.get("required") == "yes", adr
    freeze = policy.get("release freeze", {})
    assert freeze.get("code freeze before release") == "yes", freeze
    assert re.match(r"^\d+ (working )?days?$", freeze.get("freeze length", "")), freeze
    window = policy.get("deprecation policy", {}).get("minimum deprecation window", "")
    days = re.match(r"^(\d+) days$", window)
    assert days and int(days[1]) >= 90, f"deprecation window {window!r} is not >= 90 days"
    versioning = policy.get("versioning", {})
    assert versioning.get("api version in path") == "/v1"
    assert versioning.get("hif version") == "hif-1"
    evidence.record(adr_required=adr["required"], freeze=freeze["freeze length"],
                    deprecation_window_days=int(days[1]))
