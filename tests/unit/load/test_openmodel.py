"""Load engine groundwork: arrival schedules, exact HDR merging, and the open model's
coordinated-omission correction (against an in-process fake target, no network)."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest

from pytest_sidecar.load.openmodel import run_open
from pytest_sidecar.load.schedule import Arrivals
from pytest_sidecar.load.stats import Histograms, status_class


def test_a_constant_schedule_is_evenly_spaced_and_exactly_sized() -> None:
    offsets = list(Arrivals(rate=200, duration_s=2).offsets())
    assert len(offsets) == 400
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(offsets)}
    assert gaps == {0.005}


def test_constant_shards_interleave_into_the_whole_schedule() -> None:
    whole = list(Arrivals(rate=90, duration_s=3, ramp_s=1).offsets())
    shards = [list(Arrivals(rate=90, duration_s=3, ramp_s=1, shard=i, shards=3).offsets())
              for i in range(3)]
    assert sorted(t for shard in shards for t in shard) == whole
    assert {len(s) for s in shards} <= {len(whole) // 3, len(whole) // 3 + 1}


def test_a_ramp_offers_its_integral() -> None:
    spec = Arrivals(rate=100, duration_s=10, ramp_s=4)
    offsets = list(spec.offsets())
    assert spec.expected_count() == pytest.approx(800)  # 100 * (4/2 + 6)
    assert abs(len(offsets) - 800) <= 1
    assert sum(1 for t in offsets if t < 2) == pytest.approx(50, abs=1)  # 100 * 2^2 / 8


def test_a_poisson_schedule_has_the_right_mean_and_is_reproducible() -> None:
    spec = Arrivals(rate=500, duration_s=20, kind="poisson", seed=7)
    offsets = list(spec.offsets())
    assert offsets == list(Arrivals(rate=500, duration_s=20, kind="poisson", seed=7).offsets())
    assert len(offsets) == pytest.approx(10_000, rel=0.03)
    assert offsets == sorted(offsets)


@pytest.mark.parametrize("bad", [dict(rate=0, duration_s=1), dict(rate=1, duration_s=1,
                                  kind="burst"), dict(rate=1, duration_s=1, shard=2, shards=2)])
def test_bad_schedules_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Arrivals(**bad)  # type: ignore[arg-type]


def test_histograms_merge_exactly_and_round_trip() -> None:
    rng = random.Random(3)
    values = [rng.expovariate(20) for _ in range(5000)]
    whole, left, right = Histograms(), Histograms(), Histograms()
    for index, value in enumerate(values):
        whole.record("chat", "2xx", value)
        (left if index % 2 else right).record("chat", "2xx", value)
    left.merge(Histograms.decode(right.encode()))
    assert left.summary("chat") == whole.summary("chat")
    assert whole.summary("chat")["count"] == 5000
    assert whole.summary("explain") == {"count": 0, "p50_ms": None, "p90_ms": None,
                                        "p95_ms": None, "p99_ms": None, "max_ms": None}
    assert status_class(503) == "5xx" and status_class(None) == "error"


def test_the_open_model_sees_a_stall_that_a_closed_loop_hides() -> None:
    """200 req/s for 2 s; the fake target answers in 1 ms but stalls once for 0.5 s.
    Requests queue behind the stall, so about a quarter of the intended send times see
    hundreds of ms; a closed-loop client, which waits, sees one slow request in ~300."""
    async def scenario() -> tuple[dict[str, Any], int]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        stall_until = start + 1.0  # stalled from 0.5 s to 1.0 s
        lock = asyncio.Lock()

        async def send() -> tuple[str, int | None]:
            async with lock:  # one request at a time, like a stalled server
                now = loop.time()
                if start + 0.5 <= now < stall_until:
                    await asyncio.sleep(stall_until - now)
                await asyncio.sleep(0.001)
            return "chat", 200

        result = await run_open(Arrivals(rate=200, duration_s=2).offsets(), send,
                                concurrency=1000)
        return result.histograms.summary("chat"), result.dropped

    summary, dropped = asyncio.run(scenario())
    assert dropped == 0 and summary["count"] == 400
    assert summary["p50_ms"] < 50, summary  # most requests are quick
    assert summary["p90_ms"] > 100 and summary["max_ms"] > 400, summary  # the stall shows


def test_the_concurrency_cap_drops_instead_of_queueing() -> None:
    async def scenario() -> tuple[int, int, int]:
        async def send() -> tuple[str, int | None]:
            await asyncio.sleep(0.2)
            return "chat", 200

        result = await run_open(Arrivals(rate=100, duration_s=0.5).offsets(), send,
                                concurrency=5)
        return result.offered, result.sent, result.dropped

    offered, sent, dropped = asyncio.run(scenario())
    assert offered == 50 and sent + dropped == offered
    assert 5 <= sent <= 20 and dropped >= 30, (sent, dropped)


def test_a_target_that_drops_connections_shows_as_chat_errors() -> None:
    """Sends that raise (refused, reset) are errors of the chat lane, counted by type, so
    the chat error rate sees them; nothing is hidden in a lane of its own."""
    import socket

    from pytest_sidecar.load.runner import Profile, run_scenario
    from pytest_sidecar.load.verdict import FAIL, chat_verdict

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = asyncio.run(run_scenario(f"http://127.0.0.1:{port}", (("tenant-a", "t"),),
                                   Profile(rate=50, duration_s=0.4, arrivals="constant")))
    chat = run.summary["lanes"]["chat"]
    assert chat["status"] == {"error": 20} and set(run.summary["lanes"]) == {"chat"}
    assert run.summary["exceptions"] == {"ConnectionRefusedError": 20}
    verdict = chat_verdict(chat["status"], refused_explain=0, min_samples=20)
    assert verdict.outcome == FAIL and verdict.measured == 1.0
