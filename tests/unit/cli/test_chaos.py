"""`sidecar-chaos` against a real reference stack: run an experiment (exit status = verdict,
journal with Chaos Toolkit's fields, nothing left injected), export it for Chaos Mesh,
list leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_sidecar.fixtures.stack import StackFactory

REPO = Path(__file__).resolve().parents[3]
EXPERIMENT = REPO / "docs" / "experiments" / "upstream-errors.yaml"

pytestmark = pytest.mark.disruptive


def chaos_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_sidecar.cli.chaos", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def target_file(stack_factory: StackFactory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = stack_factory()
    path = tmp_path_factory.mktemp("chaos-cli") / "target.json"
    path.write_text(json.dumps({"url": target.url,
                                "files": {"chaos_control": target.chaos_control}}))
    return path


def flags(target_file: Path) -> dict[str, Any]:
    control = Path(json.loads(target_file.read_text())["files"]["chaos_control"])
    return json.loads(control.read_text()) if control.exists() else {}


def test_a_run_that_holds_exits_0_with_a_journal_and_nothing_left(
        target_file: Path, tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.json"
    done = chaos_cli("run", str(EXPERIMENT), "--target-file", str(target_file),
                     "--journal", str(journal_path))
    assert done.returncode == 0, done.stdout + done.stderr
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "completed" and journal["deviated"] is False
    assert journal["steady_states"]["before"]["steady_state_met"]
    assert journal["steady_states"]["after"]["steady_state_met"]
    assert [e["status"] for e in journal["run"]] == ["succeeded"] * 3
    assert journal["run"][2]["output"]["status"] == 200  # readyz during the fault
    assert [e["activity"]["name"] for e in journal["rollbacks"]] == ["upstream errors off"]
    assert flags(target_file) == {}


def test_a_deviation_exits_1_and_the_fault_is_still_removed(
        target_file: Path, tmp_path: Path) -> None:
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    experiment["method"][0]["provider"]["arguments"].update(
        flag="dependency-outage", settings={"dependency": "status_store"})
    experiment["rollbacks"] = []  # the run's own safety net must remove it
    path = tmp_path / "outage.json"
    path.write_text(json.dumps(experiment))
    journal_path = tmp_path / "journal.json"
    started = time.monotonic()
    done = chaos_cli("run", str(path), "--target-file", str(target_file),
                     "--journal", str(journal_path))
    assert done.returncode == 1, done.stdout + done.stderr
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "failed" and journal["deviated"] is True
    assert journal["steady_states"]["after"]["probes"][0]["output"]["status"] == 503
    assert [e["activity"]["name"] for e in journal["rollbacks"]] == [
        "auto-rollback dependency-outage"]
    assert flags(target_file) == {}
    assert time.monotonic() - started < 60


def test_usage_errors_exit_2_with_one_line(target_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: t\ndescription: d\n")
    done = chaos_cli("run", str(broken), "--target-file", str(target_file))
    assert done.returncode == 2
    assert done.stderr.strip() == "sidecar-chaos: error: $.method: required, a list (it may " \
                                  "be empty)"


def test_an_experiment_that_cannot_run_is_refused_before_it_starts(
        target_file: Path, tmp_path: Path) -> None:
    """As `chaos validate` does: a provider whose module does not import, whose function
    does not exist or does not take the arguments given is refused, exit != 0, and
    nothing is injected."""
    cases = {"module": {"module": "no_such_module_here"},
             "func": {"func": "no_such_function"},
             "arguments": {"arguments": {"path": "x", "flag": "drop-s3", "colour": "red"}}}
    for case, change in cases.items():
        experiment = yaml.safe_load(EXPERIMENT.read_text())
        experiment["method"][0]["provider"].update(change)
        path = tmp_path / f"{case}.json"
        path.write_text(json.dumps(experiment))
        for command in (["validate", str(path)],
                        ["run", str(path), "--target-file", str(target_file)]):
            done = chaos_cli(*command)
            assert done.returncode == 2, (case, command[0], done.stdout, done.stderr)
            assert done.stderr.startswith("sidecar-chaos: error: $.method[0].provider."), \
                done.stderr
    assert chaos_cli("validate", str(EXPERIMENT)).returncode == 0
    assert flags(target_file) == {}


def test_an_action_that_raises_fails_the_run(target_file: Path, tmp_path: Path) -> None:
    """Stricter than Chaos Toolkit on purpose: a method action that raised means the
    fault was never injected, so the run cannot pass."""
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    experiment["method"][0]["provider"]["arguments"]["path"] = str(tmp_path / "no" / "dir")
    path = tmp_path / "raises.json"
    path.write_text(json.dumps(experiment))
    journal_path = tmp_path / "journal.json"
    done = chaos_cli("run", str(path), "--target-file", str(target_file),
                     "--journal", str(journal_path))
    assert done.returncode == 1, done.stdout + done.stderr
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "failed" and journal["run"][0]["status"] == "failed"
    assert journal["start"].endswith("+00:00"), "journal timestamps carry their offset"


def test_the_shipped_experiment_runs_unchanged_under_chaos_run(
        target_file: Path, tmp_path: Path) -> None:
    """Chaos Toolkit's own `chaos run`, with pytest-sidecar merely installed (no
    PYTHONPATH), runs docs/experiments/ as shipped and `export --format chaostoolkit`."""
    binary = Path(sys.executable).with_name("chaos")
    if not binary.exists():
        pytest.skip("TOOL_MISSING: chaostoolkit is not installed; action: pip install -e "
                    "'.[dev]'")
    files = json.loads(target_file.read_text())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(SIDECAR_URL=files["url"], SIDECAR_CHAOS_CONTROL=files["files"]["chaos_control"])
    exported = tmp_path / "exported.yaml"
    assert chaos_cli("export", str(EXPERIMENT), "--format", "chaostoolkit",
                     "--out", str(exported)).returncode == 0
    assert yaml.safe_load(exported.read_text())["configuration"]["target_url"] == {
        "type": "env", "key": "SIDECAR_URL"}
    for experiment in (EXPERIMENT, exported):
        journal_path = tmp_path / f"{experiment.stem}-journal.json"
        done = subprocess.run([str(binary), "--no-log-file", "run", "--journal-path",
                               str(journal_path), str(experiment)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        journal = json.loads(journal_path.read_text())
        assert (journal["status"], journal["deviated"]) == ("completed", False)
        assert [e["status"] for e in journal["run"]] == ["succeeded"] * 3
        assert [e["status"] for e in journal["rollbacks"]] == ["succeeded"]
        assert flags(target_file) == {}


def test_leftovers_are_listed(target_file: Path) -> None:
    control = Path(json.loads(target_file.read_text())["files"]["chaos_control"])
    control.write_text(json.dumps({"drop-s3": {"enabled": True, "owner": "gone",
                                               "expires_at": time.time() + 2}}))
    try:
        done = chaos_cli("leftovers", "--target-file", str(target_file))
    finally:
        control.write_text("{}")
    assert done.returncode == 1
    (found,) = json.loads(done.stdout)
    assert found["flag"] == "drop-s3" and found["owner"] == "gone"


def test_export_writes_valid_chaos_mesh_objects_and_says_what_it_cannot(
        tmp_path: Path) -> None:
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    experiment["method"].append({
        "type": "action", "name": "drop artifacts",
        "provider": {"type": "python", "module": "pytest_sidecar.chaos.actions",
                     "func": "inject_flag", "arguments": {"path": "x", "flag": "drop-s3"}}})
    path = tmp_path / "e.json"
    path.write_text(json.dumps(experiment))
    out = tmp_path / "chaos-mesh.yaml"
    done = chaos_cli("export", str(path), "--format", "chaos-mesh", "--namespace", "hg",
                     "--out", str(out))
    assert done.returncode == 0, done.stderr
    (http,) = list(yaml.safe_load_all(out.read_text()))
    assert http["kind"] == "HTTPChaos" and http["spec"]["replace"] == {"code": 500}
    assert http["spec"]["selector"]["namespaces"] == ["hg"]
    assert "percent 30 cannot be said" in done.stderr
    assert "drop-s3 has no Chaos Mesh counterpart" in done.stderr
