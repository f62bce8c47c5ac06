"""Toxiproxy's HTTP API over a FaultProxy (chaos/toxiproxy.py): its routes, status codes
(201 on create, 200 on toxic create, 204 on delete) and error body `{"error", "status"}`,
for bad bodies and unknown routes too."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .exceptions import ChaosError

VERSION = "2.12.0-sidecar"


class ToxiproxyApiError(ChaosError):
    """An answer of the API other than 2xx: Toxiproxy's `{"error", "status"}` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def address(value: Any, what: str) -> str:
    """A `host:port` (host may be empty: all interfaces), as Toxiproxy's listen and
    upstream are; anything else is a 400 before any socket is touched."""
    host, sep, port = str(value).rpartition(":") if isinstance(value, str) else ("", "", "")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ToxiproxyApiError(400, f"{what} {value!r} is not a host:port address")
    return f"{host}:{port}"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and methods answer in the API's own error shape."""
    status = int(getattr(exc, "status_code", 500))
    return error(status, str(getattr(exc, "detail", "")) or "internal error")


def _routes(fp: Any) -> list[Route]:
    async def body_of(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError as exc:
            raise ToxiproxyApiError(400, f"bad request body: {exc}") from None

    def handle(endpoint: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                answer: Response = await endpoint(request, request.path_params)
                return answer
            except ToxiproxyApiError as exc:
                return error(exc.status, str(exc))
            except (TypeError, ValueError, AttributeError) as exc:  # a body of odd shape
                return error(400, f"bad request body: {type(exc).__name__}")
        return wrapped

    async def proxies(request: Request, p: dict[str, str]) -> Response:
        if request.method == "GET":
            return JSONResponse({n: x.as_json() for n, x in fp.proxies.items()})
        return JSONResponse((await fp.create(await body_of(request))).as_json(), 201)

    async def populate(request: Request, p: dict[str, str]) -> Response:
        made = await fp.populate(await body_of(request))
        return JSONResponse({"proxies": [x.as_json() for x in made]}, 201)

    async def one(request: Request, p: dict[str, str]) -> Response:
        if request.method == "GET":
            return JSONResponse(fp.get(p["proxy"]).as_json())
        if request.method == "DELETE":
            await fp.get(p["proxy"]).stop()
            del fp.proxies[p["proxy"]]
            return Response(status_code=204)
        return JSONResponse((await fp.update(p["proxy"], await body_of(request))).as_json())

    async def toxics(request: Request, p: dict[str, str]) -> Response:
        if request.method == "GET":
            return JSONResponse(fp.get(p["proxy"]).as_json()["toxics"])
        return JSONResponse(fp.add_toxic(p["proxy"], await body_of(request)).as_json())

    async def toxic(request: Request, p: dict[str, str]) -> Response:
        found = fp.toxic(p["proxy"], p["toxic"])
        if request.method == "DELETE":
            del fp.get(p["proxy"]).toxics[found.name]
            return Response(status_code=204)
        if request.method in ("POST", "PATCH"):
            found = fp.update_toxic(p["proxy"], p["toxic"], await body_of(request))
        return JSONResponse(found.as_json())

    async def reset(request: Request, p: dict[str, str]) -> Response:
        await fp.reset()
        return Response(status_code=204)

    async def version(request: Request, p: dict[str, str]) -> Response:
        return JSONResponse({"version": VERSION})

    return [Route("/proxies", handle(proxies), methods=["GET", "POST"]),
            Route("/populate", handle(populate), methods=["POST"]),
            Route("/proxies/{proxy}", handle(one), methods=["GET", "POST", "PATCH", "DELETE"]),
            Route("/proxies/{proxy}/toxics", handle(toxics), methods=["GET", "POST"]),
            Route("/proxies/{proxy}/toxics/{toxic}", handle(toxic),
                  methods=["GET", "POST", "PATCH", "DELETE"]),
            Route("/reset", handle(reset), methods=["POST"]),
            Route("/version", handle(version), methods=["GET"])]


def app(fp: Any) -> Starlette:
    """The API app of a FaultProxy."""
    return Starlette(routes=_routes(fp), exception_handlers={
        HTTPException: _http_error, Exception: _http_error})
