"""POST /v1/traces/{id}/webhooks (CONTRACT §2.6): register a receiver of a trace's
terminal event; delivery is stack/webhooks.py's."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..auth import WRITE
from ..errors import ApiError
from ..ssrf import ForbiddenUrl
from ..webhooks import EVENTS
from .requests import owned, principal, read_json, services_of, validate


async def register(request: Request) -> Response:
    services = services_of(request)
    who = principal(request, WRITE)
    record = owned(request, request.path_params["trace_id"], who)
    body = await read_json(request)
    validate(body, "WebhookRequest")
    events = list(dict.fromkeys(body.get("events") or EVENTS))
    try:
        hook = await services.webhooks.register(record, body["url"], body.get("secret"),
                                                events)
    except ForbiddenUrl as exc:
        raise ApiError(422, "webhook_url_forbidden", f"webhook URL refused: {exc}") from None
    if services.policies.echo_webhook_secret:  # what no gateway should do (§2.6)
        hook = {**hook, "secret": body.get("secret")}
    return JSONResponse(hook, status_code=201)


ROUTES = [Route("/v1/traces/{trace_id}/webhooks", register, methods=["POST"])]
