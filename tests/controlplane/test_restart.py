"""The control plane dies mid-run: the history survives, and the run it left is marked
`interrupted` (never left `running`); its viewers get that ending."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from .conftest import events, kill_runs, launch, start, wait_state, write_suite


def test_a_control_plane_killed_mid_run_marks_it_interrupted_after_restart(
        tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite")
    plane = start(tmp_path / "data", suite)
    try:
        with plane.client() as client:
            done = launch(client)
            wait_state(client, done, ("passed", "failed"))
            cut = launch(client, suite="slow")
            wait_state(client, cut, ("running",))
        plane.stop(signal.SIGKILL)
        kill_runs(tmp_path)  # the orphaned pytest (its own session) is not ours to keep
        plane = start(tmp_path / "data", suite)
        with plane.client() as client:
            runs = {r["id"]: r for r in client.get("/api/testruns").json()["runs"]}
            assert runs[done]["state"] == "failed", "a finished run keeps its ending"
            assert runs[cut]["state"] == "interrupted"
            assert "control plane stopped" in runs[cut]["reason"]
            end = events(client, cut)[-1][1]
            assert end["type"] == "end" and end["state"] == "interrupted"
            assert len(client.get(f"/api/testruns/{done}").json()["tests"]) == 3
    finally:
        plane.stop()
        kill_runs(tmp_path)


def test_a_control_plane_stopped_politely_stops_its_runs_and_marks_them_interrupted(
        tmp_path: Path) -> None:
    from .test_runs import _alive, _pytest_pids

    suite = write_suite(tmp_path / "suite")
    plane = start(tmp_path / "data", suite)
    try:
        with plane.client() as client:
            cut = launch(client, suite="slow")
            wait_state(client, cut, ("running",))
        pids: list[int] = []
        for _ in range(50):  # pytest starts a moment after the state says running
            pids = _pytest_pids(f"--sidecar-report-dir={tmp_path / 'data'}")
            if pids:
                break
            time.sleep(0.1)
        assert pids, "the run's pytest was not found"
        plane.stop(signal.SIGTERM)
        assert not [p for p in pids if _alive(p)], "a run outlived its control plane"
        plane = start(tmp_path / "data", suite)
        with plane.client() as client:
            run = client.get(f"/api/testruns/{cut}").json()
            assert run["state"] == "interrupted", run["state"]
    finally:
        plane.stop()
        kill_runs(tmp_path)
