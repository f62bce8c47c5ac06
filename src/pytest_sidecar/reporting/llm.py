"""The LLM serving figures of a run: what the `slo` specs measured of streamed chats
(TTFT, ITL, TPOT, E2E percentiles, output tokens/s, goodput), read from their evidence
into the verdict block, the report's "LLM latency" section and the control plane's
trends. The figures are computed once, by the load engine (load/llm_metrics.py); this
module only picks them out of the evidence and says what each means."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .types import Result

STREAM_LANES = ("ttft", "itl", "tpot", "e2e")
PERCENTILES = ("p50", "p90", "p99")


def llm_figures(results: Sequence[Result]) -> dict[str, Any] | None:
    """The streamed chats' figures of the first `slo` spec that recorded them, or None
    when no spec did (no streamed chat in the run, or no `pytest -m slo`). Every spec
    of a run shares one load run, so the first is the run's."""
    for result in results:
        if "slo" not in result["markers"]:
            continue
        streams = _recorded(result, "streams")
        if not isinstance(streams, dict) or not streams.get("streams"):
            continue
        table = _recorded(result, "table") or []
        lanes = [{"lane": row["lane"], "samples": row.get("ok"),
                  **{f"{p}_ms": row.get(f"{p} ms") for p in PERCENTILES}}
                 for lane in STREAM_LANES for row in table
                 if isinstance(row, dict) and row.get("lane") == lane]
        return {**streams, "lanes": lanes, "formulas": _recorded(result, "formulas") or {},
                "offered_rps": _recorded(result, "rate")}
    return None


def _recorded(result: Result, key: str) -> Any:
    return next((item[key] for item in result["evidence"]
                 if isinstance(item, dict) and key in item), None)


def llm_line(llm: Mapping[str, Any]) -> str:
    """One verdict line: `LLM 120 streams: TTFT p90 41 ms · ITL p90 3 ms · ...`."""
    parts = [f"{lane['lane'].upper()} p90 {lane['p90_ms']:g} ms"
             for lane in llm.get("lanes", []) if lane.get("p90_ms") is not None]
    if llm.get("output_tokens_per_s") is not None:
        parts.append(f"{llm['output_tokens_per_s']:g} output tokens/s")
    if llm.get("goodput_rps") is not None:
        parts.append(f"goodput {llm['goodput_rps']:g} req/s")
    return f"LLM {llm['streams']} streamed chats: " + " · ".join(parts)


def llm_section(llm: Mapping[str, Any] | None) -> list[str]:
    """The Markdown section: a row per lane with its formula, then the token figures."""
    if not llm:
        return []
    formulas = llm.get("formulas", {})
    out = ["## LLM latency (streamed chats)", "",
           f"{llm['streams']} streamed chats; output tokens counted from the "
           f"{llm.get('token_count_source', '?')}.", "",
           "| Metric | Samples | p50 ms | p90 ms | p99 ms | Definition |",
           "|---|---|---|---|---|---|"]
    out += [f"| {lane['lane'].upper()} | {lane['samples']} | "
            + " | ".join(_ms(lane.get(f"{p}_ms")) for p in PERCENTILES)
            + f" | {formulas.get(lane['lane'], '')} |" for lane in llm.get("lanes", [])]
    out.append("")
    for key, label in (("output_tokens_per_s", "output tokens/s (all streams)"),
                       ("request_tokens_per_s", "output tokens/s per request (mean)"),
                       ("goodput_rps", "goodput (req/s)")):
        if llm.get(key) is not None:
            out.append(f"- {label}: {llm[key]:g} — {formulas.get(key, '')}")
    if llm.get("limits_ms"):
        limits = ", ".join(f"{k} ≤ {v:g} ms" for k, v in llm["limits_ms"].items())
        out.append(f"- limits: {limits} ({llm.get('good')} of {llm['streams']} within)")
    return [*out, ""]


def _ms(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "–"


def llm_html(llm: Mapping[str, Any] | None) -> list[str]:
    """The same table for the HTML report (pytest-html's summary), escaped."""
    if not llm:
        return []
    from html import escape

    formulas = llm.get("formulas", {})
    rows = "".join(
        f"<tr><td>{escape(lane['lane'].upper())}</td><td>{lane['samples']}</td>"
        + "".join(f"<td>{_ms(lane.get(f'{p}_ms'))}</td>" for p in PERCENTILES)
        + f"<td>{escape(str(formulas.get(lane['lane'], '')))}</td></tr>"
        for lane in llm.get("lanes", []))
    return [f"<h2>LLM latency (streamed chats)</h2><p>{llm['streams']} streamed chats; output "
            f"tokens counted from the {escape(str(llm.get('token_count_source', '?')))}.</p>"
            '<table class="sidecar-llm"><tr><th>metric</th><th>samples</th><th>p50 ms</th>'
            f"<th>p90 ms</th><th>p99 ms</th><th>definition</th></tr>{rows}</table>"]
