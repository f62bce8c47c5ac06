"""Start and stop the reference stack as a subprocess (the embedded default target).

The stack is two processes, the gateway and the explainer (each restartable alone). It
starts on first use, not at session start: `pytest tests/unit` never pays for
it. Under xdist, the controller creates one shared directory and ships it to the
workers; the first worker that needs the target starts the stack under a file lock, the
others find its target file. The controller stops it at session end (the stack also
exits by itself when the controller's process is gone).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from .errors import SidecarError
from .serial import once
from .tls import tls_context

START_TIMEOUT_S = 60.0
ROLES = ("gateway", "explainer")  # the processes of a stack, stopped in this order
FREEZE_GRACE_S = 5.0  # the watchdog's SIGCONT comes this long after the planned one


# Stacks pytest starts keep the contract's TTL and keep-alive period (unless the
# environment says otherwise): the expiry and keep-alive specs run on dedicated stacks in
# embedded mode, and short periods on the shared stack cost the load specs their
# generator: ~200 followed SSE streams with a keep-alive each second, every trace expiring
# mid-run. `serve --suite` alone (an external stack) keeps its short ones.
EMBEDDED_DEFAULTS = {"TRACE_TTL_SECONDS": "", "SSE_KEEPALIVE_SECONDS": "15"}


class StackStartError(SidecarError, RuntimeError):
    """The embedded stack did not become ready; the message ends with its last log line."""


@dataclass(frozen=True)
class EmbeddedStack:
    """One reference stack living in `directory` (state, log, pid and target file)."""

    directory: str
    owner_pid: int | None = None
    env: Mapping[str, str] | None = None
    suite: bool = True  # `serve --suite`: the defaults for running the suite against it

    @property
    def target_file(self) -> str:
        return os.path.join(self.directory, "target.json")

    @property
    def log_file(self) -> str:
        return os.path.join(self.directory, "stack.log")

    @property
    def explainer_file(self) -> str:
        return os.path.join(self.directory, "explainer.json")

    def _pid_file(self, role: str) -> str:
        return os.path.join(self.directory, "stack.pid" if role == "gateway" else f"{role}.pid")

    @property
    def _error_file(self) -> str:
        return os.path.join(self.directory, "start-error.txt")

    def ensure_started(self, timeout: float = START_TIMEOUT_S, require_ready: bool = True) -> str:
        """Start the stack unless another process already did; return the target file.

        require_ready=False returns once the target file exists, for a stack that is
        meant to report not-ready (e.g. an unreachable upstream)."""
        os.makedirs(self.directory, exist_ok=True)

        def find() -> str | None:
            if os.path.exists(self._error_file):
                with open(self._error_file, encoding="utf-8") as handle:
                    raise StackStartError(handle.read())
            return self.target_file if os.path.exists(self.target_file) and self.running() \
                else None

        def make() -> str:
            try:
                self._start(timeout, require_ready)
            except StackStartError as exc:
                with open(self._error_file, "w", encoding="utf-8") as handle:
                    handle.write(str(exc))  # later callers fail fast with the same reason
                raise
            return self.target_file

        return once(os.path.join(self.directory, "start.lock"), find, make)

    def _start(self, timeout: float, require_ready: bool, port: int = 0,
               extra_env: Mapping[str, str] | None = None,
               roles: tuple[str, ...] = ROLES, explainer_port: int = 0) -> None:
        """Start the processes of `roles` at once (the gateway waits for the explainer's
        first heartbeat before it writes the target file, which names its metrics)."""
        deadline = time.monotonic() + timeout
        try:
            started = []
            if "explainer" in roles:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.explainer_file)
                started.append(self._spawn("explainer", explainer_port, self.explainer_file,
                                           extra_env))
            if "gateway" in roles:
                started.append(self._spawn("gateway", port, self.target_file, extra_env))
            self._wait(started, deadline, lambda: os.path.exists(self.explainer_file) and (
                "gateway" not in roles or (os.path.exists(self.target_file) and (
                    not require_ready or self._ready()))))
        except StackStartError:
            self.stop()
            raise

    def _spawn(self, role: str, port: int, target_file: str,
               extra_env: Mapping[str, str] | None) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "pytest_sidecar.stack.cli", "serve", "--role", role,
                   "--state-dir", os.path.join(self.directory, "state"),
                   "--target-file", target_file, "--port", str(port)]
        if self.owner_pid:
            command += ["--exit-with-pid", str(self.owner_pid)]
        if self.suite:
            command.append("--suite")
        command += ["--log-file", os.path.join(
            self.directory, "stack.jsonl" if role == "gateway" else f"{role}.jsonl")]
        env = {**EMBEDDED_DEFAULTS, **os.environ, **(self.env or {}), **(extra_env or {})}
        with open(self.log_file, "ab") as log:
            # Own session: a Ctrl-C in the terminal reaches pytest, which then stops us.
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env,
                                       start_new_session=True)
        with open(self._pid_file(role), "w", encoding="utf-8") as handle:
            handle.write(str(process.pid))
        return process

    def _wait(self, processes: list[subprocess.Popen[bytes]], deadline: float,
              done: Callable[[], bool]) -> None:
        while time.monotonic() < deadline:
            for process in processes:
                if process.poll() is not None:
                    raise StackStartError(f"the stack exited with status "
                                          f"{process.returncode}: {self.last_line()}")
            if done():
                return
            time.sleep(0.05)
        raise StackStartError(f"the stack was not ready after {START_TIMEOUT_S:g}s: "
                              f"{self.last_line()}")

    def _ready(self) -> bool:
        with open(self.target_file, encoding="utf-8") as handle:
            url = json.load(handle)["url"]
        try:
            return httpx.get(url + "/readyz", timeout=2.0, verify=tls_context()).status_code == 200
        except httpx.HTTPError:
            return False

    def pid(self, role: str = "gateway") -> int | None:
        try:
            with open(self._pid_file(role), encoding="utf-8") as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        return all((pid := self.pid(role)) is not None and _alive(pid) for role in ROLES)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM each process (the gateway first), SIGKILL after `timeout`; returns the
        gateway's pid stopped, if any."""
        stopped = None
        for role in ROLES:
            pid = self.pid(role)
            if pid is None or not _alive(pid):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid):
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    deadline = time.monotonic() + timeout
                time.sleep(0.05)
            stopped = stopped or (pid if role == "gateway" else None)
        return stopped

    def restart(self, signal_number: int = signal.SIGKILL, roles: tuple[str, ...] = ROLES,
                timeout: float = START_TIMEOUT_S) -> float:
        """Kill the processes of `roles` with `signal_number` (SIGKILL: no cleanup, no
        flush) and start them again on the same ports, state directory and tokens, as a
        process supervisor would. Returns the seconds from the signal until the gateway
        answers /readyz again."""
        with open(self.target_file, encoding="utf-8") as handle:
            document = json.load(handle)
        started = time.monotonic()
        for role in roles:
            pid = self.pid(role)
            if pid is not None and _alive(pid):
                os.kill(pid, signal_number)
                deadline = time.monotonic() + 10
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.01)
        if "gateway" in roles:
            os.unlink(self.target_file)
        self._start(timeout, True, _port(document["url"]), {"AUTH_TOKENS_JSON": json.dumps(
            same_tokens(document))} if document.get("tenants") else None, roles,
            _port(document["metrics"]["explainer"]))
        deadline = time.monotonic() + timeout
        while not self._ready() and time.monotonic() < deadline:  # the explainer's beat
            time.sleep(0.05)
        return time.monotonic() - started

    def freeze(self, seconds: float, roles: tuple[str, ...] = ROLES) -> float:
        """SIGSTOP the processes of `roles` for `seconds`, then SIGCONT, always. A
        detached watchdog also sends SIGCONT a little later, so a runner killed
        mid-freeze leaves no frozen stack behind (the lease of a process fault). Returns
        the seconds frozen."""
        pids = [pid for role in roles if (pid := self.pid(role)) is not None and _alive(pid)]
        if len(pids) < len(roles):
            raise RuntimeError("the stack is not running; nothing to freeze")
        listed = " ".join(str(pid) for pid in pids)
        watchdog = subprocess.Popen(
            ["sh", "-c", f"sleep {seconds + FREEZE_GRACE_S:.3f}; kill -CONT {listed} "
                         "2>/dev/null"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(seconds)
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            watchdog.kill()
            watchdog.wait()
        return time.monotonic() - started

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def last_line(self) -> str:
        tail = self.log_tail(20).strip().splitlines()
        return tail[-1] if tail else "(no output)"


def same_tokens(document: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """AUTH_TOKENS_JSON for the tokens a stack's target file lists, so a restarted stack
    accepts the clients' tokens (a write token has both scopes, a read token one)."""
    tokens: dict[str, dict[str, object]] = {}
    tenants = document.get("tenants")
    for tenant in (tenants.values() if isinstance(tenants, dict) else []):
        for role, scopes, subject in (("write", ["traces:read", "traces:write"], "writer"),
                                      ("read", ["traces:read"], "reader")):
            token = tenant.get("tokens", {}).get(role)
            if token:
                tokens[token] = {"tenant_id": tenant["id"], "scopes": scopes,
                                 "subject": f"{tenant['id']}-{subject}"}
    return tokens


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _alive(pid: int) -> bool:
    try:  # reap it if it is our child, so a zombie does not count as alive
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a recycled pid is not our stack
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"pytest_sidecar.stack" in handle.read()
    except OSError:
        return True
