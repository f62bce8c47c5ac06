"""The restart spec against an external target whose declared restart command fails: a
typed failure naming the command, and the load it was driving stops (no hang)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = str(REPO / "tests" / "chaos" / "test_restart_recovery.py")


def test_a_failing_restart_command_fails_typed_and_stops_the_load(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    from pytest_sidecar.embedded import EmbeddedStack

    stack = EmbeddedStack(str(tmp_path / "stack"))
    declared = json.loads(Path(stack.ensure_started()).read_text())
    declared.setdefault("resilience", {})["restart"] = {"gateway": ["false"],
                                                        "explainer": ["false"]}
    target_file = tmp_path / "target.json"
    target_file.write_text(json.dumps(declared))
    try:
        result = pytester.runpytest_subprocess(
            SPEC, "-k", "across_kills", f"--sidecar-target={target_file}", "-p",
            "no:cacheprovider", timeout=120)  # a hang (senders never stopped) times out
    finally:
        stack.stop()
    result.assert_outcomes(failed=1)
    assert ("DECLARED_BUT_MISSING: the target file's resilience.restart.gateway command "
            "['false'] did not succeed: CalledProcessError") in result.stdout.str()
