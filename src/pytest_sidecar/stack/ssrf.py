"""SSRF guard for webhook URLs (CONTRACT §2.6).

Only http/https. The host must resolve only to globally routable addresses: loopback,
private, link-local (cloud metadata), shared, reserved and unspecified ranges are
refused, in every spelling: decimal (`2130706433`), octal (`0177.0.0.1`), hex
(`0x7f.0.0.1`), short (`127.1`) and IPv6-mapped (`[::ffff:127.0.0.1]`). The system's own
`inet_aton` parses the legacy IPv4 spellings, exactly as a connecting client would.
A host listed in the allow list (as written, e.g. `127.0.0.1`) is accepted as is.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from .exceptions import StackError

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[list[str]]]


class ForbiddenUrl(StackError, ValueError):
    """The URL may not be called; the message says why (no address is echoed back)."""


def literal_address(host: str) -> IP | None:
    """The address a host literal denotes, in any spelling; None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if all(part.isalnum() for part in bare.split(".")) and any(c.isdigit() for c in bare[:1]):
        try:  # decimal, octal, hex and short IPv4 forms, as the C library reads them
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def forbidden_reason(address: IP) -> str | None:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if not address.is_global:
        return "a loopback, private, link-local or reserved address"
    return None


async def system_resolver(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_url(url: str, allow_hosts: Iterable[str],
                    resolve: Resolver = system_resolver, every_spelling: bool = True) -> None:
    """Raise ForbiddenUrl unless `url` may be called now (checked again at each delivery,
    so a name that later resolves somewhere private is caught)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise ForbiddenUrl("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ForbiddenUrl("only http and https URLs with a host are allowed")
    if host.lower() in {h.lower() for h in allow_hosts}:
        return
    if not every_spelling:  # what no gateway should do: other spellings pass as names
        try:  # strict parsing only: other spellings of an address are taken for names
            strict = ipaddress.ip_address(host)
        except ValueError:
            if host.lower() == "localhost":
                raise ForbiddenUrl("the host is loopback") from None
            return
        if forbidden_reason(strict):
            raise ForbiddenUrl("the host is a forbidden address")
        return
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await resolve(host)]
        except (OSError, ValueError):
            raise ForbiddenUrl("the host does not resolve") from None
    if not addresses:
        raise ForbiddenUrl("the host does not resolve")
    for address in addresses:
        reason = forbidden_reason(address)
        if reason:
            raise ForbiddenUrl(f"the host is {reason}")
