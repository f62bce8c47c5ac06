"""Who a request is for (docs/contract.md §3): the tenant, the scopes and the subject a
token stands for. Its own module so the policies can name it without the authenticator."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    scopes: frozenset[str]
    subject: str
