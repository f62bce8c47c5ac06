"""sidecar-load against a real reference stack: two shards, merged exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_sidecar.cli.load import main
from pytest_sidecar.embedded import EmbeddedStack


def test_two_shards_run_for_real_and_merge_exactly(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    stack = EmbeddedStack(str(tmp_path / "stack"))
    target = stack.ensure_started()
    try:
        for shard in ("0/2", "1/2"):
            assert main(["run", "--target-file", target, "--rate", "60", "--duration", "1",
                         "--arrivals", "constant", "--attach-rate", "0.5", "--token-mix",
                         "0.2", "--shard", shard, "--threshold", "chat:error_pct<=0",
                         "--out", str(tmp_path / f"run-{shard[0]}")]) == 0
    finally:
        stack.stop()
    shards = [json.loads((tmp_path / f"run-{i}" / "summary.json").read_text()) for i in "01"]
    assert [s["offered"] for s in shards] == [30, 30], "each shard offers half of 60/s for 1 s"
    assert all(s["dropped"] == 0 and s["completed"] == s["sent"] for s in shards)
    assert main(["merge", "--out", str(tmp_path / "merged"),
                 str(tmp_path / "run-0"), str(tmp_path / "run-1")]) == 0
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert merged["offered"] == 60 and merged["shards"] == 2
    chat = sum(s["lanes"]["chat"]["status"]["2xx"] for s in shards)
    assert merged["lanes"]["chat"]["status"]["2xx"] == chat == 60
    explained = sum(sum(s["explained"].values()) for s in shards)
    lanes = {k: v for k, v in merged["lanes"].items() if k.startswith("explain:")}
    assert sum(sum(v["status"].values()) for v in lanes.values()) == explained > 0
    capsys.readouterr()
    assert main(["merge", "--out", str(tmp_path / "merged"), str(tmp_path / "run-0")]) == 2
    assert "is not empty: a run directory is never appended to" in capsys.readouterr().err


def test_streams_polling_closed_loops_and_the_progress_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Streamed chats record time to first token and still open traces (id from the
    x-trace-id header); polling times explanations too; traffic rotates over both
    tenants; a closed loop says it is one; a progress stream gets the live line."""
    import io

    from pytest_sidecar.load import loop
    from pytest_sidecar.load.runner import Profile, run_scenario
    from pytest_sidecar.target import load_target_file

    stack = EmbeddedStack(str(tmp_path / "stack"))
    target_file = stack.ensure_started()
    try:
        assert main(["run", "--target-file", target_file, "--rate", "40", "--duration", "1",
                     "--arrivals", "constant", "--attach-rate", "1", "--token-mix", "0",
                     "--stream-share", "0.5", "--polling", "--out",
                     str(tmp_path / "streams")]) == 0
        assert main(["run", "--target-file", target_file, "--rate", "1", "--duration", "1",
                     "--closed", "2", "--attach-rate", "0", "--out",
                     str(tmp_path / "closed")]) == 0
        target = load_target_file(target_file)
        progress = io.StringIO()
        run = loop.run(run_scenario(target.url, target.load_tenants(),
                                    Profile(rate=20, duration_s=1, attach_rate=0,
                                            arrivals="constant"),
                                    progress=progress))
    finally:
        stack.stop()
    streams = json.loads((tmp_path / "streams" / "summary.json").read_text())
    ttft = streams["lanes"]["ttft"]["ok"]
    assert 0 < ttft["count"] < 40 and ttft["p50_ms"] > 0
    # The metrics LLM serving benchmarks report, with their formulas: each stream has a
    # TTFT, an E2E and (more than one token) a TPOT; ITL counts the gaps between chunks.
    lanes = streams["lanes"]
    assert lanes["e2e"]["ok"]["count"] == lanes["tpot"]["ok"]["count"] == ttft["count"]
    llm = streams["llm"]
    # The reference stack declares include_usage: each stream asked for its usage chunk,
    # and the stack's fake upstream sends one token a chunk, so the counts agree.
    assert llm["streams"] == ttft["count"] and llm["token_count_source"] == "usage chunk"
    assert lanes["itl"]["ok"]["count"] == llm["output_tokens"] - llm["streams"]
    assert llm["output_tokens_per_s"] > 0 and llm["request_tokens_per_s"] > 0
    assert llm["formulas"]["tpot"] == "(e2e - ttft) / (output tokens - 1)"
    assert lanes["e2e"]["ok"]["p50_ms"] >= ttft["p50_ms"]
    assert streams["explanation_timing"] == "polling" and streams["explained"]["sentence"] == 40
    assert streams["trace_outcomes"] == {"sentence:complete": 40}
    assert sorted(streams["per_tenant"].values()) == [20, 20]
    closed = json.loads((tmp_path / "closed" / "summary.json").read_text())
    assert closed["model"] == "closed" and closed["clients"] == 2 and closed["completed"] > 0
    lines = progress.getvalue().split("\r")
    assert "/1s offered 20 sent 20 dropped 0 in flight 0" in lines[-1]
    assert lines[-1].endswith("\n") and len(lines) > 2  # rewritten in place, then ended
    assert run.summary["offered"] == 20


def test_a_dead_url_stops_at_once_naming_the_refused_connection(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No load is offered to a target that does not answer: exit 4 within seconds, the
    refused connection named, no run directory left."""
    import socket
    import time

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    code = main(["run", "--url", f"http://127.0.0.1:{port}", "--duration", "30s",
                 "--out", str(tmp_path / "dead")])
    assert code == 4 and time.monotonic() - started < 5
    assert capsys.readouterr().err.strip() == (
        f"sidecar-load: error: cannot connect to http://127.0.0.1:{port}: connection refused")
    assert not (tmp_path / "dead").exists()


def test_a_target_that_only_errs_measures_nothing_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It answers, but nothing succeeded: the run is not trustworthy, the table says why,
    exit 3."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse

    from pytest_sidecar.chaos.toxiproxy import AppThread

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        await JSONResponse({"code": "down", "message": "down"}, 503)(scope, receive, send)

    app = Starlette()
    app.mount("/", failing)
    server = AppThread(app)
    try:
        code = main(["run", "--url", server.start(), "--rate", "20", "--duration", "500ms",
                     "--arrivals", "constant", "--out", str(tmp_path / "erring")])
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert code == 3
    assert out.splitlines()[0].split() == ["lane", "count", "error_pct", "p50_ms", "p95_ms",
                                           "p99_ms", "max_ms", "dropped"]
    assert "NOT trustworthy: nothing succeeded" in out
    summary = json.loads((tmp_path / "erring" / "summary.json").read_text())
    assert summary["trustworthy"] is False


def test_durations_take_units_and_flags_have_defaults() -> None:
    from pytest_sidecar.cli.load import build_parser

    args = build_parser().parse_args(["run", "--url", "http://127.0.0.1:1", "--duration",
                                      "2m", "--ramp", "500ms"])
    assert (args.duration, args.ramp, args.rate, args.out) == (120.0, 0.5, 10.0, None)
    assert build_parser().parse_args(["run", "--url", "http://127.0.0.1:1"]).duration == 30.0


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:8080", "http://"])
def test_a_url_that_is_not_http_is_a_usage_error(url: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--url", url, "--rate", "1", "--duration", "1",
              "--out", str(tmp_path / "r")])
    assert exited.value.code == 2
    assert "not an absolute http(s) URL" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_merge_refuses_a_shard_twice_and_mixed_splits(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_sidecar.load.rundir import write_run
    from pytest_sidecar.load.stats import Histograms

    for name, shard in (("a", "0/2"), ("b", "0/2"), ("c", "1/3")):
        (tmp_path / name).mkdir()
        write_run(tmp_path / name, {"shard": shard, "trustworthy": True, "lanes": {}},
                  Histograms())
    cases = [(["a", "a"], "given twice"), (["a", "b"], "shard 0/2 again"),
             (["a", "c"], "shards of different splits")]
    for shards, words in cases:
        assert main(["merge", "--out", str(tmp_path / "m"),
                     *(str(tmp_path / s) for s in shards)]) == 2
        assert words in capsys.readouterr().err
        assert not (tmp_path / "m").exists()


def test_thresholds_pass_fail_and_never_pass_on_no_data() -> None:
    from pytest_sidecar.load.thresholds import judge, parse_threshold

    summary = {"dropped": 0, "lanes": {"chat": {"status": {"2xx": 99, "5xx": 1},
                                                "ok": {"count": 99, "p50_ms": 12.0,
                                                       "p95_ms": 40.0, "p99_ms": 90.0,
                                                       "max_ms": 120.0}}}}
    judged = judge(summary, [parse_threshold(t) for t in (
        "chat:p95<500", "chat:error_pct<0.1", "chat:count>=100", "explain:sentence:p95<2000")])
    assert judged == [(True, "✓ chat:p95<500: measured 40"),
                      (False, "✗ chat:error_pct<0.1: measured 1"),
                      (True, "✓ chat:count>=100: measured 100"),
                      (False, "✗ explain:sentence:p95<2000: no samples in lane "
                              "'explain:sentence'")]
    for bad in ("chat:p97<5", "chat<5", "p95<5", "chat:p95=5"):
        with pytest.raises(ValueError, match="valid: LANE:STAT<VALUE"):
            parse_threshold(bad)


def test_goodput_counts_the_streams_within_every_limit() -> None:
    from pytest_sidecar.load.llm_metrics import stream_summary

    summary = stream_summary({"streams": 4, "output_tokens": 40, "tokens_from_usage": 4,
                              "good": 3, "rate_milli": 4 * 20_000}, 2.0,
                             {"ttft": 200.0, "e2e": 1000.0})
    assert summary["goodput_rps"] == 1.5 and summary["good"] == 3
    assert summary["output_tokens_per_s"] == 20.0 and summary["request_tokens_per_s"] == 20.0
    assert summary["token_count_source"] == "usage chunk"
    assert stream_summary({}, 1.0) == {}
    from pytest_sidecar.cli.load import _limits, build_parser

    args = build_parser().parse_args(["run", "--url", "http://127.0.0.1:1", "--limit",
                                      "ttft=500,tpot=40", "--limit", "e2e=2000"])
    assert _limits(args.limit) == (("ttft", 500.0), ("tpot", 40.0), ("e2e", 2000.0))
    for wrong in ("itl=5", "ttft=500,ttft=600", "ttft=0", "ttft"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", "--url", "http://127.0.0.1:1", "--limit", wrong])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--url", "http://127.0.0.1:1", "--limit", "itl=5"])
