"""The gateway's error body: `{"code", "message"}` JSON, never a stack trace (CONTRACT §2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
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


def not_found(trace_id: str) -> ApiError:
    """The one answer for a missing *or foreign* trace: same status, same body shape."""
    return ApiError(404, "trace_not_found", f"trace {trace_id} not found")
