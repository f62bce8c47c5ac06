"""The reference stack keeps its own copies of the contract's words, on purpose: an oracle
that shared constants with the suite it checks would agree with it even where both are
wrong. This self-test is the one place that compares them, so a drift in either is seen."""

from __future__ import annotations

from pytest_sidecar.stack import backpressure, policies, ratelimit, store, webhooks
from pytest_sidecar.stack.gateway import requests, traces
from pytest_sidecar.stack.launcher import IMPLEMENTED
from pytest_sidecar.stack.metrics import GRANULARITIES as STACK_GRANULARITIES
from pytest_sidecar.vocabulary import capabilities, defaults, states


def test_trace_states_and_their_order_agree() -> None:
    assert store.TERMINAL == states.TERMINAL
    assert set(policies.FORWARD) == set(states.STATES)
    for before, allowed in policies.FORWARD.items():
        for after in allowed:  # the stack never moves a trace backwards
            assert states.RANK[after] >= states.RANK[before], (before, after)
    assert webhooks.EVENTS == states.WEBHOOK_EVENTS
    assert STACK_GRANULARITIES == states.GRANULARITIES


def test_the_status_object_and_default_featureset_agree() -> None:
    assert traces.STATUS_FIELDS == states.STATUS_FIELDS
    assert requests.DEFAULT_FEATURESET == defaults.DEFAULT_FEATURESET


def test_contract_limits_agree() -> None:
    assert {category: {"rps": limit.rps, "burst": limit.burst}
            for category, limit in ratelimit.DEFAULTS.items()} == defaults.CONTRACT_RATE_LIMITS
    assert backpressure.SOFT_S == defaults.SOFT_BACKLOG_S
    assert backpressure.HARD_FACTOR == defaults.HARD_FACTOR
    assert backpressure.LADDER == defaults.BACKPRESSURE_ACTIONS


def test_the_stack_declares_only_capabilities_the_suite_knows() -> None:
    assert not capabilities.unknown_capabilities(IMPLEMENTED)
