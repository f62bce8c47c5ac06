"""`sidecar-control-plane serve`: the control plane and its web UI in one process.

    sidecar-control-plane serve [--host 127.0.0.1] [--port 8088] [--data-dir DIR]
                                [--suite-root DIR] [--manifests DIR] [--audit-log FILE]

Configuration also comes from the environment: AUTH_MODE (none|static),
AUTH_TOKENS_JSON ({"<token>": {"subject": ..., "scopes": [...]}}, scopes of CONTRACT §9),
CP_TARGETS_JSON ({"<name>": {"url": ...} | {"target_file": ...} | {}}; default: the
embedded stack), CP_SUITES_JSON ({"<name>": ["tests/e2e", ...]}, relative to the suite
root; default: e2e, chaos, load), CP_MAX_PARALLEL, CP_MAX_QUEUED, CP_RUN_TIMEOUT_S,
CP_AUDIT_LOG.
Flags win over the environment. Runs start `pytest` in the suite root (the repository
holding tests/).
Exit status: 0 after a clean stop, 2 on a configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..controlplane.settings import ControlPlaneSettingError, from_environment


def port(text: str) -> int:
    """A TCP port, 0 to 65535 (0: any free one)."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port from 0 to 65535")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar-control-plane", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API and the web UI")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1, or CP_HOST)")
    serve.add_argument("--port", type=port, help="port (default 8088, or CP_PORT; 0: any)")
    serve.add_argument("--data-dir", help="run store and run reports (default "
                       "./controlplane-data, or CP_DATA_DIR)")
    serve.add_argument("--suite-root", help="where runs start pytest (default: .)")
    serve.add_argument("--manifests", help="manifests directory the deployment routes "
                       "read (default: manifests)")
    serve.add_argument("--audit-log", help="the audit log /api/audit/search may read")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = from_environment(host=args.host, port=args.port, data_dir=args.data_dir,
                                    suite_root=args.suite_root, manifests=args.manifests,
                                    audit_log=args.audit_log)
    except ControlPlaneSettingError as exc:
        print(f"sidecar-control-plane: {exc}", file=sys.stderr)
        return 2
    if not os.path.isdir(settings.suite_root):
        print(f"sidecar-control-plane: --suite-root {settings.suite_root}: no such "
              "directory", file=sys.stderr)
        return 2
    import socket

    import uvicorn

    from ..controlplane.app import create_app

    # Bind first, so --port 0 works and the line below names the real port.
    try:
        sock = socket.create_server((settings.host, settings.port))
    except OSError as exc:
        print(f"sidecar-control-plane: cannot bind {settings.host}:{settings.port}: "
              f"{exc.strerror}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    app = create_app(settings)
    print(f"sidecar control plane on http://{settings.host}:{port} "
          f"(data: {os.path.abspath(settings.data_dir)}, auth: {settings.auth_mode})",
          flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
