"""The SSE channel of the conservation check (CONTRACT §2.5, §10): live streams of a
sample of acknowledged traces, followed across restarts.

Each stream is read until it ends with its terminal event (`complete`, or `error`
naming the state). A stream cut by a kill is opened again (with Last-Event-ID, which a
target may honour or not: a replay from the current state is fine). What a stream
showed per trace: the states of its `status_update` events in order, its terminal
events, and when the first one arrived.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

RECONNECT_S = 0.2
ENDINGS = frozenset({"complete", "failed", "canceled"})


@dataclass
class Streamed:
    states: list[str] = field(default_factory=list)
    endings: list[str] = field(default_factory=list)  # the distinct terminal states shown
    ended_at: float | None = None
    connections: int = 0


class StreamChannel:
    """Follows the streams of the traces handed to `follow`, each in a thread of a
    bounded pool, until each ends or `deadline_s` after it was handed over."""

    def __init__(self, url: str, token: str | None, deadline_s: float,
                 threads: int = 48) -> None:
        self.url, self.token, self.deadline_s = url, token, deadline_s
        self.seen: dict[str, Streamed] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads)

    def follow(self, trace_id: str) -> None:
        with self._lock:
            self.seen[trace_id] = Streamed()
        self._pool.submit(self._read, trace_id, time.monotonic() + self.deadline_s)

    def wait(self) -> dict[str, Streamed]:
        self._pool.shutdown(wait=True)
        return self.seen

    def _read(self, trace_id: str, deadline: float) -> None:
        import httpx

        from ..client import SidecarClient, SseEvent, parse_sse

        record = self.seen[trace_id]
        last_id: str | None = None
        with SidecarClient(self.url, self.token, timeout=5.0,
                           retry_rate_limited=False) as client:
            while record.ended_at is None and time.monotonic() < deadline:
                headers = {"Last-Event-ID": last_id} if last_id else {}
                record.connections += 1
                try:
                    with client.http.stream(
                            "GET", client.trace_path(trace_id, "stream"), headers=headers,
                            timeout=httpx.Timeout(5.0, read=max(1.0, deadline -
                                                                time.monotonic()))) as answer:
                        if answer.status_code != 200:
                            time.sleep(_retry_after(answer.headers.get("retry-after")))
                            continue
                        for item in parse_sse(answer.iter_lines()):
                            if isinstance(item, SseEvent):
                                last_id = item.id or last_id
                                self._on(record, item.event, _data(item))
                            # Keep-alives keep every read short, so a stream that never
                            # ends would never time out: the deadline is checked here.
                            if record.ended_at is not None or time.monotonic() > deadline:
                                break
                except httpx.HTTPError:
                    pass  # cut (a kill) or timed out: open it again until the deadline
                if record.ended_at is None:
                    time.sleep(RECONNECT_S)

    @staticmethod
    def _on(record: Streamed, event: str, data: dict[str, Any]) -> None:
        """A terminal `status_update` shows the ending as well as the terminal event
        does: conservation asks whether the ending reached the stream; whether the stream
        also closes with `complete`/`error` is §2.5's own spec's question."""
        ending = None
        if event == "status_update" and isinstance(data.get("state"), str):
            if not record.states or record.states[-1] != data["state"]:
                record.states.append(data["state"])
            ending = data["state"] if data["state"] in ENDINGS else None
        elif event in ("complete", "error"):
            ending = "complete" if event == "complete" else str(data.get("state") or "failed")
        if ending is not None:
            if ending not in record.endings:
                record.endings.append(ending)
            if record.ended_at is None:
                record.ended_at = time.monotonic()


def _data(item: Any) -> dict[str, Any]:
    try:
        data = item.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(value: str | None) -> float:
    return min(5.0, float(value)) if value and value.isdigit() else RECONNECT_S


def judge_streams(streams: dict[str, Streamed], endings: dict[str, str],
                  acknowledged: dict[str, float],
                  went_back: Callable[[list[str]], bool]) -> dict[str, Any]:
    """lost: the status channel ended the trace, its stream never did; duplicated: two
    different terminal states on the stream, or one the status channel contradicts;
    backwards: a stream's states going back; and the time to visible."""
    lost = sorted(t for t, s in streams.items() if t in endings and s.ended_at is None)
    duplicated = sorted(t for t, s in streams.items() if len(set(s.endings)) > 1 or any(
        e != endings.get(t, e) for e in s.endings))
    backwards = sorted(t for t, s in streams.items() if went_back(s.states))
    delays = [s.ended_at - acknowledged[t] for t, s in streams.items()
              if s.ended_at is not None and t in acknowledged]
    return {"followed": len(streams), "lost": lost, "duplicated": duplicated,
            "backwards": backwards, "reconnected": sum(1 for s in streams.values()
                                                       if s.connections > 1),
            "delays": delays}
