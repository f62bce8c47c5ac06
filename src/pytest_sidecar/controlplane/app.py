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
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import history, readonly
from .auth import ApiError, Authenticator
from .launch import LocalLauncher, RequestError, parse_request
from .runs import QueueFull, RunManager
from .settings import Settings
from .store import ACTIVE, Store

RUN_ID = re.compile(r"^[0-9a-f]{12}$")
REPORT_FILES = {"json": ("latest/sidecar-report.json", "application/json"),
                "md": ("latest/sidecar-report.md", "text/markdown; charset=utf-8"),
                "html": ("report.html", "text/html; charset=utf-8")}
HISTORY_RUNS = 50
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                    "style-src 'self'; script-src 'self'; frame-ancestors 'none'"}

Handler = Callable[[Request], Awaitable[Response]]


def create_app(settings: Settings, launcher: Any = None) -> Starlette:
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
    token and scope first and renders an ApiError as its JSON body."""

    def __init__(self, settings: Settings, store: Store, manager: RunManager) -> None:
        self.settings, self.store, self.manager = settings, store, manager
        self.auth = Authenticator(settings.auth_mode, settings.tokens)

    def routes(self) -> list[Any]:
        manifests, scoped = self.settings.manifests, self.scoped
        return [
            Route("/", self.index),
            Route("/api/config", scoped("tests.read", self.config)),
            Route("/api/testruns", scoped("tests.run", self.create_run), methods=["POST"]),
            Route("/api/testruns", scoped("tests.read", self.list_runs), methods=["GET"]),
            Route("/api/testruns/{run_id}", scoped("tests.read", self.get_run)),
            Route("/api/testruns/{run_id}/cancel", scoped("tests.run", self.cancel_run),
                  methods=["POST"]),
            Route("/api/testruns/{run_id}/events", scoped("tests.read", self.events)),
            Route("/api/testruns/{run_id}/report.{fmt:str}", scoped("tests.read", self.report)),
            Route("/api/reports/export", scoped("tests.read", self.export)),
            Route("/api/history/tests", scoped("tests.read", self.test_history)),
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
            WebSocketRoute("/ws/testruns/{run_id}/stream", self.stream_ws),
            Mount("/static", StaticFiles(directory=str(static_dir())), name="static"),
        ]

    def scoped(self, scope: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                self.auth.require(request.headers.get("authorization"), scope)
                return await handler(request)
            except ApiError as exc:
                return error(exc)
        return endpoint

    def known_run(self, run_id: str) -> dict[str, Any]:
        run = self.store.run(run_id) if RUN_ID.match(run_id) else None
        if run is None:
            raise ApiError(404, "run_not_found", "no such run")
        return run

    async def read_json(self, request: Request) -> Any:
        """The JSON body, at most max_body_bytes (counted as it arrives: a lying or
        missing Content-Length does not get past it)."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "body_too_large", f"at most {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, "body_too_large", f"at most {limit} bytes")
        if not body:
            return {}
        try:
            return json.loads(body)
        except ValueError:
            raise ApiError(400, "invalid_json", "the body is not JSON") from None

    # Runs

    async def create_run(self, request: Request) -> Response:
        try:
            run = self.manager.submit(parse_request(await self.read_json(request),
                                                    self.settings))
        except RequestError as exc:
            raise ApiError(422, "invalid_request", f"{exc.field}: {exc}") from None
        except QueueFull as exc:
            raise ApiError(429, "queue_full", str(exc), {"Retry-After": "30"}) from None
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
        if request.path_params["fmt"] not in REPORT_FILES:
            raise ApiError(404, "not_found", "reports are report.json, .md and .html")
        name, media = REPORT_FILES[request.path_params["fmt"]]
        path = os.path.join(run["report_dir"], name)
        if not os.path.isfile(path):
            raise ApiError(404, "report_not_ready", "this run has no such report (yet)")
        return FileResponse(path, media_type=media)

    async def export(self, request: Request) -> Response:
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "md"):
            raise ApiError(422, "invalid_request", "format: json or md")
        wanted = request.query_params.get("run")
        runs = [self.known_run(wanted)] if wanted else self.store.runs(100)
        for run in runs:
            path = os.path.join(run["report_dir"], REPORT_FILES[fmt][0])
            if os.path.isfile(path):
                return FileResponse(path, media_type=REPORT_FILES[fmt][1])
        raise ApiError(404, "report_not_found", "no run with that report")

    # Live events

    async def events(self, request: Request) -> Response:
        run = self.known_run(request.path_params["run_id"])
        after = _last_event_id(request.headers.get("last-event-id")
                               or request.query_params.get("after"))
        return StreamingResponse(self.sse(run["id"], after), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    async def sse(self, run_id: str, after: int) -> AsyncIterator[str]:
        async for event_id, body in self.follow(run_id, after):
            if event_id is None:
                yield ": keep-alive\n\n"
            else:
                yield f"id: {event_id}\nevent: {body['type']}\ndata: {json.dumps(body)}\n\n"

    async def follow(self, run_id: str, after: int
                     ) -> AsyncIterator[tuple[int | None, dict[str, Any]]]:
        """The run's events after `after`: the stored history first, then live ones,
        up to the end; (None, {}) is a heartbeat."""
        bus = self.manager.bus
        queue = bus.subscribe(run_id)  # before the replay, so nothing falls in between
        try:
            last = after
            for event_id, body in self.store.events_after(run_id, after):
                last = event_id
                yield event_id, body
                if body.get("type") == "end":
                    return
            run = self.store.run(run_id)
            if run and run["state"] not in ACTIVE:
                # Finished, and the viewer has seen its end already (resumed past it),
                # or the end was stored just after the replay: send what is left, stop.
                for event_id, body in self.store.events_after(run_id, last):
                    yield event_id, body
                return
            while True:
                try:
                    event_id, body = await asyncio.wait_for(queue.get(),
                                                            self.settings.heartbeat_s)
                except TimeoutError:
                    yield None, {}
                    continue
                if event_id <= last:
                    continue
                last = event_id
                yield event_id, body
                if body.get("type") == "end":
                    return
        finally:
            bus.unsubscribe(run_id, queue)

    async def stream_ws(self, websocket: WebSocket) -> None:
        """The same events over a WebSocket ({"id": n, ...}); `?after=n` resumes."""
        run_id = websocket.path_params["run_id"]
        try:
            self.auth.require(websocket.headers.get("authorization"), "tests.read")
            self.known_run(run_id)
        except ApiError as exc:
            await websocket.send_denial_response(error(exc))
            return
        await websocket.accept()
        after = _last_event_id(websocket.query_params.get("after"))
        with contextlib.suppress(WebSocketDisconnect):
            async for event_id, body in self.follow(run_id, after):
                await websocket.send_json({"type": "heartbeat"} if event_id is None
                                          else {"id": event_id, **body})
            await websocket.close()

    # History

    async def test_history(self, request: Request) -> Response:
        runs = _bounded(request.query_params.get("runs"), HISTORY_RUNS, 1, 1000)
        rows = self.store.outcome_history(runs)
        return JSONResponse({"runs": len({r[1] for r in rows}),
                             "flaky": history.flaky_tests(rows)})

    async def slo_history(self, request: Request) -> Response:
        runs = _bounded(request.query_params.get("runs"), HISTORY_RUNS, 1, 1000)
        gates = [{"id": r["id"], "seq": r["seq"], "state": r["state"], "gate": r["gate"]}
                 for r in reversed(self.store.runs(runs))]
        return JSONResponse({"trends": history.slo_trends(self.store.slo_history(runs)),
                             "gates": gates})

    # The other §9 routes

    async def config(self, request: Request) -> Response:
        return JSONResponse({"targets": list(self.settings.targets),
                             "suites": {k: list(v) for k, v in self.settings.suites.items()},
                             "gate": self.settings.gate.as_dict(),
                             "auth_mode": self.settings.auth_mode})

    async def metrics(self, request: Request) -> Response:
        """Scrape configured targets only: a body naming any other URL is refused
        before anything is fetched (no SSRF through the dashboard)."""
        body = await self.read_json(request)
        configured = _metrics_endpoints(self.settings)
        asked = body.get("endpoints") if isinstance(body, dict) else None
        if asked is not None and (not isinstance(asked, list) or any(
                u not in configured.values() for u in asked)):
            raise ApiError(403, "endpoint_not_configured",
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

    async def http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "error")
        return JSONResponse({"code": code, "message": code.replace("_", " ")},
                            status_code=status)


def launcher_for(settings: Settings) -> Any:
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


def error(exc: ApiError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status,
                        headers=exc.headers)


def public(run: dict[str, Any]) -> dict[str, Any]:
    """A run as the API shows it: no server paths."""
    return {k: v for k, v in run.items() if k != "report_dir"}


def static_dir() -> Any:
    return resources.files("pytest_sidecar.controlplane").joinpath("static")


def _last_event_id(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def _bounded(text: str | None, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ApiError(422, "invalid_request", f"a whole number from {low} to {high}")
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
