"""The event loop the load engine runs on: uvloop when installed, else asyncio's own.

The engine on uvloop sends ~20-30 % more requests per client core than on the stock loop
(measured on this project's machine kind: benchmarks/throughput.py), and a generator
that saturates its core later also keeps its scheduler lag low for longer. uvloop comes
with uvicorn[standard], a dependency of the reference stack; on a platform without it
the engine runs on the stock loop and its self-checks still say when it cannot keep up.
"""

from __future__ import annotations

import asyncio
import gc
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
    """asyncio.run(main) on the fastest loop available, with the objects that exist
    before the run frozen out of garbage collection.

    Why freeze: a full collection walks every tracked object, and the interpreter holds
    a few hundred thousand of them once aiohttp, pytest and the rest are imported. Each
    full collection then stalls the loop for tens of ms, and every request due meanwhile
    goes out late: with the standard mix at 100 req/s, runs at ~10 % client CPU
    measured a scheduler lag p99 of 3-22 ms and called themselves untrustworthy; with
    collection off, 0.9-1.7 ms. gc.freeze() moves what exists now to a generation that
    is never collected, so collection goes on for the run's own garbage at a small
    cost; unfreeze() hands the objects back afterwards.
    """
    gc.collect()
    gc.freeze()
    try:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(main)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    finally:
        gc.unfreeze()
