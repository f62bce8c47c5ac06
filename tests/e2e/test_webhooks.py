"""Webhooks (CONTRACT §2.6): signed delivery to a receiver on 127.0.0.1, retries under the
same event id, and SSRF refusals that never open a connection.

Delivery needs a target that can reach this runner's loopback (co-located) and allows
127.0.0.1 (WEBHOOK_ALLOW_HOSTS); the embedded stack does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_sidecar import Evidence, Traces
from pytest_sidecar.client import SidecarClient
from pytest_sidecar.contracts.timestamps import timestamp_error
from pytest_sidecar.receiver import Receiver

MAX_ATTEMPTS = 5  # §2.6: at most 5 attempts in all
MIN_ATTEMPTS = 2  # §2.6: a failed delivery is retried
GIVE_UP_WINDOW_S = 30.0  # how long the give-up spec watches a receiver that always fails
UNWANTED_DELIVERY_S = 0.5  # after the wanted delivery, how long an unwanted one may trail

pytestmark = [pytest.mark.profile("security"), pytest.mark.security,
              pytest.mark.needs("chat", "explain", "webhooks")]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on this runner's 127.0.0.1, closed after the spec."""
    with Receiver() as server:
        yield server


@pytest.mark.clause("§2.6/register", "§2.6/delivery")
@pytest.mark.needs("webhook_receiver")
def test_delivery_is_signed_and_describes_the_event(
        gateway: SidecarClient, receiver: Receiver, traces: Traces, evidence: Evidence) -> None:
    secret = "whsec-" + str(time.monotonic_ns())
    trace_id = traces.open(granularity="token").trace_id
    # A second hook on the same receiver for an event this trace will not have: only the
    # events a registration lists are delivered.
    other = gateway.http.post(f"/v1/traces/{trace_id}/webhooks", json={
        "url": receiver.url, "events": ["canceled"]})
    assert other.status_code == 201, f"§2.6: registering a webhook got {other.status_code}"
    registered = gateway.http.post(f"/v1/traces/{trace_id}/webhooks", json={
        "url": receiver.url, "secret": secret, "events": ["complete"]})
    assert registered.status_code == 201, (
        f"§2.6: registering a webhook got {registered.status_code}: {registered.text[:200]}")
    hook = registered.json()
    assert hook.get("trace_id") == trace_id and hook.get("url") == receiver.url, (
        f"§2.6: the registration answer {hook}")
    assert hook.get("events") == ["complete"] and "secret" not in hook, (
        f"§2.6: the registration answer {hook} (events, and never the secret)")
    traces.require_complete(trace_id, traces.wait(trace_id).last or {})
    calls = receiver.wait_for(1, 10)
    assert calls, "§2.6: no delivery within 10 s of the trace completing"
    time.sleep(UNWANTED_DELIVERY_S)  # a delivery of the unregistered event would come by now
    calls = list(receiver.calls)
    # The hook for 'canceled' has no secret: any unsigned delivery is one it should never
    # have made, whatever event it names.
    unwanted = [json.loads(c["body"]).get("event") for c in calls
                if "x-sidecar-signature" not in c["headers"]]
    assert not unwanted, (
        f"§2.6: a hook registered for 'canceled' was told of {unwanted}: only the events a "
        "registration lists are delivered")
    calls = [c for c in calls if "x-sidecar-signature" in c["headers"]]
    # At least once: a duplicate is allowed, but only of the same event.
    assert len({json.loads(c["body"]).get("event_id") for c in calls}) == 1, (
        f"§2.6: {len(calls)} deliveries of different events for one transition")
    body = json.loads(calls[0]["body"])
    assert {k: body.get(k) for k in ("event", "trace_id", "state")} == {
        "event": "complete", "trace_id": trace_id, "state": "complete"}, f"§2.6: {body}"
    assert body.get("event_id") and body.get("ts"), f"§2.6: no event_id or ts in {body}"
    stamp = timestamp_error("ts", body["ts"])
    assert stamp is None, f"§2.6: {stamp}"
    expected = "sha256=" + hmac.new(secret.encode(), calls[0]["body"],
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(calls[0]["headers"].get("x-sidecar-signature", ""), expected), (
        "§2.6: x-sidecar-signature is not HMAC-SHA256(secret, raw body)")
    evidence.record(trace_id=trace_id, hook_id=hook["id"], event_id=body["event_id"],
                    signature_verified=True)


@pytest.mark.clause("§2.6/retry")
@pytest.mark.needs("webhook_receiver")
def test_failed_deliveries_are_retried_with_the_same_event_id(
        gateway: SidecarClient, traces: Traces, evidence: Evidence) -> None:
    flaky = Receiver(fail_first=1)
    try:
        trace_id = traces.complete().trace_id
        # Registered after the fact: the event already happened, so it fires at once.
        registered = gateway.http.post(f"/v1/traces/{trace_id}/webhooks",
                                       json={"url": flaky.url})
        assert registered.status_code == 201, (
            f"§2.6: registering a webhook got {registered.status_code}")
        calls = flaky.wait_for(2, 15)
    finally:
        flaky.close()
    # At least once: one refused attempt, then the success; a transport hiccup on the
    # successful attempt may add a duplicate, but never past the contract's 5 attempts.
    assert 2 <= len(calls) <= MAX_ATTEMPTS, (
        f"§2.6: {len(calls)} attempts against a receiver that refused only the first "
        "(a failed delivery is retried)")
    ids = {json.loads(call["body"]).get("event_id") for call in calls}
    assert len(ids) == 1, f"§2.6: retries changed the event id: {ids}"
    assert "x-sidecar-signature" not in calls[0]["headers"], "§2.6: signed without a secret"
    evidence.record(trace_id=trace_id, attempts=len(calls), event_id=ids.pop())


OTHER_SCHEMES = ("ftp://", "file://")


def refused(url: str, answer: tuple[int, str | None]) -> bool:
    """§2.6: an address it forbids is 422 webhook_url_forbidden; a scheme other than
    http(s) is refused too, but the contract names no code for it, so any 4xx error
    that is not about the caller (401/403) or a missing trace (404) will do."""
    status, code = answer
    if url.startswith(OTHER_SCHEMES):
        return 400 <= status < 500 and status not in (401, 403, 404) and isinstance(code, str)
    return answer == (422, "webhook_url_forbidden")


def ssrf_urls(port: int) -> list[str]:
    """Forbidden spellings; the loopback ones all point at a listener on 127.0.0.2."""
    return [
        f"http://127.0.0.2:{port}/", f"http://2130706434:{port}/",
        f"http://0177.0.0.2:{port}/", f"http://0x7f.0.0.2:{port}/",
        f"http://0x7f000002:{port}/", f"http://127.2:{port}/",
        f"http://[::ffff:127.0.0.2]:{port}/", f"http://[::ffff:7f00:2]:{port}/",
        f"http://localhost:{port}/", f"http://[::1]:{port}/", f"http://0.0.0.0:{port}/",
        "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
        "http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/",
        "http://100.100.100.200/", "ftp://127.0.0.2/", "file:///etc/passwd",
    ]


@pytest.mark.clause("§2.6/ssrf")
def test_ssrf_targets_are_refused_without_a_connection(
        gateway: SidecarClient, traces: Traces, evidence: Evidence) -> None:
    trap = Receiver(host="127.0.0.2")
    try:
        trace_id = traces.complete().trace_id
        answers = {}
        for url in ssrf_urls(trap.port):
            response = gateway.http.post(f"/v1/traces/{trace_id}/webhooks", json={"url": url})
            answers[url] = (response.status_code, response.json().get("code"))
        time.sleep(0.3)  # a delivery attempt, had one been scheduled, would show by now
    finally:
        trap.close()
    accepted = {u: a for u, a in answers.items() if not refused(u, a)}
    assert not accepted, f"§2.6: webhook URLs not refused: {accepted}"
    assert trap.connections == 0, f"§2.6: {trap.connections} connections reached 127.0.0.2"
    evidence.record(trace_id=trace_id, refused=len(answers), connections=0)


@pytest.mark.clause("§2.6/max-attempts")
@pytest.mark.needs("webhook_receiver")
def test_delivery_gives_up_after_five_attempts(gateway: SidecarClient, traces: Traces,
                                               evidence: Evidence) -> None:
    """Against a receiver that always fails: 2 to 5 attempts, backing off (the last wait
    longer than the first; jitter may reorder the others), then silence."""
    broken = Receiver(fail_first=10 ** 6)  # refuses every delivery
    try:
        trace_id = traces.complete().trace_id
        registered = gateway.http.post(f"/v1/traces/{trace_id}/webhooks",
                                       json={"url": broken.url})
        assert registered.status_code == 201, (
            f"§2.6: registering a webhook got {registered.status_code}")
        calls = quiet_calls(broken, time.monotonic() + GIVE_UP_WINDOW_S)
    finally:
        broken.close()
    gaps = [round(b["t"] - a["t"], 3) for a, b in itertools.pairwise(calls)]
    assert len(calls) <= MAX_ATTEMPTS, (
        f"§2.6: {len(calls)} attempts; delivery gives up after at most {MAX_ATTEMPTS}")
    assert len(calls) >= MIN_ATTEMPTS, (
        f"§2.6: {len(calls)} attempt(s) against a receiver that always fails: a failed "
        "delivery is retried")
    if len(gaps) >= 2:
        assert gaps[-1] > gaps[0], f"§2.6: the backoff does not grow: waits {gaps} s"
    evidence.record(trace_id=trace_id, attempts=len(calls), gaps_s=gaps)


def quiet_calls(receiver: Receiver, deadline: float) -> list[dict[str, Any]]:
    """The receiver's calls once attempts stop: after each, wait for the next for 2.5x the
    last wait (exponential backoff doubles it; jitter may add some), bounded by
    `deadline` and by one attempt past the most the contract allows."""
    calls = receiver.wait_for(1, max(0.0, deadline - time.monotonic()))
    while calls and len(calls) <= MAX_ATTEMPTS and time.monotonic() < deadline:
        last_gap = calls[-1]["t"] - calls[-2]["t"] if len(calls) >= 2 else 2.0
        seen = len(calls)
        calls = receiver.wait_for(seen + 1, min(2.5 * last_gap + 0.5,
                                                 max(0.0, deadline - time.monotonic())))
        if len(calls) == seen:
            break
    return list(calls)
