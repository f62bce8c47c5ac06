"""The webhook SSRF guard: every spelling of a private address, names that resolve to
one, and the allow list."""

from __future__ import annotations

import asyncio

import pytest

from pytest_sidecar.stack.ssrf import ForbiddenUrl, Resolver, check_url, literal_address


def resolver(*addresses: str) -> Resolver:
    """A resolver that answers every name with `addresses`."""

    async def resolve(host: str) -> list[str]:
        return list(addresses)
    return resolve


@pytest.mark.parametrize("host,address", [
    ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"), ("127.1", "127.0.0.1"), ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("169.254.169.254", "169.254.169.254"), ("example.org", None), ("1e3", None),
])
def test_literal_spellings_are_read_like_the_c_library(host: str, address: str | None) -> None:
    parsed = literal_address(host)
    assert (str(parsed) if parsed else None) == address


@pytest.mark.parametrize("url", [
    "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1:8080/", "http://127.1/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/", "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://10.1.2.3/",
    "http://172.31.255.255/", "http://192.168.0.10/", "http://100.64.0.1/", "http://0.0.0.0/",
    "ftp://93.184.216.34/", "file:///etc/passwd", "http:///nohost", "http://x:99999/",
])
def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(ForbiddenUrl):
        asyncio.run(check_url(url, [], resolver("93.184.216.34")))


def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    asyncio.run(check_url("https://hooks.example.org/x", [], resolver("93.184.216.34")))
    with pytest.raises(ForbiddenUrl, match="loopback, private"):
        asyncio.run(check_url("https://hooks.example.org/x", [],
                              resolver("93.184.216.34", "10.0.0.7")))
    with pytest.raises(ForbiddenUrl, match="does not resolve"):
        asyncio.run(check_url("https://hooks.example.org/x", [], resolver()))


def test_a_name_that_rebinds_to_a_private_address_is_refused_at_delivery_time() -> None:
    # The dispatcher calls check_url again before every attempt: the second answer wins.
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str) -> list[str]:
        return next(answers)

    asyncio.run(check_url("http://rebind.example.org/", [], rebinding))
    with pytest.raises(ForbiddenUrl):
        asyncio.run(check_url("http://rebind.example.org/", [], rebinding))


def test_the_allow_list_accepts_hosts_as_written_only() -> None:
    asyncio.run(check_url("http://127.0.0.1:9000/hook", ["127.0.0.1"], resolver()))
    with pytest.raises(ForbiddenUrl):  # another spelling of the same address is not listed
        asyncio.run(check_url("http://2130706433:9000/hook", ["127.0.0.1"], resolver()))
