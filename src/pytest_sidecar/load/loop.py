"""The event loop the load engine runs on: uvloop when installed, else asyncio's own.

aiohttp on uvloop sends ~20-30 % more requests per client core than on the stock loop
(measured on this project's machine kind: benchmarks/throughput.py), and a generator
that saturates its core later also keeps its scheduler lag low for longer. uvloop comes
with uvicorn[standard], a dependency of the reference stack; on a platform without it
the engine runs on the stock loop and its self-checks still say when it cannot keep up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    """'uvloop' or 'asyncio': what `run` will use (recorded in run summaries)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) on the fastest loop available."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
