"""The stack's settings: read from the environment, refused with a clear error."""

from __future__ import annotations

import json

import pytest

from pytest_sidecar.stack.settings import ENV_VARS, StackSettingError, from_env


def test_unknown_auth_mode_refuses_to_start() -> None:
    with pytest.raises(StackSettingError, match="AUTH_MODE='open': valid: static, none"):
        from_env("/tmp/x", {"AUTH_MODE": "open"})


def test_token_table_errors_never_echo_a_token() -> None:
    with pytest.raises(StackSettingError) as caught:
        from_env("/tmp/x", {"AUTH_TOKENS_JSON": json.dumps({"sct_topsecret": {"scopes": []}})})
    assert "sct_topsecret" not in str(caught.value) and "entry #1" in str(caught.value)


def test_ttl_seconds_override_and_bad_numbers() -> None:
    assert from_env("/tmp/x", {"TRACE_TTL_SECONDS": "2"}).ttl_s == 2.0
    assert from_env("/tmp/x", {"TRACE_TTL_DAYS": "1"}).ttl_s == 86400
    assert from_env("/tmp/x", {}).ttl_s == 7 * 86400
    with pytest.raises(StackSettingError, match="EXPLAINER_WORKERS='many': not a number"):
        from_env("/tmp/x", {"EXPLAINER_WORKERS": "many"})


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


def test_every_setting_is_one_row_of_the_table() -> None:
    """Each field of StackSettings but the state directory is filled by SETTINGS, whose
    defaults are the dataclass's; durations inside are seconds, named `_s`."""
    from dataclasses import fields

    from pytest_sidecar.stack.settings import SETTINGS, StackSettings

    named = {f.name for f in fields(StackSettings)} - {"state_dir"}
    assert {s.field for s in SETTINGS} == named
    defaults = StackSettings(state_dir="/tmp/x")
    for setting in SETTINGS:
        if setting.env != "TRACE_TTL_SECONDS":  # the second row of ttl_s
            assert getattr(defaults, setting.field) == setting.default, setting.field
    assert not [name for name in named if name.endswith(("_ms", "_seconds", "_days"))]
    assert from_env("/tmp/x", {"FAKE_UPSTREAM_LATENCY_MS": "250"}).fake_latency_s == 0.25
