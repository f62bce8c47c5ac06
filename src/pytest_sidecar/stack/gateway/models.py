"""GET /v1/models (docs/contract.md §2.12): OpenAI's model list, the models this gateway
serves, so an SDK's `models.list()` finds the one a deployment names."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..auth import READ
from .requests import principal, services_of

# The list carries no creation time of its own: the stack's start is as good as any.
_CREATED = 1_700_000_000


async def list_models(request: Request) -> Response:
    principal(request, READ)
    models = services_of(request).settings.served_models
    return JSONResponse({"object": "list", "data": [
        {"id": model, "object": "model", "created": _CREATED, "owned_by": "sidecar"}
        for model in models]})


ROUTES = [Route("/v1/models", list_models, methods=["GET"])]
