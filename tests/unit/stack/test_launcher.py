"""The launcher's listening sockets."""

from __future__ import annotations

import socket

from pytest_sidecar.stack.launcher import _bind


def test_listening_sockets_turn_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on sockets created with proto IPPROTO_TCP; without
    it every response waited ~40 ms for the client's delayed ACK."""
    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()
