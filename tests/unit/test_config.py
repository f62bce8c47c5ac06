"""Option resolution: precedence, sources and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_sidecar.config import SettingError, resolve, separated_path_values


def test_cli_beats_env_beats_ini_beats_default() -> None:
    config = resolve(
        {"url": "http://cli:1", "timeout": None},
        {"SIDECAR_URL": "http://env:2", "SIDECAR_TIMEOUT": "3"},
        {"url": "http://ini:3", "timeout": "4", "report_dir": "out"},
    )
    assert config.url == "http://cli:1"
    assert config.sources["url"] == "command line --sidecar-url"
    assert config.timeout == 3.0 and config.sources["timeout"] == "environment SIDECAR_TIMEOUT"
    assert config.report_dir == "out" and config.sources["report_dir"] == "ini sidecar_report_dir"
    assert config.trace_deadline == 30.0 and config.sources["trace_deadline"] == "default"


def test_embedded_when_no_target_is_named() -> None:
    assert resolve({}, {}, {}).embedded
    assert not resolve({"url": "http://x:1"}, {}, {}).embedded


def test_a_bad_value_names_option_value_source_and_choices() -> None:
    with pytest.raises(SettingError) as caught:
        resolve({}, {"SIDECAR_URL": "ftp://nope"}, {})
    message = str(caught.value)
    assert "--sidecar-url" in message and "'ftp://nope'" in message
    assert "environment SIDECAR_URL" in message and "valid: http(s)://" in message


def test_a_bad_secret_value_is_not_echoed() -> None:
    with pytest.raises(SettingError) as caught:
        resolve({"token_write": "   "}, {}, {})
    assert "***" in str(caught.value)


def test_strict_parses_booleans_from_env_and_rejects_junk() -> None:
    assert resolve({}, {"SIDECAR_STRICT": "yes"}, {}).strict is True
    with pytest.raises(SettingError, match="valid: 1/0, true/false"):
        resolve({}, {"SIDECAR_STRICT": "maybe"}, {})


def test_url_and_target_are_exclusive(tmp_path: pytest.TempPathFactory) -> None:
    target = tmp_path / "t.yaml"  # type: ignore[operator]
    target.write_text("url: http://x:1\n")
    with pytest.raises(SettingError, match="exclusive"):
        resolve({"url": "http://a:1", "target": str(target)}, {}, {})


def test_unknown_capability_lists_the_known_ones() -> None:
    with pytest.raises(SettingError, match=r"unknown capability warp.*valid: a comma list of chat"):
        resolve({"capabilities": "chat,warp"}, {}, {})


def test_display_rows_mask_secrets() -> None:
    rows = resolve({"token_write": "sct_supersecretvalue"}, {}, {}).display_rows()
    assert ("--sidecar-token-write", "***", "command line --sidecar-token-write") in rows
    assert all("supersecret" not in value for _, value, _ in rows)


def test_separated_path_values_outside_the_invocation_dir_are_found(tmp_path: Path) -> None:
    here, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "t.yaml").write_text("url: http://x:1\n")
    (elsewhere / "t.yaml").write_text("url: http://x:1\n")
    outside = str(elsewhere / "t.yaml")
    assert separated_path_values(["--sidecar-target", outside], str(here)) == [
        "--sidecar-target"]
    assert separated_path_values([f"--sidecar-target={outside}"], str(here)) == []
    assert separated_path_values(["--sidecar-target", "t.yaml"], str(here)) == []
    assert separated_path_values(["--sidecar-url", outside], str(here)) == []


def test_an_unknown_capability_suggests_the_closest() -> None:
    with pytest.raises(SettingError, match=r"unknown capability auht \(did you mean 'auth'\?\)"):
        resolve({"capabilities": "chat,auht"}, {}, {})
    with pytest.raises(SettingError) as far:
        resolve({"capabilities": "teleport"}, {}, {})
    assert "did you mean" not in str(far.value)  # nothing close: no guess
