"""The status store: durable (SQLite, group commit) before a write returns, shared as an
atomic JSON snapshot, forward-only, tenant-immutable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pytest_sidecar.stack.snapshot import SNAPSHOT_INTERVAL_S
from pytest_sidecar.stack.store import StatusStore, TenantImmutable, TraceExists


def record(trace_id: str, tenant: str = "tA") -> dict[str, Any]:
    return {"trace_id": trace_id, "tenant_id": tenant, "state": "queued", "progress": 0}


async def run_store(path: Path, body: Any) -> Any:
    store = StatusStore(str(path))
    store.load()
    store.start()
    try:
        return await body(store)
    finally:
        await store.close()


def durable_state(path: Path, trace_id: str) -> str:
    """The state the database holds, read by a connection of its own (as after a kill)."""
    with contextlib.closing(sqlite3.connect(f"{path}.db")) as db:
        body = db.execute("SELECT body FROM entries WHERE kind = 'record' AND id = ?",
                          (trace_id,)).fetchone()
    return str(json.loads(body[0])["state"])


def test_a_change_is_durable_when_the_write_returns_and_the_json_follows(
        tmp_path: Path) -> None:
    path = tmp_path / "status.json"

    async def body(store: StatusStore) -> None:
        await store.create(record("t1"))
        assert durable_state(path, "t1") == "queued"
        await store.transition("t1", "running")
        assert durable_state(path, "t1") == "running"
        await asyncio.sleep(SNAPSHOT_INTERVAL_S * 2)  # the §7 document follows
        assert json.loads(path.read_text())["t1"]["state"] == "running"

    asyncio.run(run_store(path, body))
    # The doorbell's directory (its Unix sockets, shared_db.py) is not an atomic write's
    # leftover: a process that finds a stale one unlinks it.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".bells")) == [
        "status.json", "status.json.db"], "no temp files left"


def test_a_store_that_lived_in_the_json_document_alone_moves_into_the_database(
        tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"old": {**record("old"), "state": "complete"}}))

    async def body(store: StatusStore) -> str | None:
        found = store.get("old")
        return found["state"] if found else None

    assert asyncio.run(run_store(path, body)) == "complete"
    assert durable_state(path, "old") == "complete"


def test_states_only_move_forward_and_terminal_is_final(tmp_path: Path) -> None:
    async def body(store: StatusStore) -> list[Any]:
        await store.create(record("t1"))
        return [await store.transition("t1", s) is not None
                for s in ("running", "queued", "complete", "canceled", "expired")]

    assert asyncio.run(run_store(tmp_path / "s.json", body)) == [True, False, True, False, True]


def test_ids_are_never_overwritten_and_tenants_never_change(tmp_path: Path) -> None:
    async def body(store: StatusStore) -> None:
        await store.create(record("t1"))
        with pytest.raises(TraceExists):
            await store.create(record("t1", "tB"))
        with pytest.raises(TenantImmutable):
            await store.update("t1", tenant_id="tB")
        with pytest.raises(TenantImmutable):
            await store.transition("t1", "running", tenant_id="tB")
        assert store.get("t1")["tenant_id"] == "tA"  # type: ignore[index]

    asyncio.run(run_store(tmp_path / "s.json", body))


def test_concurrent_writes_share_flushes_and_survive_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "s.json"

    async def body(store: StatusStore) -> int:
        await asyncio.gather(*(store.create(record(f"t{i}")) for i in range(200)))
        return store.flushes

    flushes = asyncio.run(run_store(path, body))
    assert flushes < 200, f"{flushes} flushes for 200 writes: group commit is not grouping"

    reloaded = StatusStore(str(path))
    reloaded.load()
    assert all(reloaded.exists(f"t{i}") for i in range(200))


def test_subscribers_see_each_change_in_order(tmp_path: Path) -> None:
    async def body(store: StatusStore) -> list[str]:
        await store.create(record("t1"))
        queue = store.subscribe("t1")
        for state in ("running", "complete"):
            await store.transition("t1", state)
        return [queue.get_nowait()["state"] for _ in range(queue.qsize())]

    assert asyncio.run(run_store(tmp_path / "s.json", body)) == ["running", "complete"]


def test_atomic_writes_set_the_mode_before_the_file_appears(tmp_path: Path) -> None:
    from pytest_sidecar.atomic import write_atomic

    write_atomic(str(tmp_path / "public.json"), b"{}")
    write_atomic(str(tmp_path / "private.json"), b"{}", mode=0o600)
    assert (tmp_path / "public.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600


def test_the_file_always_equals_the_records_across_restarts(tmp_path: Path) -> None:
    """Records are encoded once and again only when touched: after any mix of creates,
    updates and transitions, and after a restart that reloads the file, the file is
    exactly the store's records."""
    path = tmp_path / "s.json"

    async def first(store: StatusStore) -> dict[str, Any]:
        await asyncio.gather(*(store.create(record(f"t{i}")) for i in range(50)))
        await asyncio.gather(*(store.update(f"t{i}", progress=i) for i in range(0, 50, 3)))
        await store.transition("t7", "running")
        return {f"t{i}": store.get(f"t{i}") for i in range(50)}

    expected = asyncio.run(run_store(path, first))
    assert json.loads(path.read_text()) == expected

    async def second(store: StatusStore) -> dict[str, Any]:
        await store.transition("t7", "complete")  # one record touched after the reload
        await store.create(record("t50"))
        return {f"t{i}": store.get(f"t{i}") for i in range(51)}

    expected = asyncio.run(run_store(path, second))
    on_disk = json.loads(path.read_text())
    assert on_disk == expected and on_disk["t7"]["state"] == "complete"
    assert on_disk["t3"]["progress"] == 3  # untouched since the restart, still there


def test_after_a_kill_the_document_catches_up_with_the_database_at_once(
        tmp_path: Path) -> None:
    """A killed process left records in the database that the §7 document lacks: the
    restarted store writes the document at start, not at the next change."""
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"t1": record("t1")}))  # the last snapshot before the kill
    from pytest_sidecar.stack.shared_db import SharedDb

    left = SharedDb(f"{path}.db")
    left.import_entries("record", {"t1": record("t1"), "t2": record("t2")})  # acknowledged since

    async def body(store: StatusStore) -> None:
        # No change ever comes: without a snapshot at start the document would stay
        # behind for good. A bounded wait, for a loaded machine.
        for _ in range(40):
            if set(json.loads(path.read_text())) == {"t1", "t2"}:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the document still holds {sorted(json.loads(path.read_text()))}")

    asyncio.run(run_store(path, body))


def test_a_failed_commit_changes_nothing_and_the_next_one_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer whose commit failed hears so and nothing of its change exists, in the
    database or in the records this process reads; the store goes on working."""
    from pytest_sidecar.stack.shared_db import SharedDb

    path = tmp_path / "status.json"
    real_commit, failures = SharedDb._commit, [1]

    def flaky(self: SharedDb, batch: Any) -> None:
        if failures:
            failures.pop()
            raise OSError("disk full")
        real_commit(self, batch)

    monkeypatch.setattr(SharedDb, "_commit", flaky)

    async def body(store: StatusStore) -> None:
        with pytest.raises(OSError, match="disk full"):
            await store.create(record("t1"))
        assert store.get("t1") is None
        await store.create(record("t2"))
        assert store.get("t2") is not None

    asyncio.run(run_store(path, body))
    assert durable_state(path, "t2") == "queued"
    with pytest.raises(TypeError):  # no row for t1
        durable_state(path, "t1")
