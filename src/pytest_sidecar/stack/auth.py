"""Static bearer-token authentication with scopes (CONTRACT §3).

The tenant comes only from the token. Comparison is constant-time over every known
token, so timing reveals neither which token matched nor how much of one did.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from . import defects
from .errors import ApiError
from .principal import Principal
from .settings import TokenInfo

__all__ = ["ANONYMOUS", "READ", "WRITE", "Authenticator", "Principal"]

READ, WRITE = "traces:read", "traces:write"
_QUERY_TOKEN_NAMES = ("access_token", "token", "api_key", "apikey", "key")


ANONYMOUS = Principal("default", frozenset({READ, WRITE}), "anonymous")


class Authenticator:
    """Resolves the Authorization header to a Principal, or raises the contract's error."""

    def __init__(self, mode: str, tokens: Mapping[str, TokenInfo]) -> None:
        self.mode = mode
        self._tokens = [(token.encode(), info) for token, info in tokens.items()]

    def authenticate(self, authorization: str | None, query_keys: set[str],
                     query_token: str | None = None) -> Principal:
        if defects.on("query-token-authenticates") and not authorization and query_token:
            authorization = f"Bearer {query_token}"
        elif query_keys & set(_QUERY_TOKEN_NAMES) and not defects.on("token-in-query-accepted"):
            raise ApiError(400, "token_in_query",
                           "credentials in the query string are refused; use Authorization")
        if self.mode == "none":
            return ANONYMOUS
        scheme, _, credential = (authorization or "").partition(" ")
        if (scheme.lower() != "bearer" or not credential.strip()) and \
                defects.on("tokens-not-checked"):
            return ANONYMOUS
        if scheme.lower() != "bearer" or not credential.strip():
            raise ApiError(401, "unauthorized", "missing or malformed bearer token",
                           headers={"WWW-Authenticate": "Bearer"})
        presented = credential.strip().encode()
        found: TokenInfo | None = None
        for known, info in self._tokens:
            if hmac.compare_digest(known, presented):
                found = info
        if found is None:
            if defects.on("unknown-token-401"):
                raise ApiError(401, "unauthorized", "invalid token",
                               headers={"WWW-Authenticate": "Bearer"})
            raise ApiError(403, "forbidden", "unknown token")
        return Principal(found.tenant_id, found.scopes, found.subject)

    @staticmethod
    def require(principal: Principal, scope: str) -> None:
        if scope not in principal.scopes:
            raise ApiError(403, "missing_scope", f"token lacks scope {scope}")
