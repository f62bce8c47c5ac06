"""The detection matrix (docs/detection.md), both halves: against the reference stack
switched to one realistic defect, the suite fails the specs of that defect's clause and
no other; switched to one allowed variation, it fails nothing and skips nothing but what
the variation does not declare.

Each run of the project's tests checks a subset (SIDECAR_DETECTION: a count of defects,
default 2, and SIDECAR_VARIATIONS: a count of variations, default 1, each chosen from the
commit so successive commits cover all; or `all`, as `tox -e detection` does, which also
runs every variation together); `no-explanation-metadata`, the cascade this matrix was
built against, is always in.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest
from scripts.detection.expectations import EXPECTED
from scripts.detection.matrix import ROOT, run, run_variant, sections

from pytest_sidecar.stack.defects import DEFECTS
from pytest_sidecar.stack.variants import VARIANTS

ALWAYS = ("no-explanation-metadata",)


def rotation(names: list[str], count: int, always: tuple[str, ...] = ()) -> list[str]:
    """`always`, then the rest ordered by a hash of the commit: successive commits cover
    every name."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=False).stdout.strip() or "no-git"
    rest = sorted((n for n in names if n not in always),
                  key=lambda name: hashlib.sha256(f"{head}:{name}".encode()).hexdigest())
    return [*always, *rest[:max(0, count - len(always))]]


def chosen() -> list[str]:
    # Two: each defect's run is ~75 s now that tests/chaos is in it; CI stays < 15 min.
    wanted = os.environ.get("SIDECAR_DETECTION", "2")
    return list(DEFECTS) if wanted == "all" else rotation(list(DEFECTS), int(wanted), ALWAYS)


def chosen_variants() -> list[str]:
    wanted = os.environ.get("SIDECAR_VARIATIONS",
                            "all" if os.environ.get("SIDECAR_DETECTION") == "all" else "1")
    if wanted == "all":
        return [*VARIANTS, "all"]
    return rotation(list(VARIANTS), int(wanted))


def test_every_defect_has_expectations_naming_real_specs() -> None:
    assert set(EXPECTED) == set(DEFECTS)
    assert len(DEFECTS) >= 40
    for defect, specs in EXPECTED.items():
        assert specs, defect
        for spec in specs:
            path, _, name = spec.partition("::")
            (found,) = [d / path for d in (ROOT / "tests" / "e2e", ROOT / "tests" / "chaos")
                        if (d / path).exists()]
            text = found.read_text()
            function = name.split("[")[0]
            # A parametrized id must follow the whole function name; a bare name may be a
            # prefix shared by a module's specs.
            whole = f"def {function}(" if "[" in name else f"def {function}"
            assert function and whole in text, f"{defect}: no spec {spec}"


# Each case runs the whole suite with -n 2: it holds the machine alone (the `load`
# marker's serial lock), or the load self-tests beside it would judge a starved generator.
@pytest.mark.load
@pytest.mark.parametrize("defect", chosen())
def test_the_suite_fails_exactly_the_specs_of_the_defects_clause(defect: str) -> None:
    verdict = run(defect)
    assert verdict.caught, (
        f"{defect} ({DEFECTS[defect].clause}: {DEFECTS[defect].summary}) was missed; "
        f"failed: {verdict.failed}")
    assert not verdict.cascade, (
        f"{defect}: unrelated specs failed: "
        f"{ {n: verdict.failed[n] for n in verdict.cascade} }")
    assert not verdict.miscited, (
        f"{defect}: its specs failed citing other clauses than {DEFECTS[defect].clause}: "
        f"{ {n: verdict.failed[n] for n in verdict.miscited} }")
    assert not verdict.unmet, f"{defect}: listed specs that did not fail: {verdict.unmet}"
    # Each failure names its clause in its own words, not only through the suffix the
    # reporter adds.
    unnamed = {n: r for n, r in verdict.failed.items() if not sections(r)}
    assert not unnamed, f"{defect}: failures that name no clause: {unnamed}"


@pytest.mark.load
@pytest.mark.parametrize("variant", chosen_variants())
def test_the_suite_raises_no_false_alarm_on_an_allowed_variation(variant: str) -> None:
    verdict = run_variant(variant)
    assert verdict.passed, f"{variant}: nothing passed"
    assert not verdict.failed, (
        f"{variant} ({VARIANTS[variant].summary if variant in VARIANTS else 'every one'}) "
        f"is allowed by the contract, yet specs failed: {verdict.failed}")
    assert not verdict.skipped, (
        f"{variant}: specs skipped for another reason than NOT_DECLARED: {verdict.skipped}")
