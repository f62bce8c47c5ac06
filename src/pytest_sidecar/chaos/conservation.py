"""Conservation across restarts (Jepsen's total-queue checker, on the trace channels).

Every trace the gateway acknowledged (a 200 naming it) must reach exactly one terminal
state, its states never going backwards, whatever was killed meanwhile (CONTRACT §10).
Given what the clients saw and what each channel later showed, `judge` counts per trace:

- lost: acknowledged, yet never terminal (or unknown) on the status channel;
- failed: acknowledged and ended `failed`: a terminal state like any other (§2.2 lets
  a trace fail), so reported, never counted as lost; but a failed trace carries an
  `error` (§2.2), and one that does not is counted apart (failed without error);
- duplicated: two different terminal states for one trace (status, audit or webhook, or
  across them), two terminal audit lines, or two webhook event ids for one trace's
  ending; Jepsen's own checker forgives duplicates, this one does not (a repeated
  delivery of the same event id is at-least-once, and allowed);
- audit lost: a trace terminal on the status channel whose ending the audit log never
  records (a line still in memory at the kill, never written after the restart);
- webhook lost: a trace with a webhook registered, terminal on the status channel,
  whose ending was never delivered;
- SSE lost: a streamed trace (a sample, chaos/streams.py) terminal on the status channel
  whose stream never sent its terminal event;
- backwards: a state observed after a later one (e.g. complete, then running);
- unexpected: terminal traces no client was acknowledged for (allowed: a response that
  never left may still have opened its trace), reported, not failed;
- recovered: observed not terminal just before a kill (a sample of the newest
  acknowledged traces is read at each kill), and complete after it.

And per channel, the time from acknowledgement to the terminal state being visible.
"""

from __future__ import annotations

import itertools
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..vocabulary.defaults import DEFAULT_MODEL
from ..vocabulary.states import RANK, TERMINAL
from .streams import StreamChannel, Streamed, judge_streams

# The end of a trace's work; `expired` may follow `complete` and is no second ending.
ENDINGS = TERMINAL - {"expired"}

TERMINAL_EVENTS = {"trace.complete": "complete", "trace.failed": "failed",
                   "trace.canceled": "canceled"}


@dataclass
class Ledger:
    """What the clients saw: trace id -> acknowledgement time (monotonic seconds)."""

    acknowledged: dict[str, float] = field(default_factory=dict)
    refused: int = 0  # answers other than 200 (e.g. while the gateway restarted)
    unanswered: int = 0  # no answer at all (connection refused or reset)
    kills: list[float] = field(default_factory=list)  # when each process fault struck
    # Traces read as not terminal just before a kill (a sample of the newest acknowledged).
    open_at_kill: set[str] = field(default_factory=set)
    hooked: dict[str, float] = field(default_factory=dict)  # webhook registered (201), when
    hook_refused: int = 0  # registrations not answered 201 (e.g. during a restart)


@dataclass
class Observed:
    """What the status channel showed: every state seen per trace, in order, with when
    the first terminal one was seen."""

    states: dict[str, list[str]] = field(default_factory=dict)
    terminal_at: dict[str, float] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)  # answered 404
    errors: dict[str, Any] = field(default_factory=dict)  # a failed trace's `error`


def terminal_audit_lines(lines: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """trace id -> the terminal states its audit lines record, in order."""
    found: dict[str, list[str]] = {}
    for line in lines:
        state = TERMINAL_EVENTS.get(str(line.get("event")))
        if state and line.get("trace_id"):
            found.setdefault(str(line["trace_id"]), []).append(state)
    return found


def webhook_deliveries(deliveries: Iterable[tuple[float, Mapping[str, Any]]]
                       ) -> dict[str, list[tuple[float, str, str]]]:
    """trace id -> (arrival time, event id, state) of each delivery, in arrival order."""
    found: dict[str, list[tuple[float, str, str]]] = {}
    for at, body in deliveries:
        if body.get("trace_id"):
            found.setdefault(str(body["trace_id"]), []).append(
                (at, str(body.get("event_id")), str(body.get("state"))))
    return found


def _webhook_verdict(ledger: Ledger, observed: Observed,
                     hooks: Mapping[str, list[tuple[float, str, str]]]
                     ) -> tuple[list[str], set[str], dict[str, float]]:
    """(lost, duplicated, delays): endings never delivered; traces with two event ids
    or a delivered state other than the status channel's ending; ack -> first delivery."""
    ended = {t: seen[-1] for t, seen in observed.states.items() if seen and seen[-1] in ENDINGS}
    lost = sorted(t for t in ledger.hooked if t in ended and not hooks.get(t))
    duplicated = {t for t, got in hooks.items() if t in ledger.hooked and (
        len({event for _, event, _ in got}) > 1
        or any(state != ended.get(t, state) for _, _, state in got))}
    delays = {t: got[0][0] - ledger.acknowledged[t] for t, got in hooks.items()
              if t in ledger.hooked and t in ledger.acknowledged}
    return lost, duplicated, delays


def judge(ledger: Ledger, observed: Observed,
          audit: Mapping[str, list[str]] | None = None,
          audit_delays_s: Mapping[str, float] | None = None,
          hooks: Mapping[str, list[tuple[float, str, str]]] | None = None,
          streams: dict[str, Streamed] | None = None) -> dict[str, Any]:
    acked = ledger.acknowledged
    lost = sorted(t for t in acked if t in observed.unknown or t not in observed.terminal_at)
    duplicated = sorted(t for t, seen in observed.states.items()
                        if len({s for s in seen if s in ENDINGS}) > 1)
    audit_lost: dict[str, Any] = {}
    if audit is not None:
        duplicated = sorted(set(duplicated) | {t for t, states in audit.items()
                                               if len(states) > 1})
        # An ending the status channel shows that the log never records: the line was
        # still in memory when the process died, and nothing wrote it after the restart.
        # Presence first: a log that records no ending at all misses §7's lifecycle
        # events (the audit specs' clause), not endings lost to the kills.
        if any(t in audit for t in acked):
            audit_lost = {"audit_lost": sorted(t for t in observed.terminal_at
                                               if t in acked and t not in audit)}
        else:
            audit_lost = {"audit_channel": "not judged: the audit log records the ending "
                                           "of no acknowledged trace (§7 lifecycle events)"}
    webhook: dict[str, Any] = {}
    hook_delays: dict[str, float] = {}
    if hooks is not None:
        hook_lost, hook_dup, hook_delays = _webhook_verdict(ledger, observed, hooks)
        duplicated = sorted(set(duplicated) | hook_dup)
        webhook = {"webhooks": {"registered": len(ledger.hooked),
                                "registration_refused": ledger.hook_refused,
                                "delivered": sum(1 for t in ledger.hooked if hooks.get(t)),
                                "redelivered_same_event": sum(
                                    len(hooks.get(t, [])) - 1 for t in ledger.hooked
                                    if len(hooks.get(t, [])) > 1 and t not in hook_dup)},
                   "webhook_lost": hook_lost}
    sse: dict[str, Any] = {}
    sse_delays: list[float] = []
    if streams is not None:
        ended = {t: seen[-1] for t, seen in observed.states.items() if seen and seen[-1] in ENDINGS}
        verdict = judge_streams(streams, ended, acked, _went_back)
        duplicated = sorted(set(duplicated) | set(verdict["duplicated"]))
        sse_delays = verdict["delays"]
        sse = {"sse": {"followed": verdict["followed"], "reconnected": verdict["reconnected"]},
               "sse_lost": verdict["lost"], "sse_backwards": verdict["backwards"]}
    backwards = sorted(t for t, seen in observed.states.items() if _went_back(seen))
    unexpected = sorted(set(audit or {}) - set(acked))
    recovered = sorted(t for t in ledger.open_at_kill & set(acked)
                       if observed.states.get(t, [""])[-1] == "complete")
    failed_at_kill = sorted(t for t in ledger.open_at_kill & set(acked)
                            if observed.states.get(t, [""])[-1] == "failed")
    return {
        "acknowledged": len(acked), "refused": ledger.refused, "unanswered": ledger.unanswered,
        "lost": lost, "duplicated": duplicated,
        "failed": sorted(t for t in acked if observed.states.get(t, [""])[-1] == "failed"),
        "failed_without_error": sorted(t for t in acked if observed.states.get(t, [""])[-1]
                                       == "failed" and not observed.errors.get(t)),
        "backwards": backwards,
        "unexpected": len(unexpected), "recovered": len(recovered),
        "failed_at_kill": failed_at_kill,
        "open_at_kills": len(ledger.open_at_kill),
        "kills": len(ledger.kills), **audit_lost, **webhook, **sse,
        "time_to_visible_s": {
            "status": quantiles([observed.terminal_at[t] - at for t, at in acked.items()
                                 if t in observed.terminal_at]),
            **({"audit": quantiles(list(audit_delays_s.values()))} if audit_delays_s else {}),
            **({"webhook": quantiles(list(hook_delays.values()))} if hooks is not None else {}),
            **({"sse": quantiles(sse_delays)} if streams is not None else {}),
        },
    }


def quantiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50 and p99 (None without samples)."""
    if not values:
        return {"count": 0, "p50": None, "p99": None}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"count": len(ordered), "p50": round(statistics.median(ordered), 3),
            "p99": round(p99, 3)}


def _went_back(states: Sequence[str]) -> bool:
    ranks = [RANK.get(s, -1) for s in states if s in RANK]
    return any(later < earlier for earlier, later in itertools.pairwise(ranks))


def follow_status(url: str, token: str | None, ledger: Ledger, deadline_s: float) -> Observed:
    """Poll every acknowledged trace's status until it is terminal (bounded by
    `deadline_s`): the states seen, and when each became terminal."""
    from ..client import SidecarClient

    observed = Observed()
    pending = set(ledger.acknowledged)
    deadline = time.monotonic() + deadline_s
    with SidecarClient(url, token, timeout=5.0) as client:
        while pending and time.monotonic() < deadline:
            for trace_id in sorted(pending):
                response = client.status(trace_id)
                if response.status_code == 404:
                    observed.unknown.add(trace_id)
                    pending.discard(trace_id)
                    continue
                state = response.json().get("state") if response.status_code == 200 else None
                if state is None:
                    continue
                seen = observed.states.setdefault(trace_id, [])
                if not seen or seen[-1] != state:
                    seen.append(state)
                if state == "failed":
                    observed.errors[trace_id] = response.json().get("error")
                if state in TERMINAL:
                    observed.terminal_at.setdefault(trace_id, time.monotonic())
                    pending.discard(trace_id)
            time.sleep(0.1)
    return observed


def wait_for_deliveries(deliveries: Callable[[], Iterable[tuple[float, Mapping[str, Any]]]],
                        ledger: Ledger, observed: Observed, deadline_s: float
                        ) -> dict[str, list[tuple[float, str, str]]]:
    """The webhook channel once every hooked trace that ended has a delivery, or the
    deadline passed (retries back off, and a restarted gateway redelivers late)."""
    deadline = time.monotonic() + deadline_s
    while True:
        hooks = webhook_deliveries(deliveries())
        waiting = [t for t in ledger.hooked if observed.states.get(t, [""])[-1] in ENDINGS
                   and t not in hooks]
        if not waiting or time.monotonic() > deadline:
            return hooks
        time.sleep(0.1)


def audit_channel(path: str | None, ledger: Ledger, observed: Observed | None = None,
                  within_s: float = 5.0
                  ) -> tuple[dict[str, list[str]] | None, dict[str, float]]:
    """The audit log's terminal lines per acknowledged trace, and the delays from
    acknowledgement to its trace.complete line; (None, {}) without an audit log. Given
    what the status channel `observed`, the log is read again (for up to `within_s`)
    until every ending seen there has its line: the log may trail the status by a flush."""
    if not path:
        return None, {}
    ended = set(observed.terminal_at) if observed else set()
    deadline = time.monotonic() + within_s
    while True:
        lines = []
        with open(path, encoding="utf-8") as handle:
            for raw in handle:
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    continue  # a line cut by SIGKILL: judged by what is missing
        terminal = terminal_audit_lines(lines)
        if ended <= set(terminal) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    offset = time.time() - time.monotonic()
    delays = {}
    for line in lines:
        trace_id = line.get("trace_id")
        if trace_id in ledger.acknowledged and str(line.get("event")) == "trace.complete":
            at = datetime.fromisoformat(str(line["ts"]).replace("Z", "+00:00")).timestamp()
            delays[trace_id] = max(0.0, at - offset - ledger.acknowledged[trace_id])
    return {t: s for t, s in terminal.items() if t in ledger.acknowledged}, delays


OPEN_SAMPLE = 40  # the newest acknowledged traces read just before each kill


def still_open(url: str, token: str | None, acknowledged: list[str]) -> set[str]:
    """Of the newest acknowledged traces, those the status channel shows not terminal:
    work that is in flight when the kill strikes, so that 'recovered' means recovered."""
    import httpx

    from ..client import SidecarClient

    found = set()
    with SidecarClient(url, token, timeout=2.0) as client:
        for trace_id in acknowledged[-OPEN_SAMPLE:]:
            try:
                response = client.status(trace_id)
            except httpx.HTTPError:
                continue
            if response.status_code == 200 and response.json().get("state") not in TERMINAL:
                found.add(trace_id)
    return found


def drive(url: str, token: str | None, restart: Callable[[str], float],
          roles: Sequence[str], load_s: float, senders: int = 6,
          hook_url: str | None = None, streams: StreamChannel | None = None,
          stream_every: int = 4, acknowledged: int | None = None,
          model: str = DEFAULT_MODEL
          ) -> tuple[Ledger, dict[str, float]]:
    """Explained chats from `senders` threads for `load_s` seconds; after each third, one
    role is restarted (`restart(role)` -> seconds until ready). With `acknowledged`, the
    thirds are of that many acknowledged traces instead, and `load_s` only bounds the
    run. With `hook_url`, each acknowledged trace gets a webhook to it for its ending;
    with `streams`, every `stream_every`-th has its live stream followed. The ledger of
    what the clients saw, and each role's downtime."""
    import httpx

    from ..client import SidecarClient, trace_id_from

    ledger, downtime = Ledger(), {}
    stop = threading.Event()

    def send() -> None:
        with SidecarClient(url, token, timeout=5.0, retry_rate_limited=False,
                           model=model) as client:
            while not stop.is_set():
                try:
                    response = client.explain()
                except httpx.HTTPError:
                    ledger.unanswered += 1
                    time.sleep(0.05)
                    continue
                # Header first, as the contract names it (§2), then explanation_metadata.
                trace_id = trace_id_from(response)[0] if response.status_code == 200 else None
                if trace_id:
                    ledger.acknowledged[trace_id] = time.monotonic()
                    if hook_url:
                        register(client, trace_id)
                    if streams is not None and len(ledger.acknowledged) % stream_every == 0:
                        streams.follow(trace_id)
                else:
                    ledger.refused += 1

    def register(client: Any, trace_id: str) -> None:
        try:
            answer = client.http.post(f"/v1/traces/{trace_id}/webhooks", json={
                "url": hook_url, "events": sorted(ENDINGS)})
        except httpx.HTTPError:
            answer = None
        if answer is not None and answer.status_code == 201:
            ledger.hooked[trace_id] = time.monotonic()
        else:
            ledger.hook_refused += 1

    started = time.monotonic()

    def until(share: float) -> None:
        """Until `share` of the run is done: of its time, or of the traces asked for."""
        if acknowledged is None:
            time.sleep(max(0.0, started + share * load_s - time.monotonic()))
            return
        while (len(ledger.acknowledged) < share * acknowledged
               and time.monotonic() < started + load_s):
            time.sleep(0.05)

    with ThreadPoolExecutor(max_workers=senders) as pool:
        for _ in range(senders):
            pool.submit(send)
        try:
            for n, role in enumerate(roles, 1):
                until(n / (len(roles) + 1))
                ledger.open_at_kill |= still_open(url, token, list(ledger.acknowledged))
                ledger.kills.append(time.monotonic())
                downtime[role] = round(restart(role), 2)
            until(1.0)
        finally:  # a restart that raises must not leave the senders running (and the
            stop.set()  # pool waiting for them forever)
    return ledger, downtime
