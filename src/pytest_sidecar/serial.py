"""The serial phase: load specs never share the machine with other xdist workers.

A readers-writer lock over two files in the run's shared directory. Every test holds the
*machine* lock shared while it runs; a load spec holds it exclusively, so it starts only
when the tests running on other workers have finished, and they start nothing new until
it is done. A *gate* file gives the writer priority: readers pass the gate on their way
in, and a waiting writer holds the gate, so a stream of short tests cannot starve it.

flock locks belong to the open file, so a crashed worker releases its hold at exit.
`once` is the other use of them here: one result per run, whichever worker asks first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def flocked(path: str, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    """Hold an flock on `path` (created if need be) for the `with` block; a holder that
    dies releases it, since the lock belongs to the open file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def once(lock_path: str, find: Callable[[], T | None], make: Callable[[], T]) -> T:
    """A result made once across processes: under an flock on `lock_path`, `find` looks
    for what an earlier caller made (None: nothing yet), else `make` makes it. The other
    callers wait on the lock, then find it."""
    with flocked(lock_path):
        found = find()
        return found if found is not None else make()


class MachineLock:
    """Shared for ordinary tests, exclusive for load specs (see the module docstring)."""

    def __init__(self, directory: str) -> None:
        self._gate = os.path.join(directory, "serial.gate")
        self._machine = os.path.join(directory, "serial.lock")
        self._own_stacks = os.path.join(directory, "serial.own-stack.lock")

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the machine beside other ordinary tests."""
        with contextlib.ExitStack() as stack:
            with flocked(self._gate, fcntl.LOCK_EX):
                stack.enter_context(flocked(self._machine, fcntl.LOCK_SH))
            yield

    @contextlib.contextmanager
    def shared_one_own_stack(self) -> Iterator[None]:
        """Hold the machine beside ordinary tests, but as the only spec that disturbs a
        stack of its own: two of them at once (each with its load, kills or bursts and
        its own processes) starve each other on a small machine. Waits for its turn
        before holding the machine, so a waiting one does not delay a load spec."""
        with flocked(self._own_stacks, fcntl.LOCK_EX), self.shared():
            yield

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the machine alone: waits for running tests, keeps new ones out."""
        with flocked(self._gate, fcntl.LOCK_EX), \
                flocked(self._machine, fcntl.LOCK_EX):
            yield
