"""A nudge between the processes that share the database: after a commit a process rings
the others (one datagram to each Unix socket in the bells directory), so their change
feeds read at once instead of polling fast. A feed that hears nothing still reads every
IDLE_POLL_S, and without a bell (a path too long for a Unix socket) it polls fast."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

IDLE_POLL_S = 1.0


class Doorbell:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.name = f"{os.getpid()}-{id(self):x}.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind(os.path.join(directory, self.name))  # OSError: path too long, ...
        self._rung = asyncio.Event()
        self._listening = False

    def listen(self) -> None:
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._heard)
        self._listening = True

    def _heard(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._sock.recv(64):
                pass
        self._rung.set()

    async def wait(self, timeout: float = IDLE_POLL_S) -> None:
        """Until the bell rings or `timeout` passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._rung.wait(), timeout)
        self._rung.clear()

    def ring(self) -> None:
        """Tell every other process with a bell here that something was committed."""
        for name in os.listdir(self.directory):
            if name == self.name:
                continue
            path = os.path.join(self.directory, name)
            try:
                self._sock.sendto(b"!", path)
            except BlockingIOError:
                pass  # its queue is full: it has a ring to hear already
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):  # a process that died without leaving
                    os.unlink(path)

    def close(self) -> None:
        try:
            if self._listening:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
        finally:  # the socket file goes whatever the loop said
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, self.name))
            with contextlib.suppress(OSError):  # the last one out; others keep it
                os.rmdir(self.directory)
