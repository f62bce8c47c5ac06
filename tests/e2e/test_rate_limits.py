"""Rate limits (CONTRACT §3): a token bucket per (tenant, category) lets a concurrent
burst through up to its size, then answers 429 rate_limited with an integer Retry-After
>= 1; the bucket is back after it; other tenants and the other category are unaffected;
requests denied by auth spend nothing; a 429 opens no trace.

Bursts are concurrent and sized from the declared limits (the contract's defaults when
the target declares 'rate_limits' without figures), on tenant C when the target reserves
one for throttling, else on tenant A.
"""

from __future__ import annotations

import math
import time
import uuid

import pytest

from pytest_sidecar import Evidence
from pytest_sidecar.fixtures.throttle import Burst, Throttle
from pytest_sidecar.outcomes import insufficient_data

pytestmark = [pytest.mark.profile("security"), pytest.mark.security, pytest.mark.throttle,
              pytest.mark.needs("rate_limits")]


def judge_burst(throttle: Throttle, category: str, burst: Burst) -> int:
    """The §3 checks of one burst; returns the 429's Retry-After in seconds."""
    limit = throttle.limits[category]
    assert not burst.errors, (
        f"§3: {burst.errors} of {burst.sent} concurrent {category} requests got no HTTP "
        "answer (a limited request is a 429, not a dropped connection)")
    refused = burst.first_refusal
    assert refused is not None, (
        f"§3: no 429 after {burst.sent} concurrent {category} requests in {burst.seconds:.2f}s; "
        f"a bucket of burst {limit['burst']:g} at {limit['rps']:g}/s lets through at most "
        f"{throttle.ceiling(category, burst.seconds)} (statuses {dict(burst.statuses)})")
    ceiling = throttle.ceiling(category, burst.seconds)
    assert burst.allowed <= ceiling, (
        f"§3: {burst.allowed} {category} requests let through in {burst.seconds:.2f}s; a "
        f"bucket of burst {limit['burst']:g} at {limit['rps']:g}/s allows at most {ceiling}")
    if throttle.exact:  # nobody else spends this tenant's bucket
        assert burst.allowed >= limit["burst"], (
            f"§3: only {burst.allowed} {category} requests let through before the first 429; "
            f"the bucket holds {limit['burst']:g}")
    body = refused.json()
    assert body.get("code") == "rate_limited", f"§3: a 429 with code {body.get('code')!r}"
    raw = refused.headers.get("retry-after", "")
    assert raw.isdigit(), f"§3: Retry-After {raw!r} is not an integer number of seconds"
    retry_after = int(raw)
    assert 1 <= retry_after <= math.ceil(1 / max(limit["rps"], 1e-9)) + 1, (
        f"§3: Retry-After {retry_after}s for a refill rate of {limit['rps']:g}/s")
    return retry_after


@pytest.mark.clause("§3/bucket", "§3/rate-limited", "§3/auth-denied-free", "§3/no-trace-on-429")
@pytest.mark.needs("chat", "explain", "auth")
def test_write_burst_then_429_that_opens_no_trace_and_recovers(
        rate_limited: Throttle, evidence: Evidence) -> None:
    limit = rate_limited.limits["write"]
    others = [key for key in rate_limited.target.tenants if key != rate_limited.tenant]
    client_ids = "client_trace_id" in rate_limited.target.capabilities
    with rate_limited.client("write") as writer, rate_limited.client("read") as reader:
        # Requests refused by auth must not spend tokens: a bucket's worth of them first.
        denied = [reader.chat().status_code for _ in range(int(limit["burst"]))]
        assert set(denied) == {403}, f"§3: a read token's chats answered {set(denied)}"
        burst = rate_limited.exhaust("write", lambda: writer.chat(max_tokens=1))
        retry_after = judge_burst(rate_limited, "write", burst)

        # A 429 opens no trace: the id it would have had must be unknown afterwards. An
        # explained chat spends the same write bucket: right after a plain chat is refused,
        # it is refused too, unless a token could have come back in between.
        orphan = "rl-" + uuid.uuid4().hex if client_ids else None
        plain_at = time.monotonic()
        plain = writer.chat(max_tokens=1)
        again = writer.explain(trace_id=orphan)
        gap_s = time.monotonic() - plain_at
        if again.status_code != 429:
            refill_s = 1 / limit["rps"]
            if plain.status_code == 429 and gap_s < refill_s:
                pytest.fail(f"§3: an explained chat was let through ({again.status_code}) "
                            f"{gap_s * 1000:.0f} ms after a plain chat was refused 429, though "
                            f"the write bucket gets a token back only every "
                            f"{refill_s * 1000:.0f} ms", pytrace=False)
            insufficient_data("explained chats refused 429 (the bucket refilled before it)",
                              0, 1)
        assert "explanation_metadata" not in again.json(), "§3: a 429 carried a trace"
        orphan = orphan or again.headers.get("x-trace-id")
        other_status = None
        if others:
            with rate_limited.client("write", tenant=others[0]) as stranger:
                other_status = stranger.chat(max_tokens=1).status_code
            assert other_status == 200, (
                f"§3: tenant {others[0]} was throttled by tenant {rate_limited.tenant}'s burst")

        time.sleep(retry_after)
        recovered = writer.chat(max_tokens=1)
        assert recovered.status_code == 200, (
            f"§3: still {recovered.status_code} {retry_after}s after Retry-After")
        orphan_status = reader.status(orphan).status_code if orphan else None
        rate_limited.spent("read")
        # 200: the refused request opened a trace. A 404 is the unknown id it should be;
        # anything else says nothing either way (how unknown ids answer is §2.3's matter).
        assert orphan_status != 200, f"§3: a 429'd request opened trace {orphan}"
    evidence.record(tenant=rate_limited.tenant, limit=limit, exact=rate_limited.exact,
                    denied_by_auth=len(denied), sent=burst.sent, allowed=burst.allowed,
                    refused=len(burst.refused), burst_s=round(burst.seconds, 3),
                    retry_after_s=retry_after, orphan_trace=orphan, orphan_status=orphan_status,
                    other_tenant_status=other_status, recovered_status=200)


@pytest.mark.clause("§3/bucket", "§3/rate-limited")
def test_reads_have_their_own_bucket(rate_limited: Throttle, evidence: Evidence) -> None:
    limit = rate_limited.limits["read"]
    missing = "rl-missing-" + uuid.uuid4().hex[:8]
    with rate_limited.client("read") as reader:
        burst = rate_limited.exhaust("read", lambda: reader.status(missing))
        retry_after = judge_burst(rate_limited, "read", burst)
    evidence.record(tenant=rate_limited.tenant, limit=limit, exact=rate_limited.exact,
                    statuses=dict(burst.statuses), sent=burst.sent, allowed=burst.allowed,
                    refused=len(burst.refused), burst_s=round(burst.seconds, 3),
                    retry_after_s=retry_after)
