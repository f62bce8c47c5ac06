"""The gateway's endpoints stand alone: each reads the stack's services from the app's
state, so one route is tested with a stand-in for the services it uses, no stack."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from pytest_sidecar.stack.errors import ApiError, api_error_handler, http_error_handler
from pytest_sidecar.stack.gateway import ROUTES, ops, served_routes
from pytest_sidecar.stack.gateway.traces import status_view


def call(routes: list[Any], services: Any, method: str, path: str) -> httpx.Response:
    """One request to an app of just these routes, in process (ASGI, no socket)."""
    app = Starlette(routes=routes, exception_handlers={
        ApiError: api_error_handler, HTTPException: http_error_handler})
    app.state.services = services

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as client:
            return await client.request(method, path)

    return asyncio.run(send())


def test_readyz_alone_names_the_failing_dependency() -> None:
    async def readiness() -> dict[str, bool]:
        return {"status_store": False, "upstream": True, "explainer": True}

    services = SimpleNamespace(readiness=readiness)
    response = call(ops.ROUTES, services, "GET", "/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "not_ready"
    assert response.json()["details"]["failing"] == ["status_store"]
    refused = call(ops.ROUTES, services, "POST", "/readyz")  # the router's own, as JSON
    assert (refused.status_code, refused.json()["code"]) == (405, "method_not_allowed")
    assert {m.strip() for m in refused.headers["allow"].split(",")} == {"GET", "HEAD"}


def test_the_status_view_never_shows_the_tenant_or_internal_fields() -> None:
    record = {"trace_id": "t1", "tenant_id": "tenant-a", "state": "queued",
              "request_id": "r1", "completion_id": "c1", "expires_at": 1.0}
    view = status_view(record)
    assert view["trace_id"] == "t1" and view["state"] == "queued"
    assert not {"tenant_id", "request_id", "completion_id", "expires_at"} & set(view)


def test_the_route_table_is_what_the_target_file_lists() -> None:
    listed = served_routes()
    assert len(listed) == len(ROUTES) == len(set(listed))
    assert "POST /v1/chat/completions" in listed and "DELETE /v1/traces/{trace_id}" in listed
