"""Prometheus scrapes for the specs: parse (prometheus_client's parser), query, lint.

A `Scrape` answers "what is this sample now", "how much did it move since that scrape"
and "what quantile do these buckets give"; `lint` checks the rules of CONTRACT §6 that a
scrape can show. No pytest here; the fixtures in fixtures/metrics.py adapt it.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .tls import tls_context

Labels = dict[str, str]

# Label values that betray an unbounded label: ids, digests, tokens, free text.
_ID_LIKE = (re.compile(r"^[0-9a-f]{16,}$", re.I),
            re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I),
            re.compile(r"\d{6,}"), re.compile(r"^(sct_|sk-|eyJ)"),
            re.compile(r"/v1/traces/(?!\{)"))  # a concrete trace path, not the template
_TEXT_LIKE = re.compile(r"\s\S+\s")  # two or more spaces between words: user text
DEFAULT_MAX_SERIES = 200  # label sets per family


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def matches(self, wanted: Labels) -> bool:
        own = dict(self.labels)
        return all(own.get(k) == v for k, v in wanted.items())


@dataclass
class Scrape:
    """One parsed exposition."""

    url: str
    text: str
    types: dict[str, str] = field(default_factory=dict)  # family -> type
    samples: list[Sample] = field(default_factory=list)

    def family_type(self, name: str) -> str | None:
        """The TYPE of a family by any of its names (counters with or without _total,
        histograms by base name)."""
        for candidate in (name, name.removesuffix("_total")):
            if candidate in self.types:
                return self.types[candidate]
        return None

    def select(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name and s.matches(labels)]

    def value(self, name: str, **labels: str) -> float:
        """The value of the one sample with this name and labels (0 if absent: a counter
        child that was never incremented is not exposed)."""
        found = self.select(name, **labels)
        if len(found) > 1:
            raise ValueError(f"{len(found)} samples of {name} match {labels}; add labels")
        return found[0].value if found else 0.0

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample of `name` whose labels include `labels`."""
        return sum(s.value for s in self.select(name, **labels))

    def series(self, family: str) -> int:
        names = {family, f"{family}_total", f"{family}_bucket", f"{family}_count",
                 f"{family}_sum"}
        return len({(s.name, s.labels) for s in self.samples if s.name in names})

    def label_sets(self, family: str) -> int:
        """Distinct label sets of a family (`le` aside): its cardinality."""
        names = {family, f"{family}_total", f"{family}_bucket", f"{family}_count",
                 f"{family}_sum"}
        return len({tuple(kv for kv in s.labels if kv[0] != "le")
                    for s in self.samples if s.name in names})

    def histogram_quantile(self, q: float, family: str, **labels: str) -> float:
        """Like PromQL's histogram_quantile over buckets summed across other labels."""
        buckets: dict[float, float] = defaultdict(float)
        for sample in self.select(f"{family}_bucket", **labels):
            buckets[float(dict(sample.labels)["le"])] += sample.value
        if not buckets or buckets.get(math.inf, 0.0) == 0:
            return math.nan
        bounds = sorted(buckets)
        rank = q * buckets[math.inf]
        lower_bound, lower_count = 0.0, 0.0
        for bound in bounds:
            count = buckets[bound]
            if count >= rank:
                if bound == math.inf:
                    return lower_bound
                width = count - lower_count
                return lower_bound + (bound - lower_bound) * (
                    (rank - lower_count) / width if width else 1.0)
            lower_bound, lower_count = bound, count
        return bounds[-2] if len(bounds) > 1 else math.nan


def parse(text: str, url: str = "") -> Scrape:
    """Parse Prometheus text exposition with prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    scrape = Scrape(url, text)
    for family in text_string_to_metric_families(text):
        scrape.types[family.name] = family.type
        for sample in family.samples:
            scrape.samples.append(Sample(sample.name, tuple(sorted(sample.labels.items())),
                                         float(sample.value)))
    return scrape


def scrape(url: str, timeout: float = 10.0) -> Scrape:
    """GET a /metrics endpoint and parse it (raises httpx's errors on a bad answer)."""
    import httpx  # here: importing the package (which exports Scraper) loads no httpx

    response = httpx.get(url, timeout=timeout, verify=tls_context())
    response.raise_for_status()
    return parse(response.text, url)


@dataclass(frozen=True)
class Scraper:
    """Scrapes one /metrics endpoint; each call to `scrape()` is a fresh reading (what
    the `metrics` fixture gives)."""

    url: str
    timeout: float

    def scrape(self) -> Scrape:
        return scrape(self.url, self.timeout)


# What the `metrics_factory` fixture gives: ("gateway" | "explainer", target=None) -> Scraper
MetricsFactory = Callable[..., Scraper]


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    """How much `name` (summed over matching labels) moved between two scrapes."""
    return after.total(name, **labels) - before.total(name, **labels)


def decreased(before: Scrape, after: Scrape) -> list[str]:
    """Counter samples (§6: counters never decrease while the process lives) whose value
    in `after` is below `before`'s: a reset, or a counter computed from a window."""
    found = []
    for sample in before.samples:
        if after.family_type(sample.name) != "counter":
            continue
        now = [s.value for s in after.samples
               if s.name == sample.name and s.labels == sample.labels]
        if now and now[0] < sample.value:
            found.append(f"{sample.name}{dict(sample.labels)} {sample.value:g} -> {now[0]:g}")
    return found


def labels_holding(scrape: Scrape, needles: Iterable[str]) -> list[str]:
    """Label values that contain any of `needles` (ids or paths a spec itself sent: §6
    says no label carries a trace id, a request id, a token or user text)."""
    wanted = [n for n in needles if n]
    return sorted({f"{s.name}{{{key}={value[:60]!r}}}" for s in scrape.samples
                   for key, value in s.labels if any(n in value for n in wanted)})


def lint(scrape: Scrape, max_series: int = DEFAULT_MAX_SERIES) -> list[str]:
    """CONTRACT §6 rules a scrape can show, one problem per line."""
    problems = []
    declared: dict[str, set[str]] = defaultdict(set)
    for line in scrape.text.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
            declared[parts[2]].add(parts[1])
            if parts[1] == "TYPE" and parts[3:] == ["counter"] and not parts[2].endswith(
                    "_total"):
                problems.append(f"counter {parts[2]} does not end in _total")
    for name, kinds in declared.items():
        if kinds != {"HELP", "TYPE"}:
            problems.append(f"{name} has {sorted(kinds)} but needs HELP and TYPE")
    for family, kind in scrape.types.items():
        if kind == "histogram":
            problems += _histogram_problems(scrape, family)
        if scrape.label_sets(family) > max_series:
            problems.append(f"{family} has {scrape.label_sets(family)} label sets "
                            f"(> {max_series})")
    for sample in scrape.samples:
        for key, value in sample.labels:
            if key == "le":
                continue
            if any(p.search(value) for p in _ID_LIKE) or _TEXT_LIKE.search(value):
                problems.append(f"{sample.name}{{{key}={value!r}}} looks like an id or text")
    return list(dict.fromkeys(problems))


def _histogram_problems(scrape: Scrape, family: str) -> list[str]:
    problems = []
    by_labels: dict[tuple[tuple[str, str], ...], dict[str, float]] = defaultdict(dict)
    for sample in scrape.samples:
        if sample.name == f"{family}_bucket":
            labels = tuple(kv for kv in sample.labels if kv[0] != "le")
            if dict(sample.labels)["le"] in ("+Inf", "inf"):
                by_labels[labels]["inf"] = sample.value
        elif sample.name == f"{family}_count":
            by_labels[sample.labels]["count"] = sample.value
    for labels, seen in by_labels.items():
        if seen.get("inf") != seen.get("count"):
            problems.append(f"{family}{dict(labels)}: +Inf bucket {seen.get('inf')} != "
                            f"_count {seen.get('count')}")
    return problems
