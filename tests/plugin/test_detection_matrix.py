"""The detection matrix (docs/detection.md): against the reference stack switched to one
realistic defect, the suite fails the specs of that defect's clause and no other.

Each run of the project's tests checks a subset (SIDECAR_DETECTION: a count, default 3,
chosen from the commit so successive commits cover all; or `all`, as `tox -e detection`
does); `no-explanation-metadata`, the cascade this matrix was built against, is always in.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest
from tests.detection.expectations import EXPECTED
from tests.detection.matrix import ROOT, run, sections

from pytest_sidecar.stack.defects import DEFECTS

ALWAYS = ("no-explanation-metadata",)


def chosen() -> list[str]:
    # Three: each defect's run is ~75 s now that tests/chaos is in it; CI stays < 15 min.
    wanted = os.environ.get("SIDECAR_DETECTION", "3")
    if wanted == "all":
        return list(DEFECTS)
    count = int(wanted)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=False).stdout.strip() or "no-git"
    rest = sorted((n for n in DEFECTS if n not in ALWAYS),
                  key=lambda name: hashlib.sha256(f"{head}:{name}".encode()).hexdigest())
    return [*ALWAYS, *rest[:max(0, count - len(ALWAYS))]]


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
