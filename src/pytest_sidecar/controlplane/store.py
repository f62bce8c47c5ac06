"""The run store: SQLite (stdlib, WAL) under the data directory.

It holds runs, their per-test outcomes, SLO figures and root causes, and every event a
viewer was sent (so a late viewer, or one resuming with Last-Event-ID, gets the same
history). It is the only state the control plane changes (CONTRACT §9).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

ACTIVE = ("queued", "running")
FINISHED = ("passed", "failed", "error", "canceled", "timed_out", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, state TEXT NOT NULL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL,
    request TEXT NOT NULL, report_dir TEXT NOT NULL, exit_code INTEGER, reason TEXT,
    counts TEXT, gate TEXT, verdict TEXT);
CREATE INDEX IF NOT EXISTS runs_by_seq ON runs (seq);
CREATE TABLE IF NOT EXISTS tests (
    run_id TEXT NOT NULL, nodeid TEXT NOT NULL, outcome TEXT NOT NULL,
    duration_ms INTEGER, reason TEXT, PRIMARY KEY (run_id, nodeid));
CREATE INDEX IF NOT EXISTS tests_by_nodeid ON tests (nodeid);
CREATE TABLE IF NOT EXISTS slos (
    run_id TEXT NOT NULL, name TEXT NOT NULL, outcome TEXT, measured REAL,
    threshold REAL, samples INTEGER, PRIMARY KEY (run_id, name));
CREATE TABLE IF NOT EXISTS figures (
    run_id TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, unit TEXT,
    better TEXT NOT NULL, PRIMARY KEY (run_id, name));
CREATE TABLE IF NOT EXISTS causes (
    run_id TEXT NOT NULL, rank INTEGER NOT NULL, text TEXT NOT NULL, tests INTEGER,
    PRIMARY KEY (run_id, rank));
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL, id INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (run_id, id));
"""

RUN_COLUMNS = ("id", "seq", "state", "created_at", "started_at", "finished_at", "request",
               "report_dir", "exit_code", "reason", "counts", "gate", "verdict")
JSON_COLUMNS = ("request", "counts", "gate", "verdict")


class Store:
    """One connection shared by the server's threads, serialized by a lock (SQLite
    writes are serialized anyway; reads of this size take well under a millisecond)."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        # Pragmas take effect outside a transaction; the schema goes in one.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._tx() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Runs

    def create_run(self, run_id: str, request: dict[str, Any], report_dir: str) -> None:
        with self._tx() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs").fetchone()[0]
            db.execute("INSERT INTO runs (id, seq, state, created_at, request, report_dir) "
                       "VALUES (?, ?, 'queued', ?, ?, ?)",
                       (run_id, seq, time.time(), json.dumps(request), report_dir))

    def update_run(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(RUN_COLUMNS)
        if unknown:
            raise ValueError(f"no run column {sorted(unknown)}")
        values = [json.dumps(v) if k in JSON_COLUMNS and v is not None else v
                  for k, v in fields.items()]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values, run_id))

    def run(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?",
                                   (run_id,)).fetchone()
        return _run_row(row) if row else None

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest runs first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs "
                                    "ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [_run_row(row) for row in rows]

    def mark_interrupted(self) -> list[str]:
        """Runs a dead control plane left queued or running: now `interrupted`."""
        with self._tx() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM runs WHERE state IN (?, ?)", ACTIVE).fetchall()]
            db.execute("UPDATE runs SET state = 'interrupted', finished_at = ?, reason = "
                       "'the control plane stopped while this run was active' "
                       "WHERE state IN (?, ?)", (time.time(), *ACTIVE))
        return ids

    # Results

    def record_results(self, run_id: str, tests: Iterable[Sequence[Any]],
                       slos: Iterable[Sequence[Any]], causes: Iterable[Sequence[Any]],
                       figures: Iterable[Sequence[Any]] = ()) -> None:
        """tests: (nodeid, outcome, duration_ms, reason); slos: (name, outcome, measured,
        threshold, samples); causes: (rank, text, tests); figures (measured, not judged:
        the LLM latency figures): (name, value, unit, better)."""
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO tests VALUES (?, ?, ?, ?, ?)",
                           [(run_id, *t) for t in tests])
            db.executemany("INSERT OR REPLACE INTO slos VALUES (?, ?, ?, ?, ?, ?)",
                           [(run_id, *s) for s in slos])
            db.executemany("INSERT OR REPLACE INTO causes VALUES (?, ?, ?, ?)",
                           [(run_id, *c) for c in causes])
            db.executemany("INSERT OR REPLACE INTO figures VALUES (?, ?, ?, ?, ?)",
                           [(run_id, *f) for f in figures])

    def tests_of(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT nodeid, outcome, duration_ms, reason FROM tests "
                                    "WHERE run_id = ? ORDER BY nodeid", (run_id,)).fetchall()
        return [dict(zip(("nodeid", "outcome", "duration_ms", "reason"), r, strict=True))
                for r in rows]

    def causes_of(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT rank, text, tests FROM causes WHERE run_id = ? "
                                    "ORDER BY rank", (run_id,)).fetchall()
        return [dict(zip(("rank", "text", "tests"), r, strict=True)) for r in rows]

    def outcome_history(self, last_runs: int) -> list[tuple[int, str, str, str]]:
        """(run seq, run id, nodeid, outcome) over the last `last_runs` finished runs
        that recorded results, oldest run first."""
        with self._lock:
            return self._db.execute(
                "SELECT r.seq, r.id, t.nodeid, t.outcome FROM tests t JOIN ("
                " SELECT id, seq FROM runs WHERE EXISTS (SELECT 1 FROM tests"
                "  WHERE tests.run_id = runs.id) ORDER BY seq DESC LIMIT ?) r"
                " ON r.id = t.run_id ORDER BY r.seq",
                (last_runs,)).fetchall()

    def test_history(self, nodeid: str, last_runs: int
                     ) -> list[tuple[int, str, str, int | None, str | None]]:
        """(run seq, run id, outcome, duration ms, reason) of one test over the last
        `last_runs` runs that ran it, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.seq, r.id, t.outcome, t.duration_ms, t.reason FROM tests t "
                "JOIN runs r ON r.id = t.run_id WHERE t.nodeid = ? ORDER BY r.seq DESC "
                "LIMIT ?", (nodeid, last_runs)).fetchall()
        return list(reversed(rows))

    def slo_history(self, last_runs: int) -> list[tuple[int, str, str, str | None,
                                                        float | None, float | None]]:
        """(run seq, run id, name, outcome, measured, threshold), oldest run first."""
        with self._lock:
            return self._db.execute(
                "SELECT r.seq, r.id, s.name, s.outcome, s.measured, s.threshold FROM slos s "
                "JOIN (SELECT id, seq FROM runs ORDER BY seq DESC LIMIT ?) r "
                "ON r.id = s.run_id ORDER BY r.seq", (last_runs,)).fetchall()

    def figure_history(self, last_runs: int) -> list[tuple[int, str, str, float, str | None,
                                                           str]]:
        """(run seq, run id, name, value, unit, better), oldest run first."""
        with self._lock:
            return self._db.execute(
                "SELECT r.seq, r.id, f.name, f.value, f.unit, f.better FROM figures f "
                "JOIN (SELECT id, seq FROM runs ORDER BY seq DESC LIMIT ?) r "
                "ON r.id = f.run_id ORDER BY r.seq", (last_runs,)).fetchall()

    # Events

    def add_event(self, run_id: str, body: dict[str, Any]) -> int:
        """Store an event under the run's next id (1, 2, ...: monotonic per run)."""
        with self._tx() as db:
            next_id = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM events WHERE run_id = ?",
                                 (run_id,)).fetchone()[0]
            db.execute("INSERT INTO events VALUES (?, ?, ?)",
                       (run_id, next_id, json.dumps(body)))
        return int(next_id)

    def events_after(self, run_id: str, after: int = 0) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT id, body FROM events WHERE run_id = ? AND id > ? "
                                    "ORDER BY id", (run_id, after)).fetchall()
        return [(int(i), json.loads(b)) for i, b in rows]


def _run_row(row: Sequence[Any]) -> dict[str, Any]:
    run = dict(zip(RUN_COLUMNS, row, strict=True))
    for key in JSON_COLUMNS:
        run[key] = json.loads(run[key]) if run[key] else None
    return run
