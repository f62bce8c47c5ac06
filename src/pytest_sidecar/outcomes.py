"""How a spec gives up honestly (typed skips and failures), and the strict-mode rules.

The reason codes and their one-line form are vocabulary (vocabulary/reasons.py); this
module raises them the pytest way. Everything --sidecar-strict changes is decided here.

pytest is imported where an outcome is raised, not when this module loads: the package
exports these names, and `sidecar-stack` or the control plane import the package without
ever running a test.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from .vocabulary.markers import GROUPS
from .vocabulary.reasons import STRICT_PREFIX, FailReason, SkipReason, format_line, parse_line

if TYPE_CHECKING:
    import pytest

__all__ = ["FailReason", "SkipReason", "fail", "fail_line", "format_line",
           "insufficient_data", "parse_line", "skip", "skip_line", "strict_failure",
           "strict_violations"]


def skip(reason: SkipReason, text: str, action: str | None = None,
         ref: str | None = None) -> NoReturn:
    """Skip the running test with a typed one-line reason."""
    skip_line(format_line(reason.name, text, action, ref))


def skip_line(line: str) -> NoReturn:
    """Skip with a ready line, reported at the test's location (not this module's), as
    pytest's own skipif does."""
    import pytest

    try:
        error = pytest.skip.Exception(line, _use_item_location=True)
    except TypeError:  # the private flag is gone in some future pytest: plain skip
        error = pytest.skip.Exception(line)
    raise error


def fail(reason: FailReason, text: str, action: str | None = None,
         ref: str | None = None) -> NoReturn:
    """Fail the running test with a typed one-line reason and no traceback."""
    fail_line(format_line(reason.name, text, action, ref))


def fail_line(line: str) -> NoReturn:
    """Fail with a ready line and no traceback."""
    import pytest

    pytest.fail(line, pytrace=False)


def insufficient_data(what: str, got: int, need: int, action: str | None = None) -> NoReturn:
    """Give up on a measurement with too few samples (never a pass)."""
    skip(SkipReason.INSUFFICIENT_DATA, f"{what}: {got} samples, need at least {need}", action)


# --- strict mode (--sidecar-strict): release runs, where nothing may go unexecuted ---


# The TestReport attribute that carries, on a strict failure, the skip's own line (it
# crosses xdist with the report, as pytest-html's `extras` do).
STRICT_ATTRIBUTE = "sidecar_strict_skip"


@dataclass(frozen=True)
class StrictFailure:
    text: str  # what the failure says: the skip's line behind STRICT_PREFIX
    skip_reason: str  # the skip's own typed line


def strict_failure(strict: bool, report: pytest.TestReport) -> StrictFailure | None:
    """What a skip becomes under strict mode: a failure; None when the report stands.
    An expected failure (xfail) is not a skip."""
    if not (strict and report.skipped) or hasattr(report, "wasxfail"):
        return None
    reason = skip_reason(report)
    return StrictFailure(STRICT_PREFIX + reason, reason)


def skip_reason(report: pytest.TestReport) -> str:
    """The one-line reason of a skipped report (pytest keeps it in a tuple)."""
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return report.longreprtext


def strict_violations(strict: bool, results: Iterable[Mapping[str, Any]],
                      markexpr: str, strict_failed: Collection[str],
                      declared: Collection[str] = ()) -> list[str]:
    """What fails a strict run beyond its tests: nothing executed at all, a marker group
    that `-m` selected executed nothing, or a declared capability that selected specs
    need was exercised by none of them. `strict_failed` are the node ids whose failure
    is a skip that strict mode turned: they still executed nothing."""
    if not strict:
        return []
    results = list(results)
    executed = [r for r in results if r["outcome"] != "skipped"
                and r["nodeid"] not in strict_failed]
    violations = []
    if not executed:
        violations.append("strict: no spec executed")
    for group in selected_groups(markexpr):
        if not any(group in r["markers"] for r in executed):
            violations.append(f"strict: marker group '{group}' was selected but "
                              "executed nothing")
    needed = {n for r in results for n in r.get("needs", [])}
    exercised = {n for r in executed for n in r.get("needs", [])}
    violations += [f"strict: declared capability '{name}' was exercised by no spec"
                   for name in sorted(set(declared) & needed - exercised)]
    return violations


def selected_groups(expression: str) -> list[str]:
    """The marker groups a -m expression selects: named, and not right after `not`."""
    tokens = re.findall(r"\w+", expression)
    return [group for group in GROUPS
            if any(token == group and (i == 0 or tokens[i - 1] != "not")
                   for i, token in enumerate(tokens))]
