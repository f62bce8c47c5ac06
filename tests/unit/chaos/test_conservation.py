"""The conservation checker (Jepsen's total-queue, on trace channels) on hand-made
histories: each kind of anomaly is counted, and only those."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pytest_sidecar.chaos.conservation import (
    Ledger,
    Observed,
    audit_channel,
    judge,
    quantiles,
    terminal_audit_lines,
    webhook_deliveries,
)


def test_a_clean_history_has_no_anomaly_and_counts_recoveries() -> None:
    # a was acknowledged before the kill but not read in flight at it: not a recovery,
    # however late its status was polled; b was read in flight and ended complete.
    ledger = Ledger(acknowledged={"a": 1.0, "b": 2.0, "c": 5.0}, kills=[3.0],
                    open_at_kill={"b"})
    observed = Observed(states={"a": ["queued", "complete"], "b": ["running", "complete"],
                                "c": ["complete", "expired"]},
                        terminal_at={"a": 4.5, "b": 4.0, "c": 5.5})
    verdict = judge(ledger, observed, {"a": ["complete"], "b": ["complete"],
                                       "c": ["complete"]})
    assert (verdict["lost"], verdict["duplicated"], verdict["backwards"]) == ([], [], [])
    assert verdict["audit_lost"] == []
    assert verdict["recovered"] == 1 and verdict["open_at_kills"] == 1
    assert verdict["time_to_visible_s"]["status"] == {"count": 3, "p50": 2.0, "p99": 3.5}


def test_a_failed_trace_is_not_lost_but_must_say_why() -> None:
    ledger = Ledger(acknowledged={"told": 1.0, "silent": 1.0})
    observed = Observed(states={"told": ["queued", "failed"], "silent": ["failed"]},
                        terminal_at={"told": 2.0, "silent": 2.0},
                        errors={"told": "explainer_error", "silent": None})
    verdict = judge(ledger, observed)
    assert verdict["lost"] == [] and verdict["failed"] == ["silent", "told"]
    assert verdict["failed_without_error"] == ["silent"]


def test_each_anomaly_is_named() -> None:
    ledger = Ledger(acknowledged={"lost": 1.0, "gone": 1.0, "twice": 1.0, "back": 1.0})
    observed = Observed(states={"lost": ["queued"], "twice": ["complete", "failed"],
                                "back": ["complete", "running", "complete"]},
                        terminal_at={"twice": 2.0, "back": 2.0}, unknown={"gone"})
    verdict = judge(ledger, observed, {"back": ["complete", "complete"],
                                       "stranger": ["failed"]})
    assert verdict["lost"] == ["gone", "lost"]
    assert verdict["duplicated"] == ["back", "twice"]  # two audit lines count too
    assert verdict["backwards"] == ["back"]
    assert verdict["unexpected"] == 1
    assert verdict["audit_lost"] == ["twice"], "terminal on the status channel, no audit line"
    assert "audit_lost" not in judge(ledger, observed), "no audit log: the channel is unjudged"
    silent = judge(ledger, observed, {"stranger": ["failed"]})
    assert "audit_lost" not in silent and "not judged" in silent["audit_channel"], (
        "a log with no ending of ours lacks §7's lifecycle lines; that is no §10 loss")
    assert judge(Ledger(acknowledged={"x": 1.0}), Observed(
        states={"x": ["queued", "failed"]}, terminal_at={"x": 2.0}))["failed"] == ["x"]


def test_the_audit_channel_waits_for_the_log_to_catch_up_with_the_status(
        tmp_path: Path) -> None:
    """A log trailing the status by a flush is not a lost line; a line that never comes
    is, after `within_s`."""
    log = tmp_path / "audit.jsonl"
    log.write_text('{"event": "trace.complete", "trace_id": "a", "ts": "2026-12-01T00:00:00Z"}\n'
                   '{"event": "trace.compl')  # cut by a SIGKILL
    ledger = Ledger(acknowledged={"a": 1.0, "b": 1.0})
    observed = Observed(states={"a": ["complete"], "b": ["complete"]},
                        terminal_at={"a": 2.0, "b": 2.0})

    def late_line() -> None:
        time.sleep(0.3)
        with log.open("a") as handle:
            handle.write('\n{"event": "trace.complete", "trace_id": "b", '
                         '"ts": "2026-12-01T00:00:01Z"}\n')

    writer = threading.Thread(target=late_line)
    writer.start()
    audit, _ = audit_channel(str(log), ledger, observed, within_s=5.0)
    writer.join()
    assert audit == {"a": ["complete"], "b": ["complete"]}
    started = time.monotonic()
    never = Observed(states={**observed.states, "c": ["failed"]},
                     terminal_at={**observed.terminal_at, "c": 2.0})
    audit, _ = audit_channel(str(log), Ledger(acknowledged={"a": 1.0, "b": 1.0, "c": 1.0}),
                             never, within_s=0.5)
    assert audit is not None and "c" not in audit and 0.5 <= time.monotonic() - started < 3


def test_audit_lines_and_quantiles() -> None:
    lines = [{"event": "trace.queued", "trace_id": "a"}, {"event": "trace.complete",
                                                           "trace_id": "a"},
             {"event": "trace.failed", "trace_id": "b"}, {"event": "chat.submit"}]
    assert terminal_audit_lines(lines) == {"a": ["complete"], "b": ["failed"]}
    assert quantiles([]) == {"count": 0, "p50": None, "p99": None}


def test_webhook_endings_lost_duplicated_or_repeated() -> None:
    """Same event id twice is at-least-once (allowed); two ids, or a delivered state the
    status channel contradicts, is a duplicate; an ending never delivered is lost; a
    trace without a registration is not judged on this channel."""
    ledger = Ledger(acknowledged={t: 1.0 for t in "abcde"},
                    hooked={t: 1.1 for t in "abcd"})
    observed = Observed(states={t: ["queued", "complete"] for t in "abcde"},
                        terminal_at={t: 2.0 for t in "abcde"})
    hooks = webhook_deliveries([
        (1.5, {"trace_id": "a", "event_id": "e1", "state": "complete"}),
        (1.9, {"trace_id": "a", "event_id": "e1", "state": "complete"}),  # redelivered
        (1.5, {"trace_id": "b", "event_id": "e2", "state": "complete"}),
        (1.6, {"trace_id": "b", "event_id": "e3", "state": "complete"}),  # a second id
        (1.5, {"trace_id": "c", "event_id": "e4", "state": "failed"}),  # status: complete
    ])
    verdict = judge(ledger, observed, hooks=hooks)
    assert verdict["duplicated"] == ["b", "c"]
    assert verdict["webhook_lost"] == ["d"]
    assert verdict["webhooks"] == {"registered": 4, "registration_refused": 0,
                                   "delivered": 3, "redelivered_same_event": 1}
    assert verdict["time_to_visible_s"]["webhook"]["count"] == 3
    assert "webhooks" not in judge(ledger, observed)  # no receiver: channel not judged


def test_sse_endings_lost_duplicated_or_backwards() -> None:
    """A stream that never sent its ending is lost (when the status channel has one); a
    second, different ending or one the status contradicts is a duplicate; a repeated
    identical ending (a replay after reconnecting) is fine."""
    from pytest_sidecar.chaos.streams import Streamed

    ledger = Ledger(acknowledged={t: 1.0 for t in "abcde"})
    observed = Observed(states={t: ["queued", "complete"] for t in "abcde"},
                        terminal_at={t: 2.0 for t in "abcde"})
    streams = {"a": Streamed(["queued", "running", "complete"], ["complete", "complete"], 2.5, 2),
               "b": Streamed(["running"], ["failed"], 2.5, 1),
               "c": Streamed(["running", "queued"], ["complete"], 2.5, 1),
               "d": Streamed(["queued"], [], None, 3)}
    verdict = judge(ledger, observed, streams=streams)
    assert verdict["sse_lost"] == ["d"]
    assert verdict["duplicated"] == ["b"]
    assert verdict["sse_backwards"] == ["c"]
    assert verdict["sse"] == {"followed": 4, "reconnected": 2}
    assert verdict["time_to_visible_s"]["sse"]["count"] == 3
