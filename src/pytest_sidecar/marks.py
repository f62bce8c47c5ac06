"""Markers: what a test's marks say, and the pure decision setup takes on them.

`evaluate_needs(...)` and `evaluate_clauses(...)` return a Skip, a Fail or None (run
it), as pytest's own `evaluate_skip_marks` returns a Skip or None; the plugin's hook acts
on it. The facts that need I/O (is the target reachable, does a probe
pass) are handed in, so the rules are tested without a target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from .vocabulary.capabilities import (
    CAPABILITIES,
    did_you_mean,
    missing_capabilities,
    unknown_capabilities,
)
from .vocabulary.clauses import unknown_clauses
from .vocabulary.keys import EVIDENCE_PROPERTY, Meta
from .vocabulary.markers import OPT_IN, OWN_STACK_MARKER, SERIAL_MARKERS
from .vocabulary.reasons import FailReason, SkipReason, format_line


def opt_in_left_out(items: Sequence[pytest.Item], markexpr: str,
                    asked_for: Sequence[str] = (), here: Path | None = None
                    ) -> list[pytest.Item]:
    """The items of an opt-in group (OPT_IN) that `-m markexpr` does not name: a plain
    `pytest` leaves them out, `pytest -m capacity` (or any expression naming the group)
    runs them, and so does naming the test's file or node id (`asked_for`: the command
    line's arguments, relative to `here`; a directory does not count)."""
    named = {group for group in OPT_IN if group in markexpr.replace("(", " ").replace(
        ")", " ").split()}
    files = {((here or Path.cwd()) / arg.split("::", 1)[0]).resolve() for arg in asked_for
             if arg.split("::", 1)[0].endswith(".py")}
    return [item for item in items
            if any(item.get_closest_marker(group) for group in set(OPT_IN) - named)
            and item.path.resolve() not in files]


@dataclass(frozen=True)
class Skip:
    """Setup skips the test before its fixtures run, with this one-line typed reason (as
    pytest's own `_pytest.skipping.Skip`)."""

    line: str


@dataclass(frozen=True)
class Fail:
    """Setup fails the test before its fixtures run, with this one-line typed reason."""

    line: str


Decision = Skip | Fail  # what setup does with a test; None means: run it


@dataclass(frozen=True)
class ItemMarks:
    """The sidecar marks of one test item, read once."""

    needs: tuple[str, ...]
    clauses: tuple[str, ...]
    contract: tuple[str, ...]
    profile: str
    markers: tuple[str, ...]
    serial: bool  # loads, disrupts or fuzzes: no other spec may run beside it...
    own_stack: bool  # ...except when, on the embedded stack, it does so to a stack of its own

    @classmethod
    def of(cls, item: pytest.Item) -> ItemMarks:
        needs = tuple(str(n) for mark in item.iter_markers("needs") for n in mark.args)
        clauses = tuple(str(c) for mark in item.iter_markers("clause") for c in mark.args)
        # A clause id names its section ('§2.1/metadata' is §2.1's); the deprecated
        # contract(...) marker still adds what it says.
        sections = [section_of(c) for c in clauses]
        sections += [str(s) for mark in item.iter_markers("contract") for s in mark.args]
        sections += [CAPABILITIES[n].section for n in needs if n in CAPABILITIES]
        names = {m.name for m in item.iter_markers()}
        return cls(
            needs=needs,
            clauses=clauses,
            contract=tuple(dict.fromkeys(sections)),
            profile=_profile(item, needs),
            markers=tuple(sorted(names - {"parametrize", "usefixtures", "filterwarnings"})),
            serial=bool(names & set(SERIAL_MARKERS)),
            own_stack=OWN_STACK_MARKER in names,
        )

    def runs_alone(self, embedded: bool) -> bool:
        """Whether the spec must have the machine to itself: specs that load, disrupt or
        fuzz the target run with no other spec beside them, unless (embedded mode) they
        do it to a reference stack of their own, which no other spec uses (those still
        run one at a time: serial.MachineLock.shared_one_own_stack)."""
        return self.serial and not (self.own_stack and embedded)

    def meta(self) -> Meta:
        """What the controller's reporter needs of these marks."""
        return {"markers": list(self.markers), "contract": list(self.contract),
                "profile": self.profile, "clauses": list(self.clauses), "needs": list(self.needs)}


def serial_order(items: Sequence[pytest.Item], embedded: bool) -> list[pytest.Item]:
    """The items in three groups, each in its own order: the specs on a stack of their
    own first, the ordinary ones, then those that must run alone.

    Under xdist a spec that runs alone waits for the other workers' running tests and
    holds them up while it runs: spread through the run, every one of those waits breaks
    the parallel phase, so they go last and run one after another, as they must anyway.
    Specs on stacks of their own run one at a time beside ordinary ones: first, they land
    in one worker's first chunk (xdist hands out consecutive items) and run there in turn
    while the other workers run ordinary specs, instead of a chain with nothing beside it.
    """
    def group(item: pytest.Item) -> int:
        marks = ItemMarks.of(item)
        if marks.runs_alone(embedded):
            return 2
        return 0 if marks.serial else 1

    return sorted(items, key=group)


def section_of(clause: str) -> str:
    """The contract section a clause id belongs to: '§2.1/metadata' -> '§2.1'."""
    return clause.split("/", 1)[0]


CONTRACT_MARKER_DEPRECATED = (
    "the contract(...) marker is deprecated: clause(...) names the clause, and the report "
    "derives its section from it ('§2.1/metadata' is §2.1's); contract(...) goes in a "
    "later release")


def deprecated_contract_marks(items: Sequence[pytest.Item]) -> list[pytest.Item]:
    """The items that still carry the deprecated contract(...) marker."""
    return [item for item in items if item.get_closest_marker("contract") is not None]


def _profile(item: pytest.Item, needs: Sequence[str]) -> str:
    mark = item.get_closest_marker("profile")
    if mark and mark.args:
        return str(mark.args[0])
    return CAPABILITIES[needs[0]].profile if needs and needs[0] in CAPABILITIES else "core"


def evaluate_clauses(clauses: Sequence[str]) -> Decision | None:
    """A clause id that is not in the registry is a test-authoring error: fail."""
    unknown = unknown_clauses(list(clauses))
    if unknown:
        return Fail(f"clause({', '.join(map(repr, unknown))}): not in "
                    "pytest_sidecar.vocabulary.clauses")
    return None


def evaluate_needs(needs: Sequence[str], offered: frozenset[str],
                   probe: Callable[[str], str | None]) -> Decision | None:
    """Not declared → skip NOT_DECLARED; declared but its probe fails → fail
    DECLARED_BUT_MISSING; an unknown name → fail (a test-authoring error)."""
    unknown = unknown_capabilities(needs)
    if unknown:
        return Fail(f"needs({', '.join(map(repr, unknown))}): unknown capability"
                    f"{did_you_mean(unknown)}; known: {', '.join(CAPABILITIES)}")
    missing = missing_capabilities(needs, offered)
    if missing:
        first = missing[0]
        return Skip(format_line(
            SkipReason.NOT_DECLARED.name,
            f"the target does not declare {', '.join(repr(c.name) for c in missing)}",
            first.action, first.section))
    for name in needs:
        problem = probe(name)
        if problem:
            return Fail(format_line(
                FailReason.DECLARED_BUT_MISSING.name, f"{name}: {problem}",
                "fix the target or stop declaring it", CAPABILITIES[name].section))
    return None


def missing_evidence(item: pytest.Item) -> bool:
    """A test that asked for `evidence` must have recorded some to pass."""
    uses = "evidence" in getattr(item, "fixturenames", ())
    return uses and not any(key == EVIDENCE_PROPERTY for key, _ in item.user_properties)
