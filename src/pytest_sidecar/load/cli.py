"""`sidecar-load`: offer the scenario's load to a target, and merge shard outputs.

    sidecar-load run --target-file F | --url U [--token T ...] --rate R --duration S
                     [--arrivals constant|poisson] [--ramp S] [--concurrency C]
                     [--attach-rate A] [--token-mix M] [--shard i/n] --out DIR
    sidecar-load merge --out DIR SHARD_DIR...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .openmodel import run_open
from .rundir import merge, new_run_dir, summarize, write_run
from .scenario import Scenario, ScenarioClient
from .schedule import Arrivals
from .stats import Histograms


def _shard(text: str) -> tuple[int, int]:
    index, _, total = text.partition("/")
    if not (index.isdigit() and total.isdigit() and int(index) < int(total)):
        raise argparse.ArgumentTypeError(f"{text!r}: valid: i/n with 0 <= i < n")
    return int(index), int(total)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar-load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="offer load and write a run directory")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--target-file", help="a pytest-sidecar target file")
    where.add_argument("--url", help="the gateway's base URL")
    run.add_argument("--token", action="append", default=[],
                     help="a write token (repeat for several tenants)")
    run.add_argument("--rate", type=float, required=True, help="requests/s of the whole run")
    run.add_argument("--duration", type=float, required=True, help="seconds")
    run.add_argument("--arrivals", choices=("constant", "poisson"), default="poisson")
    run.add_argument("--ramp", type=float, default=0.0, help="seconds to ramp up to --rate")
    run.add_argument("--concurrency", type=int, default=300,
                     help="in-flight cap; requests past it are dropped and counted")
    run.add_argument("--attach-rate", type=float, default=0.3)
    run.add_argument("--token-mix", type=float, default=0.1)
    run.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: offer 1/n of --rate")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", required=True, help="a new run directory")
    merged = commands.add_parser("merge", help="merge shard run directories exactly")
    merged.add_argument("--out", required=True)
    merged.add_argument("shards", nargs="+")
    return parser


def _target(args: argparse.Namespace) -> tuple[str, tuple[str, ...]]:
    if args.target_file:
        from ..target import load_target_file

        target = load_target_file(args.target_file)
        tokens = tuple(t.tokens.write for t in target.tenants.values() if t.tokens.write)
        return target.url, tokens or ("",)
    return args.url.rstrip("/"), tuple(args.token) or ("",)


async def offer(args: argparse.Namespace) -> dict[str, Any]:
    url, tokens = _target(args)
    index, total = args.shard
    arrivals = Arrivals(rate=args.rate, duration_s=args.duration, kind=args.arrivals,
                        ramp_s=args.ramp, seed=args.seed, shard=index, shards=total)
    scenario = Scenario(url, tokens, args.attach_rate, args.token_mix, seed=args.seed + index)
    directory = new_run_dir(args.out)
    explanations = Histograms()
    async with ScenarioClient(scenario, explanations) as client:
        result = await run_open(arrivals.offsets(), client.send, args.concurrency)
    result.histograms.merge(explanations)
    summary = summarize(result.histograms, {
        **result.summary(), "rate": args.rate, "shard": f"{index}/{total}",
        "arrivals": args.arrivals, "attach_rate": args.attach_rate,
        "token_mix": args.token_mix, "explained": client.explained}, args.duration)
    write_run(directory, summary, result.histograms)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = asyncio.run(offer(args)) if args.command == "run" else merge(args.out,
                                                                                args.shards)
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"sidecar-load: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in summary.items() if k != "lanes"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
