"""The serial phase: a load spec holds the machine alone, ordinary tests share it.

Each holder is its own process (flock locks belong to open files, as across xdist
workers) and says when it holds the lock; the test says when it may let go, so the
order is driven by events, not by timing guesses.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from pytest_sidecar.serial import MachineLock

CONTEXT = multiprocessing.get_context("spawn")
STILL_WAITING_S = 0.3  # a holder that could take the lock takes it well within this


def hold(directory: str, how: str, acquired: Event, release: Event) -> None:
    lock = MachineLock(directory)
    holding = {"exclusive": lock.exclusive, "shared": lock.shared,
               "own_stack": lock.shared_one_own_stack}[how]
    with holding():
        acquired.set()
        release.wait(30)


class Holder:
    def __init__(self, directory: Path, exclusive: bool, own_stack: bool = False) -> None:
        how = "exclusive" if exclusive else "own_stack" if own_stack else "shared"
        self.acquired, self.release = CONTEXT.Event(), CONTEXT.Event()
        self.process = CONTEXT.Process(target=hold, args=(
            str(directory), how, self.acquired, self.release))
        self.process.start()

    def holds(self, timeout: float = 20.0) -> bool:
        return self.acquired.wait(timeout)

    def done(self) -> None:
        self.release.set()
        self.process.join(20)
        assert self.process.exitcode == 0


def gate_taken(directory: Path) -> bool:
    """Whether someone holds the gate (only a waiting or running load spec keeps it)."""
    fd = os.open(directory / "serial.gate", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_ordinary_tests_overlap_and_a_load_spec_runs_alone(tmp_path: Path) -> None:
    first, second = Holder(tmp_path, False), Holder(tmp_path, False)
    assert first.holds() and second.holds(), "two ordinary tests did not share the machine"
    load = Holder(tmp_path, True)
    deadline = time.monotonic() + 20
    while not gate_taken(tmp_path):
        assert time.monotonic() < deadline, "the load spec never queued"
        time.sleep(0.01)
    assert not load.holds(STILL_WAITING_S), "the load spec started beside running tests"
    late = Holder(tmp_path, False)  # arrives while the load spec waits: writer priority
    assert not late.holds(STILL_WAITING_S), "a test overtook the waiting load spec"
    first.done()
    second.done()
    assert load.holds(), "the load spec never got the machine"
    assert not late.holds(STILL_WAITING_S), "a test started while the load spec ran"
    load.done()
    assert late.holds()
    late.done()


def test_specs_on_stacks_of_their_own_share_the_machine_one_at_a_time(
        tmp_path: Path) -> None:
    ordinary = Holder(tmp_path, False)
    first = Holder(tmp_path, False, own_stack=True)
    assert ordinary.holds() and first.holds(), "an own-stack spec waited for an ordinary test"
    second = Holder(tmp_path, False, own_stack=True)
    assert not second.holds(STILL_WAITING_S), "two own-stack specs ran at once"
    first.done()
    assert second.holds(), "the second own-stack spec never ran"
    second.done()
    ordinary.done()


def test_a_crashed_holder_releases_the_machine(tmp_path: Path) -> None:
    crasher = CONTEXT.Process(target=_hold_and_die, args=(str(tmp_path),))
    crasher.start()
    crasher.join(20)
    assert crasher.exitcode == 3
    started = time.monotonic()
    with MachineLock(str(tmp_path)).exclusive():
        assert time.monotonic() - started < 5


def _hold_and_die(directory: str) -> None:
    MachineLock(directory).exclusive().__enter__()
    os._exit(3)
