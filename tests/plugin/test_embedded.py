"""The suite against the embedded stack, as a user runs it: `pytest -n 2`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its (gone) parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_trace_workflow_spec_passes_on_the_embedded_stack_and_cleans_up(
        pytester: pytest.Pytester) -> None:
    basetemp = pytester.path / "bt"
    result = pytester.runpytest_subprocess(
        str(REPO / "tests" / "e2e" / "test_trace_workflow.py"), "-n", "2",
        f"--basetemp={basetemp}", "-p", "no:cacheprovider", timeout=240)
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert outcomes.get("skipped", 0) == 0 and outcomes.get("failed", 0) == 0
    assert outcomes["passed"] >= 13

    report = json.loads((pytester.path / "reports" / "sidecar-report.json").read_text())
    assert report["summary"]["collected"] == report["summary"]["passed"] == outcomes["passed"]
    assert report["environment"]["target"]["origin"] == "embedded"
    assert all(r["evidence"] for r in report["results"]), "a pass without evidence"

    (target_file,) = basetemp.rglob("stack/target.json")
    target = json.loads(target_file.read_text())
    pid = target["x-reference-stack"]["pid"]
    assert not alive(pid), "the controller did not stop the stack"
    tokens = [t for tenant in target["tenants"].values() for t in tenant["tokens"].values()]
    for path in (pytester.path / "reports").iterdir():
        text = path.read_text()
        assert not [t for t in tokens if t in text], f"{path.name} leaks a token"
