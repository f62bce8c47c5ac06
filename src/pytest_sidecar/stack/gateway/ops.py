"""The operator's routes (CONTRACT §2.10): liveness, readiness and metrics, of the gateway
and of the explainer process's own port."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ApiError
from ..metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .requests import services_of


async def metrics(request: Request) -> Response:
    return Response(services_of(request).metrics.exposition(),
                    media_type=METRICS_CONTENT_TYPE)


async def healthz(request: Request) -> Response:
    services = services_of(request)
    if services.policies.healthz_follows_readiness and not all(
            (await services.readiness()).values()):
        return JSONResponse({"status": "degraded"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks = await services_of(request).readiness()
    failing = [name for name, ok in checks.items() if not ok]
    if failing:
        raise ApiError(503, "not_ready", f"not ready: {', '.join(failing)} unavailable",
                       details={"checks": checks, "failing": failing})
    return JSONResponse({"status": "ready", "checks": checks})


async def explainer_metrics(request: Request) -> Response:
    return Response(request.app.state.explainer.metrics.exposition(),
                    media_type=METRICS_CONTENT_TYPE)


async def explainer_healthz(request: Request) -> Response:
    consuming = request.app.state.explainer.consuming()
    return JSONResponse({"status": "ok" if consuming else "stalled"},
                        status_code=200 if consuming else 503)


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
EXPLAINER_ROUTES = [
    Route("/metrics", explainer_metrics, methods=["GET"]),
    Route("/healthz", explainer_healthz, methods=["GET"]),
]
