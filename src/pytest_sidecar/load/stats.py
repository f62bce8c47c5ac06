"""Latency statistics: one HdrHistogram per (lane, status class), in microseconds.

HDR histograms merge exactly, so shard outputs combine into the same percentiles as one
run recording every value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3  # 1 µs .. 1 h at 3 significant digits
PERCENTILES = (50.0, 90.0, 95.0, 99.0)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


_CLASSES = {hundreds: f"{hundreds}xx" for hundreds in range(1, 6)}


def status_class(status: int | None) -> str:
    """'2xx'..'5xx', or 'error' for a request that got no HTTP answer. A table lookup:
    it runs once per request on the load engine's hot path."""
    if not status:
        return "error"
    hundreds = status // 100
    return _CLASSES.get(hundreds) or f"{hundreds}xx"


class Histograms:
    """Latencies keyed by (lane, status class)."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], HdrHistogram] = {}

    def record(self, lane: str, klass: str, seconds: float) -> None:
        key = (lane, klass)
        histogram = self.by_key.get(key)
        if histogram is None:
            histogram = self.by_key[key] = new_histogram()
        micros = int(seconds * 1e6 + 0.5)  # round() is slower, and this runs per request
        histogram.record_value(LOWEST_US if micros < LOWEST_US else
                               HIGHEST_US if micros > HIGHEST_US else micros)

    def merge(self, other: Histograms) -> None:
        for key, histogram in other.by_key.items():
            self.by_key.setdefault(key, new_histogram()).add(histogram)

    def combined(self, lane: str, classes: Iterable[str] | None = None) -> HdrHistogram:
        total = new_histogram()
        for (name, klass), histogram in self.by_key.items():
            if name == lane and (classes is None or klass in classes):
                total.add(histogram)
        return total

    def summary(self, lane: str, classes: Iterable[str] | None = None) -> dict[str, Any]:
        """count, p50/p90/p95/p99 and max in milliseconds (None without samples)."""
        histogram = self.combined(lane, classes)
        count = histogram.get_total_count()
        out: dict[str, Any] = {"count": count}
        for p in PERCENTILES:
            out[f"p{p:g}_ms"] = (histogram.get_value_at_percentile(p) / 1000) if count else None
        out["max_ms"] = histogram.get_max_value() / 1000 if count else None
        return out

    def encode(self) -> dict[str, str]:
        """Compressed, base64 HDR encodings by 'lane|class' (for the run directory)."""
        return {f"{lane}|{klass}": histogram.encode().decode()
                for (lane, klass), histogram in self.by_key.items()}

    @classmethod
    def decode(cls, encoded: dict[str, str]) -> Histograms:
        histograms = cls()
        for key, blob in encoded.items():
            lane, klass = key.split("|", 1)
            histogram = histograms.by_key.setdefault((lane, klass), new_histogram())
            histogram.decode_and_add(blob.encode())
        return histograms
