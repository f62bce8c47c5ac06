"""Traces: open a trace and follow it through the most robust path the target
declares, so that a spec about webhooks or isolation never fails because of a field that
another clause defines: each spec fails only for its own clause.

How a trace id is learnt, in order of robustness:
1. a client-chosen `x-trace-id` when the target declares `client_trace_id`;
2. the `x-trace-id` response header (CONTRACT §2: the trace id once one exists);
3. `explanation_metadata.trace_id` in the body (§2.1).
Only the specs that certify §2.1's metadata read it directly.

A precondition the target does not meet (no trace opened, a trace that never ends) fails
with one typed line naming the declared capability and its clause, the same line in every
spec it affects, so the report can group them as one root cause.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .client import SidecarClient, SseEvent, Timeline, is_terminal, trace_id_from
from .config import SidecarConfig
from .outcomes import FailReason, fail, fail_line
from .target import Target
from .vocabulary.shapes import TraceStatus
from .vocabulary.states import TERMINAL

if TYPE_CHECKING:
    import httpx

# A chat may be refused for explain work under load (§5: 429/503 + Retry-After); a spec
# that needs a trace waits that out, within its trace deadline.
REFUSAL_STATUSES = (429, 503)
MAX_REFUSAL_WAIT_S = 5.0
# After this many traces in a row missed their deadline, waits fail at once for a while
# (then one is tried again): a target whose explainer is down fails the suite in about
# the time a good one passes, and a slow patch does not fail the rest of the run.
GIVE_UP_AFTER = 2
GIVE_UP_FOR_S = 60.0


def retry_after_s(response: httpx.Response) -> float | None:
    """The Retry-After of a refusal in seconds, or None when the response is no refusal."""
    if response.status_code not in REFUSAL_STATUSES:
        return None
    raw = response.headers.get("retry-after", "")
    return max(1.0, float(raw)) if raw.isdigit() else None  # 0 would be a busy loop


@dataclass
class Opened:
    """A chat that opened a trace: the response, the trace id and how it was learnt."""

    response: httpx.Response
    trace_id: str
    via: str
    refusals: int = 0  # explain refusals (429/503 + Retry-After) waited out first


@dataclass
class Finished:
    """An opened trace followed to a terminal state."""

    opened: Opened
    timeline: Timeline

    @property
    def trace_id(self) -> str:
        return self.opened.trace_id

    @property
    def response(self) -> httpx.Response:
        return self.opened.response

    @property
    def status(self) -> TraceStatus:
        """The last status object seen (the terminal one)."""
        return self.timeline.last or {}

    @property
    def state(self) -> str:
        return str(self.status.get("state"))


class Traces:
    """Opens traces and follows them; every failure is a typed line naming its clause."""

    def __init__(self, target: Target, config: SidecarConfig,
                 default_client: Callable[[], SidecarClient]) -> None:
        self.target, self.config = target, config
        self._default_client = default_client
        self._missed_in_a_row = 0
        self._last_miss = 0.0

    @property
    def client_ids(self) -> bool:
        """True when the target lets the client choose the trace id."""
        return "client_trace_id" in self.target.capabilities

    def new_id(self) -> str:
        """A fresh client trace id matching §2.1's pattern."""
        return "st-" + uuid.uuid4().hex

    def open(self, client: SidecarClient | None = None, **chat: Any) -> Opened:
        """Send an explained chat (chat options as SidecarClient.chat) and learn its trace
        id. Explain refusals with Retry-After are waited out (bounded); anything else that
        opens no trace fails DECLARED_BUT_MISSING 'explain' (§2.1)."""
        client = client or self._default_client()
        deadline = time.monotonic() + self.config.trace_deadline
        refusals = 0
        while True:
            chosen = chat.get("trace_id") or (self.new_id() if self.client_ids else None)
            response = client.explain(**{**chat, "trace_id": chosen})
            wait = retry_after_s(response)
            if wait is None or time.monotonic() + wait > deadline:
                break
            refusals += 1
            time.sleep(min(wait, MAX_REFUSAL_WAIT_S))
        if response.status_code != 200:
            fail(FailReason.DECLARED_BUT_MISSING,
                 f"declared 'explain'; a chat with x-explain-mode: hypergraph answered "
                 f"{response.status_code} {_code(response)}", "fix the gateway's chat route",
                 "§2.1")
        trace_id, via = trace_id_from(response)
        if chosen and trace_id in (None, chosen):
            return Opened(response, chosen, "client x-trace-id", refusals)
        # The target answered with another id than the client chose: that is the client
        # id spec's matter (§2.1); follow the id the target says it opened.
        if trace_id is None:
            fail(FailReason.DECLARED_BUT_MISSING,
                 "declared 'explain'; a chat with x-explain-mode: hypergraph returned neither "
                 "an x-trace-id header nor explanation_metadata",
                 "open a trace for x-explain-mode: hypergraph", "§2.1")
        return Opened(response, trace_id, via, refusals)

    def wait(self, trace_id: str, client: SidecarClient | None = None,
             predicate: Callable[[TraceStatus], bool] | None = None,
             deadline: float | None = None, interval: float = 0.05,
             what: str = "a terminal state") -> Timeline:
        """Poll the status until `predicate` (default: terminal) holds; reaching the
        deadline first fails at once, with the timeline seen."""
        client = client or self._default_client()
        limit = self.config.trace_deadline if deadline is None else deadline
        giving_up = self._missed_in_a_row >= GIVE_UP_AFTER and predicate is None and \
            time.monotonic() - self._last_miss < GIVE_UP_FOR_S
        if giving_up:
            fail(FailReason.DECLARED_BUT_MISSING,
                 f"declared 'explain'; {self._missed_in_a_row} traces in a row did not reach "
                 f"{what} within {limit:g}s, so this run no longer waits for trace "
                 f"{trace_id}", "make the explainer finish its traces", "§2.2")
        timeline = client.poll_until(trace_id, predicate or is_terminal, limit, interval)
        if predicate is None:  # only waits for the end count: a custom wait may rightly miss
            self._missed_in_a_row = 0 if timeline.reached else self._missed_in_a_row + 1
            self._last_miss = self._last_miss if timeline.reached else time.monotonic()
        if not timeline.reached:
            last = timeline.observations[-1] if timeline.observations else None
            seen = ", ".join(timeline.states) or "nothing"
            answer = f"; last status answer {last.status_code}" if last and \
                last.status_code != 200 else ""
            fail(FailReason.DECLARED_BUT_MISSING,
                 f"declared 'explain'; trace {trace_id} did not reach {what} within "
                 f"{limit:g}s (states seen: {seen}{answer})",
                 "make the explainer finish its traces", "§2.2")
        return timeline

    def stream(self, trace_id: str,
               client: SidecarClient | None = None) -> list[SseEvent | str]:
        """The items of the trace's live stream, read until it closes. A stream still open
        at the trace deadline because its trace never ended fails typed, naming §2.2
        (the explainer's matter), not the stream's §2.5."""
        client = client or self._default_client()
        limit = self.config.trace_deadline
        try:
            return client.stream_events(trace_id, timeout=limit)
        except TimeoutError:
            state = client.status(trace_id).json().get("state")
            if state in TERMINAL:  # the trace ended and its stream stayed open: §2.5's own
                fail_line(f"§2.5: the stream of {trace_id} was still open {limit:g}s on, "
                          f"though the trace ended {state}")
            fail(FailReason.DECLARED_BUT_MISSING,
                 f"declared 'explain'; trace {trace_id} did not reach a terminal state "
                 f"within {limit:g}s (still {state}), so its stream never ended",
                 "make the explainer finish its traces", "§2.2")

    def never_ended(self, trace_id: str, waited_s: float,
                    client: SidecarClient | None = None) -> None:
        """Fail typed (§2.2, the explainer's matter) when `trace_id` is still not terminal:
        what a spec waited for could not come, whatever clause the spec judges."""
        client = client or self._default_client()
        state = client.status(trace_id).json().get("state")
        if state not in TERMINAL:
            fail(FailReason.DECLARED_BUT_MISSING,
                 f"declared 'explain'; trace {trace_id} did not reach a terminal state "
                 f"within {waited_s:g}s (still {state})",
                 "make the explainer finish its traces", "§2.2")

    def finished(self, client: SidecarClient | None = None, **chat: Any) -> Finished:
        """Open a trace and follow it to a terminal state."""
        opened = self.open(client, **chat)
        return Finished(opened, self.wait(opened.trace_id, client))

    def complete(self, client: SidecarClient | None = None, **chat: Any) -> Finished:
        """Open a trace that must end `complete` (what a spec about graphs, webhooks or
        isolation starts from); another terminal state fails naming §2.2."""
        done = self.finished(client, **chat)
        self.require_complete(done.trace_id, done.status)
        return done

    def require_complete(self, trace_id: str, status: TraceStatus) -> None:
        """Fail DECLARED_BUT_MISSING (§2.2) unless the terminal status is `complete`."""
        if status.get("state") != "complete":
            fail(FailReason.DECLARED_BUT_MISSING,
                 f"declared 'explain'; trace {trace_id} ended {status.get('state')} "
                 f"(error {status.get('error')!r}), not complete",
                 "make the explainer finish its traces", "§2.2")


def _code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "(no JSON body)"
    return str(body.get("code")) if isinstance(body, dict) else "(no error code)"
