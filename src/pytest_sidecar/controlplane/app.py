"""The control plane's HTTP API (CONTRACT §9) and its static web UI.

Every /api and /ws route declares its scope; errors are JSON `{"code", "message"}`;
bodies are bounded; files are served only from the run store's own runs; URLs are only
ever the configured targets'.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from . import history, readonly
from .auth import SESSION_COOKIE, ControlPlaneApiError, Operator, OperatorAuthenticator, Sessions
from .documents import LOG_FILE, REPORT_FILES, log_response, report_response
from .launch import Launcher, LocalLauncher, RequestError, parse_request
from .live import LiveEvents
from .runs import QueueFull, RunManager
from .settings import Settings
from .store import ACTIVE, Store

RUN_ID = re.compile(r"^[0-9a-f]{12}$")
HISTORY_RUNS = 50
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                    "style-src 'self'; script-src 'self'; frame-ancestors 'none'"}

Handler = Callable[[Request], Awaitable[Response]]


def create_app(settings: Settings, launcher: Launcher | None = None) -> Starlette:
    """The ASGI app; its lifespan opens the run workers and stops them (and their runs)."""
    store = Store(settings.database)
    manager = RunManager(settings, store, launcher or launcher_for(settings))
    api = Api(settings, store, manager)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await manager.start()
        try:
            yield
        finally:
            await manager.stop()
            store.close()

    app = Starlette(routes=api.routes(), lifespan=lifespan,
                    exception_handlers={HTTPException: api.http_error})
    app.state.manager, app.state.store = manager, store
    return app


class Api:
    """The route handlers. Each /api handler is wrapped by `scoped`, which checks the
    token and scope first and renders an ControlPlaneApiError as its JSON body."""

    def __init__(self, settings: Settings, store: Store, manager: RunManager) -> None:
        self.settings, self.store, self.manager = settings, store, manager
        self.auth = OperatorAuthenticator(settings.auth_mode, settings.tokens)
        self.sessions = Sessions()
        self.live = LiveEvents(settings, store, manager, self.auth, self.known_run)

    def routes(self) -> list[BaseRoute]:
        manifests, scoped = self.settings.manifests, self.scoped
        return [
            Route("/", self.index),
            Route("/favicon.ico", self.favicon),
            Route("/api/session", self.session, methods=["GET", "POST", "DELETE"]),
            Route("/api/config", scoped("tests.read", self.config)),
            Route("/api/testruns", scoped("tests.run", self.create_run), methods=["POST"]),
            Route("/api/testruns", scoped("tests.read", self.list_runs), methods=["GET"]),
            Route("/api/testruns/{run_id}", scoped("tests.read", self.get_run)),
            Route("/api/testruns/{run_id}/cancel", scoped("tests.run", self.cancel_run),
                  methods=["POST"]),
            Route("/api/testruns/{run_id}/events", scoped("tests.read", self.live.events)),
            Route("/api/testruns/{run_id}/report.{fmt:str}", scoped("tests.read", self.report)),
            Route("/api/testruns/{run_id}/log", scoped("tests.read", self.log)),
            Route("/api/reports/export", scoped("tests.read", self.export)),
            Route("/api/history/tests", scoped("tests.read", self.test_history)),
            Route("/api/history/test", scoped("tests.read", self.one_test_history)),
            Route("/api/history/slo", scoped("tests.read", self.slo_history)),
            Route("/api/metrics/aggregate", scoped("observability.read", self.metrics),
                  methods=["POST"]),
            Route("/api/helm/checks", scoped("deployments.read", read_only(
                lambda: readonly.helm_checks(manifests)))),
            Route("/api/argocd/apps", scoped("deployments.read", read_only(
                lambda: readonly.argocd_apps(manifests)))),
            Route("/api/keda/scalers", scoped("autoscaling.read", read_only(
                lambda: readonly.keda_scalers(manifests)))),
            Route("/api/karpenter/nodepools", scoped("autoscaling.read", read_only(
                lambda: readonly.karpenter_nodepools(manifests)))),
            Route("/api/compliance/openapi/check", scoped(
                "compliance.read", read_only(readonly.openapi_check)), methods=["POST"]),
            Route("/api/compliance/hif/validate", scoped("compliance.read", self.hif_validate),
                  methods=["POST"]),
            Route("/api/audit/search", scoped("security.read", self.audit_search)),
            WebSocketRoute("/ws/testruns/{run_id}/stream", self.live.stream_ws),
            Mount("/static", StaticFiles(directory=str(static_dir())), name="static"),
        ]

    def scoped(self, scope: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                self.auth.require(request.headers.get("authorization"), scope,
                                  self.session_of(request))
                return await handler(request)
            except ControlPlaneApiError as exc:
                return error(exc)
        return endpoint

    def session_of(self, request: Request) -> Operator | None:
        """The browser session's principal, on GET routes only (writes take a bearer
        header, so no other site's page can make a browser write with the cookie)."""
        if request.method not in ("GET", "HEAD"):
            return None
        return self.sessions.principal(request.cookies.get(SESSION_COOKIE))

    async def session(self, request: Request) -> Response:
        """POST with a bearer token: a session cookie for this browser; GET: who it is;
        DELETE: sign out."""
        try:
            if request.method == "POST":
                proved = self.auth.principal(request.headers.get("authorization"))
                opened = JSONResponse(_who(proved), status_code=201)
                opened.set_cookie(SESSION_COOKIE, self.sessions.open(proved),
                                  httponly=True, samesite="strict", path="/",
                                  secure=request.url.scheme == "https")
                return opened
            if request.method == "DELETE":
                self.sessions.close(request.cookies.get(SESSION_COOKIE))
                closed = Response(status_code=204)
                closed.delete_cookie(SESSION_COOKIE, path="/")
                return closed
            known = self.sessions.principal(request.cookies.get(SESSION_COOKIE))
            return JSONResponse(_who(known or self.auth.principal(
                request.headers.get("authorization"))))
        except ControlPlaneApiError as exc:
            return error(exc)

    def known_run(self, run_id: str) -> dict[str, Any]:
        run = self.store.run(run_id) if RUN_ID.match(run_id) else None
        if run is None:
            raise ControlPlaneApiError(404, "run_not_found", "no such run")
        return run

    async def read_json(self, request: Request) -> Any:
        """The JSON body, at most max_body_bytes (counted as it arrives: a lying or
        missing Content-Length does not get past it)."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ControlPlaneApiError(413, "body_too_large", f"at most {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ControlPlaneApiError(413, "body_too_large", f"at most {limit} bytes")
        if not body:
            return {}
        try:
            return json.loads(body)
        except ValueError:
            raise ControlPlaneApiError(400, "invalid_json", "the body is not JSON") from None

    # Runs

    async def create_run(self, request: Request) -> Response:
        try:
            run = self.manager.submit(parse_request(await self.read_json(request),
                                                    self.settings))
        except RequestError as exc:
            raise ControlPlaneApiError(422, "invalid_request", f"{exc.field}: {exc}") from None
        except QueueFull as exc:
            raise ControlPlaneApiError(429, "queue_full", str(exc), {"Retry-After": "30"}) from None
        return JSONResponse(public(run), status_code=202,
                            headers={"Location": f"/api/testruns/{run['id']}"})

    async def list_runs(self, request: Request) -> Response:
        return JSONResponse({"runs": [public(r) for r in self.store.runs(100)]})

    async def get_run(self, request: Request) -> Response:
        run = self.known_run(request.path_params["run_id"])
        return JSONResponse({**public(run), "tests": self.store.tests_of(run["id"]),
                             "causes": self.store.causes_of(run["id"])})

    async def cancel_run(self, request: Request) -> Response:
        run = self.known_run(request.path_params["run_id"])
        return JSONResponse({"id": run["id"], "state": self.manager.cancel(run["id"])})

    async def report(self, request: Request) -> Response:
        run = self.known_run(request.path_params["run_id"])
        fmt = request.path_params["fmt"]
        if fmt not in REPORT_FILES:
            raise ControlPlaneApiError(404, "not_found", "reports are report.json, .md and .html")
        path = os.path.join(run["report_dir"], REPORT_FILES[fmt][0])
        if not os.path.isfile(path):
            raise ControlPlaneApiError(404, "report_not_ready", "this run has no such report (yet)")
        return report_response(path, fmt, run["id"],
                               request.query_params.get("download") == "1")

    async def log(self, request: Request) -> Response:
        """pytest's output of the run, followed live while it runs."""
        run = self.known_run(request.path_params["run_id"])

        def active() -> bool:
            now = self.store.run(run["id"])
            return bool(now and now["state"] in ACTIVE)

        return log_response(os.path.join(run["report_dir"], LOG_FILE), active)

    async def export(self, request: Request) -> Response:
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "md"):
            raise ControlPlaneApiError(422, "invalid_request", "format: json or md")
        wanted = request.query_params.get("run")
        runs = [self.known_run(wanted)] if wanted else self.store.runs(100)
        for run in runs:
            path = os.path.join(run["report_dir"], REPORT_FILES[fmt][0])
            if os.path.isfile(path):
                return FileResponse(path, media_type=REPORT_FILES[fmt][1])
        raise ControlPlaneApiError(404, "report_not_found", "no run with that report")

    # History

    async def test_history(self, request: Request) -> Response:
        runs = _bounded(request.query_params.get("runs"), HISTORY_RUNS, 1, 1000)
        rows = self.store.outcome_history(runs)
        return JSONResponse({"runs": len({r[1] for r in rows}),
                             "flaky": history.flaky_tests(rows)})

    async def one_test_history(self, request: Request) -> Response:
        """One test across runs: outcome strip, durations, its first failure."""
        nodeid = request.query_params.get("nodeid", "")
        if not nodeid or len(nodeid) > 1000:
            raise ControlPlaneApiError(422, "invalid_request", "nodeid: the test's node id")
        runs = _bounded(request.query_params.get("runs"), HISTORY_RUNS, 1, 1000)
        rows = [{"seq": seq, "run": run_id, "outcome": outcome, "duration_ms": ms,
                 "reason": reason}
                for seq, run_id, outcome, ms, reason in self.store.test_history(nodeid, runs)]
        first = next((r for r in rows if r["outcome"] in ("failed", "error")), None)
        return JSONResponse({"nodeid": nodeid, "runs": rows, "first_failure": first})

    async def slo_history(self, request: Request) -> Response:
        runs = _bounded(request.query_params.get("runs"), HISTORY_RUNS, 1, 1000)
        gates = [{"id": r["id"], "seq": r["seq"], "state": r["state"], "gate": r["gate"]}
                 for r in reversed(self.store.runs(runs))]
        return JSONResponse({"trends": history.slo_trends(self.store.slo_history(runs)),
                             "figures": history.figure_trends(self.store.figure_history(runs)),
                             "gates": gates})

    # The other §9 routes

    async def config(self, request: Request) -> Response:
        from ..options import OPTIONS_BY_NAME
        from ..vocabulary.markers import GROUPS

        return JSONResponse({"targets": list(self.settings.targets),
                             "suites": {k: list(v) for k, v in self.settings.suites.items()},
                             "gate": self.settings.gate.as_dict(),
                             "auth_mode": self.settings.auth_mode,
                             # What the launch form offers and what a run gets by default.
                             "markers": list(GROUPS),
                             "load_defaults": {
                                 "duration": OPTIONS_BY_NAME["load_duration"].default,
                                 "rate": OPTIONS_BY_NAME["rate"].default}})

    async def metrics(self, request: Request) -> Response:
        """Scrape configured targets only: a body naming any other URL is refused
        before anything is fetched (no SSRF through the dashboard)."""
        body = await self.read_json(request)
        configured = _metrics_endpoints(self.settings)
        asked = body.get("endpoints") if isinstance(body, dict) else None
        if asked is not None and (not isinstance(asked, list) or any(
                u not in configured.values() for u in asked)):
            raise ControlPlaneApiError(403, "endpoint_not_configured",
                                       "only the configured targets' metrics endpoints are scraped")
        chosen = [(n, u) for n, u in configured.items() if asked is None or u in asked]
        return JSONResponse(await asyncio.to_thread(readonly.metrics_aggregate, chosen))

    async def hif_validate(self, request: Request) -> Response:
        return JSONResponse(readonly.hif_validate(await self.read_json(request)))

    async def audit_search(self, request: Request) -> Response:
        query = request.query_params
        filters = {k: query[k] for k in ("q", "event", "trace_id", "tenant_id", "request_id")
                   if query.get(k)}
        limit = _bounded(query.get("limit"), 50, 1, readonly.AUDIT_MAX_RESULTS)
        return JSONResponse(await asyncio.to_thread(
            readonly.audit_search, self.settings.audit_log, filters, limit))

    async def index(self, request: Request) -> Response:
        return FileResponse(str(static_dir() / "index.html"), headers=SECURITY_HEADERS)

    async def favicon(self, request: Request) -> Response:
        return FileResponse(str(static_dir() / "favicon.svg"), media_type="image/svg+xml")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "error")
        return JSONResponse({"code": code, "message": code.replace("_", " ")},
                            status_code=status)


def launcher_for(settings: Settings) -> Launcher:
    """The configured launcher: local subprocesses, or one Kubernetes Job per run."""
    if settings.launcher != "kubernetes":
        return LocalLauncher()
    from .kubernetes import JobSettings, KubernetesLauncher

    assert settings.k8s_image and settings.k8s_claim  # checked with the settings
    return KubernetesLauncher(JobSettings(
        settings.k8s_image, settings.k8s_namespace, settings.k8s_claim,
        os.path.abspath(settings.data_dir), settings.run_timeout_s))


def read_only(work: Callable[[], dict[str, Any]]) -> Handler:
    """A handler running `work` (file reads, renders) off the event loop."""
    async def handler(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(work))
    return handler


def _who(principal: Operator) -> dict[str, Any]:
    return {"subject": principal.subject, "scopes": sorted(principal.scopes)}


def error(exc: ControlPlaneApiError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status,
                        headers=exc.headers)


def public(run: dict[str, Any]) -> dict[str, Any]:
    """A run as the API shows it: no server paths."""
    return {k: v for k, v in run.items() if k != "report_dir"}


def static_dir() -> Any:
    return resources.files("pytest_sidecar.controlplane").joinpath("static")


def _bounded(text: str | None, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ControlPlaneApiError(422, "invalid_request", f"a whole number from {low} to {high}")
    return int(text)


def _metrics_endpoints(settings: Settings) -> dict[str, str]:
    """name -> metrics URL of each configured target that has one (a URL target's
    /metrics; a target file's declared metrics URLs). The embedded stack has none
    outside a run."""
    from ..target import load_target_file

    found = {}
    for name, spec in settings.targets.items():
        if "url" in spec:
            found[f"{name}:gateway"] = spec["url"].rstrip("/") + "/metrics"
        elif "target_file" in spec:
            try:
                target = load_target_file(spec["target_file"])
            except Exception:  # a broken target file is shown as no endpoint
                continue
            for which in ("gateway", "explainer"):
                url = getattr(target, f"metrics_{which}", None)
                if url:
                    found[f"{name}:{which}"] = url
    return found
