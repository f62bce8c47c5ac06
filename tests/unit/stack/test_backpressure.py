"""Backpressure (CONTRACT §5): the ladder, and a real stack with a slow explainer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pytest_sidecar.client import SidecarClient, is_terminal
from pytest_sidecar.contracts.hif import invariant_errors
from pytest_sidecar.embedded import EmbeddedStack
from pytest_sidecar.metrics import scrape
from pytest_sidecar.stack import backpressure as bp


@pytest.mark.parametrize("granularity,backlog,expected", [
    ("sentence", 1.0, bp.NORMAL), ("sentence", 2.0, bp.SOFT), ("sentence", 2.3, bp.HARD),
    ("token", 2.9, bp.NORMAL), ("token", 4.0, bp.SOFT), ("token", 4.6, bp.HARD),
])
def test_levels_follow_the_contract_thresholds(granularity: str, backlog: float,
                                               expected: int) -> None:
    assert bp.level(granularity, backlog) == expected


def test_the_ladder_degrades_in_order() -> None:
    calm = bp.plan("token", {"sentence": 0.0, "token": 0.0})
    assert (calm.granularity, calm.level, calm.actions, calm.work_factor) == (
        "token", 0, (), 1.0)
    soft = bp.plan("token", {"sentence": 0.0, "token": 3.5})
    assert soft.downgraded and soft.granularity == "sentence" and soft.level == 1
    assert soft.actions == ("token->sentence", "reduce-samples") and soft.work_factor == 0.8
    hard = bp.plan("sentence", {"sentence": 2.5, "token": 0.0})
    assert hard.actions == ("reduce-samples", "reduce-topk", "reduce-layers",
                            "saliency-fallback") and not hard.downgraded
    assert bp.overloaded("sentence", 3.0) is None and bp.overloaded("sentence", 3.5) == 2


def test_a_saturated_explainer_degrades_refuses_explain_work_and_recovers(
        tmp_path: Path) -> None:
    # One worker; token jobs ~3 s, sentence jobs ~1 s: the lanes saturate in a few jobs.
    stack = EmbeddedStack(str(tmp_path), env={"EXPLAINER_WORKERS": "1",
                                              "EXPLAINER_TOKEN_MS": "100",
                                              "EXPLAINER_SENTENCE_MS": "300"})
    target = json.loads(Path(stack.ensure_started()).read_text())
    token = target["tenants"]["a"]["tokens"]["write"]
    try:
        with SidecarClient(target["url"], token, retry_rate_limited=False) as gw:
            statuses, traces = [], []
            for _ in range(12):  # ~3.2 s of token work each, on one worker
                response = gw.explain(granularity="token", max_tokens=30)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    traces.append(response.json()["explanation_metadata"]["trace_id"])
            refused = [s for s in statuses if s != 200]
            assert refused and set(refused) == {503}, statuses
            assert gw.chat().status_code == 200, "the chat lane must keep answering"
            records = [gw.status(t).json() for t in traces]
            downgraded = [r for r in records if r["granularity_downgraded"]]
            assert downgraded and all(r["bp_level"] >= 1 and "token->sentence" in
                                      r["bp_actions"] for r in downgraded)
            assert records[0]["bp_level"] == 0 and not records[0]["granularity_downgraded"]
            metrics = scrape(target["metrics"]["explainer"])
            assert metrics.value("backpressure_level", granularity="token") >= 1
            assert metrics.value("backpressure_actions_total", action="token->sentence") >= 1
            # The gateway refuses; the explainer process counts: the total reaches it
            # through the shared database within a flush and a poll.
            for _ in range(40):
                drops = scrape(target["metrics"]["explainer"]).value(
                    "backpressure_actions_total", action="drop")
                if drops == len(refused):
                    break
                time.sleep(0.05)
            assert drops == len(refused)
            # A degraded trace explains at the granularity it was given (§4 invariant).
            quick = downgraded[0]["trace_id"]
            for trace_id in traces:
                if trace_id != quick and trace_id != traces[0]:
                    gw.cancel(trace_id)
            done = gw.poll_until(quick, is_terminal, 30)
            assert done.last and done.last["state"] == "complete"
            graph = gw.graph(quick).json()
            assert graph["meta"]["granularity"] == "sentence"
            assert invariant_errors(graph, granularity="token", granularity_downgraded=True) == []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and scrape(target["metrics"]["explainer"]).value(
                    "backpressure_level", granularity="token") > 0:
                time.sleep(0.2)
            assert scrape(target["metrics"]["explainer"]).value(
                "backpressure_level", granularity="token") == 0, "the level did not recover"
    finally:
        stack.stop()
