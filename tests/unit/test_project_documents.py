"""The project's own documents say what CONTRACT §8 asks of them: the v1 API document is
valid OpenAPI with only /v1 paths and matches the contract's route table; the
change-management document states ADRs, a code freeze and a >= 90-day deprecation window.
Checks of this repository, not of a target, so they are self-tests."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_sidecar.contracts.openapi import documented_routes, load_openapi
from pytest_sidecar.contracts.routes import ROUTE_NEEDS

ROOT = Path(__file__).resolve().parents[2]
CHANGE_MANAGEMENT = ROOT / "docs" / "change-management.md"


def test_the_api_document_is_valid_openapi_and_only_v1() -> None:
    from openapi_spec_validator import validate

    document = load_openapi()
    validate(document)
    paths = list(document["paths"])
    assert paths and all(path.startswith("/v1/") for path in paths), paths
    assert document["openapi"].startswith("3.")


def test_the_repository_copy_of_the_api_document_is_the_shipped_one() -> None:
    shipped = (ROOT / "src" / "pytest_sidecar" / "contracts" / "hypergraph-api.yaml").read_text()
    assert (ROOT / "api" / "openapi" / "hypergraph-api.yaml").read_text() == shipped


def test_the_route_table_is_the_documented_one() -> None:
    assert set(ROUTE_NEEDS) == documented_routes()


def policy_fields() -> dict[str, dict[str, str]]:
    """`- Field: value` lines of docs/change-management.md, by `##` section."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in CHANGE_MANAGEMENT.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip().lower(), {})
        elif current is not None and (match := re.match(r"^- ([^:]+): (.+)$", line)):
            current[match[1].strip().lower()] = match[2].strip()
    return sections


def test_change_management_states_adr_freeze_and_deprecation_window() -> None:
    policy = policy_fields()
    adr = policy.get("architecture decision records", {})
    assert adr.get("required") == "yes", adr
    freeze = policy.get("release freeze", {})
    assert freeze.get("code freeze before release") == "yes", freeze
    assert re.match(r"^\d+ (working )?days?$", freeze.get("freeze length", "")), freeze
    window = policy.get("deprecation policy", {}).get("minimum deprecation window", "")
    days = re.match(r"^(\d+) days$", window)
    assert days and int(days[1]) >= 90, f"deprecation window {window!r} is not >= 90 days"
    versioning = policy.get("versioning", {})
    assert versioning.get("api version in path") == "/v1"
    assert versioning.get("hif version") == "hif-1"


def test_every_clause_is_asserted_by_a_spec_or_owned() -> None:
    """The coverage registry and the specs' clause markers agree; a clause no spec
    asserts names who will (an open piece of work) or why it cannot be observed."""
    import ast

    from pytest_sidecar.vocabulary.clauses import CLAUSES, unknown_clauses

    named: set[str] = set()
    for path in [*(ROOT / "tests" / "e2e").glob("test_*.py"),
                 *(ROOT / "tests" / "load").glob("test_*.py"),
                 *(ROOT / "tests" / "chaos").glob("test_*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "clause":
                named |= {arg.value for arg in node.args
                          if isinstance(arg, ast.Constant) and isinstance(arg.value, str)}
    assert not unknown_clauses(sorted(named)), unknown_clauses(sorted(named))
    orphans = [c.id for c in CLAUSES.values() if c.id not in named and not c.owner]
    assert not orphans, f"clauses no spec asserts and nobody owns: {orphans}"
    owned_but_asserted = [c.id for c in CLAUSES.values() if c.id in named and c.owner]
    assert not owned_but_asserted, f"asserted now; drop their owner: {owned_but_asserted}"
