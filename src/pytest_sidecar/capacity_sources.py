"""What the capacity model needs, measured from what a deployment leaves behind.

Each source yields the figures it can measure, and says which:

- audit log (+ status store for each trace's granularity): chat rate (accepted chats
  over the logged time span), attach rate (traces queued ÷ chats accepted) and service
  time per granularity (`trace.running` → `trace.complete` of one trace);
- status store alone: token mix (requested granularity) and an *upper bound* of service
  time (mean created → complete, which includes the wait), used only when nothing
  better exists;
- a load run's summary.json: chat rate, attach rate and token mix as offered, and an
  upper bound of service time per granularity (chat → complete latency of the traces
  it followed: the mean from its HDR histograms when the run directory is given, else
  the summary's median);
- /metrics of gateway + explainer: attach rate and token mix from
  `chat_requests_total{granularity}`.

Figures merge in that order of trust, first source wins per figure; each keeps its
source and sample count so the report prints where every number came from.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

GRANULARITIES = ("sentence", "token")
NEEDED = ("chat_rate_rps", "attach_rate", "token_mix", "service_s:sentence",
          "service_s:token")


@dataclass(frozen=True)
class Figure:
    value: float
    source: str
    samples: int


@dataclass
class Measured:
    """Figures by name (see NEEDED), each with its source and sample count."""

    figures: dict[str, Figure] = field(default_factory=dict)

    def add(self, name: str, value: float | None, source: str, samples: int) -> None:
        if value is not None and samples > 0 and name not in self.figures:
            self.figures[name] = Figure(value, source, samples)

    def merge(self, other: Measured) -> None:
        for name, figure in other.figures.items():
            self.figures.setdefault(name, figure)

    def missing(self, min_samples: int) -> list[str]:
        """Figures the model needs that are absent or rest on too few samples. Token
        service time is not needed when no explained request asks for token work."""
        return list(self.shortfalls(min_samples))

    def shortfalls(self, min_samples: int) -> dict[str, str]:
        """Each figure `missing` names, with why: absent, or its sample count."""
        needed = [n for n in NEEDED if not (n == "service_s:token" and self.value(
            "token_mix") == 0)]
        why: dict[str, str] = {}
        for name in needed:
            figure = self.figures.get(name)
            if figure is None:
                why[name] = "no source given measures it"
            elif name.startswith("service_s") and figure.samples < min_samples:
                why[name] = f"{figure.samples} samples, at least {min_samples} needed"
        return why

    def value(self, name: str) -> float | None:
        figure = self.figures.get(name)
        return figure.value if figure else None

    def as_dict(self) -> dict[str, Any]:
        return {n: {"value": round(f.value, 4), "source": f.source, "samples": f.samples}
                for n, f in self.figures.items()}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _lines(path: str) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _status_items(path: str) -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(Path(path).read_text())
    return data


def from_audit_log(path: str, status_json: str | None = None) -> Measured:
    """Chat rate, attach rate and (with the status store) service time per granularity."""
    chats: list[float] = []
    queued: set[str] = set()
    running: dict[str, float] = {}
    completed: dict[str, float] = {}
    for item in _lines(path):
        event = item.get("event")
        if event == "chat.submit" and item.get("status") == 200:
            chats.append(_ts(item["ts"]))
        elif event == "trace.queued":
            queued.add(item["trace_id"])
        elif event == "trace.running":
            running.setdefault(item["trace_id"], _ts(item["ts"]))
        elif event == "trace.complete":
            completed[item["trace_id"]] = _ts(item["ts"])
    measured, source = Measured(), f"audit log {path}"
    span = max(chats) - min(chats) if len(chats) > 1 else 0.0
    measured.add("chat_rate_rps", (len(chats) - 1) / span if span else None, source, len(chats))
    measured.add("attach_rate", len(queued) / len(chats) if chats else None, source, len(chats))
    if status_json:
        items = _status_items(status_json)
        served: dict[str, list[float]] = {g: [] for g in GRANULARITIES}
        for trace_id, done in completed.items():
            record = items.get(trace_id)
            # Work degraded by backpressure is not the full job: it would flatter capacity.
            if record is None or trace_id not in running or record.get("bp_actions"):
                continue
            served[_served_as(record)].append(done - running[trace_id])
        for granularity, times in served.items():
            measured.add(f"service_s:{granularity}", statistics.fmean(times) if times else None,
                         f"{source} + status store", len(times))
    return measured


def _served_as(record: dict[str, Any]) -> str:
    """The work a trace got: a downgraded token trace was served as sentence work."""
    return "sentence" if record.get("granularity_downgraded") else record.get(
        "granularity", "sentence")


def from_status_store(path: str) -> Measured:
    """Token mix (as requested); service time only as an upper bound: the mean of
    created -> complete, which includes each trace's wait (so capacity is not flattered)."""
    items = list(_status_items(path).values())
    measured, source = Measured(), f"status store {path}"
    if items:
        tokens = sum(1 for i in items if i.get("granularity") == "token")
        measured.add("token_mix", tokens / len(items), source, len(items))
    for granularity in GRANULARITIES:
        spans = [_ts(i["updated_at"]) - _ts(i["created_at"]) for i in items
                 if i.get("state") in ("complete", "expired") and not i.get("bp_actions")
                 and _served_as(i) == granularity]
        measured.add(f"service_s:{granularity}", statistics.fmean(spans) if spans else None,
                     f"{source} (mean created->complete: an upper bound)", len(spans))
    return measured


def from_load_summary(path: str) -> Measured:
    """Chat rate, attach rate, token mix and service-time bounds of a sidecar-load run
    (its directory, or its summary.json)."""
    file = Path(path) / "summary.json" if Path(path).is_dir() else Path(path)
    summary = json.loads(file.read_text())
    measured, source = Measured(), f"load summary {file}"
    _service_bounds(measured, summary, file.parent / "histograms.json")
    chats = summary.get("lanes", {}).get("chat", {}).get("status", {}).get("2xx", 0)
    explained = sum(summary.get("explained", {}).values())
    if summary.get("duration_s"):
        measured.add("chat_rate_rps", chats / summary["duration_s"], source, chats)
    measured.add("attach_rate", explained / chats if chats else None, source, chats)
    if explained:
        measured.add("token_mix", summary["explained"].get("token", 0) / explained, source,
                     explained)
    return measured


def _service_bounds(measured: Measured, summary: dict[str, Any], histograms: Path) -> None:
    """Chat → complete latency of the followed traces: it includes the wait, so it bounds
    service time from above (as the status store's created → complete does)."""
    decoded = None
    if histograms.is_file():
        from .load.stats import Histograms

        decoded = Histograms.decode(json.loads(histograms.read_text()))
    for granularity in GRANULARITIES:
        lane = f"explain:{granularity}"
        if decoded is not None:
            histogram = decoded.combined(lane, ["2xx"])
            count = histogram.get_total_count()
            mean = histogram.get_mean_value() / 1e6 if count else None
            measured.add(f"service_s:{granularity}", mean, f"load run {histograms.parent} "
                         "(mean chat->complete latency: an upper bound)", count)
            continue
        ok = summary.get("lanes", {}).get(lane, {}).get("ok", {})
        median = ok.get("p50_ms")
        measured.add(f"service_s:{granularity}", median / 1000 if median else None,
                     f"load summary {histograms.parent / 'summary.json'} (median "
                     "chat->complete latency: an upper bound)", int(ok.get("count") or 0))


def from_metrics(gateway_metrics_text: str, source: str) -> Measured:
    """Attach rate and token mix from chat_requests_total{granularity} (a lifetime view)."""
    from .metrics import parse

    scrape = parse(gateway_metrics_text)
    by = {g: scrape.total("chat_requests_total", granularity=g)
          for g in ("none", *GRANULARITIES)}
    chats, explained = sum(by.values()), by["sentence"] + by["token"]
    measured = Measured()
    measured.add("attach_rate", explained / chats if chats else None, source, int(chats))
    measured.add("token_mix", by["token"] / explained if explained else None, source,
                 int(explained))
    return measured


def collect(audit_log: str | None = None, status_json: str | None = None,
            load_summary: str | None = None, metrics: tuple[str, str] | None = None,
            overrides: dict[str, float | None] | None = None) -> Measured:
    """Overrides first, then the sources in order of trust; `metrics` is (text, source)."""
    measured = Measured()
    for name, value in (overrides or {}).items():
        measured.add(name, value, "given", 1)
    if audit_log:
        measured.merge(from_audit_log(audit_log, status_json))
    if status_json:
        measured.merge(from_status_store(status_json))
    if load_summary:
        measured.merge(from_load_summary(load_summary))
    if metrics:
        measured.merge(from_metrics(*metrics))
    return measured
