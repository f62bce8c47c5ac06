"""Restart recovery and conservation (docs/contract.md §10 "acknowledged means
durable"): under load, SIGKILL the gateway, then the explainer, and restart each; every trace the
gateway acknowledged must reach exactly one terminal state, its states never going
backwards, on the status channel, in the audit log, in its webhook deliveries (a
receiver on this runner's loopback, when the target declares `webhook_receiver`) and on
the live streams of a sample of them (with `trace_stream`).

The reference stack runs gateway and explainer as two processes, and each kill takes
one; a target file's `resilience.restart` commands restart each process of a real
deployment (`kubectl rollout restart ...`), never guessed.

A freeze (SIGSTOP, then SIGCONT) is the other process fault: a process that stalls
without dying, as under a long GC pause or a throttled CPU quota. Nothing acknowledged
may be lost or duplicated across it either.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pytest_sidecar import Evidence, SidecarConfig, Target
from pytest_sidecar.chaos.conservation import (
    audit_channel,
    drive,
    follow_status,
    judge,
    wait_for_deliveries,
)
from pytest_sidecar.chaos.streams import StreamChannel
from pytest_sidecar.contracts.pii import scrub
from pytest_sidecar.fixtures.stack import StackFactory
from pytest_sidecar.outcomes import FailReason, SkipReason, fail, skip
from pytest_sidecar.receiver import Receiver
from pytest_sidecar.tls import tls_context

# Not own_stack, though the kills hit the module's `dedicated` stack: beside other specs
# its senders slowed until the explainer kept up and no trace was in flight at a kill
# (twice INSUFFICIENT_DATA in four runs); alone it always had some.
pytestmark = [pytest.mark.chaos, pytest.mark.disruptive, pytest.mark.profile("resilience"),
              pytest.mark.needs("explain")]

LOAD_S = 5.0  # ~200 acknowledged traces, dozens in flight at each kill
SENDERS = 6
FOLLOW_S = 30.0
DELIVERY_S = 20.0  # five attempts with backoff, and a redelivery after the restart
FREEZE_S = 2.0  # under the clients' 5 s timeout: requests in flight wait, then answer
ROLES = ("gateway", "explainer")


@pytest.fixture(scope="module")
def dedicated(sidecar_target: Target, stack_factory: StackFactory) -> Iterator[Target | None]:
    """Embedded: one reference stack of this module's own, which its specs may kill and
    freeze (started once: each start costs seconds of README command 1's budget)."""
    if sidecar_target.origin != "embedded":
        yield None
        return
    target = stack_factory()
    try:
        yield target
    finally:
        stack_factory.stop(target)


@pytest.fixture
def restartable(sidecar_target: Target, stack_factory: StackFactory, dedicated: Target | None
                ) -> Iterator[tuple[Any, Callable[[str], float]]]:
    """(target, restart(role) -> seconds until ready). Embedded: the module's dedicated
    stack. Otherwise the target file's resilience.restart commands."""
    if dedicated is not None:
        yield dedicated, lambda role: stack_factory.restart(dedicated, roles=(role,))
        return
    commands = sidecar_target.resilience.get("restart") or {}
    missing = [role for role in ROLES if role not in commands]
    if missing:
        skip(SkipReason.NOT_DECLARED, f"the target file gives no restart command for "
             f"{', '.join(missing)}", "give resilience.restart.gateway and .explainer "
             "(argument lists) in the target file", "§10")
    yield sidecar_target, lambda role: _run_restart(sidecar_target, role, commands[role])


def _run_restart(target: Target, role: str, argv: list[str]) -> float:
    started = time.monotonic()
    _command(argv, f"resilience.restart.{role}")
    _until_ready(target, started + 300)
    return time.monotonic() - started


def _command(argv: list[str], name: str, check: bool = True) -> None:
    """Run a command of the target file (no shell); one that cannot run, fails or hangs
    fails the spec with its name, exit code and last words, not a traceback."""
    try:
        subprocess.run(argv, check=check, timeout=300, capture_output=True, text=True)
    except (OSError, subprocess.SubprocessError) as exc:
        said = scrub(" ".join(str(getattr(exc, "stderr", "") or "").split()))[-300:]
        fail(FailReason.DECLARED_BUT_MISSING,
             f"the target file's {name} command {argv[:1]} did not succeed: "
             f"{type(exc).__name__}: {exc}" + (f"; it said: {said}" if said else ""),
             f"fix {name} in the target file (an argument list, run without a shell)",
             "§10")


def _until_ready(target: Target, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            response = httpx.get(target.url + "/readyz", timeout=2, verify=tls_context())
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


@pytest.fixture
def freezable(sidecar_target: Target, stack_factory: StackFactory, dedicated: Target | None
              ) -> Iterator[tuple[Any, Callable[[str], float]]]:
    """(target, freeze(role) -> seconds until ready after the freeze began). Embedded:
    the module's dedicated stack, SIGSTOP and SIGCONT (with a watchdog). Otherwise the
    target file's resilience.freeze commands; resume runs even when stop or the wait
    fails."""
    if dedicated is not None:

        def freeze_embedded(role: str) -> float:
            started = time.monotonic()
            stack_factory.freeze(dedicated, FREEZE_S)
            _until_ready(dedicated, time.monotonic() + 60)
            return time.monotonic() - started

        yield dedicated, freeze_embedded
        return
    commands = sidecar_target.resilience.get("freeze")
    if not commands:
        skip(SkipReason.NOT_DECLARED, "the target file gives no freeze commands",
             "give resilience.freeze.stop and .resume (argument lists, e.g. kubectl exec "
             "... kill -STOP 1 / -CONT 1) in the target file", "§10")

    def freeze(role: str) -> float:
        started = time.monotonic()
        try:
            _command(commands["stop"], "resilience.freeze.stop")
            time.sleep(FREEZE_S)
        finally:
            _command(commands["resume"], "resilience.freeze.resume", check=False)
        _until_ready(sidecar_target, time.monotonic() + 60)
        return time.monotonic() - started

    yield sidecar_target, freeze


def explainer_finishes(verdict: dict[str, Any]) -> None:
    """Presence before absence: when not one acknowledged trace ended, the explainer does
    not finish traces at all (§2.2's matter, typed), and what the kills lost cannot be
    told from what was never going to end."""
    if verdict["acknowledged"] and len(verdict["lost"]) == verdict["acknowledged"]:
        fail(FailReason.DECLARED_BUT_MISSING, f"declared 'explain'; none of the "
             f"{verdict['acknowledged']} acknowledged traces reached a terminal state, so "
             "conservation across the faults cannot be judged",
             "make the explainer finish its traces", "§2.2")


@pytest.mark.clause("§10/restart", "§5/durable-ack")
def test_no_acknowledged_trace_is_lost_or_duplicated_across_kills(
        restartable: tuple[Any, Callable[[str], float]], evidence: Evidence,
        sidecar_config: SidecarConfig) -> None:
    target, restart = restartable
    token = target.tenants["a"].tokens.write if target.tenants.get("a") else None
    hooked = {"webhooks", "webhook_receiver"} <= set(target.capabilities)
    channel = StreamChannel(target.url, token, FOLLOW_S + LOAD_S) \
        if "trace_stream" in target.capabilities else None
    with Receiver() as receiver:
        ledger, downtime = drive(target.url, token, restart, ROLES, LOAD_S, SENDERS,
                                 hook_url=receiver.url if hooked else None, streams=channel,
                                 model=target.model)
        observed = follow_status(target.url, token, ledger, FOLLOW_S)
        hooks = wait_for_deliveries(receiver.deliveries, ledger, observed,
                                    DELIVERY_S) if hooked else None
        streams = channel.wait() if channel else None
    audit, delays = audit_channel(target.audit_log, ledger, observed)
    verdict = judge(ledger, observed, audit, delays, hooks, streams)
    evidence.record(conservation={k: (len(v) if isinstance(v, list) else v)
                                  for k, v in verdict.items()}, downtime_s=downtime,
                    webhook_channel="judged" if hooked else
                    "not declared (webhooks, webhook_receiver)",
                    sse_channel="judged" if channel else "not declared (trace_stream)")
    assert verdict["acknowledged"] >= 30, (
        f"§10: only {verdict['acknowledged']} traces were acknowledged under load; too few "
        "to judge conservation")
    explainer_finishes(verdict)
    assert not verdict["lost"], (
        f"§10: {len(verdict['lost'])} acknowledged traces never reached a terminal state "
        f"after {len(ROLES)} kills, e.g. {verdict['lost'][:3]}")
    # `failed` is a terminal state (§2.2): counted in the evidence, not lost. It must say
    # why, though.
    assert not verdict["failed_without_error"], (
        f"§10, §2.2: {len(verdict['failed_without_error'])} acknowledged traces ended failed "
        f"with no error after the kills, e.g. {verdict['failed_without_error'][:3]}")
    assert not verdict["duplicated"], (
        f"§10: {len(verdict['duplicated'])} traces reached two terminal states (or their "
        f"ending was delivered under two event ids), e.g. {verdict['duplicated'][:3]}")
    if hooked and not ledger.hooked:  # "no webhook lost" over none registered says nothing
        fail(FailReason.DECLARED_BUT_MISSING, f"declared 'webhooks' and 'webhook_receiver'; "
             f"none of {ledger.hook_refused} registrations to {receiver.url} was accepted",
             "accept webhooks to the runner's 127.0.0.1 (WEBHOOK_ALLOW_HOSTS)", "§2.6")
    assert not verdict.get("webhook_lost"), (
        f"§10: {len(verdict['webhook_lost'])} traces with a webhook ended and were never "
        f"delivered within {DELIVERY_S:g}s after {len(ROLES)} kills, e.g. "
        f"{verdict['webhook_lost'][:3]}")
    assert not verdict.get("audit_lost"), (
        f"§10: {len(verdict['audit_lost'])} traces ended on the status channel but the "
        f"audit log never recorded the ending (§7: trace.complete|failed|canceled) after "
        f"{len(ROLES)} kills, e.g. {verdict['audit_lost'][:3]}")
    assert not verdict.get("sse_lost"), (
        f"§10: {len(verdict['sse_lost'])} streamed traces ended on the status channel but "
        f"their stream never sent the terminal event, e.g. {verdict['sse_lost'][:3]}")
    assert not verdict["backwards"] and not verdict.get("sse_backwards"), (
        f"§10: states went backwards for "
        f"{(verdict['backwards'] or verdict.get('sse_backwards', []))[:3]}")
    # A trace in flight at a kill may still fail for a reason of its own; a restart that
    # fails every trace it had in flight has not kept the work it acknowledged.
    assert verdict["recovered"] or not verdict["failed_at_kill"], (
        f"§10: none of the {verdict['open_at_kills']} traces read in flight just before a "
        f"kill completed after it; {len(verdict['failed_at_kill'])} ended failed, e.g. "
        f"{verdict['failed_at_kill'][:3]}: the restart dropped the work it had "
        "acknowledged instead of resuming it")
    if verdict["recovered"] == 0:
        skip(SkipReason.INSUFFICIENT_DATA, "no trace read as in flight just before a kill "
             f"ended complete after it ({verdict['open_at_kills']} read in flight), so "
             "recovery was not exercised",
             "offer more load (the spec sends explained chats from 6 threads)", "§10")


@pytest.mark.clause("§10/restart", "§5/durable-ack")
def test_a_frozen_target_thaws_and_loses_nothing(
        freezable: tuple[Any, Callable[[str], float]], evidence: Evidence) -> None:
    """Under load, SIGSTOP the target for FREEZE_S, then SIGCONT: every acknowledged
    trace still reaches one terminal state (failed with an error counts), none backwards."""
    target, freeze = freezable
    token = target.tenants["a"].tokens.write if target.tenants.get("a") else None
    # The same load as the kills: with 4 s from 3 threads the explainer was idle at the
    # freeze in 1 run of 8, and the stall-fails-jobs defect went unseen.
    ledger, downtime = drive(target.url, token, freeze, ("freeze",), LOAD_S, SENDERS,
                             model=target.model)
    observed = follow_status(target.url, token, ledger, FOLLOW_S)
    audit, delays = audit_channel(target.audit_log, ledger, observed)
    verdict = judge(ledger, observed, audit, delays)
    evidence.record(conservation={k: (len(v) if isinstance(v, list) else v)
                                  for k, v in verdict.items()},
                    frozen_until_ready_s=downtime["freeze"], freeze_s=FREEZE_S)
    assert verdict["acknowledged"] >= 30, (
        f"§10: only {verdict['acknowledged']} traces were acknowledged around the freeze; "
        "too few to judge conservation")
    explainer_finishes(verdict)
    if not verdict["open_at_kills"]:  # a freeze of an idle target proves nothing
        skip(SkipReason.INSUFFICIENT_DATA, "no trace read as in flight just before the "
             "freeze, so the freeze paused no work", "offer more load", "§10")
    for kind, what in (("lost", "never reached a terminal state"),
                       ("failed_without_error", "ended failed with no error (§2.2)"),
                       ("duplicated", "reached two terminal states"),
                       ("backwards", "went backwards"),
                       ("audit_lost", "ended with no audit line recording it")):
        assert not verdict.get(kind), (
            f"§10: after a {FREEZE_S:g}s freeze {len(verdict[kind])} acknowledged traces "
            f"{what}, e.g. {verdict[kind][:3]}")
