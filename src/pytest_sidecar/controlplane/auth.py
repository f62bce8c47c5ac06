"""Bearer tokens and scopes, with the gateway's rules (CONTRACT §3, §9): no or a
malformed Authorization header is 401 with WWW-Authenticate; an unknown token, or one
without the route's scope, is 403. Tokens are compared in constant time over every known
token and never logged or echoed."""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from .exceptions import ControlPlaneError
from .settings import SCOPES, OperatorToken


class ControlPlaneApiError(ControlPlaneError):
    """Rendered as the JSON error body `{"code", "message"}` with `status`."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Operator:
    subject: str
    scopes: frozenset[str]


EVERYONE = Operator("anonymous", frozenset(SCOPES))


SESSION_COOKIE = "sidecar_session"


class Sessions:
    """Browser sessions: a random id (the cookie's value) -> the principal a bearer token
    proved. The token itself is never stored or sent back; the cookie is HttpOnly and
    SameSite=Strict, lives as long as the browser session, and is accepted on GET routes
    only, so a page of another site can neither read it nor write with it."""

    def __init__(self) -> None:
        self._by_id: dict[str, Operator] = {}
        self._lock = threading.Lock()

    def open(self, principal: Operator) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._by_id[session] = principal
        return session

    def principal(self, session: str | None) -> Operator | None:
        with self._lock:
            return self._by_id.get(session or "")

    def close(self, session: str | None) -> None:
        with self._lock:
            self._by_id.pop(session or "", None)


class OperatorAuthenticator:
    def __init__(self, mode: str, tokens: Mapping[str, OperatorToken]) -> None:
        self.mode = mode
        self._tokens = [(token.encode(), info) for token, info in tokens.items()]

    def principal(self, authorization: str | None) -> Operator:
        if self.mode == "none":
            return EVERYONE
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise ControlPlaneApiError(401, "unauthorized", "missing or malformed bearer token",
                                       {"WWW-Authenticate": "Bearer"})
        presented = credential.strip().encode()
        found = None
        for known, info in self._tokens:
            if hmac.compare_digest(known, presented):
                found = info
        if found is None:
            raise ControlPlaneApiError(403, "forbidden", "unknown token")
        return Operator(found.subject, found.scopes)

    def require(self, authorization: str | None, scope: str,
                session: Operator | None = None) -> Operator:
        """The caller with `scope`: its bearer token, else (GET routes) its session."""
        principal = session if authorization is None and session is not None \
            else self.principal(authorization)
        if scope not in principal.scopes:
            raise ControlPlaneApiError(403, "missing_scope", f"this token lacks scope {scope}")
        return principal
