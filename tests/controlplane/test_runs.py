"""Runs through the API: launch, live events (SSE and WebSocket, resumable), reports,
cancel, the queue's bound, and the history a few runs leave (flakiness, the gate)."""

from __future__ import annotations

import json
import os
import time

import pytest

from .conftest import ControlPlane, events, launch, wait_state


def test_a_run_streams_its_tests_and_ends_with_its_report_and_gate(
        control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        run_id = launch(client)
        seen = events(client, run_id)
        ids = [i for i, _ in seen]
        assert ids == list(range(1, len(ids) + 1)), "event ids are 1, 2, 3, ... per run"
        kinds = [e["type"] for _, e in seen]
        assert kinds[:2] == ["state", "state"] and kinds[-1] == "end", kinds
        tests = {e["nodeid"]: e for _, e in seen if e["type"] == "test"}
        assert {n.split("::")[1]: t["outcome"] for n, t in tests.items()} == {
            "test_quick_pass": "passed", "test_quick_fail": "failed", "test_flaky": "failed"}
        assert "one is not two" in tests["test_demo.py::test_quick_fail"]["reason"]
        progress = [e for _, e in seen if e["type"] == "progress"]
        assert progress[-1] == {"type": "progress", "total": 3, "completed": 3,
                                "failures": 2}
        end = seen[-1][1]
        assert end["state"] == "failed" and end["exit_code"] == 1
        assert end["gate"]["passed"] is False
        run = client.get(f"/api/testruns/{run_id}").json()
        assert "report_dir" not in run, "the API shows no server paths"
        assert [t["outcome"] for t in run["tests"]] == ["failed", "failed", "passed"]
        for fmt, kind in (("json", "application/json"), ("md", "text/markdown"),
                          ("html", "text/html")):
            answer = client.get(f"/api/testruns/{run_id}/report.{fmt}")
            assert answer.status_code == 200 and answer.headers["content-type"].startswith(
                kind), (fmt, answer.status_code)
        assert client.get(f"/api/testruns/{run_id}/report.json").json()["summary"]["total"] == 3
        assert client.get("/api/reports/export", params={"format": "md"}).status_code == 200


def test_two_viewers_resume_and_see_the_same_events_once(control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        run_id = launch(client)
        first = events(client, run_id, limit=3)  # viewer A leaves after three events
        rest = events(client, run_id, after=first[-1][0])  # ... and resumes
        late = events(client, run_id)  # viewer B arrives late: history first
        assert [i for i, _ in first + rest] == [i for i, _ in late]
        assert [e for _, e in first + rest] == [e for _, e in late]
        import asyncio

        import websockets

        async def over_websocket() -> list[dict[str, object]]:
            url = control_plane.url.replace("http", "ws") + f"/ws/testruns/{run_id}/stream"
            received = []
            async with websockets.connect(url, additional_headers={
                    "Authorization": f"Bearer {client.headers['authorization'][7:]}"}) as ws:
                async for message in ws:
                    received.append(json.loads(message))
                    if received[-1].get("type") == "end":
                        break
            return received

        ws_events = asyncio.run(over_websocket())
        assert [e.pop("id") for e in ws_events] == [i for i, _ in late]
        assert ws_events == [e for _, e in late], "SSE and WebSocket carry the same events"


def test_a_run_killed_mid_way_is_canceled_and_its_processes_are_gone(
        control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        run_id = launch(client, suite="slow")
        wait_state(client, run_id, ("running",))
        time.sleep(2)  # pytest is in the 120 s test now
        pids = _pytest_pids(f"--sidecar-report-dir={control_plane.data_dir}")
        assert pids, "the run's pytest process was not found"
        assert client.post(f"/api/testruns/{run_id}/cancel").json()["state"] == "canceling"
        run = wait_state(client, run_id, ("canceled",), timeout=30)
        assert run["state"] == "canceled" and run["reason"] == "canceled by a user"
        assert not [p for p in pids if _alive(p)], "pytest outlived its cancel"
        assert events(client, run_id)[-1][1]["state"] == "canceled"


def test_the_queue_is_bounded_and_a_queued_run_cancels_at_once(tmp_path: object) -> None:
    from pathlib import Path

    from .conftest import kill_runs, start, write_suite

    root = Path(str(tmp_path))
    plane = start(root / "data", write_suite(root / "suite"), CP_MAX_QUEUED="1")
    try:
        with plane.client() as client:
            running = launch(client, suite="slow")
            wait_state(client, running, ("running",))
            queued = launch(client, suite="slow")
            refused = client.post("/api/testruns", json={"suite": "slow"})
            assert refused.status_code == 429 and refused.json()["code"] == "queue_full"
            assert refused.headers.get("retry-after")
            assert client.post(f"/api/testruns/{queued}/cancel").json()["state"] == "canceled"
            client.post(f"/api/testruns/{running}/cancel")
            assert wait_state(client, running, ("canceled",))["state"] == "canceled"
    finally:
        plane.stop()
        kill_runs(root)


def test_history_shows_the_flaky_test_and_the_gate_of_each_run(
        control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        ids = []
        for _ in range(3):  # the flaky test fails, passes, fails
            ids.append(launch(client))
            wait_state(client, ids[-1], ("passed", "failed", "error"))
        flaky = client.get("/api/history/tests").json()
        by_test = {f["nodeid"].split("::")[1]: f for f in flaky["flaky"]}
        assert list(by_test) == ["test_flaky"], "only the flaky test is flaky"
        assert by_test["test_flaky"]["allure_flaky"] is True
        assert by_test["test_flaky"]["history"] == ["F", "P", "F"]
        assert by_test["test_flaky"]["switch_rate"] == 1.0
        gates = client.get("/api/history/slo").json()["gates"]
        assert [g["id"] for g in gates] == ids and all(g["gate"]["passed"] is False
                                                       for g in gates)


def test_history_keeps_the_llm_figures_of_each_run_with_their_better_direction(
        control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        for _ in range(2):
            wait_state(client, launch(client, suite="llm"), ("passed", "failed", "error"))
        figures = {f["name"]: f for f in client.get("/api/history/slo").json()["figures"]}
    at = " at 40 req/s"  # every figure moves with the offered rate: one series per rate
    assert {f"{name}{at}" for name in ("ttft p90", "itl p90", "tpot p90", "e2e p90",
                                       "output tokens/s")} <= figures.keys()
    assert [p["value"] for p in figures[f"ttft p90{at}"]["points"]] == [80.0, 100.0]
    assert figures[f"ttft p90{at}"]["points"][0]["unit"] == "ms"
    assert figures[f"ttft p90{at}"]["better"] == "lower"
    assert figures[f"output tokens/s{at}"]["better"] == "higher"


@pytest.mark.parametrize(("body", "field"), [
    ({"target": "prod"}, "target"), ({"suite": "../../etc"}, "suite"),
    ({"markers": "-p evil"}, "markers"), ({"keyword": "x; rm -rf /"}, "keyword"),
    ({"load": {"rate": 10 ** 6}}, "load.rate"), ({"argv": ["--pdb"]}, "argv"),
    ({"strict": "yes"}, "strict")])
def test_a_request_outside_the_whitelist_is_a_422_naming_the_field(
        control_plane: ControlPlane, body: dict[str, object], field: str) -> None:
    with control_plane.client() as client:
        answer = client.post("/api/testruns", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "invalid_request"
        assert answer.json()["message"].startswith(field)
        assert client.get("/api/testruns").json()["runs"] == [], "nothing was queued"


def test_a_run_whose_pytest_fails_to_start_is_an_error_with_the_reason(
        control_plane: ControlPlane) -> None:
    with control_plane.client() as client:
        run_id = launch(client, suite="broken")
        run = wait_state(client, run_id, ("error",))
        assert run["state"] == "error" and run["exit_code"] == 4
        assert "test_missing.py" in run["reason"], run["reason"]


def _pytest_pids(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmdline = handle.read().decode(errors="replace")
            except OSError:
                continue
            if "\x00-m\x00pytest\x00" in cmdline and marker in cmdline:
                pids.append(int(entry))
    return pids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
