"""The operator's routes (CONTRACT §2.10): the gateway's liveness, readiness and metrics
(the explainer process serves its own: explainer_process.py)."""

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


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
