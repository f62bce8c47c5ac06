"""The gateway's error body: `{"code", "message"}` JSON, never a stack trace (CONTRACT §2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from .exceptions import StackError


class ApiError(StackError):
    """Raised by handlers; rendered as the contract's JSON error body."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})
        self.details = dict(details) if details else None

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class HtmlError(ApiError):
    """The upstream-error-html defect's answer: an HTML page where a JSON error is due."""

    def __init__(self, status: int, page: str) -> None:
        super().__init__(status, "html_page", "an HTML error page")
        self.page = page

    def response(self) -> JSONResponse:
        return HTMLResponse(self.page, status_code=self.status)  # type: ignore[return-value]


def not_found(trace_id: str) -> ApiError:
    """The one answer for a missing *or foreign* trace: same status, same body shape."""
    return ApiError(404, "trace_not_found", f"trace {trace_id} not found")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette handler: an ApiError as the contract's JSON body; its code is the audit
    line's reason."""
    assert isinstance(exc, ApiError)
    request.state.error_code = exc.code
    return exc.response()


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}
_HTTP_MESSAGES = {404: "no such route", 405: "method not allowed"}


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette handler: the router's own 404/405 in the contract's JSON body (a 405
    keeps its Allow header, §2.10)."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    request.state.error_code = code
    return ApiError(exc.status_code, code, _HTTP_MESSAGES.get(exc.status_code, "error"),
                    headers=exc.headers).response()
