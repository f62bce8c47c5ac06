"""Scrape parsing, queries and the §6 lint, on expositions made with prometheus_client."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pytest_sidecar.metrics import decreased, delta, labels_holding, lint, parse


def registry() -> tuple[CollectorRegistry, Counter, Histogram]:
    r = CollectorRegistry()
    counter = Counter("requests", "Requests", ["path", "status"], registry=r)
    histogram = Histogram("latency_seconds", "Latency", buckets=(0.1, 0.5, 1.0), registry=r)
    Gauge("depth", "Depth", registry=r).set(3)
    return r, counter, histogram


def test_values_totals_and_deltas() -> None:
    r, counter, _ = registry()
    counter.labels("/a", "200").inc(2)
    counter.labels("/a", "500").inc()
    before = parse(generate_latest(r).decode())
    counter.labels("/a", "200").inc(5)
    after = parse(generate_latest(r).decode())
    assert before.value("requests_total", path="/a", status="200") == 2
    assert before.total("requests_total", path="/a") == 3
    assert before.value("requests_total", path="/b", status="200") == 0  # never exposed
    assert delta(before, after, "requests_total", status="200") == 5
    assert after.family_type("requests") == after.family_type("requests_total") == "counter"
    assert after.value("depth") == 3


def test_histogram_quantile_interpolates_like_promql() -> None:
    r, _, histogram = registry()
    for value in (0.05, 0.2, 0.3, 0.7):
        histogram.observe(value)
    scrape = parse(generate_latest(r).decode())
    # 4 observations: buckets 0.1 -> 1, 0.5 -> 3, 1.0 -> 4; the median (rank 2) lies in
    # (0.1, 0.5], half way through its 2 observations.
    assert math.isclose(scrape.histogram_quantile(0.5, "latency_seconds"), 0.3)
    assert math.isclose(scrape.histogram_quantile(1.0, "latency_seconds"), 1.0)
    assert math.isnan(parse("").histogram_quantile(0.5, "latency_seconds"))


def test_a_clean_exposition_lints_clean() -> None:
    r, counter, histogram = registry()
    counter.labels("/v1/traces/{trace_id}/status", "200").inc()
    histogram.observe(0.2)
    assert lint(parse(generate_latest(r).decode())) == []


def test_each_rule_is_enforced() -> None:
    text = "\n".join([
        "# HELP jobs Jobs", "# TYPE jobs counter", "jobs 1",  # counter without _total
        "# TYPE nohelp_total counter", "nohelp_total 1",  # no HELP
        "# HELP lat Latency", "# TYPE lat histogram",
        'lat_bucket{le="1.0"} 1', 'lat_bucket{le="+Inf"} 2', "lat_count 3", "lat_sum 1",
        "# HELP hits_total Hits", "# TYPE hits_total counter",
        'hits_total{trace="3f2a9c1e0d8b4a7f9e6c5b4a3d2e1f00"} 1',
        'hits_total{path="/v1/traces/abc123/status"} 1',
        'hits_total{prompt="tell me a long story please"} 1',
    ]) + "\n"
    problems = "\n".join(lint(parse(text)))
    assert "counter jobs does not end in _total" in problems
    assert "nohelp_total has ['TYPE'] but needs HELP and TYPE" in problems
    assert "+Inf bucket 2.0 != _count 3.0" in problems
    assert "trace='3f2a9c1e0d8b4a7f9e6c5b4a3d2e1f00'" in problems
    assert "path='/v1/traces/abc123/status'" in problems
    assert "prompt='tell me a long story please'" in problems


def test_cardinality_is_counted_in_label_sets() -> None:
    r, counter, histogram = registry()
    for i in range(12):
        counter.labels(f"/route{i}", "200").inc()
    histogram.observe(0.2)
    scrape = parse(generate_latest(r).decode())
    assert scrape.label_sets("requests") == 12 and scrape.label_sets("latency_seconds") == 1
    assert any("12 label sets (> 10)" in p for p in lint(scrape, max_series=10))


COUNTER_TEXT = ("# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n"
                'jobs_total{state="complete"} {complete}\njobs_total{state="failed"} {failed}\n'
                "# HELP depth Depth.\n# TYPE depth gauge\ndepth {depth}\n")


def exposition(complete: float, failed: float, depth: float) -> str:
    return (COUNTER_TEXT.replace("{complete}", str(complete))
            .replace("{failed}", str(failed)).replace("{depth}", str(depth)))


def test_a_counter_that_goes_down_is_named_and_a_gauge_may() -> None:
    before = parse(exposition(5, 2, 9))
    assert decreased(before, parse(exposition(6, 2, 1))) == []
    found = decreased(before, parse(exposition(7, 0, 9)))
    assert found == ["jobs_total{'state': 'failed'} 2 -> 0"]


def test_labels_holding_what_a_spec_sent_are_found() -> None:
    text = ("# HELP http_requests_total R.\n# TYPE http_requests_total counter\n"
            'http_requests_total{path="/v1/traces/{trace_id}/status"} 3\n'
            'http_requests_total{path="/v1/unmatched-abc123"} 1\n')
    scrape = parse(text)
    assert labels_holding(scrape, ["abc123", ""]) == [
        "http_requests_total{path='/v1/unmatched-abc123'}"]
    assert labels_holding(scrape, ["zzz"]) == []
