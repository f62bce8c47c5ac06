"""`sidecar-stack`: run the reference Sidecar.

    sidecar-stack serve [--state-dir D] [--host 127.0.0.1] [--port 0] [--suite] --target-file F
                        [--role all|gateway|explainer]

The gateway and the explainer are two processes sharing the state directory; `--role all`
(the default) runs the gateway and starts the explainer as its child. A process
supervisor (or the suite's embedded stack) runs each role on its own instead, so either
can be killed and restarted alone. Without LLM_PROXY_URL the gateway starts the fake
upstream LLM as a third process (`--role upstream`).

Behaviour is configured with the contract's environment variables (AUTH_MODE,
AUTH_TOKENS_JSON, LLM_PROXY_URL, TRACE_TTL_SECONDS, ...; see docs/reference-stack.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile

from .defects import DEFECTS
from .defects import ENV as DEFECTS_ENV
from .logs import configure as configure_logs
from .settings import SUITE_DEFAULTS, StackSettingError, from_env
from .supervisor import RoleChild
from .variants import ENV as VARIANTS_ENV
from .variants import VARIANTS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar-stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the stack until SIGTERM/SIGINT")
    serve.add_argument("--state-dir", help="status store, queue and artifacts "
                       "(default: a new temporary directory)")
    serve.add_argument("--role", choices=("all", "gateway", "explainer", "upstream"),
                       default="all", help="which process to run (default: all, the "
                       "explainer as a child; a gateway without LLM_PROXY_URL starts the "
                       "fake upstream as its child)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address")
    serve.add_argument("--port", type=int, default=0,
                       help="the role's port: the gateway's, or the explainer's metrics "
                       "(0: a free port)")
    serve.add_argument("--target-file",
                       help="where to write the target file once the stack is ready (role "
                       "explainer: a small file naming its pid and metrics URL)")
    serve.add_argument("--exit-with-pid", type=int, default=None,
                       help="stop when this process is gone")
    serve.add_argument("--log-file", help="write every log record, access lines included, "
                       "as JSON lines to this file (declared as files.log)")
    serve.add_argument("--defect", action="append", default=[], metavar="NAME",
                       help="run with this opt-in defect (repeatable; 'list' lists them; "
                       "added to SIDECAR_DEFECTS)")
    serve.add_argument("--variant", action="append", default=[], metavar="NAME",
                       help="behave in a way the contract allows and this stack does not by "
                       "default (repeatable; 'list' lists them, 'all' takes every one; added "
                       "to SIDECAR_VARIANTS)")
    serve.add_argument("--suite", action="store_true",
                       help="defaults for running pytest-sidecar against this stack: high "
                       "rate limits, a CORS origin, webhooks to 127.0.0.1 (the environment "
                       "still wins)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if "list" in args.defect:
        for defect in DEFECTS.values():
            print(f"{defect.name:36} {defect.clause:6} {defect.summary}")
        return 0
    if "list" in args.variant:
        for variant in VARIANTS.values():
            print(f"{variant.name:28} {variant.clause:6} {variant.summary}")
        return 0
    if not args.target_file:
        parser.error("serve: --target-file is required")
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="sidecar-stack-")
    os.makedirs(state_dir, exist_ok=True)
    try:
        return _serve(args, state_dir)
    finally:
        if not args.state_dir:  # a directory of our own making goes with us
            shutil.rmtree(state_dir, ignore_errors=True)


def _serve(args: argparse.Namespace, state_dir: str) -> int:
    """Run until SIGTERM or SIGINT (the launcher turns both into a clean stop)."""
    if args.suite and not args.log_file:
        # The suite reads the gateway's JSON log (structured_logs) when it can.
        args.log_file = os.path.join(state_dir, f"{args.role.replace('all', 'gateway')}.log")
    configure_logs(args.log_file)
    try:
        env = {**SUITE_DEFAULTS, **os.environ} if args.suite else dict(os.environ)
        if args.defect:
            env[DEFECTS_ENV] = ",".join([env.get(DEFECTS_ENV, ""), *args.defect]).strip(",")
        if args.variant:
            env[VARIANTS_ENV] = ",".join([env.get(VARIANTS_ENV, ""), *args.variant]).strip(",")
        settings = from_env(state_dir, env)
    except StackSettingError as exc:
        print(f"sidecar-stack: error: {exc}", file=sys.stderr)
        return 2
    upstream = None
    if args.role in ("all", "gateway") and settings.llm_proxy_url is None:
        # The fake upstream's process imports while this one does.
        upstream = RoleChild("upstream", state_dir, "127.0.0.1", env)
        upstream.spawn()
    from .launcher import serve  # heavy imports only once the settings are good

    try:
        asyncio.run(serve(settings, host=args.host, port=args.port, role=args.role,
                          target_file=args.target_file, exit_with_pid=args.exit_with_pid,
                          log_file=args.log_file, child_env=env, upstream=upstream))
    except OSError as exc:
        print(f"sidecar-stack: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        if upstream is not None:
            upstream.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
