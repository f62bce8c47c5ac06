"""Capacity inputs measured from what a deployment leaves behind, the verdict against the
KEDA range, and the `sidecar-capacity` command's exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_sidecar.capacity import analyze
from pytest_sidecar.capacity_sources import (
    collect,
    from_audit_log,
    from_load_summary,
    from_metrics,
    from_status_store,
)
from pytest_sidecar.cli import capacity as capacity_cli
from pytest_sidecar.load.verdict import FAIL, INSUFFICIENT, PASS

CHART = Path(__file__).resolve().parents[2] / "manifests" / "helm" / "hypergraph"


def ts(seconds: float) -> str:
    return datetime.fromtimestamp(1_700_000_000 + seconds, UTC).isoformat().replace(
        "+00:00", "Z")


def deployment_files(tmp_path: Path, chats: int = 100, every_s: float = 0.1,
                     explain_each: int = 2, token_each: int = 5) -> tuple[str, str]:
    """An audit log and status store of `chats` chats `every_s` apart; every
    `explain_each`-th is explained, every `token_each`-th trace at token granularity.
    Sentence work takes 0.2 s, token work 1.0 s; trace 0 was degraded by backpressure
    (so its service time must not count) and trace 1 downgraded token->sentence."""
    lines: list[dict[str, Any]] = []
    status: dict[str, dict[str, Any]] = {}
    trace = 0
    for n in range(chats):
        t = n * every_s
        lines.append({"ts": ts(t), "event": "chat.submit", "status": 200})
        if n % explain_each:
            continue
        trace_id, token = f"t{trace}", trace % token_each == 0
        granularity = "token" if token else "sentence"
        work = 1.0 if token else 0.2
        record: dict[str, Any] = {"trace_id": trace_id, "state": "complete",
                                  "granularity": granularity, "created_at": ts(t),
                                  "updated_at": ts(t + 0.05 + work)}
        if trace == 0:
            record.update(bp_level=1, bp_actions=["reduce-samples"])
        if trace == 1:
            record.update(granularity="token", granularity_downgraded=True,
                          bp_level=0, bp_actions=[])
        status[trace_id] = record
        lines += [{"ts": ts(t), "event": "trace.queued", "trace_id": trace_id},
                  {"ts": ts(t + 0.05), "event": "trace.running", "trace_id": trace_id},
                  {"ts": ts(t + 0.05 + work), "event": "trace.complete",
                   "trace_id": trace_id}]
        trace += 1
    audit, store = tmp_path / "audit.log", tmp_path / "status.json"
    audit.write_text("".join(json.dumps(line) + "\n" for line in lines))
    store.write_text(json.dumps(status))
    return str(audit), str(store)


def test_the_audit_log_and_status_store_give_every_figure(tmp_path: Path) -> None:
    audit, store = deployment_files(tmp_path)
    measured = from_audit_log(audit, store)
    assert measured.value("chat_rate_rps") == pytest.approx(10.0)
    assert measured.value("attach_rate") == pytest.approx(0.5)
    assert measured.value("service_s:sentence") == pytest.approx(0.2, abs=1e-3)
    assert measured.value("service_s:token") == pytest.approx(1.0, abs=1e-3)
    # 50 traces: t0 (degraded) left out, t1 (downgraded) served as sentence work.
    figures = measured.figures
    assert figures["service_s:token"].samples == 9 and figures["service_s:sentence"].samples == 40
    assert "token_mix" not in figures  # the status store alone knows the requested mix
    whole = collect(audit, store)
    assert whole.value("token_mix") == pytest.approx(11 / 50)
    assert whole.figures["service_s:token"].source.startswith("audit log")
    assert whole.missing(min_samples=9) == []
    assert whole.missing(min_samples=10) == ["service_s:token"]


def test_the_status_store_alone_gives_only_an_upper_bound(tmp_path: Path) -> None:
    audit, store = deployment_files(tmp_path)
    measured = from_status_store(store)
    assert "upper bound" in measured.figures["service_s:sentence"].source
    # created -> complete = 0.05 s wait + the work; t1 (downgraded) counts as sentence.
    assert measured.value("service_s:sentence") == pytest.approx(0.25, abs=1e-3)
    assert measured.figures["service_s:sentence"].samples == 40
    assert measured.value("service_s:token") == pytest.approx(1.05, abs=1e-3)
    exact = from_audit_log(audit, store)
    for granularity in ("sentence", "token"):
        name = f"service_s:{granularity}"
        assert measured.value(name) > exact.value(name)  # type: ignore[operator]


def test_overrides_win_and_a_token_free_mix_needs_no_token_time(tmp_path: Path) -> None:
    audit, store = deployment_files(tmp_path)
    measured = collect(audit, store, overrides={"chat_rate_rps": 200.0, "token_mix": 0.0,
                                                "attach_rate": None})
    assert measured.figures["chat_rate_rps"].source == "given"
    assert measured.value("attach_rate") == pytest.approx(0.5)  # None: not overridden
    only_sentence = collect(overrides={"chat_rate_rps": 1.0, "attach_rate": 1.0,
                                       "token_mix": 0.0})
    assert only_sentence.missing(1) == ["service_s:sentence"]


def test_a_load_run_counts_its_followed_traces_as_service_time_samples(
        tmp_path: Path) -> None:
    """51 followed sentence traces are 51 samples (the CLI once said "under 5 samples"):
    the mean from the run's histograms, or the summary's median without them."""
    from pytest_sidecar.load.rundir import summarize, write_run
    from pytest_sidecar.load.stats import Histograms

    histograms = Histograms()
    for n in range(51):
        histograms.record("explain:sentence", "2xx", 0.1 + n / 1000)
    for _ in range(3):
        histograms.record("explain:token", "2xx", 0.5)
    histograms.record("chat", "2xx", 0.02)
    run = tmp_path / "run"
    run.mkdir()
    write_run(run, summarize(histograms, {"explained": {"sentence": 51, "token": 3}}, 10.0),
              histograms)
    measured = from_load_summary(str(run))
    sentence = measured.figures["service_s:sentence"]
    assert sentence.samples == 51 and sentence.value == pytest.approx(0.125, rel=0.01)
    assert "upper bound" in sentence.source
    assert measured.shortfalls(5) == {"service_s:token": "3 samples, at least 5 needed"}
    (run / "histograms.json").unlink()
    median = from_load_summary(str(run / "summary.json")).figures["service_s:sentence"]
    assert median.samples == 51 and median.value == pytest.approx(0.125, rel=0.01)


def test_a_load_summary_and_metrics_give_the_mix(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({
        "duration_s": 10.0, "lanes": {"chat": {"status": {"2xx": 400, "5xx": 2}}},
        "explained": {"sentence": 90, "token": 30}}))
    summary = from_load_summary(str(run))
    assert summary.value("chat_rate_rps") == pytest.approx(40.0)
    assert summary.value("attach_rate") == pytest.approx(0.3)
    assert summary.value("token_mix") == pytest.approx(0.25)
    text = ("# HELP chat_requests_total Chats.\n# TYPE chat_requests_total counter\n"
            'chat_requests_total{granularity="none"} 60\n'
            'chat_requests_total{granularity="sentence"} 30\n'
            'chat_requests_total{granularity="token"} 10\n')
    metrics = from_metrics(text, "gateway /metrics")
    assert metrics.value("attach_rate") == pytest.approx(0.4)
    assert metrics.value("token_mix") == pytest.approx(0.25)


FIGURES = {"chat_rate_rps": 40.0, "attach_rate": 0.5, "token_mix": 0.3,
           "service_s:sentence": 0.15, "service_s:token": 0.6}


def test_analyze_checks_the_recommendation_against_the_keda_range() -> None:
    ok = analyze(FIGURES, workers_per_replica=4, keda=(2, 16))
    assert ok["verdict"] == PASS and ok["recommendation"]["replicas"] <= 2
    busy = analyze({**FIGURES, "chat_rate_rps": 4000.0}, workers_per_replica=4, keda=(2, 16))
    assert busy["verdict"] == FAIL and "maxReplicaCount 16" in busy["detail"]
    assert busy["recommendation"]["replicas"] > 16
    hopeless = analyze({**FIGURES, "service_s:token": 9.0}, 4, (2, 16))
    assert hopeless["verdict"] == FAIL and "exceeds its SLO" in hopeless["detail"]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = capacity_cli.main([*args, "--chart", str(CHART)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_exit_codes_say_pass_fail_and_insufficient_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    audit, store = deployment_files(tmp_path)
    code, out, _ = cli(capsys, "--audit-log", audit, "--status-json", store,
                       "--min-samples", "5")
    assert code == 0 and out.startswith("PASS:") and "assumptions:" in out
    assert "M/M/c" in out and "KEDA range 2..16" in out
    code, out, _ = cli(capsys, "--audit-log", audit, "--status-json", store,
                       "--min-samples", "5", "--chat-rate", "5000", "--json")
    result = json.loads(out)
    assert code == 1 and result["verdict"] == FAIL
    assert result["measured"]["chat_rate_rps"]["source"] == "given"
    code, out, _ = cli(capsys, "--audit-log", audit, "--status-json", store)
    assert code == 3 and out.startswith(f"{INSUFFICIENT}:") and "service_s:token" in out


def test_the_cli_refuses_bad_input_in_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys)
    assert code == 2 and "give at least one source" in err
    code, _, err = cli(capsys, "--audit-log", str(tmp_path / "missing.log"))
    assert code == 2 and err.startswith("sidecar-capacity: error:") and len(
        err.splitlines()) == 1
    (tmp_path / "bad.log").write_text("{not json\n")
    code, _, err = cli(capsys, "--audit-log", str(tmp_path / "bad.log"))
    assert code == 2 and "Traceback" not in err


def test_no_chart_is_a_usage_error_that_says_pass_chart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Run outside the repository root, the default chart path finds nothing: exit 2 (never
    1, which means the SLO needs more replicas), one line, no traceback."""
    audit, store = deployment_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    code = capacity_cli.main(["--audit-log", audit, "--status-json", store])
    err = capsys.readouterr().err
    assert code == 2 and "pass --chart DIR" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
