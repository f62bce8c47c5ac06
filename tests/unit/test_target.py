"""The target file: YAML/JSON parsing, ${ENV} substitution, schema errors, capabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_sidecar.target import (
    TargetFileError,
    apply_overrides,
    load_target_file,
    target_from_url,
)

FULL = """
url: http://127.0.0.1:8080/
metrics: {gateway: "http://127.0.0.1:8080/metrics"}
tenants:
  a: {id: tA, tokens: {write: "${TOK_AW}", read: "${TOK_AR:-fallback-read}"}}
  b: {id: tB, tokens: {write: bw-token, read: br-token}}
files: {status_json: /tmp/hif/status.json}
capabilities: [chat, explain, auth]
trace_ttl_seconds: 5
x-generator: {tool: other}
"""


def test_yaml_with_env_substitution_and_derived_capabilities(tmp_path: Path) -> None:
    path = tmp_path / "target.yaml"
    path.write_text(FULL)
    target = load_target_file(str(path), env={"TOK_AW": "aw-token"})
    assert target.url == "http://127.0.0.1:8080"
    assert target.tenants["a"].tokens.write == "aw-token"
    assert target.tenants["a"].tokens.read == "fallback-read"
    assert target.declared == {"chat", "explain", "auth"}
    assert {"tenants:2", "metrics:gateway", "status_store", "short_ttl"} <= target.capabilities
    assert "metrics:explainer" not in target.capabilities
    assert set(target.secrets()) == {"aw-token", "fallback-read", "bw-token", "br-token"}
    assert target.extensions == {"x-generator": {"tool": "other"}}


def test_json_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "target.json"
    path.write_text(json.dumps({"url": "https://gw.example:443", "capabilities": ["chat"]}))
    assert load_target_file(str(path)).declared == {"chat"}


@pytest.mark.parametrize("text,expected", [
    ("url: [unclosed", "not valid YAML/JSON at line 1"),
    ("- a list", "the top level must be a mapping"),
    ("metrics: {}", "'url' is a required property"),
    ("url: ftp://x", "$.url: 'ftp://x' does not match"),
    ("url: http://x\ntenants: {a: {id: tA}}", "$.tenants.a: 'tokens' is a required property"),
    ("url: http://x\nbogus: 1", "$: unknown key 'bogus'; valid: version, url, metrics"),
    ("url: http://x\nfiles: {logs: /x}", "$.files: unknown key 'logs'; valid: status_json"),
    ("url: http://x\ncapabilities: [warp]", "$.capabilities: unknown warp; valid: chat"),
    ("url: ${NOPE_NOT_SET}", "$.url: environment variable NOPE_NOT_SET is not set"),
])
def test_errors_name_the_file_and_the_place(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TargetFileError) as caught:
        load_target_file(str(path), env={})
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_missing_file_is_a_target_file_error(tmp_path: Path) -> None:
    with pytest.raises(TargetFileError, match="cannot read"):
        load_target_file(str(tmp_path / "absent.yaml"))


def test_overrides_replace_file_values() -> None:
    base = target_from_url("http://gw:1")
    target = apply_overrides(base, {"tenant_a": "tX", "token_write": "w", "token_read": "r",
                                    "audit_log": "/var/log/a.log"})
    assert target.tenants["a"].id == "tX" and target.tenants["a"].tokens.read == "r"
    assert "audit_log" in target.capabilities and "tenants:2" not in target.capabilities
    assert "chat" in base.capabilities  # a bare URL assumes the v1 core
