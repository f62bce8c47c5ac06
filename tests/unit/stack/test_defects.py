"""The opt-in defects (stack/defects.py) are seams: each substitutes a policy, a response
rewrite or a setting when the stack is built, and no module of the stack asks which
defect runs, so the handlers read as docs/contract.md."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_sidecar.stack import defects
from pytest_sidecar.stack.policies import Policies
from pytest_sidecar.stack.variants import policies_of, seamed

STACK = Path(defects.__file__).parent


def test_every_defect_substitutes_a_named_seam() -> None:
    fields = set(Policies.__dataclass_fields__)
    for defect in defects.DEFECTS.values():
        assert defect.policies or defect.rewrite or defect.env, defect.name
        assert set(defect.policies) <= fields, (defect.name, set(defect.policies) - fields)


def test_no_module_of_the_stack_asks_which_defect_runs() -> None:
    asking = [f"{path.relative_to(STACK)}:{n}" for path in STACK.rglob("*.py")
              for n, line in enumerate(path.read_text().splitlines(), 1)
              if re.search(r"\bdefects\.(on|active)\(", line)]
    assert asking == []


def test_a_defect_changes_only_its_own_policies() -> None:
    chosen = seamed((), {"breaker-never-opens"})
    changed = {name for name in Policies.__dataclass_fields__
               if getattr(policies_of(chosen), name) != getattr(Policies(), name)}
    assert changed == {"breaker_opens"}
