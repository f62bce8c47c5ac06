"""The database the gateway and explainer processes share: a move is judged against the
state committed at that moment whichever process wrote it, and each process hears every
version of the other's entries once, in order."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

from pytest_sidecar.stack import shared_db
from pytest_sidecar.stack.shared_db import SharedDb
from pytest_sidecar.stack.store import StatusStore

TRACES = 150


def record(trace_id: str) -> dict[str, Any]:
    return {"trace_id": trace_id, "tenant_id": "tA", "state": "queued", "progress": 0}


def _complete_all(path: str, ready: Any, go: Any, moving: Any, results: Any) -> None:
    """The explainer's side, in a process of its own: complete every trace."""
    async def body() -> list[bool]:
        db = SharedDb(path)
        store = StatusStore(path.removesuffix(".db"), db=db, snapshot=False)
        db.load()
        db.start()
        ready.set()
        go.wait()
        moved = {}
        for i in reversed(range(TRACES)):  # one commit each, meeting the gateway's
            moved[i] = await store.transition(f"t{i}", "complete") is not None
            moving.set()  # the gateway starts once this side is under way
        await db.close()
        return [moved[i] for i in range(TRACES)]

    results.put(asyncio.run(body()))


def test_a_cancel_and_a_complete_from_two_processes_never_both_win(tmp_path: Path) -> None:
    path = str(tmp_path / "status.json.db")
    context = multiprocessing.get_context("spawn")
    ready, go, moving = context.Event(), context.Event(), context.Event()
    results = context.Queue()

    async def gateway() -> tuple[list[bool], list[bool], dict[str, str]]:
        db = SharedDb(path)
        store = StatusStore(str(tmp_path / "status.json"), db=db, snapshot=False)
        db.load()
        db.start()
        for i in range(TRACES):  # running: both moves are allowed, until one is made
            await store.create({**record(f"t{i}"), "state": "running"})
        explainer = context.Process(target=_complete_all,
                                    args=(path, ready, go, moving, results))
        explainer.start()
        await asyncio.to_thread(ready.wait, 60)
        go.set()  # both sides move every trace, from opposite ends, one commit each
        await asyncio.to_thread(moving.wait, 60)  # a spawned process starts slower
        canceled = [await store.transition(f"t{i}", "canceled") for i in range(TRACES)]
        completed = await asyncio.to_thread(results.get, True, 60)
        await asyncio.to_thread(explainer.join, 60)
        for _ in range(100):  # the feed brings the explainer's moves here
            if all(store.get(f"t{i}")["state"] != "running" for i in range(TRACES)):  # type: ignore[index]
                break
            await asyncio.sleep(0.02)
        seen = {f"t{i}": store.get(f"t{i}")["state"] for i in range(TRACES)}  # type: ignore[index]
        await db.close()
        return [c is not None for c in canceled], completed, seen

    canceled, completed, seen = asyncio.run(gateway())
    both = [i for i in range(TRACES) if canceled[i] and completed[i]]
    neither = [i for i in range(TRACES) if not canceled[i] and not completed[i]]
    assert not both and not neither, (both, neither)
    assert sum(canceled) > 0 and sum(completed) > 0, "the race was never run"
    assert seen == {f"t{i}": "canceled" if canceled[i] else "complete" for i in range(TRACES)}
    final = SharedDb(path)
    states: dict[str, str] = {}
    final.follow("record", lambda key, body, _: states.__setitem__(key, (body or {})["state"]))
    final.load()
    assert states == seen, "the database holds what each side heard"


def test_the_other_writers_versions_arrive_once_each_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")

    async def body() -> list[Any]:
        writer, reader = SharedDb(path), SharedDb(path)
        heard: list[Any] = []
        reader.follow("job", lambda key, job, loading: heard.append(
            (key, job and job["n"], loading)))
        writer.load()
        writer.start()
        await writer.apply("job", "old", shared_db.constant({"n": 0}))
        reader.load()
        reader.start()
        for n in (1, 2, 3):  # three commits between two polls of the reader
            await writer.apply("job", "j", shared_db.constant({"n": n}))
        await writer.apply("job", "j", lambda _: None)
        for _ in range(100):
            if len(heard) >= 5:
                break
            await asyncio.sleep(0.01)
        await writer.close()
        await reader.close()
        return heard

    assert asyncio.run(body()) == [("old", 0, True), ("j", 1, False), ("j", 2, False),
                                   ("j", 3, False), ("j", None, False)]


def test_a_follower_the_log_left_behind_reads_the_latest_versions(
        tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(shared_db, "LOG_KEEP", 2)
    monkeypatch.setattr(shared_db, "PRUNE_EVERY", 1)
    path = str(tmp_path / "shared.db")

    async def body() -> dict[str, Any]:
        writer, reader = SharedDb(path), SharedDb(path)
        latest: dict[str, Any] = {}
        reader.follow("job", lambda key, job, _: latest.__setitem__(key, job))
        reader.load()
        writer.load()
        writer.start()
        for n in range(6):  # the reader never polls meanwhile: a frozen process
            await writer.apply("job", f"j{n % 3}", shared_db.constant({"n": n}))
        reader.poll()
        await writer.close()
        return latest

    assert asyncio.run(body()) == {"j0": {"n": 3}, "j1": {"n": 4}, "j2": {"n": 5}}
