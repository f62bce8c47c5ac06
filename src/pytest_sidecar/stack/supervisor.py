"""Child processes a stack process starts and, as a process supervisor would, starts
again on the same port when they die: the explainer under `sidecar-stack serve` (role
"all"), and the fake upstream LLM under every gateway that has no LLM_PROXY_URL (an
upstream is another service; in the gateway's own process it took a third of its CPU)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time

log = logging.getLogger("sidecar.stack")
RESPAWN_CHECK_S = 0.2


class RoleChild:
    """`sidecar-stack serve --role ROLE` as a child of this process; it writes
    `<state_dir>/<role>.json` ({role, pid, url}) once it serves."""

    def __init__(self, role: str, state_dir: str, host: str, env: dict[str, str]) -> None:
        self.role, self.state_dir, self.host, self.env = role, state_dir, host, env
        self.target_file = os.path.join(state_dir, f"{role}.json")
        self._process: subprocess.Popen[bytes] | None = None
        self._watch: asyncio.Task[None] | None = None

    def start(self, port: int = 0) -> None:
        """Spawn the child and watch it (on the running event loop)."""
        self.spawn(port)
        self.supervise()

    def spawn(self, port: int = 0) -> None:
        """Start the child process (before any event loop runs, so it starts while the
        parent still imports)."""
        self._spawn(port)

    def supervise(self) -> None:
        """From now on, start the child again whenever it dies."""
        self._watch = asyncio.create_task(self._respawn(), name=f"{self.role} supervisor")

    async def url(self, timeout: float = 60.0) -> str:
        """The child's URL, once it serves."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            document = self._document()
            if document.get("pid") == (self._process.pid if self._process else None):
                return str(document["url"])
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"the {self.role} process exited with status "
                                   f"{self._process.returncode}")
            await asyncio.sleep(0.02)
        raise RuntimeError(f"the {self.role} process did not serve within {timeout:g}s")

    def _spawn(self, port: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.target_file)
        command = [sys.executable, "-m", "pytest_sidecar.stack.cli", "serve",
                   "--role", self.role, "--state-dir", self.state_dir, "--host", self.host,
                   "--port", str(port), "--target-file", self.target_file,
                   "--exit-with-pid", str(os.getpid())]
        self._process = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL)

    async def _respawn(self) -> None:
        while True:
            await asyncio.sleep(RESPAWN_CHECK_S)
            if self._process is not None and self._process.poll() is not None:
                log.warning("the %s process exited (%s); starting it again", self.role,
                            self._process.returncode)
                self._spawn(self._port())

    def _document(self) -> dict[str, object]:
        try:
            with open(self.target_file, encoding="utf-8") as handle:
                loaded: dict[str, object] = json.load(handle)
                return loaded
        except (OSError, ValueError):
            return {}

    def _port(self) -> int:
        """The port the child had, so its URL stays what the target file says."""
        try:
            return int(str(self._document()["url"]).rsplit(":", 1)[1].split("/")[0])
        except (KeyError, ValueError, IndexError):
            return 0

    def kill(self) -> None:
        """Make sure the child is gone (after a stop, or when the parent failed early)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    async def stop(self, timeout: float = 10.0) -> None:
        if self._watch:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
