"""Run directories: `summary.json` and `histograms.json` (HDR encodings), written
atomically into a directory that must be new (runs are never appended); `merge` combines
shard directories exactly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..vocabulary.defaults import SLO_S
from .llm_metrics import stream_summary
from .stats import Histograms


def new_run_dir(path: str) -> Path:
    """Create the run directory; refuse one that exists and is not empty."""
    directory = Path(path)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{path} is not empty: a run directory is never appended to")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def summarize(histograms: Histograms, counts: dict[str, Any], duration_s: float,
              slo_s: dict[str, float] | None = None) -> dict[str, Any]:
    """Counts, status mix, percentiles per lane and goodput (explanations within the SLO
    of their granularity, `slo_s`; the contract's by default)."""
    slo_ms = {f"explain:{g}": s * 1000 for g, s in (slo_s or SLO_S).items()}
    lanes: dict[str, Any] = {}
    for lane in sorted({lane for lane, _ in histograms.by_key}):
        mix = {klass: h.get_total_count() for (name, klass), h in histograms.by_key.items()
               if name == lane}
        entry: dict[str, Any] = {"status": mix, "ok": histograms.summary(lane, ["2xx"])}
        if lane in slo_ms:
            ok = histograms.combined(lane, ["2xx"])
            within = sum(count for value, count in _counts(ok) if value / 1000 <= slo_ms[lane])
            entry["slo_ms"] = slo_ms[lane]
            entry["goodput_rps"] = round(within / duration_s, 3) if duration_s else 0.0
            entry["within_slo"] = within
        lanes[lane] = entry
    llm = stream_summary(counts.get("streams") or {}, duration_s, counts.get("limits_ms"))
    return {**counts, **_trust(counts, lanes), "duration_s": duration_s, "lanes": lanes,
            **({"llm": llm} if llm else {})}


def _trust(counts: dict[str, Any], lanes: dict[str, Any]) -> dict[str, Any]:
    """Whether the run's figures can be believed, and if not, why: a generator that
    lagged measured itself; a run where nothing succeeded measured nothing."""
    if not any(entry["status"].get("2xx") for entry in lanes.values()):
        return {"trustworthy": False,
                "untrusted_because": "nothing succeeded: no 2xx answer in any lane"}
    if counts.get("trustworthy", True) is False and "untrusted_because" not in counts:
        return {"untrusted_because": "the generator could not keep up (scheduler lag p99 "
                f"{counts.get('scheduler_lag_p99_ms')} ms, client CPU share "
                f"{counts.get('client_cpu_share')})"}
    return {}


def _counts(histogram: Any) -> list[tuple[int, int]]:
    return [(item.value_iterated_to, item.count_at_value_iterated_to)
            for item in histogram.get_recorded_iterator()]


def write_run(directory: Path, summary: dict[str, Any], histograms: Histograms) -> None:
    write_atomic(str(directory / "histograms.json"),
                 json.dumps(histograms.encode(), indent=1).encode())
    write_atomic(str(directory / "summary.json"), json.dumps(summary, indent=2).encode())


def read_run(directory: Path) -> tuple[dict[str, Any], Histograms]:
    summary = json.loads((directory / "summary.json").read_text())
    return summary, Histograms.decode(json.loads((directory / "histograms.json").read_text()))


MERGED_COUNTS = ("offered", "sent", "dropped", "completed",
                 "explain_refused_without_retry_after")
MERGED_TALLIES = ("per_tenant", "explained", "trace_outcomes", "degraded", "explain_refused",
                  "exceptions", "streams")


def check_shards(runs: list[tuple[str, dict[str, Any]]]) -> None:
    """Refuse what would count traffic twice or mix two runs: the same directory twice,
    the same shard twice, or shards of different splits (0/2 beside 1/3)."""
    seen_paths: dict[Path, str] = {}
    seen_shards: dict[str, str] = {}
    totals = set()
    for path, summary in runs:
        real = Path(path).resolve()
        if real in seen_paths:
            raise ValueError(f"{path}: given twice (as {seen_paths[real]}): its traffic would "
                             "count twice")
        seen_paths[real] = path
        label = summary.get("shard")
        if label is None:
            continue  # a closed-loop run has no shard: one of its kind, by path
        if label in seen_shards:
            raise ValueError(f"{path}: shard {label} again (already {seen_shards[label]}): "
                             "each shard of a split is merged once")
        seen_shards[label] = path
        totals.add(str(label).partition("/")[2])
    if len(totals) > 1:
        raise ValueError(f"shards of different splits ({', '.join(sorted(seen_shards))}): "
                         "merge the shards of one run")


def merge(out: str, shards: list[str]) -> dict[str, Any]:
    """Merge shard run directories into `out` (a new directory); returns the summary."""
    histograms, counts, durations, trusted = Histograms(), dict.fromkeys(MERGED_COUNTS, 0), [], []
    tallies: dict[str, Counter[str]] = {key: Counter() for key in MERGED_TALLIES}
    runs = [(shard, *read_run(Path(shard))) for shard in shards]
    limits: dict[str, float] | None = None
    check_shards([(shard, summary) for shard, summary, _ in runs])
    for _path, summary, shard_histograms in runs:
        histograms.merge(shard_histograms)
        for key in MERGED_COUNTS:
            counts[key] += summary.get(key, 0)
        for key in MERGED_TALLIES:
            tallies[key].update(summary.get(key, {}))
        durations.append(summary.get("duration_s", 0.0))
        trusted.append(summary.get("trustworthy", False))
        limits = limits or summary.get("limits_ms")
    directory = new_run_dir(out)
    untrusted = [shard for shard, ok in zip(shards, trusted, strict=True) if not ok]
    merged = summarize(histograms, {**counts, **{k: dict(v) for k, v in tallies.items()},
                                    "shards": len(shards), "trustworthy": not untrusted,
                                    **({"limits_ms": limits} if limits else {}),
                                    **({"untrusted_because": "not trustworthy: shard "
                                        + ", ".join(untrusted)} if untrusted else {})},
                       max(durations, default=0.0))
    write_run(directory, merged, histograms)
    return merged

