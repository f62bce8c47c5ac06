"""The load progress line: kept in a file by a worker, printed by the controller."""

from __future__ import annotations

import time
from pathlib import Path

from pytest_sidecar.reporting.progress import ProgressFile, ProgressWatcher


def test_the_file_keeps_the_latest_line_and_the_watcher_prints_it_once(
        tmp_path: Path) -> None:
    stream = ProgressFile(tmp_path / "progress" / "gw0-slo.txt")
    stream.write("\r  1.0/10s offered 40")
    stream.write("\r  2.0/10s offered 80")
    stream.flush()
    watcher = ProgressWatcher(tmp_path / "progress", print)
    assert watcher.fresh_lines() == ["sidecar load gw0-slo: 2.0/10s offered 80"]
    assert watcher.fresh_lines() == []  # nothing new since
    stream.close()
    assert not stream.path.exists() and watcher.fresh_lines() == []


def test_the_watcher_thread_stops_promptly(tmp_path: Path) -> None:
    printed: list[str] = []
    watcher = ProgressWatcher(tmp_path, printed.append, every_s=0.05)
    ProgressFile(tmp_path / "gw1-x.txt").write("\r0.5/10s offered 1\n")
    watcher.start()
    for _ in range(100):
        if printed:
            break
        time.sleep(0.01)
    watcher.stop()
    assert printed == ["sidecar load gw1-x: 0.5/10s offered 1"]
