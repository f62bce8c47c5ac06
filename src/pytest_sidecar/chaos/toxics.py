"""The fault proxy's data path: TCP proxies whose links run Toxiproxy's toxics, plus
HTTP/SSE-aware ones.

Toxiproxy's toxics, with its attributes and units (`upstream` is client -> server,
`downstream` server -> client; `toxicity` is the chance a connection gets the toxic):
latency {latency, jitter} ms, bandwidth {rate} KB/s, timeout {timeout} ms, reset_peer
{timeout} ms, slow_close {delay} ms, limit_data {bytes}, slicer {average_size,
size_variation, delay µs}.

HTTP/SSE-aware toxics (downstream unless said):
- http_status {status, first, percent}: upstream; the first `first` connections (or
  `percent` % of them) get `status` with a JSON body, and never reach the server;
- first_byte_stall {ms}: the response's first byte waits;
- sse_cut {events}: the connection closes after that many events (an SSE or chunked
  stream cut mid-way);
- sse_drop_terminal {}: events naming a terminal state (complete, failed, canceled) are
  dropped;
- sse_split {offsets}: each event is written in pieces cut at those byte offsets;
- sse_repeat_ids {}: every event that has an `id:` is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .exceptions import ChaosError

TCP_TYPES = ("latency", "bandwidth", "timeout", "reset_peer", "slow_close", "limit_data",
             "slicer", "noop")
HTTP_TYPES = ("http_status", "first_byte_stall", "sse_cut", "sse_drop_terminal", "sse_split",
              "sse_repeat_ids")
TYPES = TCP_TYPES + HTTP_TYPES
_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "latency": {"latency": 0, "jitter": 0}, "bandwidth": {"rate": 0},
    "timeout": {"timeout": 0}, "reset_peer": {"timeout": 0}, "slow_close": {"delay": 0},
    "limit_data": {"bytes": 0}, "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "noop": {}, "http_status": {"status": 503, "first": 0, "percent": 0},
    "first_byte_stall": {"ms": 0}, "sse_cut": {"events": 1}, "sse_drop_terminal": {},
    "sse_split": {"offsets": []}, "sse_repeat_ids": {}}
_TERMINAL = re.compile(rb'"?(state|event)"?\s*[:=]\s*"?(complete|failed|canceled)')
# Attributes that are not a count: sse_split's list of byte offsets.
_LISTS = frozenset({"offsets"})
# Bounds beyond "a whole number >= 0", as Toxiproxy's own validation or the HTTP range.
_BOUNDS = {"status": (100, 599), "percent": (0, 100), "events": (1, None)}


class InvalidToxic(ChaosError, ValueError):
    """A toxic whose type, stream, toxicity or attributes Toxiproxy would refuse."""


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(kind: str, attributes: Any, toxicity: Any = 1.0) -> None:
    """Refuse, before anything is changed, a toxic the data path could not run: every
    attribute of the type a whole number >= 0 (a list of them for sse_split's offsets),
    toxicity a number in [0, 1]. A toxic is never accepted and then broken."""
    if kind not in TYPES:
        raise InvalidToxic(f"invalid toxic type {kind!r}; valid: {', '.join(TYPES)}")
    if isinstance(toxicity, bool) or not isinstance(toxicity, int | float) or \
            not 0 <= toxicity <= 1:
        raise InvalidToxic(f"toxicity {toxicity!r}: valid: a number from 0 to 1")
    if not isinstance(attributes, dict):
        raise InvalidToxic(f"attributes {attributes!r}: valid: an object")
    known = _ATTRIBUTES[kind]
    for key, value in attributes.items():
        if key not in known:
            raise InvalidToxic(f"attribute {key!r} is not one of a {kind} toxic's: "
                               f"{', '.join(known) or 'none'}")
        if key in _LISTS:
            if not isinstance(value, list) or not all(_is_count(v) and v >= 0 for v in value):
                raise InvalidToxic(f"attribute {key}={value!r}: valid: a list of byte offsets")
            continue
        low, high = _BOUNDS.get(key, (0, None))
        if not _is_count(value) or value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise InvalidToxic(f"attribute {key}={value!r}: valid: a whole number {bound}")


@dataclass
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)
    connections: int = 0  # connections seen since it was added (http_status's "first")

    def __post_init__(self) -> None:
        self.attributes = {**_ATTRIBUTES[self.type], **(self.attributes or {})}

    def as_json(self) -> dict[str, Any]:
        return {"attributes": self.attributes, "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": self.toxicity}


class Closed(ChaosError):
    """A toxic ended the link."""


@dataclass(eq=False)  # one per connection, kept in a set: identity is its equality
class Link:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    draws: dict[str, bool] = field(default_factory=dict)
    passed: dict[str, int] = field(default_factory=lambda: {"upstream": 0, "downstream": 0})
    first_byte: bool = True
    events: int = 0
    buffer: bytes = b""

    def hit(self, toxic: Toxic) -> bool:
        """Toxiproxy's rule: each link rolls once per toxic."""
        if toxic.name not in self.draws:
            self.draws[toxic.name] = random.random() < toxic.toxicity
        return self.draws[toxic.name]

    def reset(self) -> None:
        """Close both sockets with a TCP RST (SO_LINGER 0), as reset_peer does."""
        for writer in (self.client, self.server):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            writer.close()


def latency_s(direction: str, link: Link, toxics: list[Toxic]) -> float:
    """The delay the latency toxics of this direction give one chunk, jitter drawn per
    chunk. Toxiproxy counts it from the chunk's arrival, not from when the previous
    chunk left: an answer written in several pieces pays it once, not once a piece."""
    delay = 0.0
    for toxic in toxics:
        if toxic.type == "latency" and toxic.stream == direction and link.hit(toxic):
            jitter = float(toxic.attributes["jitter"])
            delay += max(0.0, float(toxic.attributes["latency"])
                         + random.uniform(-jitter, jitter)) / 1000
    return delay


async def transform(chunk: bytes, direction: str, link: Link, toxics: list[Toxic],
                    present: Callable[[str], bool]) -> bytes:
    """Run `chunk` through the toxics of its direction; the bytes to write (maybe none).
    Latency is not applied here (see latency_s). Raises Closed when a toxic ends the
    link."""
    for toxic in toxics:
        if toxic.stream != direction or toxic.type == "latency" or not link.hit(toxic):
            continue
        chunk = await _apply(toxic, chunk, direction, link, present)
        if not chunk:
            return b""
    link.passed[direction] += len(chunk)
    return chunk


async def _apply(toxic: Toxic, chunk: bytes, direction: str, link: Link,
                 present: Callable[[str], bool]) -> bytes:
    a = toxic.attributes
    kind = toxic.type
    if kind == "bandwidth" and a["rate"] > 0:
        await asyncio.sleep(len(chunk) / (float(a["rate"]) * 1000))
    elif kind == "timeout":
        if a["timeout"] > 0:
            await asyncio.sleep(float(a["timeout"]) / 1000)
            raise Closed(toxic.name)
        while present(toxic.name):  # held until the toxic is removed, then closed
            await asyncio.sleep(0.05)
        raise Closed(toxic.name)
    elif kind == "reset_peer":
        await asyncio.sleep(float(a["timeout"]) / 1000)
        link.reset()
        raise Closed(toxic.name)
    elif kind == "limit_data":
        room = int(a["bytes"]) - link.passed[direction]
        if room <= len(chunk):
            if room > 0:
                (link.server if direction == "upstream" else link.client).write(chunk[:room])
            raise Closed(toxic.name)
    elif kind == "first_byte_stall" and link.first_byte:
        link.first_byte = False
        await asyncio.sleep(float(a["ms"]) / 1000)
    elif kind in ("sse_cut", "sse_drop_terminal", "sse_split", "sse_repeat_ids"):
        return await _sse(toxic, chunk, link)
    return chunk


async def _sse(toxic: Toxic, chunk: bytes, link: Link) -> bytes:
    """Event-aware toxics: whole events (ending in a blank line) are released, the rest
    waits in the link's buffer for the next chunk."""
    link.buffer += chunk
    *events, link.buffer = re.split(rb"(?<=\n\n)", link.buffer)
    out = b""
    for event in filter(None, events):
        if toxic.type == "sse_cut":
            link.events += 1
            out += event
            if link.events >= int(toxic.attributes["events"]):
                link.client.write(out)
                raise Closed(toxic.name)
        elif toxic.type == "sse_drop_terminal":
            out += b"" if _TERMINAL.search(event) else event
        elif toxic.type == "sse_repeat_ids":
            out += event * 2 if re.search(rb"(?m)^id:", event) else event
        else:  # sse_split: write the pieces one by one
            cuts = [0, *[o for o in toxic.attributes["offsets"] if 0 < o < len(event)],
                    len(event)]
            for start, end in itertools.pairwise(cuts):
                link.client.write(event[start:end])
                await link.client.drain()
                await asyncio.sleep(0.01)
    return out


def http_answer(status: int) -> bytes:
    """The whole HTTP response an http_status toxic sends instead of the server's."""
    body = json.dumps({"code": "injected", "message": f"fault proxy answered {status}"})
    return (f"HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n{body}").encode()


def slices(chunk: bytes, average: int, variation: int) -> list[bytes]:
    """The slicer's pieces: about `average` ± `variation` bytes each."""
    if average <= 0:
        return [chunk]
    pieces, start = [], 0
    while start < len(chunk):
        size = max(1, average + random.randint(-variation, variation) if variation else average)
        pieces.append(chunk[start:start + size])
        start += size
    return pieces
