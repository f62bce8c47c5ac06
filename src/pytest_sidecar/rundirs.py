"""One run, one directory: `REPORT_DIR/runs/<UTC stamp>-<run id>/` holds everything a run
writes (reports, event log, load summaries, figures), and `REPORT_DIR/latest` points at
the newest finished run. A run never writes into another's directory, so a narrow run
cannot leave a mix of two runs behind, and a run that ran nothing leaves no directory.

`latest` is a relative symbolic link swapped in atomically; where the file system has no
symbolic links it is a one-line text file naming the run's directory. `latest_run` reads
either.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from .atomic import write_atomic

RUNS = "runs"
LATEST = "latest"
_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]+$")


def run_dir_name(run_id: str, started: float) -> str:
    """`20261201T181017.123456Z-0123456789ab`: sorts by start time (to the microsecond,
    so runs started within one second keep their order), unique by run id."""
    micros = round(started % 1 * 1e6) % 1_000_000
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + f".{micros:06d}Z-{run_id}"


def run_dir(root: str | os.PathLike[str], run_id: str, started: float) -> Path:
    """The directory of one run under the report root (not created here)."""
    return Path(root) / RUNS / run_dir_name(run_id, started)


def point_latest(root: str | os.PathLike[str], run: str | os.PathLike[str]) -> None:
    """Point `root/latest` at `run`, atomically: a reader sees the old run or the new one."""
    root_path = Path(root)
    relative = os.path.relpath(Path(run), root_path)
    pointer = root_path / LATEST
    staging = root_path / f".{LATEST}-{os.getpid()}"
    try:
        if staging.is_symlink() or staging.exists():
            staging.unlink()
        os.symlink(relative, staging, target_is_directory=True)
        os.replace(staging, pointer)
    except OSError:
        # No symbolic links here (some Windows set-ups): a text file naming the run.
        if pointer.is_symlink() or pointer.is_dir():
            _remove(pointer)
        write_atomic(str(pointer), (relative + "\n").encode())


def latest_run(root: str | os.PathLike[str]) -> Path | None:
    """The directory `root/latest` points at, or None when no run finished yet."""
    pointer = Path(root) / LATEST
    if pointer.is_symlink() or pointer.is_dir():
        resolved = pointer.resolve()
        return resolved if resolved.is_dir() else None
    if pointer.is_file():
        named = Path(root) / pointer.read_text(encoding="utf-8").strip()
        return named if named.is_dir() else None
    return None


def finished_runs(root: str | os.PathLike[str]) -> list[Path]:
    """The run directories under `root/runs`, oldest first (only names this module made)."""
    runs = Path(root) / RUNS
    if not runs.is_dir():
        return []
    return sorted(p for p in runs.iterdir() if p.is_dir() and _NAME.match(p.name))


def prune(root: str | os.PathLike[str], keep: int, current: str | os.PathLike[str]) -> list[Path]:
    """Remove the oldest run directories so that `keep` remain; never `current` nor the
    one `latest` points at. Returns what was removed."""
    spared = {Path(current).resolve()}
    latest = latest_run(root)
    if latest is not None:
        spared.add(latest.resolve())
    runs = finished_runs(root)
    removed = []
    for path in runs[: max(0, len(runs) - keep)]:
        if path.resolve() not in spared:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def discard(run: str | os.PathLike[str]) -> None:
    """Remove a run's directory (a run that ran nothing has nothing to keep)."""
    shutil.rmtree(run, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path)
