"""A freeze (SIGSTOP) is rolled back even when the runner that froze dies mid-way: the
detached watchdog sends SIGCONT (a lease for a process fault)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

FREEZE = ("from pytest_sidecar.embedded import EmbeddedStack\n"
          "stack = EmbeddedStack.__new__(EmbeddedStack)\n"
          "object.__setattr__(stack, 'pid', lambda role: {pid})  # a frozen dataclass\n"
          "stack.freeze({seconds}, roles=('explainer',))\n")


def victim() -> subprocess.Popen[bytes]:
    """A sleeping process the embedded stack's pid check takes for a stack (its command
    line names pytest_sidecar.stack)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "pytest_sidecar.stack"])


def state_of(pid: int) -> str:
    """The one-letter state of /proc/PID/stat: 'T' is stopped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_for(pid: int, wanted: bool, deadline_s: float) -> float:
    started = time.monotonic()
    while (state_of(pid) == "T") != wanted and time.monotonic() - started < deadline_s:
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_runner_killed_mid_freeze_leaves_no_frozen_process() -> None:
    frozen = victim()
    try:
        runner = subprocess.Popen([sys.executable, "-c",
                                   FREEZE.format(pid=frozen.pid, seconds=0.5)])
        wait_for(frozen.pid, True, 10)
        assert state_of(frozen.pid) == "T", "the freeze never stopped the process"
        runner.kill()  # no finally runs: only the watchdog can thaw it now
        runner.wait()
        took = wait_for(frozen.pid, False, 10)
        assert state_of(frozen.pid) != "T", "the process stayed frozen after its runner died"
        assert took < 7, f"thawed only after {took:.1f}s (watchdog: freeze + 5 s)"
    finally:
        frozen.kill()
        frozen.wait()


def test_a_freeze_thaws_when_it_ends() -> None:
    frozen = victim()
    try:
        subprocess.run([sys.executable, "-c", FREEZE.format(pid=frozen.pid, seconds=0.2)],
                       check=True, timeout=30)
        assert state_of(frozen.pid) != "T"
    finally:
        frozen.kill()
        frozen.wait()
