"""A run's summary as a per-lane table (k6 and Locust print one): count, error %, latency
percentiles of the successful requests, and drops, as text, Markdown, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

FORMATS = ("table", "markdown", "csv", "json")
COLUMNS = ("lane", "count", "error_pct", "p50_ms", "p95_ms", "p99_ms", "max_ms", "dropped")


def lane_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per lane. Percentiles are of the 2xx answers (an error's latency is not
    the service's); drops happen before a chat is sent, so they are the chat lane's."""
    rows = []
    for lane, entry in summary.get("lanes", {}).items():
        count = sum(entry.get("status", {}).values())
        ok = entry.get("ok", {})
        errors = count - entry.get("status", {}).get("2xx", 0)
        rows.append({"lane": lane, "count": count,
                     "error_pct": round(100 * errors / count, 2) if count else None,
                     **{key: ok.get(key) for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")},
                     "dropped": summary.get("dropped", 0) if lane == "chat" else None})
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def render(summary: dict[str, Any], fmt: str) -> str:
    """The summary in one of FORMATS; `json` is the whole summary but its per-lane detail."""
    if fmt == "json":
        return json.dumps({k: v for k, v in summary.items() if k != "lanes"}
                          | {"table": lane_rows(summary)}, indent=2)
    rows = [[_shown(row[c]) for c in COLUMNS] for row in lane_rows(summary)]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    if fmt == "markdown":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) if i else v.ljust(w)
                        for i, (v, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    trust = "trustworthy" if summary.get("trustworthy") else (
        "NOT trustworthy: " + str(summary.get("untrusted_because", "the generator lagged")))
    lines += ["", f"offered {summary.get('offered', 0)}, sent {summary.get('sent', 0)}, "
                  f"dropped {summary.get('dropped', 0)} in {summary.get('duration_s')} s; "
                  f"{trust}"]
    llm = summary.get("llm")
    if llm:
        line = (f"streams {llm['streams']}: {llm['output_tokens']} output tokens "
                f"({llm['token_count_source']}), {llm['output_tokens_per_s']} tokens/s in "
                f"all, {llm['request_tokens_per_s']} tokens/s per request")
        if "goodput_rps" in llm:
            limits = ", ".join(f"{k}<={v:g}ms" for k, v in llm["limits_ms"].items())
            line += f"; goodput {llm['goodput_rps']} req/s ({llm['good']} within {limits})"
        lines.append(line)
    return "\n".join(lines)
