"""The stack's bearer-token authentication and scopes."""

from __future__ import annotations

import pytest

from pytest_sidecar.stack.auth import Authenticator
from pytest_sidecar.stack.errors import ApiError
from pytest_sidecar.stack.settings import TokenInfo

AUTH = Authenticator("static", {
    "tok-write": TokenInfo("tA", frozenset({"traces:read", "traces:write"}), "w"),
    "tok-read": TokenInfo("tA", frozenset({"traces:read"}), "r"),
})


@pytest.mark.parametrize("header,status,code", [
    (None, 401, "unauthorized"),
    ("Basic abc", 401, "unauthorized"),
    ("Bearer ", 401, "unauthorized"),
    ("Bearer tok-unknown", 403, "forbidden"),
])
def test_auth_failures(header: str | None, status: int, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        AUTH.authenticate(header, {})
    assert (caught.value.status, caught.value.code) == (status, code)
    if status == 401:
        assert caught.value.headers == {"WWW-Authenticate": "Bearer"}


def test_scopes_and_query_tokens() -> None:
    reader = AUTH.authenticate("Bearer tok-read", {})
    assert reader.tenant_id == "tA"
    with pytest.raises(ApiError, match="lacks scope traces:write"):
        Authenticator.require(reader, "traces:write")
    with pytest.raises(ApiError) as caught:
        AUTH.authenticate("Bearer tok-write", {"access_token": "x"})
    assert caught.value.status == 400
