"""Static bearer-token authentication with scopes (CONTRACT §3).

The tenant comes only from the token. Comparison is constant-time over every known
token, so timing reveals neither which token matched nor how much of one did.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from .errors import ApiError
from .policies import Policies
from .principal import Principal
from .settings import TokenInfo

__all__ = ["ANONYMOUS", "READ", "WRITE", "Authenticator", "Principal"]

READ, WRITE = "traces:read", "traces:write"
ANONYMOUS = Principal("default", frozenset({READ, WRITE}), "anonymous")


class Authenticator:
    """Resolves the Authorization header to a Principal, or raises the contract's error."""

    def __init__(self, mode: str, tokens: Mapping[str, TokenInfo],
                 policies: Policies | None = None) -> None:
        self.mode, self.policies = mode, policies or Policies()
        self._tokens = [(token.encode(), info) for token, info in tokens.items()]

    def authenticate(self, authorization: str | None, query: Mapping[str, str]) -> Principal:
        authorization = self.policies.credentials(authorization, query)
        if self.mode == "none":
            return ANONYMOUS
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            if self.policies.serve_without_token:  # what no gateway should do (§3)
                return ANONYMOUS
            raise ApiError(401, "unauthorized", "missing or malformed bearer token",
                           headers={"WWW-Authenticate": "Bearer"})
        presented = credential.strip().encode()
        found: TokenInfo | None = None
        for known, info in self._tokens:
            if hmac.compare_digest(known, presented):
                found = info
        if found is None:
            raise self.policies.unknown_token()
        return Principal(found.tenant_id, found.scopes, found.subject)

    @staticmethod
    def require(principal: Principal, scope: str) -> None:
        if scope not in principal.scopes:
            raise ApiError(403, "missing_scope", f"token lacks scope {scope}")
