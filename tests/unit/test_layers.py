"""The floors hold: scripts/check_layers.py finds no import cycle, no upward import and
no oversized module or function (CI runs the script too; here it fails next to the
change that broke it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_layers.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_cycle_no_upward_import_no_oversized_room() -> None:
    module = _script()
    problems, floors = module.check()
    assert problems == []
    assert "vocabulary" in {name.split(".")[0] for name in floors[0]}
    assert len(floors) == len(module.FLOORS)


def test_floors_and_cycles_are_computed() -> None:
    module = _script()
    assert module.floor_of("pytest_sidecar.vocabulary.states") == 0
    assert module.floor_of("pytest_sidecar.plugin") > module.floor_of("pytest_sidecar.target")
    assert module.cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
