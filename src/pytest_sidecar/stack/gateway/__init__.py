"""The gateway: OpenAI-compatible chat plus the trace API (CONTRACT §2), as a Starlette app.

One module per concern holds its endpoints (chat, traces, webhooks, explanation, ops);
each reads the stack's services from `request.app.state`, so an endpoint is tested with
any app that carries them. Shared request handling (auth, rate limits, bodies, explain
headers, tenant isolation) is in requests.py. ROUTES is the one route table: the app
serves it and the target file lists it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from ..audit import AuditMiddleware
from ..cors import CorsMiddleware
from ..errors import ApiError, api_error_handler, http_error_handler
from ..logs import AccessLogMiddleware
from ..metrics import MetricsMiddleware
from ..middleware import CorrelationMiddleware, InternalErrorMiddleware
from ..rewrite import Rewrite, RewriteMiddleware
from ..services import GatewayServices
from ..variants import Variant, seamed
from ..variants import parse as parse_variants
from . import chat, explanation, models, ops, traces, webhooks

ROUTES: tuple[Route, ...] = (*chat.ROUTES, *models.ROUTES, *explanation.ROUTES, *traces.ROUTES,
                             *webhooks.ROUTES, *ops.ROUTES)


def served_routes(routes: Iterable[Route] = ROUTES) -> list[str]:
    """'METHOD /path' for every route (HEAD is implied by GET)."""
    return sorted(f"{method} {route.path}" for route in routes
                  for method in (route.methods or ()) if method != "HEAD")


def routes_of(variants: Iterable[Variant] = ()) -> list[Route]:
    """The contract's routes and those the allowed variations add."""
    return [*ROUTES, *(route for variant in variants for route in variant.routes)]


def create_gateway(services: GatewayServices) -> Starlette:
    """App factory: the gateway bound to one set of stack services, built from its route
    and middleware lists; an allowed variation adds routes or a response rewrite here."""
    variants = parse_variants(services.settings.variants)
    app = Starlette(routes=routes_of(variants), exception_handlers={
        ApiError: api_error_handler, HTTPException: http_error_handler})
    app.state.services = services
    rewrites = [item.rewrite for item in seamed(services.settings.variants,
                                                 services.settings.defects) if item.rewrite]
    # Bodies are rewritten innermost, so the audit and correlation layers see the result;
    # headers outermost, so they see every header the other layers set (CORS's too).
    for rewrite in rewrites:
        if rewrite.body or rewrite.event_line:
            app.add_middleware(RewriteMiddleware, rewrite=replace(rewrite, headers=None))
    # Innermost: an unexpected exception becomes the contract's JSON 500 here, inside the
    # correlation, CORS and audit layers, so even that answer carries its ids (§2).
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(AuditMiddleware, auditor=services.auditor,
                       refusals=services.policies.audit_refusals)
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    app.add_middleware(CorsMiddleware, origins=services.settings.cors_origins,
                       allowed=services.policies.origin_allowed)
    app.add_middleware(CorrelationMiddleware,  # preflights get ids too
                       echo=services.policies.echo_client_trace_ids)
    for rewrite in rewrites:
        if rewrite.headers:
            app.add_middleware(RewriteMiddleware, rewrite=Rewrite(headers=rewrite.headers))
    return app
