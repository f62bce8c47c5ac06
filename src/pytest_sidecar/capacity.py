"""Capacity: how many explainer replicas an attach rate needs, with an M/M/c queue.

Explanation jobs arrive at λ = chat rate × attach rate and are served by
c = replicas × workers per replica identical servers; a job's mean service time is the
token/sentence mix of the measured service times, so A = λ·E[S] erlangs are offered.
With μ = 1/E[S], Erlang C gives the probability that a job waits at all,

    C(c, A) = (A^c / c!) · c/(c − A) / (Σ_{k<c} A^k / k! + (A^c / c!) · c/(c − A)),

and the waiting time beyond that is exponential: P(W > t) = C(c, A) · e^{−(cμ − λ)t}.
The latency SLO (p95 ≤ 2 s sentence, 8 s token) leaves each granularity a waiting-time
budget t = SLO − its service time; the recommendation is the fewest servers for which
P(W > t) ≤ 1 − q (q = 0.95) holds for every granularity, rounded up to whole replicas.
A granularity nobody asks for (token_mix 0 or 1) has no budget to meet. The inputs are
measured by capacity_sources.py; `analyze` adds the verdict against the chart's KEDA
range, and `sidecar-capacity` (cli/capacity.py) prints it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .load.verdict import FAIL, INSUFFICIENT, PASS
from .vocabulary.defaults import SLO_S


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits (Erlang C); 1.0 when the queue is unstable."""
    if offered <= 0:
        return 0.0
    if servers <= offered:
        return 1.0
    # Erlang B by its stable recurrence, then C from B (no factorial overflow).
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    rho = offered / servers
    return b / (1 - rho + rho * b)


def wait_exceeds(servers: int, arrival_rate: float, mean_service_s: float, t: float) -> float:
    """P(W > t) for M/M/c."""
    offered = arrival_rate * mean_service_s
    if servers <= offered:
        return 1.0
    drain = servers / mean_service_s - arrival_rate  # cμ − λ
    return erlang_c(servers, offered) * math.exp(-drain * max(0.0, t))


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    servers: int
    utilization: float
    p_wait_over_budget: dict[str, float]
    assumptions: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def recommend(chat_rate: float, attach_rate: float, token_mix: float,
              service_s: dict[str, float], workers_per_replica: int,
              slo_s: dict[str, float] | None = None, quantile: float = 0.95,
              max_replicas: int = 1000) -> Recommendation:
    """The fewest replicas meeting the SLO's quantile for every granularity."""
    slo_s = slo_s or SLO_S
    if not (0 <= attach_rate <= 1 and 0 <= token_mix <= 1 and 0 < quantile < 1):
        raise ValueError("attach_rate and token_mix must be in 0..1, quantile in (0, 1)")
    if workers_per_replica < 1 or any(s <= 0 for s in service_s.values()):
        raise ValueError("workers per replica >= 1 and service times > 0")
    # Only the granularities that are asked for get a waiting budget (and need a time).
    share = {"sentence": 1 - token_mix, "token": token_mix}
    used = [g for g in ("sentence", "token") if share[g] > 0]
    arrival = chat_rate * attach_rate
    mean_service = sum(share[g] * service_s[g] for g in used)
    budgets = {g: slo_s[g] - service_s[g] for g in used}
    impossible = {g: b for g, b in budgets.items() if b <= 0}
    if impossible:
        raise ValueError(f"a service time alone exceeds its SLO: {impossible}")
    assumptions = {
        "model": "M/M/c (Poisson arrivals, exponential service, FIFO)",
        "chat_rate_rps": chat_rate, "attach_rate": attach_rate, "token_mix": token_mix,
        "arrival_rate_rps": round(arrival, 4), "service_s": service_s,
        "mean_service_s": round(mean_service, 4), "workers_per_replica": workers_per_replica,
        "slo_s": slo_s, "quantile": quantile, "waiting_budget_s": budgets,
    }
    for replicas in range(1, max_replicas + 1):
        servers = replicas * workers_per_replica
        tails = {g: wait_exceeds(servers, arrival, mean_service, budget)
                 for g, budget in budgets.items()}
        if all(p <= 1 - quantile for p in tails.values()):
            return Recommendation(replicas, servers,
                                  round(arrival * mean_service / servers, 4),
                                  {g: round(p, 6) for g, p in tails.items()}, assumptions)
    raise ValueError(f"no replica count up to {max_replicas} meets the SLO")


def analyze(figures: dict[str, float], workers_per_replica: int,
            keda: tuple[int, int] | None, slo_s: dict[str, float] | None = None,
            quantile: float = 0.95) -> dict[str, Any]:
    """The recommendation for measured `figures` (chat_rate_rps, attach_rate, token_mix,
    service_s:<granularity>) and its verdict against the KEDA (min, max) replica range:
    FAIL when the SLO needs more replicas than maxReplicaCount allows."""
    service = {g: figures[f"service_s:{g}"] for g in ("sentence", "token")
               if f"service_s:{g}" in figures}
    try:
        advice = recommend(figures["chat_rate_rps"], figures["attach_rate"],
                           figures["token_mix"], service, workers_per_replica, slo_s, quantile)
    except ValueError as exc:
        return {"verdict": FAIL, "detail": str(exc), "recommendation": None}
    out: dict[str, Any] = {"recommendation": advice.as_dict(), "keda": None}
    if keda is None:
        out.update(verdict=PASS, detail=f"{advice.replicas} replicas recommended (no KEDA "
                   "range given to check)")
        return out
    low, high = keda
    out["keda"] = {"minReplicaCount": low, "maxReplicaCount": high}
    if advice.replicas > high:
        out.update(verdict=FAIL, detail=f"the SLO needs {advice.replicas} replicas but KEDA "
                   f"stops at maxReplicaCount {high}")
    else:
        spare = "at or below" if advice.replicas <= low else "within"
        out.update(verdict=PASS, detail=f"{advice.replicas} replicas needed: {spare} the KEDA "
                   f"range {low}..{high}")
    return out


def gateway_capacity(peak_rps: float | None, swept_replicas: int, chart_replicas: int,
                     planned_rps: float | None) -> dict[str, Any]:
    """The chart's gateway sizing against a measured peak (a `sidecar-load sweep`): the
    peak per replica times the chart's replicas is what the chart serves while holding
    the limits, assuming replicas add capacity linearly (say so: a shared upstream or
    store may not). FAIL when the planned chat rate is above it, or no rate held."""
    out: dict[str, Any] = {"peak_rps": peak_rps, "swept_replicas": swept_replicas,
                           "chart_replicas": chart_replicas, "planned_rps": planned_rps,
                           "assumption": "capacity grows linearly with gateway replicas"}
    if peak_rps is None:
        return {**out, "capacity_rps": None, "verdict": FAIL,
                "detail": "the sweep's first rate already missed the limits: no peak"}
    capacity = round(peak_rps / swept_replicas * chart_replicas, 3)
    out["capacity_rps"] = capacity
    if planned_rps is None:  # nothing to hold the capacity against: no verdict
        return {**out, "verdict": INSUFFICIENT, "detail": f"the chart's {chart_replicas} "
                f"gateway replicas hold the limits up to {capacity:g} req/s, but no chat rate "
                "was given or measured to plan for (--chat-rate)"}
    if planned_rps > capacity:
        return {**out, "verdict": FAIL, "detail": f"the planned {planned_rps:g} req/s is above "
                f"the {capacity:g} req/s the chart's {chart_replicas} gateway replicas hold "
                f"({peak_rps:g} req/s peak over {swept_replicas} swept)"}
    return {**out, "verdict": PASS, "detail": f"the chart's {chart_replicas} gateway replicas "
            f"hold {capacity:g} req/s, {capacity / planned_rps:.1f}x the planned "
            f"{planned_rps:g} req/s"}
