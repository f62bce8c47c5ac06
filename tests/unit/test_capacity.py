"""The M/M/c capacity model: Erlang C against known values, tails, and recommendations."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from pytest_sidecar.capacity import erlang_c, recommend, wait_exceeds


@pytest.mark.parametrize("servers,offered,expected", [
    (1, 0.5, 0.5),  # M/M/1: P(wait) = rho
    (2, 1.0, 1 / 3),  # textbook value
    (10, 8.0, 0.4092),  # Erlang C tables
])
def test_erlang_c_matches_known_values(servers: int, offered: float, expected: float) -> None:
    assert erlang_c(servers, offered) == pytest.approx(expected, abs=1e-4)


def test_an_unstable_queue_always_waits() -> None:
    assert erlang_c(4, 4.0) == 1.0 and wait_exceeds(4, 10, 0.5, 100) == 1.0
    assert erlang_c(4, 0) == 0.0


def test_the_waiting_tail_matches_a_simulation() -> None:
    """M/M/3 at 80 % load: simulated P(W > 0.5 s) agrees with the formula."""
    rng = random.Random(11)
    servers, arrival, service = 3, 4.8, 0.5
    free = [0.0] * servers
    t, waits = 0.0, []
    for _ in range(200_000):
        t += rng.expovariate(arrival)
        k = min(range(servers), key=free.__getitem__)
        start = max(t, free[k])
        waits.append(start - t)
        free[k] = start + rng.expovariate(1 / service)
    simulated = sum(w > 0.5 for w in waits[10_000:]) / len(waits[10_000:])
    assert simulated == pytest.approx(wait_exceeds(servers, arrival, service, 0.5), abs=0.01)


def test_recommendations_grow_with_load_and_state_their_assumptions() -> None:
    service = {"sentence": 0.15, "token": 0.8}
    small = recommend(20, 0.3, 0.1, service, workers_per_replica=4)
    large = recommend(400, 0.3, 0.1, service, workers_per_replica=4)
    assert 1 <= small.replicas < large.replicas
    assert all(p <= 0.05 for p in large.p_wait_over_budget.values())
    fewer = (large.replicas - 1) * 4  # one replica less must miss the SLO
    assert any(wait_exceeds(fewer, 120, 0.215, budget) > 0.05
               for budget in (2.0 - 0.15, 8.0 - 0.8)), "not the fewest replicas"
    assert large.assumptions["arrival_rate_rps"] == 120 and large.utilization < 1
    assert math.isclose(large.assumptions["mean_service_s"], 0.215)


def test_impossible_slos_and_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="service time alone exceeds its SLO"):
        recommend(10, 0.3, 0.1, {"sentence": 3.0, "token": 1.0}, 4)
    with pytest.raises(ValueError):
        recommend(10, 1.5, 0.1, {"sentence": 0.1, "token": 1.0}, 4)


def test_the_charts_gateway_replicas_hold_the_peak_per_replica_times_their_count() -> None:
    from pytest_sidecar.capacity import gateway_capacity

    held = gateway_capacity(120.0, 1, 2, 150.0)
    assert held["verdict"] == "PASS" and held["capacity_rps"] == 240.0
    short = gateway_capacity(120.0, 2, 2, 150.0)  # 60 req/s a replica, 120 in all
    assert short["verdict"] == "FAIL" and "above the 120 req/s" in short["detail"]
    assert gateway_capacity(None, 1, 2, 10.0)["verdict"] == "FAIL"
    assert gateway_capacity(80.0, 1, 3, None)["verdict"] == "INSUFFICIENT_DATA"


def test_sidecar_capacity_checks_a_sweep_against_the_charts_gateway(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from pytest_sidecar.cli.capacity import main
    from pytest_sidecar.manifests import gateway_replicas

    chart = Path(__file__).parents[2] / "manifests" / "helm" / "hypergraph"
    replicas = gateway_replicas(chart)["replicas"]
    (tmp_path / "sweep.json").write_text(json.dumps(
        {"peak_rate": 100.0, "limits_ms": {"ttft": 500}, "attainment": 0.9, "steps": []}))
    base = ["--sweep", str(tmp_path), "--chart", str(chart), "--json"]
    assert main([*base, "--chat-rate", str(100 * replicas)]) == 0
    assert json.loads(capsys.readouterr().out)["gateway"]["capacity_rps"] == 100 * replicas
    assert main([*base, "--chat-rate", str(100 * replicas + 1)]) == 1
    capsys.readouterr()
    (tmp_path / "sweep.json").write_text("{}")
    assert main(base) == 2
    assert "not a sidecar-load sweep" in capsys.readouterr().err
