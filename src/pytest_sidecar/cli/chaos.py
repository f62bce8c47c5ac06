"""`sidecar-chaos`: run a chaos experiment outside pytest, export it for Chaos Mesh, or list
the faults left in force on a target.

    sidecar-chaos run EXPERIMENT --target-file F [--journal PATH] [--continuous]
                      [--frequency S] [--fail-fast-ratio R]
    sidecar-chaos validate EXPERIMENT
    sidecar-chaos export EXPERIMENT --format chaos-mesh --namespace NS [--duration 60s]
                         [--out FILE]
    sidecar-chaos export EXPERIMENT --format chaostoolkit [--out FILE]
    sidecar-chaos leftovers --target-file F
    sidecar-chaos proxy [--listen 127.0.0.1:8474]

An experiment has Chaos Toolkit's shape (steady-state hypothesis, method, rollbacks,
configuration; see docs/resilience.md). `run` validates it as `chaos validate` does (each
python provider's module imports, its function exists and takes the arguments given),
gives it the configuration `target_url` and `chaos_control` from the target file, checks
the hypothesis before and after the method (and during it with --continuous), always
runs the rollbacks, removes whatever fault it injected that the rollbacks left, and
writes the journal (Chaos Toolkit's fields, timestamps with their UTC offset, tokens
redacted). Unlike Chaos Toolkit, a method activity that raised makes the run `failed`:
a fault never injected proves nothing.

Exit status of `run`: 0 completed and no deviation, 1 otherwise (failed, deviated,
aborted, interrupted), 2 an experiment that does not validate or another usage error.
`export --format chaostoolkit` writes the experiment for the real `chaos run`, its
`configuration` reading target_url and chaos_control from SIDECAR_URL and
SIDECAR_CHAOS_CONTROL. `leftovers`: 0 none, 1 some. `proxy` runs the
built-in fault proxy: Toxiproxy's HTTP API (so its clients and chaostoolkit-toxiproxy
drive it) with Toxiproxy's toxics and HTTP/SSE-aware ones (http_status, first_byte_stall,
sse_cut, sse_drop_terminal, sse_split, sse_repeat_ids; see docs/resilience.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from ..chaos.backends import ControlFile
from ..chaos.exceptions import ChaosError
from ..chaos.experiment import ExperimentError, load, validate_providers
from ..chaos.journal import verdict_ok, write_journal
from ..options import argparse_type, parse_seconds, parse_share
from ..target import Target, TargetFileError, load_target_file
from ..vocabulary.redaction import Redactor


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar-chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an experiment; the exit status is its verdict")
    run.add_argument("experiment", help="the experiment (JSON or YAML)")
    run.add_argument("--target-file", required=True, help="the target under test")
    run.add_argument("--journal", default="journal.json",
                     help="where to write the journal (default: %(default)s)")
    run.add_argument("--continuous", action="store_true",
                     help="also check the hypothesis during the method (default: before "
                          "and after only)")
    run.add_argument("--frequency", type=argparse_type(parse_seconds), default=1.0,
                     help="time between checks with --continuous: 1s, 500ms (default: "
                          "%(default)ss)")
    run.add_argument("--fail-fast-ratio", type=argparse_type(parse_share),
                     help="with --continuous: stop the method once this share of the "
                          "checks so far deviated, 0..1 (default: never)")
    check = commands.add_parser("validate", help="check an experiment without running it")
    check.add_argument("experiment", help="the experiment (JSON or YAML)")
    out = commands.add_parser("export", help="write the experiment as Chaos Mesh objects, "
                              "or for Chaos Toolkit's own chaos run")
    out.add_argument("experiment", help="the experiment (JSON or YAML)")
    out.add_argument("--format", choices=["chaos-mesh", "chaostoolkit"], required=True,
                     help="chaos-mesh: HTTPChaos/PodChaos objects; chaostoolkit: the "
                          "experiment for `chaos run`")
    out.add_argument("--namespace", help="the deployment's namespace (required for "
                     "chaos-mesh)")
    out.add_argument("--duration", default="60s", help="each object's duration "
                     "(default: %(default)s)")
    out.add_argument("--out", help="write the YAML here (default: standard output)")
    left = commands.add_parser("leftovers", help="faults in force that no runner holds")
    left.add_argument("--target-file", required=True, help="the target to look at")
    proxy = commands.add_parser("proxy", help="run the fault proxy (Toxiproxy's API)")
    proxy.add_argument("--listen", default="127.0.0.1:8474",
                       help="the API's address (default: %(default)s)")
    return parser


def _proxy(args: argparse.Namespace) -> int:
    from ..chaos.toxiproxy import ProxyThread

    host, _, port = args.listen.rpartition(":")
    server = ProxyThread(host or "127.0.0.1", int(port))
    print(f"sidecar-chaos: fault proxy API on {server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()
    return 0


def _target(path: str) -> Target:
    target = load_target_file(path)
    if not target.chaos_control:
        raise ChaosError(f"{path}: the target gives no files.chaos_control")
    return target


def _run(args: argparse.Namespace) -> int:
    from ..chaos.runner import run_experiment

    target = _target(args.target_file)
    experiment = load(args.experiment)
    validate_providers(experiment)
    journal = run_experiment(experiment, {"target_url": target.url,
                                          "chaos_control": target.chaos_control},
                             continuous=args.continuous, frequency_s=args.frequency,
                             fail_fast_ratio=args.fail_fast_ratio)
    clean: dict[str, Any] = Redactor(target.secrets()).data(journal)
    write_journal(args.journal, clean)
    ok = verdict_ok(clean)
    print(f"sidecar-chaos: {clean['status']}{' (deviated)' if clean['deviated'] else ''}; "
          f"{len(clean['run'])} method activities, {len(clean['rollbacks'])} rollbacks; "
          f"journal {args.journal}")
    return 0 if ok else 1


def _validate(args: argparse.Namespace) -> int:
    experiment = load(args.experiment)
    validate_providers(experiment)
    print(f"sidecar-chaos: {args.experiment}: valid")
    return 0


def _export(args: argparse.Namespace) -> int:
    import yaml

    from ..chaos.export import Selectors, export, for_chaostoolkit

    experiment = load(args.experiment)
    notes: list[str] = []
    if args.format == "chaostoolkit":
        text = yaml.safe_dump(for_chaostoolkit(experiment), sort_keys=False)
    else:
        if not args.namespace:
            raise ExperimentError("--namespace: required with --format chaos-mesh")
        done = export(experiment, Selectors(args.namespace, duration=args.duration))
        text, notes = yaml.safe_dump_all(done.objects, sort_keys=False), done.not_exported
    if args.out:
        from ..atomic import write_atomic

        write_atomic(args.out, text.encode())
    else:
        sys.stdout.write(text)
    for note in notes:
        print(f"sidecar-chaos: not exported: {note}", file=sys.stderr)
    return 0


def _leftovers(args: argparse.Namespace) -> int:
    found = ControlFile(_target(args.target_file).chaos_control or "").leftovers()
    print(json.dumps(found, indent=2))
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {"run": _run, "validate": _validate, "export": _export,
               "leftovers": _leftovers, "proxy": _proxy}[args.command]
    try:
        return command(args)
    except (ExperimentError, TargetFileError, ChaosError, OSError, ValueError) as exc:
        print(f"sidecar-chaos: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
