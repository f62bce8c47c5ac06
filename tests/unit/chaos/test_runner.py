"""The chaos library: leased faults in the control file, experiments, journals, and
rollbacks that run whatever happens."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_sidecar.chaos import actions
from pytest_sidecar.chaos.backends import ControlFile
from pytest_sidecar.chaos.exceptions import ChaosError
from pytest_sidecar.chaos.experiment import ExperimentError, validate, within_tolerance
from pytest_sidecar.chaos.journal import summary, verdict_ok
from pytest_sidecar.chaos.runner import run_experiment

MODULE = "pytest_sidecar.chaos.actions"


def flags(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def test_a_fault_carries_a_lease_is_renewed_and_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    backend = ControlFile(str(path), owner="me")
    fault = backend.inject("upstream-errors", {"status": 500, "percent": 30}, lease_s=10)
    written = flags(path)["upstream-errors"]
    assert written["enabled"] and written["percent"] == 30 and written["owner"] == "me"
    assert 9 < written["expires_at"] - time.time() <= 10
    time.sleep(0.05)
    backend.renew(fault)
    assert flags(path)["upstream-errors"]["expires_at"] > written["expires_at"]
    backend.rollback(fault)
    assert flags(path) == {} and fault.rolled_back_at is not None


def test_leftovers_are_found_and_another_runners_flag_is_never_overwritten(
        tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    path.write_text(json.dumps({
        "drop-s3": {"enabled": True, "owner": "killed-runner", "expires_at": time.time() + 30},
        "slow-sae": {"enabled": True, "jitter_ms": 5},  # set by hand: never lapses
        "upstream-errors": {"enabled": True, "owner": "old", "expires_at": time.time() - 1},
        "rate-limit-spike": {"enabled": False}}))
    mine = ControlFile(str(path), owner="me")
    found = {item["flag"]: item for item in mine.leftovers()}
    assert set(found) == {"drop-s3", "slow-sae"}
    assert found["slow-sae"]["lapses_in_s"] is None and found["drop-s3"]["owner"] == "killed-runner"
    with pytest.raises(ChaosError, match="already set by killed-runner"):
        mine.inject("drop-s3", {}, 10)
    mine.inject("upstream-errors", {"status": 503}, 10)  # its lease lapsed: free again
    assert flags(path)["drop-s3"]["owner"] == "killed-runner"


def test_concurrent_editors_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    names = [f"flag-{n}" for n in range(20)]

    def inject(name: str) -> None:
        ControlFile(str(path), owner=name).inject(name, {}, 30)

    threads = [threading.Thread(target=inject, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(flags(path)) == sorted(names)


def test_validation_names_the_place() -> None:
    with pytest.raises(ExperimentError, match=r"\$\.method: required"):
        validate({"title": "t", "description": "d"})
    with pytest.raises(ExperimentError, match=r"\$\.steady-state-hypothesis\.probes\[0\]: "
                                               "a hypothesis probe needs a tolerance"):
        validate({"title": "t", "description": "d", "method": [],
                  "steady-state-hypothesis": {"title": "h", "probes": [
                      {"type": "probe", "name": "p",
                       "provider": {"type": "http", "url": "http://127.0.0.1:9"}}]}})


def test_tolerances_follow_chaos_toolkit() -> None:
    assert within_tolerance(200, {"status": 200, "body": {}})
    assert within_tolerance([200, 299], 204) and not within_tolerance([200, 299], 302)
    assert within_tolerance([200, 201, 204], 204) and within_tolerance(True, True)
    assert within_tolerance({"type": "range", "range": [0, 0.05], "target": "rate"},
                            {"rate": 0.01})
    assert within_tolerance({"type": "regex", "pattern": "^ok"}, "ok then")


def experiment(path: Path, method: list[dict[str, Any]], probe_ok: bool = True
               ) -> dict[str, Any]:
    """An experiment whose steady state is "the control file's directory exists" (or,
    with probe_ok=False, a path that does not)."""
    probed = path.parent if probe_ok else path.parent / "missing"
    return {
        "title": "upstream errors", "description": "a test",
        "configuration": {"chaos_control": str(path)},
        "steady-state-hypothesis": {"title": "healthy", "probes": [
            {"type": "probe", "name": "directory there", "tolerance": True,
             "provider": {"type": "python", "module": "os.path", "func": "exists",
                          "arguments": {"path": str(probed)}}}]},
        "method": method,
    }


def inject(flag: str) -> dict[str, Any]:
    return {"type": "action", "name": f"inject {flag}",
            "provider": {"type": "python", "module": MODULE, "func": "inject_flag",
                         "arguments": {"path": "${chaos_control}", "flag": flag,
                                       "settings": {"percent": 50}, "lease_s": 3}}}


def test_a_run_rolls_back_what_it_injected_and_journals_like_chaos_toolkit(
        tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    journal = run_experiment(experiment(path, [inject("drop-s3")]))
    assert journal["status"] == "completed" and verdict_ok(journal)
    assert {"chaoslib-version", "platform", "node", "experiment", "start", "status",
            "deviated", "steady_states", "run", "rollbacks", "end", "duration"} <= set(journal)
    assert journal["run"][0]["status"] == "succeeded"
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["auto-rollback drop-s3"]
    assert flags(path) == {}
    assert summary(journal)["rollbacks"] == ["auto-rollback drop-s3: succeeded"]


def test_a_failed_hypothesis_or_an_error_still_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    broken = {"type": "action", "name": "boom",
              "provider": {"type": "python", "module": "json", "func": "loads",
                           "arguments": {"s": "{"}}}
    journal = run_experiment(experiment(path, [inject("slow-sae"), broken]))
    assert journal["run"][1]["status"] == "failed" and "exception" in journal["run"][1]
    # Stricter than Chaos Toolkit on purpose: an activity that raised fails the run.
    assert journal["status"] == "failed" and not verdict_ok(journal)
    assert flags(path) == {}
    journal = run_experiment(experiment(path, [inject("slow-sae")], probe_ok=False))
    assert journal["status"] == "failed" and journal["run"] == []  # gated before the method


def test_sigterm_mid_method_interrupts_and_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    wait = {"type": "action", "name": "wait",
            "provider": {"type": "python", "module": MODULE, "func": "pause",
                         "arguments": {"seconds": 5}}}
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        journal = run_experiment(experiment(path, [inject("drop-s3"), wait]))
    finally:
        timer.cancel()  # never a stray SIGTERM for the test process
    timer.join()
    assert journal["status"] == "interrupted" and flags(path) == {}
    assert not verdict_ok(journal)


def test_continuous_hypothesis_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    probe_file = tmp_path / "healthy"
    probe_file.write_text("")
    spec = experiment(path, [inject("drop-s3"), {
        "type": "action", "name": "break the steady state",
        "provider": {"type": "python", "module": "os", "func": "remove",
                     "arguments": {"path": str(probe_file)}}}, {
        "type": "action", "name": "wait",
        "provider": {"type": "python", "module": MODULE, "func": "pause",
                     "arguments": {"seconds": 0.5}}}])
    spec["steady-state-hypothesis"]["probes"] = [{
        "type": "probe", "name": "file there", "tolerance": True,
        "provider": {"type": "python", "module": "os.path", "func": "exists",
                     "arguments": {"path": str(probe_file)}}}]
    journal = run_experiment(spec, continuous=True, frequency_s=0.05, fail_fast_ratio=0.1)
    assert journal["status"] == "failed" and journal["steady_states"]["during"]
    assert not journal["steady_states"]["during"][-1]["steady_state_met"]
    assert flags(path) == {}


def test_leases_are_renewed_while_the_run_lives(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    with actions.run_scope() as scope:
        actions.inject_flag(str(path), "drop-s3", lease_s=0.6)
        first = flags(path)["drop-s3"]["expires_at"]
        time.sleep(0.9)  # past the first lease: it must have been renewed
        assert flags(path)["drop-s3"]["expires_at"] > first > time.time() - 0.5
        assert scope.keeper.renewals >= 2
        scope.roll_back_all()
    assert flags(path) == {}
