"""Rate limits (CONTRACT §3): N allowed, then 429 rate_limited with a sane integer
Retry-After, recovery after it, other tenants unaffected, and a 429 opens no trace."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_sidecar.client import SidecarClient

pytestmark = [pytest.mark.profile("security"), pytest.mark.security,
              pytest.mark.contract("§3")]

@pytest.fixture
def a_write(rate_limited: Any, sidecar_config: Any) -> Iterator[SidecarClient]:
    with rate_limited.client("a", "write", sidecar_config.timeout) as client:
        yield client


def burst_until_429(send: Any, limit: dict[str, float], cap: int) -> tuple[int, Any, float]:
    """Send until the first 429; returns (allowed count, the 429 response, seconds)."""
    started = time.monotonic()
    for allowed in range(cap):
        response = send()
        if response.status_code == 429:
            return allowed, response, time.monotonic() - started
        assert response.status_code < 400 or response.status_code == 404, response.text[:200]
    pytest.fail(f"no 429 after {cap} requests (declared burst {limit['burst']})")


def assert_allowed_matches_the_bucket(allowed: int, limit: dict[str, float],
                                      elapsed: float, dedicated: bool) -> None:
    # A token bucket allows `burst` at once plus what refills while the burst is sent.
    # On a shared target other specs spend the same bucket, so only the ceiling holds.
    ceiling = limit["burst"] + math.ceil(limit["rps"] * elapsed) + 1
    floor = limit["burst"] if dedicated else 0
    assert floor <= allowed <= ceiling, (
        f"{allowed} allowed; a bucket of burst {limit['burst']} at {limit['rps']}/s over "
        f"{elapsed:.2f}s allows {limit['burst']}..{ceiling}")


def assert_rate_limited(response: Any, limit: dict[str, float]) -> int:
    assert response.json()["code"] == "rate_limited", response.text[:200]
    raw = response.headers.get("retry-after", "")
    assert raw.isdigit(), f"Retry-After {raw!r} is not an integer number of seconds"
    retry_after = int(raw)
    assert 1 <= retry_after <= math.ceil(1 / limit["rps"]) + 1, (
        f"Retry-After {retry_after}s for a refill rate of {limit['rps']}/s")
    return retry_after


@pytest.mark.needs("chat", "explain", "auth", "tenants:2")
def test_write_burst_then_429_that_opens_no_trace_and_recovers(
        rate_limited: Any, a_write: SidecarClient, sidecar_config: Any, evidence: Any) -> None:
    limit = rate_limited.limits["write"]
    cap = int(limit["burst"] * 3 + 10)
    # Requests refused by auth must not consume tokens: spend some first.
    with rate_limited.client("a", "read", sidecar_config.timeout) as reader:
        denied = [reader.chat().status_code for _ in range(int(limit["burst"]))]
    assert set(denied) == {403}, denied

    allowed, refused, elapsed = burst_until_429(lambda: a_write.explain(), limit, cap)
    assert_allowed_matches_the_bucket(allowed, limit, elapsed, rate_limited.dedicated)
    retry_after = assert_rate_limited(refused, limit)

    orphan = "rl-" + uuid.uuid4().hex
    again = a_write.explain(trace_id=orphan)
    assert again.status_code == 429, "the bucket refilled too fast to test the trace rule"
    assert "explanation_metadata" not in again.json()
    with rate_limited.client("a", "read", sidecar_config.timeout) as reader:
        status = reader.status(orphan)
    assert status.status_code == 404, f"a 429'd request opened trace {orphan}"

    with rate_limited.client("b", "write", sidecar_config.timeout) as other:
        assert other.explain().status_code == 200, "tenant B was throttled by tenant A"

    time.sleep(retry_after)
    recovered = a_write.explain()
    assert recovered.status_code == 200, f"still {recovered.status_code} after Retry-After"
    evidence.record(limit=limit, exact=rate_limited.dedicated, denied_by_auth=len(denied),
                    allowed=allowed,
                    burst_s=round(elapsed, 3), retry_after_s=retry_after, orphan_trace=orphan,
                    orphan_status=404, other_tenant_status=200, recovered_status=200)


@pytest.mark.needs("chat", "auth")
def test_reads_have_their_own_bucket(rate_limited: Any, sidecar_config: Any,
                                     evidence: Any) -> None:
    limit = rate_limited.limits["read"]
    with rate_limited.client("a", "read", sidecar_config.timeout) as reader:
        missing = "rl-missing-" + uuid.uuid4().hex[:8]
        allowed, refused, elapsed = burst_until_429(lambda: reader.status(missing), limit,
                                                    int(limit["burst"] * 3 + 10))
        assert_allowed_matches_the_bucket(allowed, limit, elapsed, rate_limited.dedicated)
        retry_after = assert_rate_limited(refused, limit)
    evidence.record(limit=limit, exact=rate_limited.dedicated, allowed=allowed,
                    burst_s=round(elapsed, 3), retry_after_s=retry_after)
