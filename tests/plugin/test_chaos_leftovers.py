"""The session header warns of a fault a runner left in force on the target."""

from __future__ import annotations

import json
import time

import pytest


def test_the_session_header_reports_leftover_faults(pytester: pytest.Pytester) -> None:
    control = pytester.path / "chaos.json"
    control.write_text(json.dumps({"drop-s3": {"enabled": True, "owner": "gone-runner",
                                               "expires_at": time.time() + 600}}))
    target = pytester.path / "target.json"
    target.write_text(json.dumps({"url": "http://127.0.0.1:9", "capabilities": ["chat"],
                                  "files": {"chaos_control": str(control)}}))
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(f"--sidecar-target={target}")
    result.stdout.fnmatch_lines(["sidecar: WARNING fault left in force on the target: "
                                 "drop-s3 (set by gone-runner; lapses in *s)"])
