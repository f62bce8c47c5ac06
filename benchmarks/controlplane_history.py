"""History queries at scale: 1,000 stored runs of 150 tests each, then the
queries behind the history page and the runs page, timed.

    python benchmarks/controlplane_history.py [--runs 1000] [--tests 150]

Prints, per query, the median and max of 20 repetitions in milliseconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_sidecar.controlplane.history import flaky_tests, slo_trends
from pytest_sidecar.controlplane.store import Store


def fill(store: Store, runs: int, tests: int) -> None:
    rng = random.Random(7)
    for n in range(runs):
        run_id = f"{n:012x}"
        store.create_run(run_id, {"target": "embedded", "suite": "e2e"}, f"/data/{run_id}")
        store.update_run(run_id, state="failed", counts={"total": tests}, gate={"passed": False})
        store.record_results(
            run_id,
            [(f"tests/e2e/test_m{t % 20}.py::test_{t}",
              "failed" if rng.random() < (0.3 if t % 25 == 0 else 0.01) else "passed", 12, None)
             for t in range(tests)],
            [(name, "PASS", 1.0 + rng.gauss(0, 0.05), 2.0, 40)
             for name in ("explanation p95 sentence", "explanation p95 token", "ttft p99")],
            [(1, "AssertionError: x", 1)])


def timed(work: Callable[[], Any], repeat: int = 20) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tests", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = Store(str(Path(directory) / "history.sqlite3"))
        started = time.perf_counter()
        fill(store, args.runs, args.tests)
        print(f"stored {args.runs} runs x {args.tests} tests in "
              f"{time.perf_counter() - started:.1f}s "
              f"({(Path(directory) / 'history.sqlite3').stat().st_size / 1e6:.1f} MB)")
        queries = {
            "flaky over the last 50 runs": lambda: flaky_tests(store.outcome_history(50)),
            "flaky over the last 200 runs": lambda: flaky_tests(store.outcome_history(200)),
            "SLO trends over the last 50 runs": lambda: slo_trends(store.slo_history(50)),
            "runs page (100 newest)": lambda: store.runs(100),
            "one run with its 150 tests": lambda: store.tests_of(f"{args.runs // 2:012x}"),
        }
        print(f"{'query':36} {'median ms':>10} {'max ms':>8}")
        for name, work in queries.items():
            median, worst = timed(work)
            print(f"{name:36} {median:10.1f} {worst:8.1f}")
        store.close()


if __name__ == "__main__":
    main()
