"""`sidecar-capacity`: explainer replicas for a measured attach rate, checked against KEDA;
gateway replicas for a measured peak rate, checked against the chart.

    sidecar-capacity [--audit-log F] [--status-json F] [--load-summary RUN]
                     [--metrics-url URL] [--chat-rate R] [--attach-rate A] [--token-mix M]
                     [--chart DIR] [--workers-per-replica N] [--slo-sentence S]
                     [--slo-token S] [--quantile Q] [--min-samples N]
                     [--sweep DIR [--swept-replicas N]] [--json]

Measures chat rate, attach rate, token mix and service time per granularity from the
sources given: the audit log's submit lines, the status store's stage timings, a
sidecar-load summary, the gateway's metrics (--chat-rate/--attach-rate/--token-mix
override a measurement, for what-if questions). Recommends replicas with an M/M/c
queueing model (each explainer worker a server; the p95 wait within the SLO; the formula
is in docs/performance.md) and checks the chart's KEDA minReplicaCount/maxReplicaCount
against it. With --sweep (a `sidecar-load sweep` directory), the peak rate that held the
sweep's limits, per swept gateway replica, times the chart's gateway replicas must cover
--chat-rate (else the measured chat rate). Every assumption is printed.

Exit status: 0 PASS, 1 FAIL (the SLO needs more than maxReplicaCount, or the planned rate
is above what the chart's gateway replicas hold), 2 usage error,
3 INSUFFICIENT_DATA (a figure is missing or rests on too few samples).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .. import capacity_sources as sources
from ..capacity import analyze, gateway_capacity
from ..load.verdict import FAIL, INSUFFICIENT, PASS
from ..options import (
    argparse_type,
    default_of,
    parse_positive_float,
    parse_seconds,
    parse_share,
    positive_int,
)
from ..vocabulary.defaults import SLO_QUANTILE

EXIT = {PASS: 0, FAIL: 1, INSUFFICIENT: 3}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar-capacity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audit-log", help="the target's audit log (JSON Lines; "
                        "default: none)")
    parser.add_argument("--status-json", help="the target's JSON status store (default: "
                        "none)")
    parser.add_argument("--load-summary", help="a sidecar-load run directory or summary.json "
                        "(default: none)")
    parser.add_argument("--metrics-url", help="the gateway's /metrics URL (default: none)")
    share, positive = argparse_type(parse_share), argparse_type(parse_positive_float)
    parser.add_argument("--chat-rate", type=positive, help="chats/s to plan for (default: "
                        "measured)")
    parser.add_argument("--attach-rate", type=share, help="share explained (default: "
                        "measured)")
    parser.add_argument("--token-mix", type=share, help="share at token granularity "
                        "(default: measured)")
    parser.add_argument("--chart", default=os.path.join("manifests", "helm",
                                                         "hypergraph"),
                        help="the Helm chart whose KEDA range is checked (default "
                        "%(default)s)")
    parser.add_argument("--workers-per-replica", type=argparse_type(positive_int),
                        help="explainer workers per replica (default: the chart's)")
    seconds = argparse_type(parse_seconds)
    parser.add_argument("--slo-sentence", type=seconds, default=default_of("slo_sentence"),
                        help="p95 explanation latency SLO at sentence granularity: 2s, "
                        "1500ms (default %(default)ss)")
    parser.add_argument("--slo-token", type=seconds, default=default_of("slo_token"),
                        help="p95 explanation latency SLO at token granularity (default "
                        "%(default)ss)")
    parser.add_argument("--quantile", type=share, default=SLO_QUANTILE,
                        help="the SLO's quantile, 0.95 for p95 (default %(default)s)")
    parser.add_argument("--min-samples", type=argparse_type(positive_int),
                        default=default_of("min_samples"),
                        help="traces a service time needs to be used (default "
                        "%(default)s)")
    parser.add_argument("--sweep", help="a sidecar-load sweep's directory or sweep.json: its "
                        "peak rate is checked against the chart's gateway replicas "
                        "(default: none)")
    parser.add_argument("--swept-replicas", type=argparse_type(positive_int), default=1,
                        help="gateway replicas that served the sweep (default %(default)s: "
                        "one, as the reference stack)")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON (default: a table)")
    return parser


def measure(args: argparse.Namespace) -> sources.Measured:
    metrics = None
    if args.metrics_url:
        import httpx

        from ..tls import tls_context

        metrics = (httpx.get(args.metrics_url, timeout=10, verify=tls_context()).text,
                   f"metrics {args.metrics_url}")
    return sources.collect(args.audit_log, args.status_json, args.load_summary, metrics, {
        "chat_rate_rps": args.chat_rate, "attach_rate": args.attach_rate,
        "token_mix": args.token_mix})


def explainer_sources(args: argparse.Namespace) -> bool:
    """Whether anything was given that measures the explainer's side."""
    return bool(args.audit_log or args.status_json or args.load_summary or args.metrics_url)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole analysis as one JSON-able result (what --json prints): the explainer's
    replicas against KEDA when its figures were given, the gateway's replicas against a
    sweep's peak when one was given; the verdict is the worse of the two."""
    from ..manifests import explainer_autoscaling

    if not (Path(args.chart) / "Chart.yaml").is_file():
        # A usage problem, never exit 1 (which means: the SLO needs more replicas).
        raise ValueError(f"no Helm chart at {args.chart} (no Chart.yaml there): pass --chart "
                         "DIR, the chart whose KEDA range is checked")
    chart = explainer_autoscaling(Path(args.chart))
    workers = args.workers_per_replica or chart["workers_per_replica"]
    result: dict[str, Any] = {"measured": {}, "chart": chart, "workers_per_replica": workers}
    verdicts = []
    if explainer_sources(args):
        measured = measure(args)
        result["measured"] = measured.as_dict()
        shortfalls = measured.shortfalls(args.min_samples)
        if shortfalls:
            result.update(verdict=INSUFFICIENT, detail="; ".join(
                f"{name}: {why}" for name, why in shortfalls.items()))
        else:
            figures = {name: figure.value for name, figure in measured.figures.items()}
            result.update(analyze(figures, workers, (chart["min"], chart["max"]),
                                  {"sentence": args.slo_sentence, "token": args.slo_token},
                                  args.quantile))
        verdicts.append((result["verdict"], result["detail"]))
    if args.sweep:
        result["gateway"] = gateway_sizing(args, result["measured"])
        verdicts.append((result["gateway"]["verdict"], result["gateway"]["detail"]))
    worst = min(verdicts, key=lambda v: (FAIL, INSUFFICIENT, PASS).index(v[0]))
    result.update(verdict=worst[0], detail="; ".join(detail for _, detail in verdicts))
    return result


def gateway_sizing(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    """The sweep's peak against the chart's gateway replicas, for --chat-rate (else the
    measured chat rate)."""
    from ..manifests import gateway_replicas

    path = Path(args.sweep)
    swept = json.loads((path / "sweep.json" if path.is_dir() else path).read_text())
    if "peak_rate" not in swept:
        raise ValueError(f"{args.sweep} is not a sidecar-load sweep's sweep.json")
    chart = gateway_replicas(Path(args.chart))
    planned = args.chat_rate or (measured.get("chat_rate_rps") or {}).get("value")
    return {**gateway_capacity(swept["peak_rate"], args.swept_replicas, chart["replicas"],
                               planned),
            "chart_source": chart["source"], "limits_ms": swept.get("limits_ms"),
            "attainment": swept.get("attainment")}


def render(result: dict[str, Any]) -> str:
    lines = [f"{result['verdict']}: {result['detail']}"]
    if result["measured"]:
        lines += ["", "measured:", *(f"  {name} = {f['value']}  ({f['samples']} samples, "
                                     f"{f['source']})" for name, f in result["measured"].items())]
    gateway = result.get("gateway")
    if gateway:
        limits = ", ".join(f"{k}<={v:g}ms" for k, v in (gateway["limits_ms"] or {}).items())
        lines += ["", f"gateway: peak {gateway['peak_rps']} req/s over "
                  f"{gateway['swept_replicas']} replica(s) ({limits}); chart "
                  f"{gateway['chart_replicas']} replicas ({gateway['chart_source']}) -> "
                  f"{gateway['capacity_rps']} req/s; planned {gateway['planned_rps']} req/s",
                  f"  assumption: {gateway['assumption']}"]
    chart = result["chart"]
    lines += ["", f"KEDA range {chart['min']}..{chart['max']}, {result['workers_per_replica']} "
              f"workers per replica ({chart['source']})"]
    advice = result.get("recommendation")
    if advice:
        lines += ["", f"recommended: {advice['replicas']} replicas = {advice['servers']} "
                  f"workers at utilisation {advice['utilization']}",
                  f"P(wait > budget): {advice['p_wait_over_budget']}", "assumptions:"]
        lines += [f"  {k}: {v}" for k, v in advice["assumptions"].items()]
    return "\n".join(lines)


def httpx_error() -> type[Exception]:
    import httpx

    return httpx.HTTPError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (explainer_sources(args) or args.sweep):
        print("sidecar-capacity: error: give at least one source (--audit-log, "
              "--status-json, --load-summary, --metrics-url, --sweep)", file=sys.stderr)
        return 2
    try:
        result = run(args)
    except (OSError, ValueError, KeyError, httpx_error()) as exc:
        print(f"sidecar-capacity: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else render(result))
    return EXIT[result["verdict"]]


if __name__ == "__main__":
    sys.exit(main())
