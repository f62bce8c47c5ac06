"""The metrics LLM serving benchmarks report for streamed answers, defined once: what
each is (the summary carries these formulas beside the figures) and how a run's counts
become the summary's token figures and goodput. The timing itself is taken by the
scenario (scenario.py); this module only computes, so merged shards give the same
figures as one run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STREAM_FORMULAS = {
    "ttft": "first content chunk - intended send time",
    "itl": "gap between consecutive content chunks (a chunk counted as one token)",
    "tpot": "(e2e - ttft) / (output tokens - 1)",
    "e2e": "end of stream - intended send time",
    "output_tokens_per_s": "output tokens of all streams / run duration",
    "request_tokens_per_s": "mean over streams of output tokens / e2e",
    "goodput_rps": "streams meeting every declared limit / run duration",
}


def stream_summary(streams: dict[str, int], duration_s: float,
                   limits: dict[str, float] | None = None) -> dict[str, Any]:
    """The streamed chats' token figures and goodput, with the formulas' names."""
    count = streams.get("streams", 0)
    if not count:
        return {}
    out: dict[str, Any] = {
        "streams": count, "output_tokens": streams.get("output_tokens", 0),
        "output_tokens_per_s": round(streams.get("output_tokens", 0) / duration_s, 3)
        if duration_s else None,
        "request_tokens_per_s": round(streams.get("rate_milli", 0) / 1000 / count, 3),
        "token_count_source": "usage chunk" if streams.get("tokens_from_usage", 0) == count
        else "content chunks" if not streams.get("tokens_from_usage") else "mixed",
        "formulas": STREAM_FORMULAS}
    if limits:
        out["limits_ms"] = limits
        out["good"] = streams.get("good", 0)
        out["goodput_rps"] = round(streams.get("good", 0) / duration_s, 3) if duration_s \
            else None
    return out


def trend_figures(llm: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The figures the control plane keeps run by run, from the report's `llm` block
    (reporting/llm.py): each lane's p90, output tokens/s in all and goodput, with the
    direction that is better (latency: lower). Each is named with the offered rate, as
    every one of them moves with it: runs at other rates make other series."""
    if not llm:
        return []
    at = f" at {llm['offered_rps']:g} req/s" if llm.get("offered_rps") else ""
    out = [{"name": f"{lane['lane']} p90{at}", "value": lane["p90_ms"], "unit": "ms",
            "better": "lower"}
           for lane in llm.get("lanes", []) if lane.get("p90_ms") is not None]
    for key, name, unit in (("output_tokens_per_s", "output tokens/s", "tokens/s"),
                            ("goodput_rps", "goodput", "req/s")):
        if llm.get(key) is not None:
            out.append({"name": name + at, "value": llm[key], "unit": unit,
                        "better": "higher"})
    return out
