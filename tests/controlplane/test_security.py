"""The control plane's guard rails: the scope matrix over every route, the gateway's
401/403 rules, path traversal, SSRF through metrics aggregation, oversized bodies, a
bounded and scrubbed audit search, and no token in any output."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Route

from pytest_sidecar.controlplane.app import create_app
from pytest_sidecar.controlplane.settings import Settings

from .conftest import ADMIN, NO_SCOPE, SCOPES, TOKENS, ControlPlane, launch, wait_state

# (method, path, scope): every route of the API, and the scope it needs (CONTRACT §9).
ROUTES = [
    ("GET", "/api/config", "tests.read"),
    ("POST", "/api/testruns", "tests.run"),
    ("GET", "/api/testruns", "tests.read"),
    ("GET", "/api/testruns/{run_id}", "tests.read"),
    ("POST", "/api/testruns/{run_id}/cancel", "tests.run"),
    ("GET", "/api/testruns/{run_id}/events", "tests.read"),
    ("GET", "/api/testruns/{run_id}/report.{fmt:str}", "tests.read"),
    ("GET", "/api/testruns/{run_id}/log", "tests.read"),
    ("GET", "/api/reports/export", "tests.read"),
    ("GET", "/api/history/tests", "tests.read"),
    ("GET", "/api/history/test", "tests.read"),
    ("GET", "/api/history/slo", "tests.read"),
    ("POST", "/api/metrics/aggregate", "observability.read"),
    ("GET", "/api/helm/checks", "deployments.read"),
    ("GET", "/api/argocd/apps", "deployments.read"),
    ("GET", "/api/keda/scalers", "autoscaling.read"),
    ("GET", "/api/karpenter/nodepools", "autoscaling.read"),
    ("POST", "/api/compliance/openapi/check", "compliance.read"),
    ("POST", "/api/compliance/hif/validate", "compliance.read"),
    ("GET", "/api/audit/search", "security.read"),
]


def test_the_matrix_names_every_api_route_of_the_app(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=str(tmp_path)))
    routes = [route for route in app.routes if isinstance(route, Route)]
    served = {(method, route.path) for route in routes
              if route.path.startswith("/api/") for method in (route.methods or ())
              if method != "HEAD"}
    # The session route takes any valid token: test_a_session_cookie_reads_and_never_writes
    sessions = {(m, "/api/session") for m in ("GET", "POST", "DELETE")}
    assert served == {(m, p) for m, p, _ in ROUTES} | sessions


def test_a_session_cookie_reads_and_never_writes(control_plane: ControlPlane) -> None:
    """POST /api/session with a bearer token sets an HttpOnly, SameSite=Strict cookie for
    the browser session; GET routes accept it in place of the header, writes do not; a
    sign-out ends it. The token is never in the cookie."""
    with control_plane.client() as admin:
        run_id = launch(admin)
        wait_state(admin, run_id, ("passed", "failed"))
        opened = admin.post("/api/session")
    assert opened.status_code == 201 and opened.json()["subject"]
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Max-Age" not in cookie and "expires" not in cookie.lower()
    assert ADMIN not in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    with control_plane.client(None) as browser:
        browser.cookies.set("sidecar_session", value)
        assert browser.get("/api/session").json()["subject"] == opened.json()["subject"]
        assert browser.get("/api/testruns").status_code == 200
        page = browser.get(f"/api/testruns/{run_id}/report.html")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == "sandbox allow-scripts"
        markdown = browser.get(f"/api/testruns/{run_id}/report.md", params={"download": "1"})
        assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
        assert markdown.headers["content-disposition"] == (
            f'attachment; filename="{run_id}-report.md"')
        assert "passed" in browser.get(f"/api/testruns/{run_id}/log").text
        assert browser.post("/api/testruns", json={}).status_code == 401  # no header
        assert browser.delete("/api/session").status_code == 204
        assert browser.get("/api/testruns").status_code == 401
    with control_plane.client("cp-unknown-token") as stranger:
        assert stranger.post("/api/session").status_code == 403


def test_every_route_answers_401_403_or_serves_by_scope(control_plane: ControlPlane) -> None:
    """No token: 401 with WWW-Authenticate. An unknown token: 403. A token without the
    route's scope: 403 missing_scope. The route's own scope: neither."""
    with control_plane.client() as admin:
        run_id = launch(admin)
        wait_state(admin, run_id, ("passed", "failed"))
    checked = 0
    for method, path, scope in ROUTES:
        url = path.replace("{run_id}", run_id).replace("{fmt:str}", "json")
        body: dict[str, object] | None = {} if method == "POST" else None
        for token, expected in ((None, 401), ("cp-unknown-token", 403), (NO_SCOPE, 403),
                                *((f"cp-only-{s}", 403) for s in SCOPES if s != scope)):
            with control_plane.client(token) as client:
                answer = client.request(method, url, json=body)
            assert answer.status_code == expected, (method, path, token, answer.status_code)
            assert answer.json()["code"] in ("unauthorized", "forbidden", "missing_scope")
            if expected == 401:
                assert answer.headers.get("www-authenticate") == "Bearer"
            checked += 1
        if path.endswith(("/cancel", "/api/testruns")) and method == "POST":
            continue  # would start or stop a run; the scope is proven by the 403s
        with control_plane.client(f"cp-only-{scope}") as client:
            answer = client.request(method, url, json=body) if not path.endswith("/events") \
                else client.get(url, params={"after": 10 ** 6}, timeout=2)
        assert answer.status_code not in (401, 403), (method, path, answer.text[:200])
    assert checked == len(ROUTES) * (3 + len(SCOPES) - 1)


@pytest.mark.parametrize("path", [
    "/api/testruns/..%2F..%2Fetc%2Fpasswd", "/api/testruns/../../etc/passwd/report.json",
    "/api/testruns/0123456789ab/report.json", "/api/testruns/%2e%2e/report.md",
    "/api/reports/export?run=../../../etc/passwd", "/static/../app.py",
    "/static/%2e%2e/store.py", "/api/testruns/ABCDEF012345/report.json"])
def test_path_traversal_is_a_404(control_plane: ControlPlane, path: str) -> None:
    with control_plane.client() as client:
        answer = client.get(path)
        assert answer.status_code == 404, (path, answer.status_code, answer.text[:100])
        assert "root:" not in answer.text and "import" not in answer.text


def test_metrics_aggregation_never_fetches_an_unconfigured_url(
        control_plane: ControlPlane) -> None:
    """A listener on 127.0.0.2 stands for an internal service: asked to scrape it, the
    control plane refuses with 403 and never connects."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    connections = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            connections.append(listener.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        with control_plane.client() as client:
            for endpoints in ([f"http://127.0.0.2:{port}/metrics"],
                              ["http://169.254.169.254/latest/meta-data/"],
                              ["file:///etc/passwd"], "http://127.0.0.2/"):
                answer = client.post("/api/metrics/aggregate", json={"endpoints": endpoints})
                assert answer.status_code == 403, answer.text
                assert answer.json()["code"] == "endpoint_not_configured"
            thread.join()
        assert not connections, "the control plane connected to an unconfigured URL"
        with control_plane.client() as client:  # the embedded target has no endpoint
            assert client.post("/api/metrics/aggregate").json() == {"endpoints": []}
    finally:
        listener.close()


def test_bodies_are_bounded_and_malformed_ones_are_json_errors(
        control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        big = client.post("/api/compliance/hif/validate", content=b"[" + b"1," * 40000 + b"1]",
                          headers={"content-type": "application/json"})
        assert big.status_code == 413 and big.json()["code"] == "body_too_large"

        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b" " * 1024  # no Content-Length: counted as it arrives

        streamed = client.post("/api/compliance/hif/validate", content=chunks())
        assert streamed.status_code == 413
        broken = client.post("/api/testruns", content=b"{not json",
                             headers={"content-type": "application/json"})
        assert broken.status_code == 400 and broken.json()["code"] == "invalid_json"
        assert client.get("/api/nothing-here").json()["code"] == "not_found"
        assert client.delete("/api/testruns").status_code == 405


def test_audit_search_is_bounded_scrubbed_and_reads_only_its_file(
        control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        found = client.get("/api/audit/search", params={"trace_id": "t1"}).json()
        assert [line["event"] for line in found["lines"]] == ["trace.complete", "chat.submit"]
        snippet = found["lines"][1]["snippet"]
        assert "jane.doe@example.com" not in snippet and "[EMAIL]" in snippet
        assert found["lines"][1]["trace_id"] == "t1", "ids are never scrubbed"
        assert client.get("/api/audit/search", params={"limit": 10 ** 6}).status_code == 422
        other = client.get("/api/audit/search", params={"path": "/etc/passwd", "q": "root"})
        assert other.json()["lines"] == [], "only the configured audit log is read"


def test_the_read_only_routes_answer_from_the_projects_libraries(
        control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        hif = client.post("/api/compliance/hif/validate", json={"nodes": []}).json()
        assert hif["valid"] is False and hif["errors"]
        openapi = client.post("/api/compliance/openapi/check").json()
        assert openapi["ok"] is True and openapi["paths"] > 5, openapi
        for path in ("/api/helm/checks", "/api/argocd/apps", "/api/keda/scalers",
                     "/api/karpenter/nodepools"):
            assert client.get(path).status_code == 200, path


def test_no_token_reaches_the_output_or_the_store(control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        run_id = launch(client)
        wait_state(client, run_id, ("passed", "failed"))
        client.get("/api/testruns", headers={"Authorization": "Bearer cp-unknown-secret"})
    control_plane.stop()
    written = "".join(control_plane.output)
    for path in control_plane.data_dir.rglob("*"):
        if path.is_file():
            written += path.read_bytes().decode("utf-8", errors="replace")
    assert run_id in written, "presence first: the run's own files were read"
    for token in (*TOKENS, "cp-unknown-secret"):
        assert token not in written, "a token was written"
    assert ADMIN not in written
