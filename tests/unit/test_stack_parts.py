"""Stack settings, auth and text helpers."""

from __future__ import annotations

import json

import pytest

from pytest_sidecar.client import SseEvent, parse_sse
from pytest_sidecar.stack.auth import Authenticator
from pytest_sidecar.stack.errors import ApiError
from pytest_sidecar.stack.settings import StackSettingError, TokenInfo, from_env
from pytest_sidecar.stack.text import fake_completion, sentences, tokenize


def test_unknown_auth_mode_refuses_to_start() -> None:
    with pytest.raises(StackSettingError, match="AUTH_MODE='open': valid: static, none"):
        from_env("/tmp/x", {"AUTH_MODE": "open"})


def test_token_table_errors_never_echo_a_token() -> None:
    with pytest.raises(StackSettingError) as caught:
        from_env("/tmp/x", {"AUTH_TOKENS_JSON": json.dumps({"sct_topsecret": {"scopes": []}})})
    assert "sct_topsecret" not in str(caught.value) and "entry #1" in str(caught.value)


def test_ttl_seconds_override_and_bad_numbers() -> None:
    assert from_env("/tmp/x", {"TRACE_TTL_SECONDS": "2"}).ttl_seconds == 2.0
    assert from_env("/tmp/x", {}).ttl_seconds == 7 * 86400
    with pytest.raises(StackSettingError, match="EXPLAINER_WORKERS='many': not a number"):
        from_env("/tmp/x", {"EXPLAINER_WORKERS": "many"})


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


def test_fake_completions_are_deterministic_and_sized() -> None:
    assert fake_completion("p", "m", None) == fake_completion("p", "m", None)
    assert fake_completion("p", "m", None) != fake_completion("q", "m", None)
    assert len(tokenize(fake_completion("p", "m", 123))) == 123
    assert len(sentences(fake_completion("p", "m", None))) >= 2


def test_sse_parsing() -> None:
    lines = ["id: 1", "event: status_update", 'data: {"state": "running"}', "",
             ": keep-alive", "", "id: 2", "event: complete", "data: {}", ""]
    items = list(parse_sse(iter(lines)))
    assert items == [SseEvent("status_update", '{"state": "running"}', "1"), ": keep-alive",
                     SseEvent("complete", "{}", "2")]


class Recording(dict[str, str]):
    """An environment that remembers which variables were looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def test_env_vars_lists_exactly_what_the_stack_reads() -> None:
    from pytest_sidecar.stack.settings import ENV_VARS

    env = Recording()
    env.update({"AUTH_TOKENS_JSON": json.dumps({"t": {"tenant_id": "a"}}),
                "RATE_LIMITS_JSON": "{}", "TRACE_TTL_SECONDS": "5"})
    from_env("/tmp/x", env)
    assert env.asked == set(ENV_VARS)


def test_only_the_json_status_backend_exists() -> None:
    assert from_env("/tmp/x", {"STATUS_JSON_PATH": "/var/lib/hif/s.json"}).status_json_path == \
        "/var/lib/hif/s.json"
    with pytest.raises(StackSettingError, match="STATUS_BACKEND='ddb': valid: json"):
        from_env("/tmp/x", {"STATUS_BACKEND": "ddb"})


def test_listening_sockets_turn_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on sockets created with proto IPPROTO_TCP; without
    it every response waited ~40 ms for the client's delayed ACK."""
    import socket

    from pytest_sidecar.stack.launcher import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()
