"""Bearer tokens and scopes, with the gateway's rules (CONTRACT §3, §9): no or a
malformed Authorization header is 401 with WWW-Authenticate; an unknown token, or one
without the route's scope, is 403. Tokens are compared in constant time over every known
token and never logged or echoed."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from .settings import SCOPES, TokenInfo


class ApiError(Exception):
    """Rendered as the JSON error body `{"code", "message"}` with `status`."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]


EVERYONE = Principal("anonymous", frozenset(SCOPES))


class Authenticator:
    def __init__(self, mode: str, tokens: Mapping[str, TokenInfo]) -> None:
        self.mode = mode
        self._tokens = [(token.encode(), info) for token, info in tokens.items()]

    def principal(self, authorization: str | None) -> Principal:
        if self.mode == "none":
            return EVERYONE
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise ApiError(401, "unauthorized", "missing or malformed bearer token",
                           {"WWW-Authenticate": "Bearer"})
        presented = credential.strip().encode()
        found = None
        for known, info in self._tokens:
            if hmac.compare_digest(known, presented):
                found = info
        if found is None:
            raise ApiError(403, "forbidden", "unknown token")
        return Principal(found.subject, found.scopes)

    def require(self, authorization: str | None, scope: str) -> Principal:
        principal = self.principal(authorization)
        if scope not in principal.scopes:
            raise ApiError(403, "missing_scope", f"this token lacks scope {scope}")
        return principal
