"""The standard mix against the embedded reference stack.

Starts the reference stack as the suite does (`sidecar-stack serve --suite`: 8 explainer
workers, the contract's backpressure), then offers the standard mix at rising chat
rates: Poisson arrivals, in-flight cap 300, attach rate 0.3, token mix 0.1, two tenants,
explanation latency timed by the traces' SSE streams. Each step runs STEP_S seconds and
waits for every trace it opened to end. It stops after the first step whose chat success
falls below 99.9 %, that drops requests, or whose generator could not keep up twice.

Printed per step: chat requests/s answered 2xx, chat success, chat p50/p99, sentence and
token explanations (count, p95), traces degraded by backpressure and explain requests
refused, requests dropped at the cap, and the generator's own lag and CPU (a step with
`trusted: no` measured the client as well). Client and stack share the machine's two
cores, so these are figures for this machine, not for a deployment.

    python benchmarks/standard_mix.py [--step 10] [--rates 50,100,200,300,400,600]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from pytest_sidecar.embedded import EmbeddedStack
from pytest_sidecar.load import loop
from pytest_sidecar.load.runner import Profile, run_scenario
from pytest_sidecar.target import load_target_file

CONCURRENCY, ATTACH_RATE, TOKEN_MIX = 300, 0.3, 0.1
CHAT_SUCCESS_MIN = 0.999


def row(summary: dict[str, Any]) -> dict[str, Any]:
    """The printed figures of one step."""
    lanes, duration = summary["lanes"], summary["duration_s"]
    chat = lanes["chat"]
    answered = sum(chat["status"].values())
    ok = chat["status"].get("2xx", 0)

    def explain(granularity: str) -> str:
        lane = lanes.get(f"explain:{granularity}")
        if not lane or not lane["ok"]["count"]:
            return "0"
        return f"{lane['ok']['count']} / {lane['ok']['p95_ms'] / 1000:.2f} s"

    return {"rate": summary["rate"], "offered": summary["offered"],
            "chat rps": round(ok / duration, 1),
            "success": ok / answered if answered else 0.0,
            "chat p50/p99 ms": f"{chat['ok']['p50_ms']:.1f} / {chat['ok']['p99_ms']:.1f}",
            "sentence n / p95": explain("sentence"), "token n / p95": explain("token"),
            "degraded": sum(summary["degraded"].values()),
            "refused": sum(summary["explain_refused"].values()),
            "dropped": summary["dropped"],
            "lag p99 ms": summary["scheduler_lag_p99_ms"],
            "client CPU": f"{summary['client_cpu_share']:.0%}",
            "trusted": "yes" if summary["trustworthy"] else "no"}


def print_row(values: dict[str, Any], header: bool) -> None:
    widths = {key: max(len(key), 9) for key in values}
    if header:
        print("  ".join(key.rjust(widths[key]) for key in values))
    shown = {k: (f"{v:.2%}" if k == "success" else v) for k, v in values.items()}
    print("  ".join(str(v).rjust(widths[k]) for k, v in shown.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--rates", default="50,100,200,300,400,600")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="standard-mix-") as directory:
        stack = EmbeddedStack(os.path.join(directory, "stack"))
        target = load_target_file(stack.ensure_started())
        print(f"embedded stack at {target.url}, engine loop {loop.loop_name()}, "
              f"{os.cpu_count()} cores; concurrency {CONCURRENCY}, attach {ATTACH_RATE}, "
              f"token mix {TOKEN_MIX}, {args.step:g} s per rate")
        untrusted = 0
        try:
            for index, rate in enumerate(rates):
                profile = Profile(rate=rate, duration_s=args.step, concurrency=CONCURRENCY,
                                  attach_rate=ATTACH_RATE, token_mix=TOKEN_MIX, seed=index)
                run = loop.run(run_scenario(target.url, target.load_tenants(), profile,
                                            follow_sse=True))
                values = row(run.summary)
                print_row(values, header=index == 0)
                untrusted = 0 if run.trustworthy else untrusted + 1
                if values["success"] < CHAT_SUCCESS_MIN or values["dropped"] or untrusted == 2:
                    break
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
