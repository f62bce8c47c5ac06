"""SLO verdicts from a run's histograms: PASS, FAIL or INSUFFICIENT_DATA, with the count.

Explanation latency (CONTRACT §5) is judged per granularity on the traces the run
followed. A trace that never completed (failed, canceled, no terminal state in time)
did not meet the SLO, so it counts as an infinitely slow sample: the p95 is the value of
rank ⌈0.95·n⌉ among all n followed traces, and when more than 5 % did not complete it is
infinite. Dropping them instead would let a target that fails its slow traces pass.
The verdict needs `min_samples` *completed* traces; no data is never a pass.

One rule for a run whose generator could not keep up (untrustworthy): a late client
only overstates latency (every latency counts from the intended send time, and a late
follower sees a completion later, never earlier), and it offers the same requests, only
later. So a p95 within the SLO still passes, its figure an upper bound. A p95 over it
may be the client's doing and is INSUFFICIENT_DATA, unless it is over by more than the
client could have added: a sample is made late at most three times (its send, the
follower's last wake-up, reading the answer), each by no more than the worst lag the
client's loop showed, so a p95 over SLO + 3 × that lag is the target's and FAILs (a
1 ms SLO against 1.2 s is a miss on any client). What does not depend
on timing is judged all the same: with enough completed traces, more than 5 % of
followed traces not completing fails the explanation verdict; chat errors fail the chat
verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..vocabulary.defaults import MAX_CHAT_ERROR_RATE, SLO_QUANTILE

if TYPE_CHECKING:  # the verdict words are imported by capacity.py, which needs no hdrh
    from .stats import Histograms

PASS, FAIL, INSUFFICIENT = "PASS", "FAIL", "INSUFFICIENT_DATA"


@dataclass(frozen=True)
class Verdict:
    """One SLO judgement with what it was based on."""

    name: str
    outcome: str
    measured: float | None  # p95 seconds, or an error rate
    threshold: float
    samples: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantile_with_failures(histograms: Histograms, lane: str,
                           quantile: float = SLO_QUANTILE) -> tuple[float | None, int, int]:
    """(quantile in seconds, completed, followed); non-completed samples rank as +inf."""
    completed = histograms.combined(lane, ["2xx"])
    done, total = completed.get_total_count(), histograms.combined(lane).get_total_count()
    if done == 0:
        return None, 0, total
    rank = math.ceil(quantile * total)
    if rank > done:
        return math.inf, done, total
    return completed.get_value_at_percentile(100.0 * rank / done) / 1e6, done, total


def most_a_late_client_adds(lag_max_ms: float) -> float:
    """Seconds a lagging client can add to one sample: three late wake-ups (send, the
    follower's last poll or read, reading the answer), each at most the worst lag seen."""
    return 3 * lag_max_ms / 1000


def explanation_verdict(histograms: Histograms, granularity: str, slo_s: float,
                        min_samples: int, trustworthy: bool, why_not: str = "",
                        client_slack_s: float = math.inf) -> Verdict:
    """The p95 explanation-latency verdict of one granularity; `client_slack_s` is the
    most a lagging client could have added to a sample (see `most_a_late_client_adds`)."""
    name = f"explanation p95 ({granularity})"
    p95, done, total = quantile_with_failures(histograms, f"explain:{granularity}")
    if done < min_samples:
        missing = f"{done} completed traces of {total} followed" + (
            " (no explained chat of this granularity was answered with a trace)"
            if total == 0 else "")
        lag = f"; also, the generator could not keep up ({why_not})" if not trustworthy else ""
        return Verdict(name, INSUFFICIENT, p95, slo_s, done,
                       f"{missing}; the verdict needs {min_samples} completed (raise "
                       f"--sidecar-load-duration or --sidecar-rate){lag}")
    assert p95 is not None
    if not trustworthy and slo_s + client_slack_s < p95 < math.inf:
        return Verdict(name, FAIL, p95, slo_s, done,
                       f"p95 {p95:.3f} s vs SLO {slo_s:g} s over {total} followed traces: "
                       f"over by more than the lagging generator could add "
                       f"({client_slack_s * 1000:.1f} ms at most; {why_not})")
    if not trustworthy and slo_s < p95 < math.inf:
        return Verdict(name, INSUFFICIENT, p95, slo_s, done,
                       f"p95 {p95:.3f} s is over the SLO, but the load generator could not "
                       f"keep up ({why_not}); its latencies may measure the client, not "
                       "the target")
    shown = "inf (over 5 % did not complete)" if math.isinf(p95) else f"{p95:.3f} s"
    outcome = PASS if p95 <= slo_s else FAIL
    upper = (f"; the generator lagged ({why_not}), so this figure is an upper bound"
             if not trustworthy and outcome == PASS else "")
    return Verdict(name, outcome, p95, slo_s, done,
                   f"p95 {shown} vs SLO {slo_s:g} s over {total} followed traces, "
                   f"{done} completed{upper}")


def chat_verdict(status_mix: dict[str, int], refused_explain: int, min_samples: int,
                 max_error_rate: float = MAX_CHAT_ERROR_RATE) -> Verdict:
    """The chat lane's error rate; explain refusals (429/503 with Retry-After) are allowed
    by CONTRACT §5 and so not counted as chat errors."""
    answered = sum(status_mix.values()) - refused_explain
    errors = answered - status_mix.get("2xx", 0)
    if answered < min_samples:
        return Verdict("chat error rate", INSUFFICIENT, None, max_error_rate, answered,
                       f"{answered} chats; the verdict needs {min_samples}")
    rate = errors / answered
    outcome = PASS if rate <= max_error_rate else FAIL
    return Verdict("chat error rate", outcome, rate, max_error_rate, answered,
                   f"{errors} errors in {answered} chats ({rate:.4%}; allowed "
                   f"{max_error_rate:.1%}); {refused_explain} explain refusals excluded")
