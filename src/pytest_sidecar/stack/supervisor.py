"""`sidecar-stack serve` (role "all") runs the explainer as a child process and, as a
process supervisor would, starts it again on the same port when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys

log = logging.getLogger("sidecar.stack")
RESPAWN_CHECK_S = 0.2


class ExplainerChild:
    def __init__(self, state_dir: str, host: str, env: dict[str, str]) -> None:
        self.state_dir, self.host, self.env = state_dir, host, env
        self.target_file = os.path.join(state_dir, "explainer.json")
        self._process: subprocess.Popen[bytes] | None = None
        self._watch: asyncio.Task[None] | None = None

    def start(self, port: int = 0) -> None:
        self._spawn(port)
        self._watch = asyncio.create_task(self._respawn(), name="explainer supervisor")

    def _spawn(self, port: int) -> None:
        command = [sys.executable, "-m", "pytest_sidecar.stack.cli", "serve",
                   "--role", "explainer", "--state-dir", self.state_dir, "--host", self.host,
                   "--port", str(port), "--target-file", self.target_file,
                   "--exit-with-pid", str(os.getpid())]
        self._process = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL)

    async def _respawn(self) -> None:
        while True:
            await asyncio.sleep(RESPAWN_CHECK_S)
            if self._process is not None and self._process.poll() is not None:
                log.warning("the explainer process exited (%s); starting it again",
                            self._process.returncode)
                self._spawn(self._port())

    def _port(self) -> int:
        """The port the explainer had, so its metrics URL stays what the target file says."""
        try:
            with open(self.target_file, encoding="utf-8") as handle:
                return int(json.load(handle)["metrics"].rsplit(":", 1)[1].split("/")[0])
        except (OSError, ValueError, KeyError):
            return 0

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
