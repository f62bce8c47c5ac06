"""Mark evaluation is a pure function: a decision from the marks, the declared
capabilities and the probes, as pytest's own evaluate_skip_marks returns one."""

from __future__ import annotations

import pytest

from pytest_sidecar.marks import Fail, ItemMarks, Skip, evaluate_clauses, evaluate_needs
from pytest_sidecar.vocabulary.reasons import parse_line


def never(name: str) -> str | None:
    raise AssertionError(f"probed {name}: a capability that is not declared is never probed")


def test_nothing_needed_or_all_there_means_run() -> None:
    assert evaluate_needs((), frozenset(), never) is None
    assert evaluate_needs(("chat",), frozenset({"chat"}), lambda name: None) is None


def test_not_declared_is_a_typed_skip_naming_the_action() -> None:
    decision = evaluate_needs(("chat", "auth"), frozenset({"chat"}), never)
    assert isinstance(decision, Skip)
    typed = parse_line(decision.line)
    assert typed is not None and typed.code == "NOT_DECLARED" and typed.contract == "§3"
    assert "'auth'" in typed.text and typed.action


def test_declared_but_failing_its_probe_is_a_failure() -> None:
    probes = {"auth": "a request without a token got 200"}
    decision = evaluate_needs(("auth",), frozenset({"auth"}), probes.get)
    assert isinstance(decision, Fail)
    typed = parse_line(decision.line)
    assert typed is not None and typed.code == "DECLARED_BUT_MISSING"
    assert typed.text == "auth: a request without a token got 200"


def test_authoring_errors_fail_with_the_known_names() -> None:
    decision = evaluate_needs(("teleport",), frozenset(), never)
    assert isinstance(decision, Fail)
    assert "known: chat" in decision.line
    clause = evaluate_clauses(("§2.5/ids", "§9/nope"))
    assert isinstance(clause, Fail) and "'§9/nope'" in clause.line
    assert evaluate_clauses(("§2.5/ids",)) is None


def test_a_misspelt_need_suggests_the_closest() -> None:
    decision = evaluate_needs(("tenant:2",), frozenset(), never)
    assert decision is not None and "(did you mean 'tenants:2'?)" in decision.line


@pytest.mark.parametrize("serial,own_stack,embedded,alone", [
    (False, False, True, False),  # an ordinary spec shares the machine
    (True, False, True, True),    # a load spec runs alone
    (True, True, True, False),    # ...but one on a stack of its own, embedded, does not
    (True, True, False, True),    # against an external target it disrupts the shared one
])
def test_a_spec_runs_alone_when_it_disrupts_what_others_use(
        serial: bool, own_stack: bool, embedded: bool, alone: bool) -> None:
    marks = ItemMarks(needs=(), clauses=(), contract=(), profile="core", markers=(),
                      serial=serial, own_stack=own_stack)
    assert marks.runs_alone(embedded) is alone
