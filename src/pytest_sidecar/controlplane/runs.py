"""The life of a run: queued, running, then one ending (passed, failed, error, canceled,
timed_out; interrupted when the control plane died meanwhile).

A bounded queue feeds `max_parallel` workers. A worker launches pytest, follows its
event log, publishes what viewers see, and when pytest exits reads the run's JSON
report into the history and judges the quality gate. Everything published is stored
first, under a per-run monotonic id, then fanned out to live viewers.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import defaultdict
from typing import Any

from ..load.llm_metrics import trend_figures
from . import history
from .events import EventTail, Progress
from .exceptions import ControlPlaneError
from .launch import Launched, Launcher, RunRequest, pytest_argv
from .settings import Settings
from .store import ACTIVE, Store

POLL_S = 0.1
REPORT = "sidecar-report.json"


class QueueFull(ControlPlaneError, RuntimeError):
    pass


class Bus:
    """Stores each event of a run, then hands it to the run's live subscribers."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._subscribers: dict[str, set[asyncio.Queue[tuple[int, dict[str, Any]]]]] = \
            defaultdict(set)

    def publish(self, run_id: str, body: dict[str, Any]) -> int:
        event_id = self.store.add_event(run_id, body)
        for queue in self._subscribers.get(run_id, ()):
            queue.put_nowait((event_id, body))
        return event_id

    def subscribe(self, run_id: str) -> asyncio.Queue[tuple[int, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        self._subscribers[run_id].add(queue)
        return queue

    def unsubscribe(self, run_id: str, queue: asyncio.Queue[tuple[int, dict[str, Any]]]
                    ) -> None:
        self._subscribers[run_id].discard(queue)


class RunManager:
    def __init__(self, settings: Settings, store: Store, launcher: Launcher) -> None:
        self.settings, self.store, self.launcher = settings, store, launcher
        self.bus = Bus(store)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[str, Launched] = {}
        self._cancel: set[str] = set()

    async def start(self) -> None:
        for run_id in self.store.mark_interrupted():
            self.bus.publish(run_id, {"type": "end", "state": "interrupted", "exit_code": None,
                                      "reason": "the control plane stopped while this run "
                                                "was active", "counts": None, "gate": None})
        self._workers = [asyncio.create_task(self._work())
                         for _ in range(self.settings.max_parallel)]

    async def stop(self) -> None:
        """Stop the workers and the runs they launched (marked interrupted)."""
        running = dict(self._running)  # a canceled worker forgets its run on the way out
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for run_id, launched in running.items():
            await asyncio.to_thread(launched.cancel)
            self._finish_state(run_id, "interrupted", None, "the control plane stopped")
        self.store.mark_interrupted()

    def submit(self, request: RunRequest) -> dict[str, Any]:
        queued = sum(1 for r in self.store.runs(self.settings.max_queued + 50)
                     if r["state"] == "queued")
        if queued >= self.settings.max_queued:
            raise QueueFull(f"{queued} runs are queued (at most {self.settings.max_queued})")
        run_id = uuid.uuid4().hex[:12]
        report_dir = os.path.join(os.path.abspath(self.settings.runs_dir), run_id)
        self.store.create_run(run_id, request.as_dict(), report_dir)
        self.bus.publish(run_id, {"type": "state", "state": "queued"})
        self._queue.put_nowait(run_id)
        run = self.store.run(run_id)
        assert run is not None
        return run

    def cancel(self, run_id: str) -> str:
        """Ask a run to stop; its state as of now (a queued run is canceled at once)."""
        run = self.store.run(run_id)
        if run is None:
            raise KeyError(run_id)
        if run["state"] == "queued":
            self._finish_state(run_id, "canceled", None, "canceled before it started")
            return "canceled"
        if run["state"] == "running":
            self._cancel.add(run_id)
            return "canceling"
        return str(run["state"])

    async def _work(self) -> None:
        while True:
            run_id = await self._queue.get()
            run = self.store.run(run_id)
            if run is None or run["state"] != "queued":
                continue  # canceled while queued
            try:
                await self._execute(run)
            except Exception as exc:  # a run's failure must not take the worker down
                self._finish_state(run_id, "error", None, f"the control plane failed to "
                                   f"run it: {type(exc).__name__}: {exc}")

    async def _execute(self, run: dict[str, Any]) -> None:
        run_id, report_dir = run["id"], run["report_dir"]
        request = RunRequest(**run["request"])
        os.makedirs(report_dir, exist_ok=True)
        argv = pytest_argv(request, self.settings, report_dir)
        self.store.update_run(run_id, state="running", started_at=time.time())
        self.bus.publish(run_id, {"type": "state", "state": "running"})
        # Off the loop: a launcher may call out (kubectl) and take its time.
        launched = await asyncio.to_thread(self.launcher.start, argv,
                                           os.path.abspath(self.settings.suite_root),
                                           os.path.join(report_dir, "pytest.log"))
        self._running[run_id] = launched
        tail, progress = EventTail(report_dir), Progress()
        deadline = time.monotonic() + self.settings.run_timeout_s
        ending: str | None = None
        try:
            while (code := await asyncio.to_thread(launched.poll)) is None:
                self._relay(run_id, tail, progress)
                if ending is None and (run_id in self._cancel or time.monotonic() > deadline):
                    ending = "canceled" if run_id in self._cancel else "timed_out"
                    await asyncio.to_thread(launched.cancel)  # once; then wait for the end
                await asyncio.sleep(POLL_S)
        finally:
            self._running.pop(run_id, None)
            self._cancel.discard(run_id)
        self._relay(run_id, tail, progress)
        self._conclude(run_id, report_dir, code, ending)

    def _relay(self, run_id: str, tail: EventTail, progress: Progress) -> None:
        for event in tail.read_new():
            for shown in progress.on(event):
                self.bus.publish(run_id, shown)

    def _conclude(self, run_id: str, report_dir: str, code: int, ending: str | None) -> None:
        """Read the run's report into the history, judge the gate, publish the end."""
        report = _latest_report(report_dir)
        counts = gate = verdict = None
        if report is not None:
            counts = report.get("summary") or {}
            verdict = report.get("verdict") or {}
            results = report.get("results") or []
            slos = verdict.get("slos") or []
            self.store.record_results(
                run_id,
                [(r["nodeid"], r["outcome"], r.get("duration_ms"), r.get("reason"))
                 for r in results],
                [(s.get("name"), s.get("outcome"), _number(s.get("measured")),
                  _number(s.get("threshold")), s.get("samples")) for s in slos],
                [(i, c.get("cause") or c.get("text") or json.dumps(c), c.get("count"))
                 for i, c in enumerate(report.get("root_causes") or [], 1)],
                [(f["name"], f["value"], f["unit"], f["better"])
                 for f in trend_figures(verdict.get("llm"))
                 if _number(f["value"]) is not None])
            gate = history.evaluate_gate(self.settings.gate, counts, slos)
        state = ending or _state_of(code, report is not None)
        reason = None if state in ("passed", "failed") else _reason(state, code, report_dir)
        self.store.update_run(run_id, counts=counts, gate=gate, verdict=verdict)
        self._finish_state(run_id, state, code, reason)

    def _finish_state(self, run_id: str, state: str, code: int | None,
                      reason: str | None) -> None:
        run = self.store.run(run_id)
        if run is None or (run["state"] not in ACTIVE and state != "interrupted"):
            return
        self.store.update_run(run_id, state=state, finished_at=time.time(), exit_code=code,
                              reason=reason)
        run = self.store.run(run_id) or {}
        self.bus.publish(run_id, {"type": "end", "state": state, "exit_code": code,
                                  "reason": reason, "counts": run.get("counts"),
                                  "gate": run.get("gate")})


def _latest_report(report_dir: str) -> dict[str, Any] | None:
    path = os.path.join(report_dir, "latest", REPORT)
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def _state_of(code: int, reported: bool) -> str:
    """pytest's exit code: 0 passed, 1 tests failed; anything else (usage error,
    interrupted, internal error, no tests) is an error of the run."""
    if code == 0 and reported:
        return "passed"
    if code == 1 and reported:
        return "failed"
    return "error"


def _reason(state: str, code: int | None, report_dir: str) -> str:
    if state == "canceled":
        return "canceled by a user"
    if state == "timed_out":
        return "the run exceeded the control plane's run timeout"
    tail = _log_tail(os.path.join(report_dir, "pytest.log"))
    return f"pytest exited {code}: {tail}" if tail else f"pytest exited {code}"


def _log_tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            found = [line.strip() for line in handle.readlines()[-lines:] if line.strip()]
    except OSError:
        return ""
    return " | ".join(found)[:500]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
