"""A progress line while load runs, on the terminal of the process that owns it.

Without xdist the load spec runs in the controller: the fixture writes the engine's
`\\r` line straight to the terminal (capture suspended for the run). Under xdist a
worker's output never reaches the terminal, so each load run keeps its latest line in a
file of the session's shared directory and the controller prints the fresh ones every few
seconds, as whole lines (other workers may be printing too).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..atomic import write_atomic

EVERY_S = 5.0
PROGRESS_DIR = "progress"  # in the session's shared directory


class ProgressFile:
    """A write-only text stream that keeps only the latest progress line, in a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, text: str) -> int:
        line = text.rsplit("\r", 1)[-1].strip()
        if line:
            write_atomic(str(self.path), line.encode())
        return len(text)

    def flush(self) -> None:
        """Each line is already on disk."""

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


class ProgressWatcher:
    """On the controller: every `every_s`, print each load run's line that changed since
    the last look. A daemon thread, stopped (and joined) at the session's end."""

    def __init__(self, directory: Path, write_line: Callable[[str], None],
                 every_s: float = EVERY_S) -> None:
        self.directory, self.write_line, self.every_s = directory, write_line, every_s
        self._stop = threading.Event()
        self._seen: dict[Path, float] = {}
        self._thread = threading.Thread(target=self._watch, name="sidecar-progress",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every_s + 1)

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            for line in self.fresh_lines():
                self.write_line(line)

    def fresh_lines(self) -> list[str]:
        """The lines written since the last call, as `sidecar load <name>: <line>`."""
        lines = []
        for path in sorted(self.directory.glob("*.txt")):
            try:
                modified, text = path.stat().st_mtime, path.read_text(encoding="utf-8")
            except FileNotFoundError:  # the run just ended
                continue
            if self._seen.get(path) != modified and time.time() - modified < 2 * self.every_s:
                self._seen[path] = modified
                lines.append(f"sidecar load {path.stem}: {text.strip()}")
        return lines
