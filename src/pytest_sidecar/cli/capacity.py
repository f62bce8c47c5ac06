"""`sidecar-capacity`: explainer replicas for a measured attach rate, checked against KEDA.

    sidecar-capacity [--audit-log F] [--status-json F] [--load-summary RUN]
                     [--metrics-url URL] [--chat-rate R] [--attach-rate A] [--token-mix M]
                     [--chart DIR] [--workers-per-replica N] [--slo-sentence S]
                     [--slo-token S] [--quantile Q] [--min-samples N] [--json]

Measures chat rate, attach rate, token mix and service time per granularity from the
sources given: the audit log's submit lines, the status store's stage timings, a
sidecar-load summary, the gateway's metrics (--chat-rate/--attach-rate/--token-mix
override a measurement, for what-if questions). Recommends replicas with an M/M/c
queueing model (each explainer worker a server; the p95 wait within the SLO; the formula
is in docs/performance.md) and checks the chart's KEDA minReplicaCount/maxReplicaCount
against it. Every assumption is printed.

Exit status: 0 PASS, 1 FAIL (the SLO needs more than maxReplicaCount), 2 usage error,
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
from ..capacity import analyze
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole analysis as one JSON-able result (what --json prints)."""
    from ..manifests import explainer_autoscaling

    if not (Path(args.chart) / "Chart.yaml").is_file():
        # A usage problem, never exit 1 (which means: the SLO needs more replicas).
        raise ValueError(f"no Helm chart at {args.chart} (no Chart.yaml there): pass --chart "
                         "DIR, the chart whose KEDA range is checked")
    chart = explainer_autoscaling(Path(args.chart))
    workers = args.workers_per_replica or chart["workers_per_replica"]
    measured = measure(args)
    result: dict[str, Any] = {"measured": measured.as_dict(), "chart": chart,
                              "workers_per_replica": workers}
    shortfalls = measured.shortfalls(args.min_samples)
    if shortfalls:
        result.update(verdict=INSUFFICIENT, detail="; ".join(
            f"{name}: {why}" for name, why in shortfalls.items()))
        return result
    figures = {name: figure.value for name, figure in measured.figures.items()}
    result.update(analyze(figures, workers, (chart["min"], chart["max"]),
                          {"sentence": args.slo_sentence, "token": args.slo_token},
                          args.quantile))
    return result


def render(result: dict[str, Any]) -> str:
    lines = [f"{result['verdict']}: {result['detail']}", "", "measured:"]
    lines += [f"  {name} = {f['value']}  ({f['samples']} samples, {f['source']})"
              for name, f in result["measured"].items()]
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
    if not (args.audit_log or args.status_json or args.load_summary or args.metrics_url):
        print("sidecar-capacity: error: give at least one source (--audit-log, "
              "--status-json, --load-summary, --metrics-url)", file=sys.stderr)
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
