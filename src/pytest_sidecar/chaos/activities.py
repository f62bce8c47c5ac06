"""Running one activity, recorded as Chaos Toolkit records it: a run entry with the
activity, its output, `succeeded` or `failed`, start, end and duration (and the
exception's lines when it failed). Nothing runs through a shell."""

from __future__ import annotations

import importlib
import inspect
import shlex
import subprocess
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from ..tls import tls_context
from .experiment import substitute


def iso(epoch: float) -> str:
    """A journal's timestamps: ISO 8601 in UTC with its offset, as Chaos Toolkit writes
    them (never a naive time a reader must guess the zone of)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def execute(activity: Mapping[str, Any], configuration: Mapping[str, Any]) -> dict[str, Any]:
    """Run the activity; a failure is recorded, never raised (as in Chaos Toolkit)."""
    resolved = substitute(dict(activity), configuration)
    started = time.time()
    entry: dict[str, Any] = {"activity": resolved, "output": None, "status": "succeeded"}
    try:
        entry["output"] = _provide(resolved["provider"], configuration)
    except Exception as exc:  # the journal keeps it; the experiment goes on
        entry["status"] = "failed"
        entry["exception"] = traceback.format_exception_only(type(exc), exc)
    ended = time.time()
    entry.update(start=iso(started), end=iso(ended), duration=round(ended - started, 6))
    return entry


def _accepts(function: Any, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def _provide(provider: Mapping[str, Any], configuration: Mapping[str, Any]) -> Any:
    kind = provider["type"]
    timeout = float(provider.get("timeout", 30))
    if kind == "python":
        function = getattr(importlib.import_module(provider["module"]), provider["func"])
        kwargs = dict(provider.get("arguments") or {})
        if _accepts(function, "configuration"):  # as Chaos Toolkit injects it
            kwargs["configuration"] = configuration
        return function(**kwargs)
    if kind == "http":
        method = str(provider.get("method", "GET")).upper()
        payload = provider.get("arguments")
        response = httpx.request(
            method, provider["url"], headers=provider.get("headers"), timeout=timeout,
            params=payload if method == "GET" else None,
            json=payload if method != "GET" else None, verify=tls_context())
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return {"status": response.status_code, "headers": dict(response.headers),
                "body": body}
    given = provider.get("arguments") or []
    argv = [provider["path"], *(shlex.split(given) if isinstance(given, str)
                                else [str(a) for a in given])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return {"status": done.returncode, "stdout": done.stdout[-4000:],
            "stderr": done.stderr[-4000:]}
