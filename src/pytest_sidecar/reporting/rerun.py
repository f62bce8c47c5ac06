"""The re-run commands printed in the report: secrets become environment references."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence

from ..options import OPTIONS

_SECRET_FLAGS = {option.cli: option.env for option in OPTIONS if option.secret}
_MAX_NODEIDS = 20


def mask_args(args: Sequence[str]) -> list[str]:
    """Replace secret option values with "$SIDECAR_..." references."""
    out: list[str] = []
    pending: str | None = None
    for arg in args:
        if pending:
            out.append(f'"${pending}"')
            pending = None
            continue
        flag, eq, _ = arg.partition("=")
        if flag in _SECRET_FLAGS:
            if eq:
                out.append(f'{flag}="${_SECRET_FLAGS[flag]}"')
            else:
                out.append(arg)
                pending = _SECRET_FLAGS[flag]
            continue
        out.append(shlex.quote(arg))
    return out


def _is_test_path(arg: str) -> bool:
    plain = shlex.split(arg)[0] if arg else arg
    return not plain.startswith("-") and os.path.exists(plain.split("::")[0])


def _cache_off(args: Sequence[str]) -> bool:
    """Whether the run disabled pytest's cache, so no --lf can find its failures."""
    return any(a in ("no:cacheprovider", "-pno:cacheprovider", "-p=no:cacheprovider")
               for a in args)


def rerun_commands(args: Sequence[str], failed: Sequence[str]) -> dict[str, str]:
    """`all` repeats this run; `failed` runs only its failures: their node ids, or --lf
    when there are many and the run kept pytest's cache (--lf reads it)."""
    masked = mask_args(args)
    commands = {"all": " ".join(["pytest", *masked])}
    if failed:
        # Keep the options, drop the original test paths: the node ids replace them.
        options = [a for a in masked if not _is_test_path(a)]
        many = len(failed) > _MAX_NODEIDS and not _cache_off(args)
        targets = ["--lf"] if many else [shlex.quote(n) for n in failed]
        commands["failed"] = " ".join(["pytest", *targets, *options])
    return commands
