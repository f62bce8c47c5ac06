"""`sidecar-load`: offer the scenario's load to a target, and merge shard outputs.

    sidecar-load run --target-file F | --url U [--token T ...] [--rate R] [--duration 30s]
                     [--arrivals constant|poisson] [--ramp 5s] [--concurrency C]
                     [--attach-rate A] [--token-mix M] [--stream-share S] [--polling]
                     [--closed CLIENTS] [--shard i/n] [--format F] [--out DIR]
                     [--threshold 'chat:p95<500']
    sidecar-load merge [--format F] --out DIR SHARD_DIR...
    sidecar-load sweep --target-file F | --url U --limit ttft=500 [--limit e2e=2000]
                       [--start 10] [--step 10] [--max 200] [--duration 10s]
                       [--bisect 3] [--attainment 0.9] [--max-error-pct 5] [--out DIR]

Durations take a unit as k6 writes them (500ms, 30s, 2m, 1h; a bare number is seconds).
Before any load, the target must answer: a refused connection, a timeout or a TLS error
stops the run at once, naming it.

`run` prints a live progress line on a terminal and, at the end, a per-lane table:
count, error %, p50/p95/p99/max of the successful answers in ms, and drops (--format
table|markdown|csv|json; DIR/summary.json has everything). `--closed N` runs N
closed-loop clients instead of the open model, for comparison only: its latencies hide a
stalled target (coordinated omission). `merge` refuses a shard given twice or shards of
different splits.

`sweep` raises the offered rate step by step (streamed chats by default) and reports the
peak: the highest rate at which a share `--attainment` of requests met every `--limit`
(DistServe's definition), stopping at the first step that misses it or passes
`--max-error-pct`; `--bisect N` narrows the edge. It writes each step's run directory,
sweep.json and sweep.svg (latency percentiles and attainment against offered rate).

Exit status: 0 the run measured the target (and met every --threshold), 1 a threshold
was crossed, 2 usage error, 3 nothing succeeded (no figure to report; the summary says
why), 4 the target did not answer at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import SidecarError
from ..load import loop as engine_loop
from ..load.openmodel import run_closed
from ..load.rundir import merge, new_run_dir, summarize, write_run
from ..load.runner import Profile, run_scenario
from ..load.scenario import Scenario, ScenarioClient
from ..load.stats import Histograms
from ..load.table import FORMATS, render
from ..load.thresholds import STATS, Threshold, judge, parse_threshold
from ..options import (
    OPTIONS_BY_NAME,
    argparse_type,
    default_of,
    parse_limits,
    parse_positive_float,
    parse_seconds,
    parse_url,
    positive_int,
)
from ..vocabulary.defaults import DEFAULT_MODEL


def _shard(text: str) -> tuple[int, int]:
    index, _, total = text.partition("/")
    if not (index.isdigit() and total.isdigit() and int(index) < int(total)):
        raise argparse.ArgumentTypeError(f"{text!r}: valid: i/n with 0 <= i < n")
    return int(index), int(total)


_positive = argparse_type(parse_positive_float)
_count = argparse_type(positive_int)
_seconds = argparse_type(parse_seconds)


def _ramp(text: str) -> float:
    """A ramp may be 0 (none); otherwise a duration."""
    return 0.0 if text.strip() in ("0", "0s") else _seconds(text)


def _limits(given: list[tuple[tuple[str, float], ...]]) -> tuple[tuple[str, float], ...]:
    """The --limit options as one (metric, ms) tuple; a later --limit of a metric wins."""
    return tuple({name: ms for group in given for name, ms in group}.items())


def _threshold(text: str) -> Threshold:
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar-load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="offer load and write a run directory")
    _target_options(run)
    run.add_argument("--rate", type=_positive, default=10.0,
                     help="requests/s of the whole run (default %(default)s)")
    run.add_argument("--duration", type=_seconds, default=30.0,
                     help="how long to offer load: 30s, 2m, 1h (default %(default)ss)")
    run.add_argument("--arrivals", choices=("constant", "poisson"), default="poisson",
                     help="request arrivals: evenly spaced, or a Poisson process with the "
                     "same mean rate, as real users arrive (default %(default)s)")
    run.add_argument("--ramp", type=_ramp, default=0.0,
                     help="time to ramp up to --rate: 0, 5s, 1m (default %(default)ss)")
    for name in ("concurrency", "attach_rate", "token_mix", "stream_share"):
        # The plugin's settings, same defaults and words (the OPTIONS table).
        option = OPTIONS_BY_NAME[name]
        run.add_argument("--" + name.replace("_", "-"), type=argparse_type(option.parse),
                         default=option.default, help=f"{option.help} (default %(default)s)")
    run.add_argument("--polling", action="store_true",
                     help="time explanations by polling the status, not by the SSE stream")
    run.add_argument("--closed", type=_count, metavar="CLIENTS",
                     help="closed-loop clients instead of the open model (comparison only; "
                     "default: the open model)")
    run.add_argument("--shard", type=_shard, default=(0, 1),
                     help="i/n: offer 1/n of --rate, for one of n load machines "
                     "(default 0/1)")
    run.add_argument("--seed", type=int, default=0,
                     help="seed of the arrival times and the request mix: the same seed, "
                     "the same schedule (default %(default)s)")
    run.add_argument("--model", help="the model the chats name (default: the target file's "
                     f"model, else {DEFAULT_MODEL})")
    run.add_argument("--out", help="a new run directory (default: a new "
                     "sidecar-load-runs/<UTC time> in the current directory)")
    run.add_argument("--format", choices=FORMATS, default="table",
                     help="how the summary is printed (default %(default)s)")
    run.add_argument("--limit", type=argparse_type(parse_limits), action="append",
                     default=[],
                     metavar="METRIC=MS",
                     help="a per-request limit of streamed chats for goodput, as vLLM's "
                     "bench defines it: ttft=500, tpot=50, e2e=2000 (ms); repeat for "
                     "several (default: none, no goodput)")
    run.add_argument("--threshold", type=_threshold, action="append", default=[],
                     metavar="LANE:STAT<VALUE",
                     help="fail the run (exit 1) unless it holds, e.g. 'chat:p95<500' (ms), "
                          "'chat:error_pct<0.1' (quote it: < is a shell redirect); repeat "
                          "for several; STAT: " + ", ".join(STATS) + " (default: none)")
    _sweep_parser(commands)
    merged = commands.add_parser("merge", help="merge shard run directories exactly")
    merged.add_argument("--out", required=True, help="the merged run directory (new)")
    merged.add_argument("--format", choices=FORMATS, default="table",
                        help="how the summary is printed (default %(default)s)")
    merged.add_argument("shards", nargs="+", help="shard run directories, each once")
    return parser


def _target_options(command: argparse.ArgumentParser) -> None:
    """Where the load goes: a target file, or a URL and its tokens."""
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--target-file", help="a pytest-sidecar target file")
    where.add_argument("--url", type=argparse_type(parse_url),
                       help="the gateway's base URL (http or https)")
    command.add_argument("--token", action="append", default=[],
                         help="a write token (repeat for several tenants)")
    command.add_argument("--include-usage", action="store_true",
                         help="streams ask for the usage chunk (stream_options), so output "
                         "tokens are the target's count (default: when the target file "
                         "declares include_usage)")


def _sweep_parser(commands: Any) -> None:
    swept = commands.add_parser("sweep", help="find the highest rate that holds the limits")
    _target_options(swept)
    swept.add_argument("--limit", type=argparse_type(parse_limits), action="append",
                       required=True,
                       metavar="METRIC=MS", help="a per-request limit each step is judged "
                       "by: ttft=500, tpot=50, e2e=2000 (ms); repeat for several")
    swept.add_argument("--start", type=_positive, default=10.0,
                       help="the first rate, req/s (default %(default)s)")
    swept.add_argument("--step", type=_positive, default=10.0,
                       help="added to the rate each step, req/s (default %(default)s)")
    swept.add_argument("--max", type=_positive, default=200.0, dest="most",
                       help="the highest rate offered, req/s (default %(default)s)")
    swept.add_argument("--duration", type=_seconds, default=10.0,
                       help="each step's duration: 10s, 1m (default %(default)ss)")
    swept.add_argument("--bisect", type=int, default=0,
                       help="steps that narrow the peak between the last rate that held "
                       "and the first that did not (default %(default)s)")
    swept.add_argument("--attainment", type=argparse_type(OPTIONS_BY_NAME["attach_rate"].parse),
                       default=0.9, help="the share of requests that must meet every "
                       "limit, 0..1 (default %(default)s)")
    swept.add_argument("--min-streams", type=argparse_type(positive_int),
                       default=default_of("min_samples"),
                       help="streamed requests a step needs to be judged (default "
                       "%(default)s)")
    swept.add_argument("--max-error-pct", type=float, default=5.0,
                       help="stop when a step's chat error rate passes it (default "
                       "%(default)s)")
    swept.add_argument("--stream-share", type=argparse_type(OPTIONS_BY_NAME["stream_share"]
                                                            .parse), default=1.0,
                       help="share of chats streamed (default %(default)s: all, the limits "
                       "judge streams)")
    swept.add_argument("--attach-rate", type=argparse_type(OPTIONS_BY_NAME["attach_rate"].parse),
                       default=OPTIONS_BY_NAME["attach_rate"].default,
                       help="share of chats explained (default %(default)s)")
    swept.add_argument("--model", help="the model the chats name (default: the target "
                       f"file's model, else {DEFAULT_MODEL})")
    swept.add_argument("--out", help="a new directory for the steps, sweep.json and "
                       "sweep.svg (default: a new sidecar-load-runs/<UTC time>)")


def run_sweep(args: argparse.Namespace) -> dict[str, Any]:
    """Each step a real run of the scenario, in a directory of its own."""
    from ..load.sweep import sweep

    url, tenants, sse = _target(args)
    engine_loop.run(preflight(url))
    directory = new_run_dir(args.out or default_out())
    base = Profile(rate=args.start, duration_s=args.duration, attach_rate=args.attach_rate,
                   stream_share=args.stream_share, arrivals="poisson",
                   model=args.model or DEFAULT_MODEL, limits=_limits(args.limit),
                   include_usage=args.include_usage)

    def one(profile: Profile) -> dict[str, Any]:
        out = new_run_dir(str(directory / f"rate-{profile.rate:g}"))
        return engine_loop.run(run_scenario(url, tenants, profile, follow_sse=sse,
                                            out=out)).summary

    found = sweep(one, base, args.start, args.step, args.most, args.attainment,
                  args.max_error_pct, args.bisect, args.min_streams)
    return {**found.as_dict(), "limits_ms": dict(_limits(args.limit)),
            "attainment": args.attainment, "directory": str(directory)}


def _print_sweep(result: dict[str, Any]) -> None:
    from ..atomic import write_atomic
    from ..reporting.plot import sweep_svg

    steps = result["steps"]
    print(f"{'rate':>8} {'streams':>8} {'attained':>9} {'goodput':>8} {'err%':>6} "
          f"{'ttft p95':>9} {'tpot p95':>9} {'e2e p95':>9}  held")
    for s in steps:
        attained = f"{s['attainment']:.1%}" if s["attainment"] is not None else "-"
        print(f"{s['rate']:>8g} {s['streams']:>8} {attained:>9} {s['goodput_rps'] or 0:>8g} "
              f"{s['error_pct']:>6g} {s['ttft_p95_ms'] or 0:>9g} {s['tpot_p95_ms'] or 0:>9g} "
              f"{s['e2e_p95_ms'] or 0:>9g}  {'yes' if s['held'] else 'no: ' + s['why']}")
    peak = result["peak_rate"]
    print(f"peak: {peak:g} req/s" if peak is not None else "peak: none (the first rate did "
          "not hold)", f"({result['attainment']:.0%} within "
          + ", ".join(f"{k}<={v:g}ms" for k, v in result["limits_ms"].items())
          + f"); stopped: {result['stopped_because']}")
    directory = Path(result["directory"])
    write_atomic(str(directory / "sweep.json"), json.dumps(result, indent=1).encode())
    svg = sweep_svg("latency and attainment against offered rate",
                    [s["rate"] for s in steps],
                    {"ttft p95": [s["ttft_p95_ms"] for s in steps],
                     "e2e p95": [s["e2e_p95_ms"] for s in steps]},
                    [s["attainment"] or 0.0 for s in steps], result["attainment"], peak)
    write_atomic(str(directory / "sweep.svg"), svg.encode())
    print(f"sweep: {directory / 'sweep.json'}, {directory / 'sweep.svg'}")


def _target(args: argparse.Namespace) -> tuple[str, tuple[tuple[str, str], ...], bool]:
    """URL, (tenant, token) pairs, and whether the target declares the trace stream."""
    if args.target_file:
        from ..target import load_target_file

        target = load_target_file(args.target_file)
        args.model = args.model or target.model
        args.include_usage = args.include_usage or "include_usage" in target.capabilities
        return target.url, target.load_tenants(), "trace_stream" in target.capabilities
    tenants = tuple((f"token-{i + 1}", token) for i, token in enumerate(args.token))
    return str(args.url), tenants or (("anonymous", ""),), True


def _profile(args: argparse.Namespace) -> Profile:
    return Profile(rate=args.rate, duration_s=args.duration, concurrency=args.concurrency,
                   attach_rate=args.attach_rate, token_mix=args.token_mix,
                   stream_share=args.stream_share, arrivals=args.arrivals,
                   ramp_s=args.ramp, shard=args.shard, seed=args.seed,
                   model=args.model or DEFAULT_MODEL, limits=_limits(args.limit),
                   include_usage=args.include_usage)


class Unreachable(SidecarError):
    """The target did not answer at all: no load is worth offering."""


def default_out() -> str:
    """A new run directory under ./sidecar-load-runs, named by the UTC time."""
    import time

    return str(Path("sidecar-load-runs") / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))


async def preflight(url: str, timeout_s: float = 3.0) -> None:
    """Any HTTP answer from the gateway will do; a refused connection, a timeout or a
    TLS failure is named at once instead of after the whole duration of failed load."""
    import httpx

    from ..tls import tls_context

    try:
        # As the load engine does, not through any HTTP(S)_PROXY of the environment.
        async with httpx.AsyncClient(timeout=timeout_s, verify=tls_context(),
                                     trust_env=False) as client:
            await client.get(url.rstrip("/") + "/healthz")
    except httpx.ConnectError as exc:
        raise Unreachable(f"cannot connect to {url}: {_reason(exc)}") from None
    except httpx.TimeoutException:
        raise Unreachable(f"{url} did not answer within {timeout_s:g}s") from None
    except httpx.TransportError as exc:
        raise Unreachable(f"{url}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The innermost cause's words (httpx says only "All connection attempts failed")."""
    found: BaseException | None = exc
    while found is not None:
        if isinstance(found, ConnectionRefusedError) or "refused" in str(found).lower():
            return "connection refused"
        if isinstance(found, OSError) and found.strerror:
            return found.strerror.lower()
        found = found.__cause__ or found.__context__
    return str(exc) or type(exc).__name__


async def offer(args: argparse.Namespace) -> dict[str, Any]:
    url, tenants, sse = _target(args)
    profile = _profile(args)
    profile.arrivals_schedule()  # validates before the run directory is made
    await preflight(url)
    directory = new_run_dir(args.out or default_out())
    if args.closed:
        return await _closed(args, url, tenants, sse, directory)
    progress = sys.stderr if sys.stderr.isatty() else None
    run = await run_scenario(url, tenants, profile, follow_sse=sse and not args.polling,
                             out=directory, progress=progress)
    return run.summary


async def _closed(args: argparse.Namespace, url: str, tenants: tuple[tuple[str, str], ...],
                  sse: bool, directory: Path) -> dict[str, Any]:
    scenario = Scenario(url, tenants, args.attach_rate, args.token_mix, args.stream_share,
                        sse and not args.polling, seed=args.seed,
                        model=args.model or DEFAULT_MODEL)
    explanations = Histograms()
    async with ScenarioClient(scenario, explanations) as client:
        result = await run_closed(args.closed, args.duration, client.send, lane="chat")
    result.histograms.merge(explanations)
    summary = summarize(result.histograms, {**result.summary(), "model": "closed",
                                            "clients": args.closed, **client.tally.as_dict()},
                        args.duration)
    write_run(directory, summary, result.histograms)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sweep":
            result = run_sweep(args)
            _print_sweep(result)
            return 0 if result["peak_rate"] is not None else 1
        summary = engine_loop.run(offer(args)) if args.command == "run" else merge(args.out,
                                                                                args.shards)
    except Unreachable as exc:
        print(f"sidecar-load: error: {exc}", file=sys.stderr)
        return 4
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"sidecar-load: error: {exc}", file=sys.stderr)
        return 2
    print(render(summary, args.format))
    if not (summary.get("trustworthy") or _measured_something(summary)):
        return 3
    judged = judge(summary, getattr(args, "threshold", []))
    for _passed, line in judged:
        print(line, file=sys.stderr if args.format != "table" else sys.stdout)
    return 0 if all(passed for passed, _ in judged) else 1


def _measured_something(summary: dict[str, Any]) -> bool:
    """A run that lagged still measured the target's answers; one where nothing succeeded
    measured nothing (exit 3, as sidecar-capacity's INSUFFICIENT_DATA)."""
    return any(entry["status"].get("2xx") for entry in summary.get("lanes", {}).values())


if __name__ == "__main__":
    sys.exit(main())
