"""API versioning (CONTRACT §2, §4): the target serves the contract's v1 routes that its
declarations require and no other API, its declared route table matches the contract
by template shape, and its graphs are HIF v1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_sidecar import Evidence, Traces
from pytest_sidecar.client import SidecarClient, request_head
from pytest_sidecar.contracts.routes import ROUTE_NEEDS, required_routes, route_key
from pytest_sidecar.outcomes import SkipReason, skip
from pytest_sidecar.target import Target

pytestmark = [pytest.mark.profile("core")]
# Paths the contract does not name. Serving one is allowed (a gateway may add routes such
# as /v1/version); a 2xx is reported as an advisory, so an operator knows what is exposed.
UNDOCUMENTED = [("GET", "/v2/chat/completions"), ("POST", "/v2/chat/completions"),
                ("GET", "/v1/traces"), ("GET", "/v1/admin"), ("GET", "/debug/vars"),
                ("GET", "/v1")]


def required(target: Target) -> dict[tuple[str, str], tuple[str, str]]:
    """The contract's routes this target must serve, given what it declares. /metrics is
    a gateway route only when the declared metrics URL is the gateway's own."""
    routes = required_routes(target.capabilities)
    if target.metrics_gateway != target.url + "/metrics":
        routes.pop(("GET", "/metrics"), None)
    return routes


@pytest.mark.clause("§2/contract-routes")
@pytest.mark.needs("route_table")
def test_the_route_table_holds_every_route_the_declarations_need(sidecar_target: Target,
                                                                 evidence: Evidence) -> None:
    served = {route_key(route) for route in sidecar_target.routes}
    documented = {route_key(key) for key in ROUTE_NEEDS}
    missing = sorted(set(required(sidecar_target)) - served)
    assert not missing, f"§2: declared capabilities need routes the table lacks: {missing}"
    for method, path in sorted(served - documented):  # allowed; said, not judged
        evidence.advise(f"serves {method} {path}, which the contract does not name")
    evidence.record(routes=len(served), compared_by="METHOD + template shape",
                    extra=len(served - documented))


def error_code(response: httpx.Response) -> str | None:
    """The `code` of a JSON error body, if there is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def concrete(path: str, trace_id: str, completion_id: str) -> str:
    return path.replace("{trace_id}", trace_id).replace("{completion_id}", completion_id)


@pytest.mark.clause("§2/contract-routes", "§2.10/metrics-route")
@pytest.mark.needs("chat")
def test_every_required_route_answers(
        sidecar_target: Target, gateway: SidecarClient, traces: Traces,
        evidence: Evidence) -> None:
    # Real ids when the target explains, so no route can rightly answer 404 but the graph
    # of a trace not complete yet (§2.4's own 404). Any state will do: a route is served
    # or it is not. The DELETE gets a trace of its own, so the webhook registered for
    # 'canceled' on the first is never delivered.
    trace_id, completion_id, doomed = "versioning-probe", "versioning-probe", "versioning-probe"
    if "explain" in sidecar_target.capabilities:
        opened = traces.open()
        trace_id = opened.trace_id
        completion_id = str(opened.response.json().get("id", completion_id))
        doomed = traces.open().trace_id
    answers, wrong = {}, []
    for method, path in sorted(required(sidecar_target).values()):
        body = None
        if method == "POST":
            body = ({"url": "https://93.184.216.34/hook", "events": ["canceled"]}
                    if path.endswith("/webhooks") else
                    {"model": gateway.model, "max_tokens": 1,
                     "messages": [{"role": "user", "content": "versioning"}]})
        asked = concrete(path, doomed if method == "DELETE" else trace_id, completion_id)
        response = request_head(gateway.http, method, asked, json=body)
        answers[f"{method} {path}"] = response.status_code
        not_ready = response.status_code == 404 and path.endswith("/graph") and \
            error_code(response) == "graph_not_ready"
        if response.status_code in (404, 405) and not not_ready:
            wrong.append(f"{method} {path}: {response.status_code}")
    assert not wrong, f"§2: routes the target's declarations require are not served: {wrong}"
    for method, path in UNDOCUMENTED:
        response = gateway.http.request(method, path)
        answers[f"{method} {path}"] = response.status_code
        if response.status_code < 400:
            evidence.advise(f"{method} {path}, which the contract does not name, answered "
                            f"{response.status_code}")
    evidence.record(answers=answers, trace_id=trace_id)


@pytest.mark.clause("§4/hif-schema")
@pytest.mark.needs("chat", "explain")
def test_runtime_graphs_are_hif_1(gateway: SidecarClient, traces: Traces,
                                  evidence: Evidence) -> None:
    trace_id = traces.complete().trace_id
    graph = gateway.graph(trace_id)
    assert graph.status_code == 200, f"§2.4: graph of a complete trace: {graph.text[:200]}"
    meta = graph.json().get("meta") or {}
    assert meta.get("version") == "hif-1", f"§4: meta.version of a v1 graph: {meta}"
    evidence.record(trace_id=trace_id, version=meta["version"])


def target_document(target: Target) -> tuple[dict[str, Any], str]:
    """The OpenAPI document the target file names (`openapi`: a path or URL). Only a
    declared one is judged: whatever a gateway serves at /openapi.json may document
    another API of its own (a proxy's admin routes), not this contract's."""
    import yaml

    if not target.openapi:
        skip(SkipReason.NOT_DECLARED, "the target file names no OpenAPI document of this API",
             "set openapi (a path or URL) in the target file", "§8")
    source = target.openapi
    try:
        if source.startswith(("http://", "https://")):
            response = httpx.get(source, timeout=10)
            response.raise_for_status()
            text = response.text
        else:
            text = Path(source).read_text(encoding="utf-8")
    except (OSError, httpx.HTTPError) as exc:
        pytest.fail(f"§8: the target's OpenAPI document {source} cannot be read: "
                    f"{type(exc).__name__}", pytrace=False)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        pytest.fail(f"§8: {source} is not YAML/JSON", pytrace=False)
    return document, source


@pytest.mark.clause("§8/openapi")
def test_the_targets_api_document_is_valid_openapi_with_only_v1(
        sidecar_target: Target, evidence: Evidence) -> None:
    from jsonschema.exceptions import ValidationError
    from openapi_spec_validator import validate
    from openapi_spec_validator.exceptions import OpenAPIError

    document, source = target_document(sidecar_target)
    try:
        validate(document)
    except (ValidationError, OpenAPIError) as exc:
        pytest.fail(f"§8: {source} is not valid OpenAPI: {str(exc).splitlines()[0]}",
                    pytrace=False)
    paths = list((document or {}).get("paths") or {})
    assert paths, f"§8: {source} documents no paths"
    other = [path for path in paths if not path.startswith("/v1/")]
    assert not other, f"§8: the API document has paths outside /v1: {other}"
    documented = {route_key((method, path)) for path, item in document["paths"].items()
                  for method in item if method.upper() in ("GET", "POST", "PUT", "PATCH",
                                                            "DELETE")}
    undocumented = sorted(key for key in required(sidecar_target) if key[1].startswith("/v1/")
                          and key not in documented)
    assert not undocumented, f"§8: routes the target serves are not in its document: " \
        f"{undocumented}"
    evidence.record(source=source, openapi=document.get("openapi"), paths=len(paths))
