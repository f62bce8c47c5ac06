"""The explainer: bounded workers over the durable queue, turning completions into HIF.

It runs in a process of its own and meets the gateway in the shared database: it takes
the jobs the gateway put there, writes the traces' states, and leaves a heartbeat the
gateway's readiness and admission read (explain_lane.py). Service time is proportional
to the work (per sentence, or per token at token granularity, which is ~5-10x costlier).
Cancellation (the gateway's write, seen in the database) is honoured between time slices
and re-checked when publishing: the move to `complete` is judged against the state the
database holds, so a canceled trace never gets a graph.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import time
from typing import Any

from .artifacts import ArtifactStore, artifact_key
from .backlog import Backlog
from .chaos import ChaosControl
from .explain_lane import DROPS, HEARTBEAT, HEARTBEAT_S
from .hif import build_hif, model_hash
from .jobqueue import DurableQueue
from .metrics import GRANULARITIES, ExplainerMetrics
from .policies import Policies
from .settings import StackSettings
from .shared_db import Body, constant
from .store import TERMINAL, StatusStore, rfc3339

log = logging.getLogger("sidecar.explainer")

# (stage name, share of the service time, progress when the stage starts)
STAGES = (("capture", 0.20, 5), ("attribute", 0.60, 25), ("build_graph", 0.15, 85),
          ("publish", 0.05, 95))
UNFINISHED = frozenset({"running", "partial"})
BEAT_GAP_S = 0.05  # heartbeats at most this often


class Explainer:
    def __init__(self, settings: StackSettings, store: StatusStore, queue: DurableQueue,
                 artifacts: ArtifactStore, chaos: ChaosControl,
                 policies: Policies | None = None) -> None:
        self.settings, self.store, self.queue, self.artifacts = settings, store, queue, artifacts
        self.chaos, self.policies = chaos, policies or Policies()
        self._cancel: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.busy = 0
        self.metrics_url: str | None = None  # told by the launcher once it serves /metrics
        # How much slower than estimated jobs really run (moving average, >= 1): backlog
        # seconds are queued work / *observed* throughput (§5), so a slow explainer (a
        # slow SAE) grows the backlog it reports, not only a long queue.
        self.slowdown = 1.0
        self._slowdown_moved = asyncio.Event()
        self.backlog = Backlog(queue.db, store, settings.explainer_workers,
                               lambda: self.slowdown)
        self.metrics = ExplainerMetrics()
        self._drops_seen = 0
        for granularity in GRANULARITIES:
            self.metrics.backlog.labels(granularity).set_function(
                functools.partial(self.backlog.seconds, granularity))
            self.metrics.bp_level.labels(granularity).set_function(
                functools.partial(self.backlog.level, granularity))
        self.metrics.queue_len.set_function(self.queue.depth)
        queue.add_listener(self._count_actions)
        store.add_listener(self._on_change)
        queue.db.follow("meta", self._count_drops)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Settle what a previous run left, then consume (the database is loaded)."""
        # A trace the explainer had started whose job is gone lost its work with a
        # process (only an explainer that drops jobs on receipt does that): fail it
        # rather than leave it running forever (every trace reaches one terminal state).
        for trace_id in self.store.ids_in_states(UNFINISHED):
            if not self.queue.live(trace_id) and trace_id not in self.queue.held():
                await self.store.transition(trace_id, "failed", error="explainer_error")
        self._tasks = [asyncio.create_task(self._work(i), name=f"explainer-{i}")
                       for i in range(self.settings.explainer_workers)]
        self._tasks.append(asyncio.create_task(self._sweep(), name="ttl-sweeper"))
        self._tasks.append(asyncio.create_task(self._beat(), name="heartbeat"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def consuming(self) -> bool:
        workers = self._tasks[:self.settings.explainer_workers]
        alive = bool(workers) and all(not task.done() for task in workers)
        return alive and not self.chaos.outage("explainer")

    async def _beat(self) -> None:
        """Tell the gateway, through the database, that this explainer lives: every
        HEARTBEAT_S, and soon after the slowdown moved (the gateway's backpressure reads
        it; a quarter of a second late, a slow explainer took ~10 more chats to engage)."""
        while True:
            beat = {"at": time.time(), "pid": os.getpid(), "consuming": self.consuming(),
                    "slowdown": round(self.slowdown, 3), "metrics": self.metrics_url}
            with contextlib.suppress(OSError):  # a store outage: the gateway sees silence
                await self.queue.db.apply("meta", HEARTBEAT, constant(beat))
            await asyncio.sleep(BEAT_GAP_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slowdown_moved.wait(), HEARTBEAT_S - BEAT_GAP_S)
            self._slowdown_moved.clear()

    # -- what the database says ---------------------------------------------------------
    def _on_change(self, record: dict[str, Any]) -> None:
        """A trace canceled (by the gateway) stops its work at the next time slice."""
        if record["state"] == "canceled" and (event := self._cancel.get(record["trace_id"])):
            event.set()

    def _count_actions(self, trace_id: str, job: dict[str, Any]) -> None:
        for action in job.get("bp_actions", ()):
            self.metrics.bp_actions.labels(action).inc()

    def _count_drops(self, key: str, body: Body | None, loading: bool) -> None:
        if key == DROPS and body is not None:
            count = int(body.get("count", 0))
            if count > self._drops_seen:
                self.metrics.bp_actions.labels("drop").inc(count - self._drops_seen)
                self._drops_seen = count

    # -- workers ---------------------------------------------------------------------
    async def _work(self, index: int) -> None:
        while True:
            while self.chaos.outage("explainer") or not self.policies.explainer_consumes:
                await asyncio.sleep(0.05)  # stalled: consume nothing
            trace_id, job = await self.queue.get()
            self.busy += 1
            if job is not None:
                self.metrics.queue_lag.observe(max(0.0, time.time() - job.get(
                    "accepted_at", time.time())))
            started = time.monotonic()
            try:
                await self._explain(trace_id, job)
                if job is not None and job.get("service_s"):
                    ratio = (time.monotonic() - started) / job["service_s"]
                    before = self.slowdown
                    self.slowdown = max(1.0, 0.7 * self.slowdown + 0.3 * min(ratio, 50.0))
                    if abs(self.slowdown - before) > 0.1 * before:
                        self._slowdown_moved.set()
            except asyncio.CancelledError:
                raise  # shutting down: the job stays, the next start resumes it
            except Exception:  # a broken job fails its trace, never the worker
                log.exception("explainer error on %s", trace_id)
                await self.store.transition(trace_id, "failed", error="explainer_error")
            finally:
                self.busy -= 1
                final = self.store.get(trace_id)
                if job is not None and final and final["state"] in (
                        "complete", "failed", "canceled"):
                    self.metrics.jobs.labels(final["state"], job["granularity"]).inc()
            self.queue.done(trace_id)
            self._cancel.pop(trace_id, None)

    async def _explain(self, trace_id: str, job: dict[str, Any] | None) -> None:
        record = self.store.get(trace_id)
        if job is None or record is None or record["state"] in TERMINAL:
            return
        cancel = self._cancel.setdefault(trace_id, asyncio.Event())
        if record["state"] == "queued":
            if await self.store.transition(trace_id, "running", stage="capture",
                                           progress=5) is None:
                return
        else:  # resumed after a restart: the work starts over, the state stays running
            await self.store.update(trace_id, stage="capture", progress=5)
        faults = self._faults(record.get("tenant_id"))
        if faults["slow_s"] and await self._sleep_or_cancel(faults["slow_s"], cancel):
            return
        service, budget = job["service_s"], job.get("budget_ms")
        allowed = service if budget is None else min(service, budget / 1000)
        spent, work_started = 0.0, time.monotonic()
        for stage, share, progress in STAGES:
            if stage == self.policies.partial_at_stage:  # the optional state (§2.2)
                await self.store.transition(trace_id, "partial", stage=stage, progress=progress)
            elif stage != "capture":
                await self.store.update(trace_id, stage=stage, progress=progress)
            step = min(service * share, allowed - spent)
            started = time.monotonic()
            canceled = await self._sleep_or_cancel(step, cancel)
            self.metrics.stage_duration.labels(stage).observe(time.monotonic() - started)
            if canceled and self.policies.cancel_stops_work:
                return  # canceled: the gateway already wrote the state
            spent += step
            if spent >= allowed and allowed < service:
                await self.store.transition(trace_id, "failed", error="budget_exceeded")
                return
        overrun = self.policies.job_deadline_s
        if overrun is not None and time.monotonic() - work_started > service + overrun:
            # A wall-clock deadline: work that was only paused (SIGSTOP, a long GC) fails,
            # and its status says nothing of why. No policy of the contract has one.
            await self.store.transition(trace_id, "failed", error=None)
            return
        if faults["attribution"] == "fail" and self.policies.honour_fail_attribution:
            await self.store.transition(trace_id, "failed", error="chaos_fail_attribution")
            return
        featureset = job["featureset"]
        if faults["attribution"] == "fallback":  # a saliency-only graph, said in the status
            featureset = "saliency"
            await self.store.update(trace_id, bp_actions=sorted(
                {*record.get("bp_actions", []), "saliency-fallback"}))
        graph = self.policies.shape_graph(build_hif(
            prompt=job["prompt"], completion=job["completion"], granularity=job["granularity"],
            featureset=featureset, model=job["model"], created_at=rfc3339(time.time())))
        key = artifact_key(trace_id, job["granularity"], featureset,
                           model_hash(job["model"]), time.time())
        if faults["drop_s3"] and self.policies.honour_drop_s3:
            # Never complete without a readable artifact.
            await self.store.transition(trace_id, "failed", error="artifact_write_failed")
            return
        if not faults["drop_s3"]:  # the defect: completes below, naming a missing artifact
            await asyncio.to_thread(self.artifacts.put, key, graph)
        if not self.policies.cancel_stops_work and cancel.is_set():
            await self.store.update(trace_id, s3_key=key, after_end=True)
            return
        if cancel.is_set() or await self.store.transition(
                trace_id, "complete", progress=100, stage="done", s3_key=key,
                expires_at=time.time() + self.settings.ttl_s) is None:
            # Canceled while publishing: the graph must never be served.
            self.artifacts.delete(key)

    def _faults(self, tenant: str | None) -> dict[str, Any]:
        """The chaos flags (CONTRACT §7) this job draws, once at its start."""
        slow = self.chaos.hits("slow-sae", tenant)
        jitter_ms = slow.get("jitter_ms", 0) if slow else 0
        attribution = self.chaos.hits("fail-attribution", tenant)
        return {
            "slow_s": random.uniform(0, float(jitter_ms)) / 1000
            if isinstance(jitter_ms, int | float) and jitter_ms > 0 else 0.0,
            "attribution": (attribution.get("mode", "fail") if attribution else None),
            "drop_s3": self.chaos.hits("drop-s3", tenant) is not None,
        }

    @staticmethod
    async def _sleep_or_cancel(seconds: float, cancel: asyncio.Event) -> bool:
        """Sleep for the stage's compute time; wake at once when the trace is canceled."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cancel.wait(), timeout=seconds)
        return cancel.is_set()

    async def _sweep(self) -> None:
        """Move complete traces past their TTL to expired."""
        interval = max(0.05, min(1.0, self.settings.ttl_s / 4))
        while True:
            await asyncio.sleep(interval)
            await self.expire_due()

    async def expire_due(self) -> None:
        now = time.time()
        for trace_id in self.store.ids_in_states(frozenset({"complete"})):
            record = self.store.get(trace_id)
            if record and self.policies.expired(record, now):
                await self.store.transition(trace_id, "expired")
